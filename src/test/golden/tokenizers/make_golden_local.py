#!/usr/bin/env python3
"""Reference ids without transformers: HF tokenizers through its Node.js binding + the sentencepiece package.

make_golden.py needs transformers, which only the GPU machine has. This script makes the subset of its output that
needs no transformers, with the same file names and JSON layout, on a developer machine:

  apt-get install python3-sentencepiece                  # Debian's sentencepiece (0.1.97 on bookworm)
  (mkdir -p target/npm && cd target/npm && npm install tokenizers@0.23.2)   # HF tokenizers' Node binding
  /usr/bin/python3 src/test/golden/tokenizers/make_golden_local.py --node-modules target/npm/node_modules \
      --out src/test/resources/dev/impasto/encoders/tokenizer/golden

The tokenizer.json files are written here as JSON, loaded by the tokenizers library (Tokenizer.fromFile), encoded
there, and saved again by it, so the committed files are the library's own serialization.
"""
import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_golden import (EXTRA_IDS, RESOURCES, T5_MODELS, clip_json, precompiled_charsmap,  # noqa: E402
                         t5_json)

NODE_SCRIPT = r"""
const fs = require('fs');
const { Tokenizer } = require('tokenizers');
(async () => {
  const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const out = {};
  for (const [name, spec] of Object.entries(job.files)) {
    const tok = Tokenizer.fromFile(spec.input);
    tok.save(spec.saved);
    const r = { ids: [] };
    for (const p of job.prompts) r.ids.push((await tok.encode(p)).getIds());
    for (const n of spec.truncations) {
      tok.setTruncation(n);
      r['trunc' + n] = [];
      for (const p of job.prompts) r['trunc' + n].push((await tok.encode(p)).getIds());
      tok.disableTruncation();
    }
    out[name] = r;
  }
  fs.writeFileSync(process.argv[3], JSON.stringify(out));
})().catch(e => { console.error(e); process.exit(1); });
"""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--node-modules", required=True)
    parser.add_argument("--prompts", help="a JSON file {\"prompts\": [...]} instead of golden_prompts.json (for fuzzing)")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    import sentencepiece as spm
    prompts_file = args.prompts or os.path.join(RESOURCES, "golden_prompts.json")
    prompts = json.load(open(prompts_file, encoding="utf-8"))["prompts"]
    work = tempfile.mkdtemp()
    files = {}

    def stage(name, content, truncations):
        path = os.path.join(work, name)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(content, f, ensure_ascii=False)
        files[name] = {"input": path, "saved": path + ".saved", "truncations": truncations}

    stage("clip.tokenizer.json", clip_json(), [])
    sps = {}
    for model in T5_MODELS:
        path = os.path.join(RESOURCES, model)
        sp = spm.SentencePieceProcessor(model_file=path)
        sps[model] = sp
        charsmap = precompiled_charsmap(open(path, "rb").read())
        for style in ("legacy", "converter"):
            stage("%s.%s.tokenizer.json" % (model[:-len(".model")], style), t5_json(sp, charsmap, style), [512, 256])
    job = os.path.join(work, "job.json")
    json.dump({"prompts": prompts, "files": files}, open(job, "w", encoding="utf-8"))
    script = os.path.join(work, "encode.js")
    open(script, "w").write(NODE_SCRIPT)
    ids_path = os.path.join(work, "ids.json")
    env = dict(os.environ, NODE_PATH=os.path.abspath(args.node_modules))
    subprocess.run(["node", script, job, ids_path], check=True, env=env)
    ids = json.load(open(ids_path, encoding="utf-8"))
    tokenizers_version = json.load(open(os.path.join(args.node_modules, "tokenizers", "package.json")))["version"]

    for name, spec in files.items():
        with open(spec["saved"], "rb") as src, gzip.open(os.path.join(args.out, name + ".gz"), "wb") as dst:
            dst.write(src.read())

    result = {
        "versions": {"python": sys.version, "sentencepiece": spm.__version__,
                     "tokenizers": tokenizers_version + " (Node.js binding)", "transformers": "not used"},
        "generator": "make_golden_local.py",
        "prompts": prompts,
        "references": {
            "clip.tokenizers_pipeline": "HF tokenizers, pipeline as transformers 5 CLIPTokenizer builds it; ids include <|startoftext|> and <|endoftext|>",
            "t5.<model>.sentencepiece": "sentencepiece SentencePieceProcessor.encode(text), no </s>",
            "t5.<model>.<style>_json": "tokenizers Tokenizer.encode(text) with the saved tokenizer.json; ids end in </s>; trunc512/256 with truncation",
        },
        "clip": {"tokenizers_pipeline": ids["clip.tokenizer.json"]["ids"]},
        "t5": {},
        "errors": [],
    }
    for model in T5_MODELS:
        entry = result["t5"].setdefault(model, {})
        entry["sentencepiece"] = [sps[model].encode(p) for p in prompts]
        for style in ("legacy", "converter"):
            name = "%s.%s.tokenizer.json" % (model[:-len(".model")], style)
            entry[style + "_json"] = dict(file=name + ".gz", **ids[name])
    with open(os.path.join(args.out, "golden_ids.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=True)
    print("wrote", args.out)


if __name__ == "__main__":
    main()

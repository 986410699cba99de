#!/usr/bin/env python3
r"""Reference token ids for impasto's ClipTokenizer and T5Tokenizer, from the reference libraries.

Run from the repository root on a machine with tokenizers, sentencepiece and transformers installed (no network
needed; everything is read from the committed test vocabularies):

  python3 src/test/golden/tokenizers/make_golden.py --out /tmp/tokenizer_golden \
      && tar czf $OUT/tokenizer_golden.tgz -C /tmp/tokenizer_golden .

then unpack the archive into src/test/resources/dev/impasto/encoders/tokenizer/golden/ (see README.md here). The Java tests
(TokenizerGoldenTest) compare against every reference found there and skip when the folder is absent.

What is written:
  golden_ids.json                          ids per prompt from each reference (see "references" inside)
  clip.tokenizer.json.gz                   the HF tokenizers CLIP pipeline built here, serialized by tokenizers
  <model>.legacy.tokenizer.json.gz         T5-style tokenizer.json: Precompiled charsmap normalizer,
                                           WhitespaceSplit + Metaspace, "$A </s>" template, special added tokens
  <model>.converter.tokenizer.json.gz      the same vocab with the normalizer/pre-tokenizer transformers'
                                           SpmConverter writes (Precompiled, Strip right, Replace " {2,}")
  <model>.transformers.tokenizer.json.gz   what transformers' T5Tokenizer builds from the .model file
A reference that fails is recorded under "errors" in golden_ids.json; the others are still written.
"""
import argparse
import base64
import gzip
import json
import os
import shutil
import sys
import tempfile
import traceback

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

RESOURCES = "src/test/resources/dev/impasto/encoders/tokenizer"
T5_MODELS = ["sentencepiece_test_model.model", "t5like_nmt.model", "t5like_nmt_bytefallback.model"]
EXTRA_IDS = 3  # T5 has 100; three keep the test vocabularies small and still exercise the reversed numbering


def byte_alphabet():
    """GPT-2 / CLIP byte-to-character table, in the order CLIP numbers its vocabulary."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    chars = {b: chr(b) for b in printable}
    extra = 0
    order = list(printable)
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + extra)
            extra += 1
            order.append(b)
    return [chars[b] for b in order]


def clip_vocab_and_merges():
    lines = gzip.open(os.path.join(RESOURCES, "bpe_simple_vocab_16e6.txt.gz")).read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1:49152 - 256 - 2 + 1]]
    alphabet = byte_alphabet()
    tokens = alphabet + [c + "</w>" for c in alphabet] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}, merges


CLIP_SPLIT = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


def added(content, id_):
    return {"id": id_, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": False, "special": True}


def clip_json():
    """The tokenizer.json of the pipeline transformers 5's CLIPTokenizer builds."""
    vocab, merges = clip_vocab_and_merges()
    bos, eos = vocab["<|startoftext|>"], vocab["<|endoftext|>"]
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [added("<|startoftext|>", bos), added("<|endoftext|>", eos)],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "NFC"}, {"type": "Replace", "pattern": {"Regex": r"\s+"}, "content": " "}, {"type": "Lowercase"}]},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": CLIP_SPLIT}, "behavior": "Removed", "invert": True},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]},
        "post_processor": {"type": "RobertaProcessing", "sep": ["<|endoftext|>", eos], "cls": ["<|startoftext|>", bos],
                           "trim_offsets": False, "add_prefix_space": False},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<|endoftext|>", "continuing_subword_prefix": "",
                  "end_of_word_suffix": "</w>", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": [list(m) for m in merges]},
    }


def t5_json(sp, charsmap, style):
    n = sp.get_piece_size()
    vocab = [[sp.id_to_piece(i), sp.get_score(i)] for i in range(n)]
    byte_fallback = any(sp.is_byte(i) for i in range(n))
    tokens = [added(sp.id_to_piece(i), i) for i in range(n) if sp.is_control(i) or sp.is_unknown(i)]
    tokens += [added("<extra_id_%d>" % e, n + k) for k, e in enumerate(reversed(range(EXTRA_IDS)))]
    cm = base64.b64encode(charsmap).decode("ascii")
    if style == "legacy":
        normalizer = {"type": "Precompiled", "precompiled_charsmap": cm}
        pre = {"type": "Sequence", "pretokenizers": [
            {"type": "WhitespaceSplit"},
            {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True}]}
    else:
        normalizer = {"type": "Sequence", "normalizers": [
            {"type": "Precompiled", "precompiled_charsmap": cm},
            {"type": "Strip", "strip_left": False, "strip_right": True},
            {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": "\u2581"}]}
        pre = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True}
    eos = sp.eos_id()
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": tokens,
        "normalizer": normalizer, "pre_tokenizer": pre,
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}],
                           "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}},
                                    {"Sequence": {"id": "B", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}],
                           "special_tokens": {"</s>": {"id": "</s>", "ids": [eos], "tokens": ["</s>"]}}},
        "decoder": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True},
        "model": {"type": "Unigram", "unk_id": sp.unk_id(), "vocab": vocab, "byte_fallback": byte_fallback},
    }


def run_clip(prompts, out_dir, result, errors):
    vocab, merges = clip_vocab_and_merges()
    clip = result.setdefault("clip", {})
    try:
        from tokenizers import Tokenizer
        tok = Tokenizer.from_str(json.dumps(clip_json()))
        clip["tokenizers_pipeline"] = [tok.encode(p).ids for p in prompts]
        with gzip.open(os.path.join(out_dir, "clip.tokenizer.json.gz"), "wt", encoding="utf-8") as f:
            f.write(tok.to_str())
    except Exception:
        errors.append({"reference": "clip/tokenizers_pipeline", "error": traceback.format_exc()})
    folder = tempfile.mkdtemp()
    try:
        # The layout of FLUX.1-dev/tokenizer/: vocab.json + merges.txt + configs, as diffusers loads it.
        with open(os.path.join(folder, "vocab.json"), "w", encoding="utf-8") as f:
            json.dump(vocab, f, ensure_ascii=False)
        with open(os.path.join(folder, "merges.txt"), "w", encoding="utf-8") as f:
            f.write("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
        config = {"tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "do_lower_case": True, "errors": "replace",
                  "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
                  "pad_token": "<|endoftext|>", "add_prefix_space": False}
        with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
            json.dump(config, f)
        with open(os.path.join(folder, "special_tokens_map.json"), "w") as f:
            json.dump({k: config[k] for k in ("bos_token", "eos_token", "unk_token", "pad_token")}, f)
        from transformers import CLIPTokenizer
        t = CLIPTokenizer.from_pretrained(folder)
        clip["transformers_class"] = type(t).__module__ + "." + type(t).__name__
        clip["transformers_max77"] = t(prompts, padding="max_length", max_length=77, truncation=True)["input_ids"]
        clip["transformers_unlimited"] = [t(p)["input_ids"] for p in prompts]
    except Exception:
        errors.append({"reference": "clip/transformers", "error": traceback.format_exc()})
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def read_varint(b, i):
    shift = result = 0
    while True:
        c = b[i]
        i += 1
        result |= (c & 0x7F) << shift
        if not c & 0x80:
            return result, i
        shift += 7


def precompiled_charsmap(model_bytes):
    """normalizer_spec.precompiled_charsmap of a ModelProto, read without the protobuf package."""
    def fields(b):
        i = 0
        while i < len(b):
            tag, i = read_varint(b, i)
            num, wt = tag >> 3, tag & 7
            if wt == 0:
                v, i = read_varint(b, i)
                yield num, v
            elif wt == 1:
                yield num, b[i:i + 8]
                i += 8
            elif wt == 2:
                n, i = read_varint(b, i)
                yield num, b[i:i + n]
                i += n
            elif wt == 5:
                yield num, b[i:i + 4]
                i += 4
            else:
                raise ValueError("wire type %d" % wt)
    charsmap = b""
    for num, payload in fields(model_bytes):
        if num == 3:
            for n2, p2 in fields(payload):
                if n2 == 2:
                    charsmap = bytes(p2)
    return charsmap


def save_gz(tok, path):
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write(tok.to_str())


def encodings(tok, prompts):
    out = {"ids": [tok.encode(p).ids for p in prompts]}
    for n in (512, 256):
        tok.enable_truncation(max_length=n)
        out["trunc%d" % n] = [tok.encode(p).ids for p in prompts]
    tok.no_truncation()
    return out


def run_t5(prompts, out_dir, result, errors):
    import sentencepiece as spm
    t5 = result.setdefault("t5", {})
    for name in T5_MODELS:
        path = os.path.join(RESOURCES, name)
        stem = name[:-len(".model")]
        entry = t5.setdefault(name, {})
        try:
            sp = spm.SentencePieceProcessor(model_file=path)
            entry["sentencepiece"] = [sp.encode(p) for p in prompts]
            entry["sentencepiece_pieces"] = [sp.encode(p, out_type=str) for p in prompts]
        except Exception:
            errors.append({"reference": name + "/sentencepiece", "error": traceback.format_exc()})
            continue
        charsmap = precompiled_charsmap(open(path, "rb").read())
        for style in ("legacy", "converter"):
            try:
                from tokenizers import Tokenizer
                tok = Tokenizer.from_str(json.dumps(t5_json(sp, charsmap, style)))
                file = "%s.%s.tokenizer.json.gz" % (stem, style)
                save_gz(tok, os.path.join(out_dir, file))
                entry[style + "_json"] = dict(file=file, **encodings(tok, prompts))
            except Exception:
                errors.append({"reference": name + "/" + style, "error": traceback.format_exc()})
        folder = tempfile.mkdtemp()
        try:
            shutil.copy(path, os.path.join(folder, "spiece.model"))
            with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
                json.dump({"tokenizer_class": "T5Tokenizer", "extra_ids": EXTRA_IDS, "legacy": True,
                           "model_max_length": 512, "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}, f)
            from transformers import T5Tokenizer
            t = T5Tokenizer.from_pretrained(folder)
            file = stem + ".transformers.tokenizer.json.gz"
            save_gz(t.backend_tokenizer, os.path.join(out_dir, file))
            entry["transformers"] = {
                "file": file, "class": type(t).__module__ + "." + type(t).__name__,
                "ids": [t(p)["input_ids"] for p in prompts],
                "trunc512": [t(p, max_length=512, truncation=True)["input_ids"] for p in prompts],
                "trunc256": [t(p, max_length=256, truncation=True)["input_ids"] for p in prompts],
            }
        except Exception:
            errors.append({"reference": name + "/transformers", "error": traceback.format_exc()})
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        # What diffusers gets from a FLUX-style tokenizer_2/ folder: tokenizer.json (legacy style) + config.
        folder = tempfile.mkdtemp()
        try:
            with gzip.open(os.path.join(out_dir, stem + ".legacy.tokenizer.json.gz"), "rb") as src, \
                    open(os.path.join(folder, "tokenizer.json"), "wb") as dst:
                shutil.copyfileobj(src, dst)
            with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
                json.dump({"tokenizer_class": "T5Tokenizer", "extra_ids": EXTRA_IDS, "legacy": True,
                           "model_max_length": 512, "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "</s>"}, f)
            import transformers
            cls = getattr(transformers, "T5TokenizerFast", None) or transformers.T5Tokenizer
            t = cls.from_pretrained(folder)
            entry["transformers_from_legacy_json"] = {
                "class": type(t).__module__ + "." + type(t).__name__,
                "ids": [t(p)["input_ids"] for p in prompts],
                "max512": t(prompts, padding="max_length", max_length=512, truncation=True)["input_ids"],
            }
        except Exception:
            errors.append({"reference": name + "/transformers_from_legacy_json", "error": traceback.format_exc()})
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def versions():
    v = {"python": sys.version}
    for module in ("tokenizers", "sentencepiece", "transformers"):
        try:
            v[module] = __import__(module).__version__
        except Exception as e:
            v[module] = "unavailable: %s" % e
    return v


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    out_dir = parser.parse_args().out
    os.makedirs(out_dir, exist_ok=True)
    prompts = json.load(open(os.path.join(RESOURCES, "golden_prompts.json"), encoding="utf-8"))["prompts"]
    result = {"versions": versions(), "prompts": prompts, "references": {
        "clip.tokenizers_pipeline": "HF tokenizers pipeline as transformers 5 CLIPTokenizer builds it; ids include <|startoftext|> and <|endoftext|>",
        "clip.transformers_max77": "transformers CLIPTokenizer.from_pretrained(vocab.json+merges.txt), padding=max_length, max_length=77, truncation",
        "clip.transformers_unlimited": "the same without padding or truncation",
        "t5.<model>.sentencepiece": "sentencepiece SentencePieceProcessor.encode(text), no </s>",
        "t5.<model>.<style>_json": "tokenizers Tokenizer.encode(text).ids with the saved tokenizer.json; ids end in </s>; trunc512/256 with enable_truncation",
        "t5.<model>.transformers": "transformers T5Tokenizer.from_pretrained(spiece.model); ids end in </s>",
        "t5.<model>.transformers_from_legacy_json": "transformers T5TokenizerFast.from_pretrained(folder with the legacy tokenizer.json)",
    }}
    errors = []
    run_clip(prompts, out_dir, result, errors)
    run_t5(prompts, out_dir, result, errors)
    result["errors"] = errors
    with open(os.path.join(out_dir, "golden_ids.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=True)
    print("wrote %s: %d prompts, %d errors" % (out_dir, len(prompts), len(errors)))
    for e in errors:
        print("ERROR", e["reference"], e["error"].strip().splitlines()[-1])


if __name__ == "__main__":
    main()

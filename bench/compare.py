#!/usr/bin/env python3
"""One table from the engine's and the peer's JSON: for each (what, image tokens) the peer's figure and every engine
figure (base format, checkpointing) with the ratio engine / peer."""
import json, sys

eng = json.load(open(sys.argv[1])) if len(sys.argv) > 1 else {"results": []}
try:
    peer = json.load(open(sys.argv[2]))
except Exception:
    peer = {"results": [], "device": "?"}
pk = {(r["what"], r["image_tokens"]): r for r in peer.get("results", [])}
print(f"device: {eng.get('device')} | peer: torch {peer.get('torch', '?')} on {peer.get('device')}")
print("| figure | tokens | base | ckpt | engine ms | peer ms | ratio | engine peak GiB | peer peak GiB |")
print("|---|---|---|---|---|---|---|---|---|")
for r in eng.get("results", []):
    if "error" in r:
        print(f"| error | | {r.get('format')} | | {r['error'][:60]} | | | | |")
        continue
    p = pk.get((r["what"], r["image_tokens"]))
    pm = p["median_ms"] if p else float("nan")
    pp = p["peak_gib"] if p else float("nan")
    print(f"| {r['what']} | {r['image_tokens']} | {r['format']} | {'on' if r.get('checkpointing') else 'off'} | {r['median_ms']:.1f} | "
          f"{pm:.1f} | {r['median_ms'] / pm:.2f} | {r['peak_gib']:.1f} | {pp:.1f} |")

#!/usr/bin/env bash
# Side-by-side: impasto and the PyTorch reference (peer) on the same GPU in one call, then one table with ratios.
# Needs: the packed runtime (../shared/device/pack, started as it prints), the reference source in .peer/src.
#   bench/run.sh OUTDIR [impasto bench flags...]
set -uo pipefail
out=${1:-/tmp/bench}; shift || true
mkdir -p "$out"
CP=${IMPASTO_CP:-target/impasto.jar}
java --enable-native-access=ALL-UNNAMED -cp "$CP" dev.impasto.cli.Main bench --json "$out/engine.json" "$@" > "$out/engine.log" 2>&1 \
  || echo "engine bench failed (see $out/engine.log)"
PYTHONPATH=.peer/src python3 bench/peer_flux.py --json "$out/peer.json" > "$out/peer.log" 2>&1 || echo "peer bench failed (see $out/peer.log)"
python3 bench/compare.py "$out/engine.json" "$out/peer.json" | tee "$out/table.md"

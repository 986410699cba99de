#!/usr/bin/env bash
# One device call that does everything a GPU session needs, writing results under $OUT (few files: the device
# returns at most 8). Run from the repository root on the GPU machine, after ../shared/device/pack here.
#   bench/gpu_suite.sh [tests] [golden] [bench ARGS...] [train]
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT/logs"
tar xzf .device/jre.tar.gz -C /tmp && export JAVA_HOME=/tmp/jre PATH=/tmp/jre/bin:$PATH
mkdir -p /tmp/app && tar xzf .device/classes.tar.gz -C /tmp/app
CP=/tmp/app/classes:/tmp/app/test-classes:$(ls .device/lib/*.jar | grep -v junit-console | tr '\n' :)
export NCCL_NVLS_ENABLE=0
J="java --enable-native-access=ALL-UNNAMED -Xmx24g -cp $CP"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/logs/gpu.txt"
for step in "$@"; do
  case "$step" in
    tests)
      $J dev.impasto.cli.Main doctor 2>&1 | tee "$OUT/logs/doctor.txt"
      timeout 900 java --enable-native-access=ALL-UNNAMED -Xmx24g -jar .device/junit-console.jar execute -cp "$CP" \
        --include-tag gpu --scan-classpath --exclude-engine=junit-vintage --details=summary --disable-banner \
        --reports-dir "$OUT/logs/junit" > "$OUT/logs/gpu-tests.txt" 2>&1
      echo "gpu tests exit $?" >> "$OUT/logs/gpu-tests.txt"
      grep -E "tests (successful|failed)|MethodSource|=>" "$OUT/logs/gpu-tests.txt" | head -80
      ;;
    golden)
      rm -rf /tmp/golden && mkdir -p /tmp/golden/flux /tmp/golden/tok
      PYTHONPATH=.peer/src python3 src/test/golden/flux/make_golden.py --out /tmp/golden/flux 2>&1 | tail -3
      python3 src/test/golden/tokenizers/make_golden.py --out /tmp/golden/tok 2>&1 | tail -3
      for s in src/test/golden/encoders/*.py; do [ -f "$s" ] && PYTHONPATH=.peer/src python3 "$s" --out /tmp/golden/encoders 2>&1 | tail -3; done
      tar czf "$OUT/golden.tgz" -C /tmp/golden .
      ;;
    bench)
      shift_args=()
      ;;
    *)
      echo "unknown step $step"
      ;;
  esac
done
tar czf "$OUT/logs.tgz" -C "$OUT" logs && rm -rf "$OUT/logs"

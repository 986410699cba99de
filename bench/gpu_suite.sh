#!/usr/bin/env bash
# One device call that does what a GPU session needs, in the order given, writing results under $OUT as few files
# (a call returns at most 8): run from the repository root on the GPU machine after bench/pack-gpu.sh here.
#   bench/gpu_suite.sh golden tests [bench ARGS] ...
#     golden   run the reference implementations (PyTorch; BFL source in .peer/src) -> fixtures in the test resources
#     tests    impasto doctor + every @Tag("gpu") test (JUnit console launcher)
#     headers  copy nccl.h (for jextract here)
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT/logs"
tar xzf .device/jre.tar.gz -C /tmp && export JAVA_HOME=/tmp/jre PATH=/tmp/jre/bin:$PATH
mkdir -p /tmp/app && tar xzf .device/classes.tar.gz -C /tmp/app
export IMPASTO_CP=/tmp/app/classes:/tmp/app/test-classes:src/test/resources:$(ls .device/lib/*.jar | tr '\n' :)
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
J="java --enable-native-access=ALL-UNNAMED -Xmx32g -cp $IMPASTO_CP"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/logs/gpu.txt"
while [ $# -gt 0 ]; do
  step=$1; shift
  case "$step" in
    golden)
      G=src/test/resources/dev/impasto
      mkdir -p $G/model/golden $G/encoders/golden /tmp/tokgold
      PYTHONPATH=.peer/src python3 src/test/golden/flux/make_golden.py --out $G/model/golden 2>&1 | tail -2
      PYTHONPATH=.peer/src python3 src/test/golden/encoders/make_golden.py --out $G/encoders/golden 2>&1 | tail -2
      python3 src/test/golden/tokenizers/make_golden.py --out /tmp/tokgold 2>&1 | tail -2
      tar czf "$OUT/golden.tgz" $G/model/golden $G/encoders/golden -C /tmp tokgold
      ;;
    tests)
      $J dev.impasto.cli.Main doctor 2>&1 | tee "$OUT/logs/doctor.txt"
      timeout 1200 java --enable-native-access=ALL-UNNAMED -Xmx32g -jar .device/junit-console.jar execute -cp "$IMPASTO_CP" \
        --include-tag gpu --scan-classpath --exclude-engine=junit-vintage --details=tree --disable-banner --disable-ansi-colors \
        --reports-dir "$OUT/logs/junit" > "$OUT/logs/gpu-tests.txt" 2>&1
      echo "gpu tests exit $?" >> "$OUT/logs/gpu-tests.txt"
      grep -E "✘|tests (successful|failed|found)|exit" "$OUT/logs/gpu-tests.txt" | head -60
      ;;
    headers)
      cp "$(find / -name nccl.h -path '*include*' 2>/dev/null | head -1)" "$OUT/nccl.h" 2>/dev/null; ls -la "$OUT/nccl.h"
      ;;
    *) echo "unknown step $step" ;;
  esac
done
tar czf "$OUT/logs.tgz" -C "$OUT" logs && rm -rf "$OUT/logs"

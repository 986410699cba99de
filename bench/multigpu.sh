#!/usr/bin/env bash
# Data-parallel LoRA training on 2 GPUs (NCCL) at FLUX.1-dev size, NF4 base, synthetic 512x512 data:
#  1. equivalence: 1 GPU x batch 2 vs 2 GPUs x batch 1 (same global batch), 6 steps: LoRA weights compared;
#  2. scaling: 1 GPU x batch 1 vs 2 GPUs x batch 1, 20 steps: it/s and samples/s.
# Run from the repository root on a 2-GPU machine with the packed runtime (bench/pack-gpu.sh).
set -uo pipefail
OUT=${OUT:-/tmp/out}
tar xzf .device/jre.tar.gz -C /tmp 2>/dev/null; export JAVA_HOME=/tmp/jre PATH=/tmp/jre/bin:$PATH
rm -rf /tmp/app; mkdir -p /tmp/app && tar xzf .device/classes.tar.gz -C /tmp/app
CP=/tmp/app/classes:$(ls .device/lib/*.jar | tr '\n' :)
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
J="java --enable-native-access=ALL-UNNAMED -Xmx48g -cp $CP dev.impasto.cli.Main train --device cuda --output /tmp/mg --model.preset flux-dev --model.baseFormat nf4 --data.cache synthetic:512x512:16 --checkpoint.every 0 --sample.every 0 --sample.items= --training.captionDropout 0"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
$J --name eq1 --gpus 1 --training.batchSize 2 --training.steps 6 --optimizer.lr 1e-3 > $OUT/eq1.log 2>&1; tail -2 $OUT/eq1.log
$J --name eq2 --gpus 2 --training.batchSize 1 --training.steps 6 --optimizer.lr 1e-3 > $OUT/eq2.log 2>&1; tail -2 $OUT/eq2.log
python3 - <<'PY'
from safetensors.numpy import load_file
import numpy as np
a = load_file('/tmp/mg/eq1/lora.safetensors'); b = load_file('/tmp/mg/eq2/lora.safetensors')
num = sum(float(((a[k].astype(np.float64) - b[k].astype(np.float64)) ** 2).sum()) for k in a)
den = sum(float((a[k].astype(np.float64) ** 2).sum()) for k in a)
print("equivalence: 2 GPUs x batch 1 vs 1 GPU x batch 2 after 6 steps: LoRA rel L2 %.3e over %d tensors" % ((num / den) ** 0.5, len(a)))
PY
for g in 1 2; do
  $J --name sc$g --gpus $g --training.batchSize 1 --training.steps 24 > $OUT/sc$g.log 2>&1
  python3 -c "
import json;r=[json.loads(l) for l in open('/tmp/mg/sc$g/metrics.jsonl')];t=[b['seconds']-a['seconds'] for a,b in zip(r[6:],r[7:])];t.sort();m=t[len(t)//2]
print('gpus $g: median step %.3f s = %.2f it/s = %.2f samples/s, peak %.2f GiB (rank 0)'%(m,1/m,$g/m,max(x['peak_bytes'] for x in r)/2**30))" | tee -a $OUT/scaling.txt
done

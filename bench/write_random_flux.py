#!/usr/bin/env python3
"""Writes a FLUX.1-dev-shaped checkpoint (BFL key names, bf16, about 23.8 GB) of small random values, for measuring
impasto's loader on full-size files where the real weights cannot be downloaded. The architecture comes from the BFL
reference source carried in .peer/src (never committed):

    PYTHONPATH=.peer/src python3 bench/write_random_flux.py /tmp/flux-random.safetensors
"""
import sys
import torch
from safetensors.torch import save_file
from flux.model import Flux, FluxParams

p = FluxParams(in_channels=64, out_channels=64, vec_in_dim=768, context_in_dim=4096, hidden_size=3072, mlp_ratio=4.0, num_heads=24,
               depth=19, depth_single_blocks=38, axes_dim=[16, 56, 56], theta=10_000, qkv_bias=True, guidance_embed=True)
with torch.device("meta"):
    shapes = {k: v.shape for k, v in Flux(p).state_dict().items()}
torch.manual_seed(0)
tensors = {k: (torch.randn(s, dtype=torch.float32) * 0.02).to(torch.bfloat16) for k, s in shapes.items()}
save_file(tensors, sys.argv[1], metadata={"format": "pt"})
print(f"{len(tensors)} tensors, {sum(t.numel() for t in tensors.values()) / 1e9:.2f} B parameters -> {sys.argv[1]}")

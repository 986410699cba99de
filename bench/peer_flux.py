#!/usr/bin/env python3
"""The peer for impasto's side-by-side benchmark: the public BFL reference implementation (black-forest-labs/flux),
run as its users run it: PyTorch eager, bf16, its own LinearLora (rank 16) on every nn.Linear inside the 57 blocks,
fused AdamW on the LoRA parameters. Random weights, batch 1, 512 text tokens. Times a forward pass (no grad), a
sampler step (forward + the Euler update of flux.sampling.denoise) and a training step (forward + backward + AdamW) with CUDA events after warm-up (median of N) and reports peak memory.

    PYTHONPATH=.peer/src python3 bench/peer_flux.py --tokens 1024 4096 --iters 10 --json peer.json
(the reference source is carried in an ignored folder and never committed)
"""
import argparse, json, statistics
import torch
from flux.model import Flux, FluxParams
from flux.modules.lora import LinearLora


def add_lora(module, rank):
    for name, child in module.named_children():
        if isinstance(child, torch.nn.Linear):
            l = LinearLora(child.in_features, child.out_features, child.bias, rank=rank, dtype=child.weight.dtype,
                           device=child.weight.device, lora_bias=False, scale=1.0)
            l.weight = child.weight
            l.bias = child.bias
            setattr(module, name, l)
        else:
            add_lora(child, rank)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, nargs="+", default=[1024, 4096])
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--json")
    a = ap.parse_args()
    dev = torch.device("cuda")
    p = FluxParams(in_channels=64, out_channels=64, vec_in_dim=768, context_in_dim=4096, hidden_size=3072, mlp_ratio=4.0, num_heads=24,
                   depth=19, depth_single_blocks=38, axes_dim=[16, 56, 56], theta=10_000, qkv_bias=True, guidance_embed=True)
    with torch.device(dev):
        model = Flux(p).to(torch.bfloat16)
    for blk in list(model.double_blocks) + list(model.single_blocks):
        add_lora(blk, 16)
    for prm in model.parameters():
        prm.requires_grad_(False)
    lora = []
    for m in model.modules():
        if isinstance(m, LinearLora):
            m.lora_A.weight.requires_grad_(True)
            m.lora_B.weight.requires_grad_(True)
            lora += [m.lora_A.weight, m.lora_B.weight]
    opt = torch.optim.AdamW(lora, lr=1e-6, fused=True)
    results = []
    for n in a.tokens:
        g = int(round(n ** 0.5))
        img = torch.randn(1, n, 64, device=dev, dtype=torch.bfloat16)
        txt = torch.randn(1, 512, 4096, device=dev, dtype=torch.bfloat16)
        y = torch.randn(1, 768, device=dev, dtype=torch.bfloat16)
        ids = torch.zeros(g, n // g, 3, device=dev)
        ids[..., 1] = torch.arange(g, device=dev)[:, None]
        ids[..., 2] = torch.arange(n // g, device=dev)[None, :]
        img_ids = ids.reshape(1, n, 3)
        txt_ids = torch.zeros(1, 512, 3, device=dev)
        t = torch.tensor([0.7], device=dev, dtype=torch.bfloat16)
        gd = torch.tensor([1.0], device=dev, dtype=torch.bfloat16)
        target = torch.randn(1, n, 64, device=dev, dtype=torch.bfloat16)
        for what in ("forward", "sample_step", "train_step"):
            times = []
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            for i in range(a.warmup + a.iters):
                e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                e0.record()
                if what == "forward":
                    with torch.no_grad():
                        model(img=img, img_ids=img_ids, txt=txt, txt_ids=txt_ids, timesteps=t, y=y, guidance=gd)
                elif what == "sample_step":  # one step of flux.sampling.denoise: img = img + (t_prev - t_curr) * pred
                    with torch.no_grad():
                        pred = model(img=img, img_ids=img_ids, txt=txt, txt_ids=txt_ids, timesteps=t, y=y, guidance=gd)
                        img = img + (0.68 - 0.7) * pred
                else:
                    out = model(img=img, img_ids=img_ids, txt=txt, txt_ids=txt_ids, timesteps=t, y=y, guidance=gd)
                    loss = torch.nn.functional.mse_loss(out.float(), target.float())
                    loss.backward()
                    opt.step()
                    opt.zero_grad(set_to_none=True)
                e1.record()
                torch.cuda.synchronize()
                if i >= a.warmup:
                    times.append(e0.elapsed_time(e1))
            r = {"what": what, "image_tokens": n, "median_ms": statistics.median(times), "min_ms": min(times), "max_ms": max(times),
                 "peak_gib": torch.cuda.max_memory_allocated() / 2**30, "iters": a.iters}
            print(f"[peer] {what:10s} {n:5d} img tokens median {r['median_ms']:8.2f} ms peak {r['peak_gib']:.2f} GiB", flush=True)
            results.append(r)
    out = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "results": results}
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()

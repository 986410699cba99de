#!/usr/bin/env python3
"""Golden fixtures from the public reference implementation (black-forest-labs/flux, PyTorch), for impasto's tests.

Run on a machine with PyTorch, with the reference's source on PYTHONPATH (it is never committed here):
    PYTHONPATH=.peer/src python3 src/test/golden/flux/make_golden.py --out DIR

Builds a tiny FLUX (same architecture as FLUX.1-dev: 2 double + 2 single blocks, hidden 64 = 2 heads x 32, RoPE axes
[4, 14, 14], guidance embedding) with random fp32 weights, puts the reference's own LinearLora (rank 4, no LoRA
bias) on every nn.Linear inside the blocks (modulation included), runs a forward pass on random inputs (batch 2,
7 text tokens, a 4x6 grid of image tokens), and the backward of the scalar loss sum(out * W). Writes:
  weights.safetensors  the base model (BFL keys, fp32)
  lora.safetensors     <module>.lora_A [r, in], <module>.lora_B [out, r] (module = BFL key of the Linear)
  io.safetensors       inputs, output, W, d_img, d_txt, d_y, and <module>.lora_A.grad / .lora_B.grad
  config.json          the FluxParams, the LoRA rank and scale
Only the data is committed.
"""
import argparse, json, os
import torch
from safetensors.torch import save_file
from flux.model import Flux, FluxParams
from flux.modules.lora import LinearLora

RANK, ALPHA = 4, 6.0


def add_lora(module, prefix, out):
    for name, child in module.named_children():
        key = f"{prefix}{name}"
        if isinstance(child, torch.nn.Linear):
            lora = LinearLora(child.in_features, child.out_features, child.bias, rank=RANK, dtype=child.weight.dtype,
                              device=child.weight.device, lora_bias=False, scale=ALPHA / RANK)
            lora.weight = child.weight
            lora.bias = child.bias
            with torch.no_grad():
                torch.nn.init.normal_(lora.lora_A.weight, std=0.3)
                torch.nn.init.normal_(lora.lora_B.weight, std=0.3)  # non-zero: every path carries gradient
            setattr(module, name, lora)
            out[key] = lora
        else:
            add_lora(child, key + ".", out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(20261126)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    p = FluxParams(in_channels=16, out_channels=16, vec_in_dim=16, context_in_dim=32, hidden_size=64, mlp_ratio=4.0, num_heads=2,
                   depth=2, depth_single_blocks=2, axes_dim=[4, 14, 14], theta=10_000, qkv_bias=True, guidance_embed=True)
    model = Flux(p).float()
    with torch.no_grad():
        for name, prm in model.named_parameters():
            if name.endswith(".scale"):
                prm.copy_(1 + 0.1 * torch.randn_like(prm))
            elif prm.ndim == 2:
                prm.copy_(torch.randn_like(prm) / prm.shape[1] ** 0.5)
            else:
                prm.copy_(0.05 * torch.randn_like(prm))
    base = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    loras = {}
    for i, blk in enumerate(model.double_blocks):
        add_lora(blk, f"double_blocks.{i}.", loras)
    for i, blk in enumerate(model.single_blocks):
        add_lora(blk, f"single_blocks.{i}.", loras)
    for prm in model.parameters():
        prm.requires_grad_(False)
    for l in loras.values():
        l.lora_A.weight.requires_grad_(True)
        l.lora_B.weight.requires_grad_(True)

    B, LT, GH, GW = 2, 7, 4, 6
    img = torch.randn(B, GH * GW, 16, requires_grad=True)
    txt = torch.randn(B, LT, 32, requires_grad=True)
    y = torch.randn(B, 16, requires_grad=True)
    img_ids = torch.zeros(GH, GW, 3)
    img_ids[..., 1] = torch.arange(GH)[:, None]
    img_ids[..., 2] = torch.arange(GW)[None, :]
    img_ids = img_ids.reshape(1, GH * GW, 3).repeat(B, 1, 1)
    txt_ids = torch.zeros(B, LT, 3)
    t = torch.tensor([0.3, 0.85])
    g = torch.tensor([3.5, 1.0])
    out = model(img=img, img_ids=img_ids, txt=txt, txt_ids=txt_ids, timesteps=t, y=y, guidance=g)
    W = torch.randn_like(out)
    (out * W).sum().backward()

    # the same model, inputs and loss in bf16 on the GPU: the reference for impasto's bf16 GPU path (both round
    # the weights the same way, so what is left to compare is the arithmetic)
    bf = {}
    if torch.cuda.is_available():
        import copy
        m16 = copy.deepcopy(model).to("cuda", torch.bfloat16)
        l16 = {}
        for name, mod in m16.named_modules():
            if isinstance(mod, LinearLora):
                l16[name] = mod
        i16 = img.detach().to("cuda", torch.bfloat16).requires_grad_(True)
        t16 = txt.detach().to("cuda", torch.bfloat16).requires_grad_(True)
        y16 = y.detach().to("cuda", torch.bfloat16).requires_grad_(True)
        o16 = m16(img=i16, img_ids=img_ids.cuda(), txt=t16, txt_ids=txt_ids.cuda(), timesteps=t.cuda().to(torch.bfloat16), y=y16,
                  guidance=g.cuda().to(torch.bfloat16))
        (o16.float() * W.cuda()).sum().backward()
        bf = {"bf16.out": o16, "bf16.d_img": i16.grad, "bf16.d_txt": t16.grad, "bf16.d_y": y16.grad}
        for name, mod in l16.items():
            key = name  # double_blocks.0.img_attn.qkv ...
            bf["bf16." + key + ".lora_A.grad"] = mod.lora_A.weight.grad
            bf["bf16." + key + ".lora_B.grad"] = mod.lora_B.weight.grad
        bf = {k: v.detach().float().cpu().contiguous() for k, v in bf.items()}

    save_file(base, os.path.join(args.out, "weights.safetensors"), metadata={"source": "black-forest-labs/flux reference, random weights"})
    lw = {}
    for k, l in loras.items():
        lw[k + ".lora_A"] = l.lora_A.weight.detach().contiguous()
        lw[k + ".lora_B"] = l.lora_B.weight.detach().contiguous()
    save_file(lw, os.path.join(args.out, "lora.safetensors"))
    io = {"img": img.detach(), "txt": txt.detach(), "y": y.detach(), "timesteps": t, "guidance": g, "img_ids": img_ids,
          "txt_ids": txt_ids, "out": out.detach(), "W": W, "d_img": img.grad, "d_txt": txt.grad, "d_y": y.grad}
    for k, l in loras.items():
        io[k + ".lora_A.grad"] = l.lora_A.weight.grad
        io[k + ".lora_B.grad"] = l.lora_B.weight.grad
    io.update(bf)
    save_file({k: v.contiguous() for k, v in io.items()}, os.path.join(args.out, "io.safetensors"))
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump({"params": p.__dict__, "lora_rank": RANK, "lora_alpha": ALPHA, "batch": B, "txt_len": LT, "grid": [GH, GW],
                   "torch": torch.__version__}, f, indent=2)
    print("wrote", sorted(os.listdir(args.out)), "out norm", float(out.norm()))


if __name__ == "__main__":
    main()

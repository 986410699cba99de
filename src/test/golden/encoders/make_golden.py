#!/usr/bin/env python3
"""Golden fixtures for impasto's text encoders and autoencoder, from the public reference implementations.

Run on a machine with PyTorch, transformers (T5EncoderModel, CLIPTextModel) and safetensors, with
black-forest-labs/flux's source on PYTHONPATH for its AutoEncoder (the source is never committed here):

    PYTHONPATH=.peer/src python3 src/test/golden/encoders/make_golden.py \
        --out src/test/resources/dev/impasto/encoders/golden

Builds tiny random models of the real architectures (no download: constructed from a config, seeded), with every
weight drawn so that each path matters (linear N(0, 1/in), norms 1 + N(0, 0.1^2), biases N(0, 0.05^2)) and then
rounded to bfloat16 values (kept in fp32), so the GPU's bf16 run sees the same weights. Reference outputs in fp32
(TF32 off). Writes (about 1.5 MB):
  t5.safetensors    T5EncoderModel (vocab 259, d_model 32, d_kv 8, 4 heads, d_ff 64, 2 layers, 32 buckets / 128),
                    transformers' names, shared.weight only (the tied embed_tokens copy dropped)
  clip.safetensors  CLIPTextModel (vocab 258, hidden 16, 2 heads, intermediate 32, 2 layers, 77 positions,
                    quick_gelu, eos_token_id 2 as in FLUX's CLIP-L config: pooled at argmax(ids))
  ae.safetensors    flux.modules.autoencoder.AutoEncoder (ch 32, ch_mult [1, 2], 1 res block, z 4), BFL names, BF16
  io.safetensors    t5.ids [2, 160] -> t5.out; t5.buckets (relative positions -511..511 of T5-XXL's bucketing);
                    clip.ids [2, 77] -> clip.hidden, clip.pooled; ae.image [1, 3, 24, 32] -> ae.latent ->
                    ae.decoded; ae.z [1, 4, 6, 8] -> ae.decoded_z
  config.json       the three configurations
Only the data is committed.
"""
import argparse, json, os
import torch
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel
from transformers.models.t5.modeling_t5 import T5Attention
from flux.modules.autoencoder import AutoEncoder, AutoEncoderParams


def init_(model, embed_std=0.5):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "relative_attention_bias" in name:
                p.copy_(torch.randn_like(p))
            elif "embed" in name or name == "shared.weight":
                p.copy_(embed_std * torch.randn_like(p))
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.05 * torch.randn_like(p))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn_like(p) / fan_in ** 0.5)
            p.copy_(p.bfloat16().float())


def clip_ids(text, length=77):
    b = list(text.encode("utf-8"))[: length - 2]
    ids = [256] + b + [257]
    return ids + [257] * (length - len(ids))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(20260214)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    io = {}

    t5cfg = T5Config(vocab_size=259, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, relative_attention_num_buckets=32,
                     relative_attention_max_distance=128, feed_forward_proj="gated-gelu", dropout_rate=0.0, layer_norm_epsilon=1e-6,
                     is_encoder_decoder=False, use_cache=False, tie_word_embeddings=False)
    t5 = T5EncoderModel(t5cfg).float().eval()
    init_(t5)
    ids = torch.randint(0, 259, (2, 160))
    with torch.no_grad():
        io["t5.out"] = t5(input_ids=ids).last_hidden_state.contiguous()
    io["t5.ids"] = ids.to(torch.int32)
    rel = torch.arange(-511, 512)
    buckets = T5Attention._relative_position_bucket(rel, bidirectional=True, num_buckets=32, max_distance=128)
    if torch.cuda.is_available():
        on_gpu = T5Attention._relative_position_bucket(rel.cuda(), bidirectional=True, num_buckets=32, max_distance=128).cpu()
        if not torch.equal(buckets, on_gpu):
            print("WARNING: T5 buckets differ between CPU and CUDA at", (buckets != on_gpu).nonzero().flatten().tolist())
    io["t5.buckets"] = buckets.to(torch.int32)
    sd = {k: v.contiguous() for k, v in t5.state_dict().items() if k != "encoder.embed_tokens.weight"}
    save_file(sd, os.path.join(args.out, "t5.safetensors"))

    clipcfg = CLIPTextConfig(vocab_size=258, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                             max_position_embeddings=77, hidden_act="quick_gelu", layer_norm_eps=1e-5, attention_dropout=0.0,
                             bos_token_id=0, eos_token_id=2, pad_token_id=1, projection_dim=16)
    clip = CLIPTextModel(clipcfg).float().eval()
    init_(clip)
    cids = torch.tensor([clip_ids("a harbour at dawn, oil on canvas"), clip_ids("")], dtype=torch.long)
    with torch.no_grad():
        o = clip(input_ids=cids)
    io["clip.ids"] = cids.to(torch.int32)
    io["clip.hidden"] = o.last_hidden_state.contiguous()
    io["clip.pooled"] = o.pooler_output.contiguous()
    save_file({k: v.contiguous() for k, v in clip.state_dict().items() if "position_ids" not in k}, os.path.join(args.out, "clip.safetensors"))

    p = AutoEncoderParams(resolution=32, in_channels=3, ch=32, out_ch=3, ch_mult=[1, 2], num_res_blocks=1, z_channels=4,
                          scale_factor=0.3611, shift_factor=0.1159)
    ae = AutoEncoder(p).float().eval()
    init_(ae)
    image = (torch.rand(1, 3, 24, 32) * 2 - 1).bfloat16().float()
    z = torch.randn(1, 4, 6, 8).bfloat16().float()
    with torch.no_grad():
        latent = ae.encode(image)
        io["ae.image"] = image
        io["ae.latent"] = latent.contiguous()
        io["ae.decoded"] = ae.decode(latent).contiguous()
        io["ae.z"] = z
        io["ae.decoded_z"] = ae.decode(z).contiguous()
    save_file({k: v.bfloat16().contiguous() for k, v in ae.state_dict().items()}, os.path.join(args.out, "ae.safetensors"))

    save_file({k: v.contiguous() for k, v in io.items()}, os.path.join(args.out, "io.safetensors"))
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump({"t5": t5cfg.to_dict(), "clip": clipcfg.to_dict(), "ae": p.__dict__,
                   "torch": torch.__version__, "transformers": __import__("transformers").__version__}, f, indent=1, default=str)
    print("wrote", sorted(os.listdir(args.out)))


if __name__ == "__main__":
    main()

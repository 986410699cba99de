#!/usr/bin/env python3
"""Golden fixtures for impasto's text encoders and autoencoder, from the public reference implementations.

Run on a machine with PyTorch, transformers (T5EncoderModel, CLIPTextModel, CLIPModel, CLIPImageProcessor), Pillow
and safetensors, with black-forest-labs/flux's source on PYTHONPATH for its AutoEncoder (the source is never committed
here):

    PYTHONPATH=.peer/src python3 src/test/golden/encoders/make_golden.py \
        --out src/test/resources/dev/impasto/encoders/golden

With --only clip-model only the CLIP model part runs (no flux source needed) and only its three files are written;
the other files stay as they are. The CLIP model part draws from its own seed, so a full run writes the same T5, CLIP
text and autoencoder files as before it existed.

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
The CLIP model part (for impasto eval's CLIP score and CLIP features):
  clip_full.safetensors  CLIPModel, transformers' names: text tower (vocab 258, hidden 16, 2 heads, intermediate 32,
                    2 layers, 77 positions, eos_token_id 257 so that every transformers version pools at the first
                    end-of-text token, which is also argmax(ids)), vision tower (hidden 24, 2 heads, intermediate 48,
                    2 layers, 28 pixels in patches of 7: 16 patches + the class token), visual_projection and
                    text_projection to 12, logit_scale; quick_gelu, eps 1e-5
  clip_io.safetensors    clip.pixel_values [2, 3, 28, 28] -> clip.vision_hidden [2, 17, 24] (last_hidden_state),
                    clip.vision_pooled [2, 24] (post_layernorm of the class token), clip.image_embeds [2, 12]
                    (visual_projection of it, unnormalised); clip.ids [2, 77] -> clip.text_embeds [2, 12]
                    (text_projection of the pooled output, unnormalised); clip.picture [37, 50, 3] (an RGB picture,
                    values 0..255 as F32) -> clip.picture_pixel_values [1, 3, 28, 28] by the installed transformers'
                    CLIPImageProcessor (shortest side to 28, bicubic, centre crop 28, OpenAI mean/std; torchvision's
                    resize in transformers 5, PIL's in 4) and clip.picture_pixel_values_pil, the same steps with PIL's
                    Image.resize(BICUBIC) as transformers 4's processor took them
  clip_config.json       the CLIP model's configuration, the processors used, the versions
Only the data is committed.
"""
import argparse, json, os
import numpy as np
import torch
from safetensors.torch import save_file
from transformers import CLIPConfig, CLIPModel, CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel
from transformers.models.t5.modeling_t5 import T5Attention


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


def init_clip_model_(model):
    """init_'s distributions for a whole CLIPModel: the patch convolution as a linear layer (N(0, 1/fan-in)), the
    class, position and token embeddings N(0, 0.5^2); logit_scale is left as it is (impasto does not use it)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name == "logit_scale":
                continue
            if name.endswith("patch_embedding.weight"):
                p.copy_(torch.randn_like(p) / p[0].numel() ** 0.5)
            elif "embed" in name:
                p.copy_(0.5 * torch.randn_like(p))
            elif "norm" in name and name.endswith("weight"):  # layer_norm1/2, pre_layrnorm, post_layernorm, final_layer_norm
                p.copy_(1 + 0.1 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.05 * torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) / p[0].numel() ** 0.5)
            p.copy_(p.bfloat16().float())


def test_picture(h=37, w=50):
    """A deterministic non-square RGB picture with smooth gradients, a ring and hard-edged blocks (uint8 [h, w, 3])."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 127.5 + 127.5 * np.sin(x / 5.0) * np.cos(y / 7.0)
    g = 255.0 * x / (w - 1)
    b = 255.0 * ((np.hypot(x - w / 2, y - h / 2) % 12) < 6)
    img = np.stack([r, g, b], axis=-1)
    img[5:12, 30:44] = [250, 20, 120]
    img[24:33, 3:9] = [10, 200, 40]
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def clip_model_part(out):
    """A tiny random CLIPModel and its reference outputs, written to files of their own (see the module docstring)."""
    from PIL import Image
    from transformers import CLIPImageProcessor
    torch.manual_seed(20260301)
    text = dict(vocab_size=258, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                max_position_embeddings=77, hidden_act="quick_gelu", layer_norm_eps=1e-5, attention_dropout=0.0,
                bos_token_id=256, eos_token_id=257, pad_token_id=257)
    vision = dict(hidden_size=24, intermediate_size=48, num_hidden_layers=2, num_attention_heads=2, num_channels=3,
                  image_size=28, patch_size=7, hidden_act="quick_gelu", layer_norm_eps=1e-5, attention_dropout=0.0)
    cfg = CLIPConfig(text_config=text, vision_config=vision, projection_dim=12)
    model = CLIPModel(cfg).float().eval()
    init_clip_model_(model)
    io = {}
    pixels = torch.randn(2, 3, 28, 28).bfloat16().float()
    ids = torch.tensor([clip_ids("a harbour at dawn, oil on canvas"), clip_ids("")], dtype=torch.long)
    with torch.no_grad():
        # the towers and projections called directly: CLIPModel.forward normalises the embeddings, and what
        # get_image_features / get_text_features return has changed between transformers versions
        v = model.vision_model(pixel_values=pixels)
        t = model.text_model(input_ids=ids)
        io["clip.pixel_values"] = pixels
        io["clip.vision_hidden"] = v.last_hidden_state.contiguous()
        io["clip.vision_pooled"] = v.pooler_output.contiguous()
        io["clip.image_embeds"] = model.visual_projection(v.pooler_output).contiguous()
        io["clip.ids"] = ids.to(torch.int32)
        io["clip.text_embeds"] = model.text_projection(t.pooler_output).contiguous()
        first_eos = (ids == 257).int().argmax(dim=-1)
        expect = t.last_hidden_state[torch.arange(2), first_eos]
        if not torch.equal(t.pooler_output, expect):
            raise SystemExit("CLIP text pooling is not at the first end-of-text token in this transformers version: fix the fixture")
    picture = test_picture()
    io["clip.picture"] = torch.from_numpy(picture.astype(np.float32))
    processor = CLIPImageProcessor(size=dict(shortest_edge=28), crop_size=dict(height=28, width=28))
    processors = {"clip.picture_pixel_values": type(processor).__module__ + "." + type(processor).__name__,
                  "clip.picture_pixel_values_pil": "PIL " + __import__("PIL").__version__ + " Image.resize(BICUBIC)"}
    io["clip.picture_pixel_values"] = torch.as_tensor(np.asarray(processor(images=Image.fromarray(picture), return_tensors="np")["pixel_values"]),
                                                      dtype=torch.float32).contiguous()
    # transformers 4's CLIPImageProcessor step by step: shortest side to 28 (the other int(28 * long / short)) with
    # PIL's bicubic, crop at ((h - 28) // 2, (w - 28) // 2), / 255, OpenAI mean and std, channels first
    h, w = picture.shape[:2]
    nw, nh = (28, int(28 * h / w)) if w <= h else (int(28 * w / h), 28)
    resized = np.asarray(Image.fromarray(picture).resize((nw, nh), Image.Resampling.BICUBIC), dtype=np.float64)
    top, left = (nh - 28) // 2, (nw - 28) // 2
    crop = resized[top:top + 28, left:left + 28] / 255.0
    mean, std = np.array([0.48145466, 0.4578275, 0.40821073]), np.array([0.26862954, 0.26130258, 0.27577711])
    io["clip.picture_pixel_values_pil"] = torch.from_numpy(((crop - mean) / std).transpose(2, 0, 1)[None].astype(np.float32)).contiguous()
    save_file({k: v.contiguous() for k, v in model.state_dict().items() if "position_ids" not in k}, os.path.join(out, "clip_full.safetensors"))
    save_file({k: v.contiguous() for k, v in io.items()}, os.path.join(out, "clip_io.safetensors"))
    with open(os.path.join(out, "clip_config.json"), "w") as f:
        json.dump({"clip_model": cfg.to_dict(), "processors": processors, "image_processor": processor.to_dict(),
                   "torch": torch.__version__, "transformers": __import__("transformers").__version__,
                   "pillow": __import__("PIL").__version__}, f, indent=1, default=str)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", choices=["clip-model"], help="write only this part's files (see the module docstring)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    if args.only == "clip-model":
        clip_model_part(args.out)
        print("wrote", sorted(f for f in os.listdir(args.out) if f.startswith("clip_")))
        return
    from flux.modules.autoencoder import AutoEncoder, AutoEncoderParams
    torch.manual_seed(20260214)
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
    clip_model_part(args.out)
    print("wrote", sorted(os.listdir(args.out)))


if __name__ == "__main__":
    main()

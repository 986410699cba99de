# Makes the golden LoRA files of LoraGoldenFilesTest with the reference safetensors library (safetensors.numpy,
# safetensors 0.8.0, numpy): files as sd-scripts and diffusers lay them out, for the test model LoraFixtures.SMALL
# (hidden 16, MLP 64, 2 double + 2 single blocks), plus the dense updates scale * up @ down they must produce,
# computed here in float64. Run: python make_golden.py (writes next to itself).
import json, os
import numpy as np
from safetensors.numpy import save_file

H, M, R = 16, 64, 2
rng = np.random.default_rng(1234)
here = os.path.dirname(os.path.abspath(__file__))

def w(*shape, dtype=np.float16):
    return (rng.standard_normal(shape) * 0.5).astype(dtype)

# kohya / sd-scripts: fp16 weights, alpha as a 0-d tensor in the save dtype, one module per fused BFL layer
kohya, expected = {}, {}
for name, out, inp, alpha in [("double_blocks_0_img_attn_qkv", 3 * H, H, 1.0), ("double_blocks_1_txt_mlp_2", H, M, 4.0),
                               ("single_blocks_1_linear1", 3 * H + M, H, 2.0), ("single_blocks_0_modulation_lin", 3 * H, H, None)]:
    k = "lora_unet_" + name
    down, up = w(R, inp), w(out, R)
    kohya[k + ".lora_down.weight"], kohya[k + ".lora_up.weight"] = down, up
    if alpha is not None:
        kohya[k + ".alpha"] = np.array(alpha, dtype=np.float16)
    scale = (alpha if alpha is not None else R) / R
    expected[name] = scale * (up.astype(np.float64) @ down.astype(np.float64))
save_file(kohya, os.path.join(here, "golden_kohya_fp16.safetensors"), metadata={"ss_network_module": "networks.lora_flux", "ss_network_dim": "2"})

# diffusers / peft: split q/k/v of a single block with different ranks, alpha only in lora_adapter_metadata
diff = {}
ranks = {"attn.to_q": 2, "attn.to_k": 4, "attn.to_v": 2, "proj_mlp": 2}
rows = {"attn.to_q": H, "attn.to_k": H, "attn.to_v": H, "proj_mlp": M}
alphas = {"attn.to_q": 8, "attn.to_k": 2, "attn.to_v": 8, "proj_mlp": 8}
lin1 = np.zeros((3 * H + M, H))
row = 0
for mod in ["attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp"]:
    key = "transformer.single_transformer_blocks.0." + mod
    a, b = w(ranks[mod], H, dtype=np.float32), w(rows[mod], ranks[mod], dtype=np.float32)
    diff[key + ".lora_A.weight"], diff[key + ".lora_B.weight"] = a, b
    lin1[row:row + rows[mod]] = alphas[mod] / ranks[mod] * (b.astype(np.float64) @ a.astype(np.float64))
    row += rows[mod]
expected["single_blocks_0_linear1"] = lin1
config = {"transformer.r": 2, "transformer.lora_alpha": 8,
          "transformer.rank_pattern": {"single_transformer_blocks.0.attn.to_k": 4},
          "transformer.alpha_pattern": {"single_transformer_blocks.0.attn.to_k": 2},
          "transformer.target_modules": sorted("single_transformer_blocks.0." + m for m in ranks),
          "transformer.use_dora": False, "transformer.lora_dropout": 0.0}
# as diffusers' write_lora_layers stores it
save_file(diff, os.path.join(here, "golden_diffusers.safetensors"),
          metadata={"format": "pt", "lora_adapter_metadata": json.dumps(config, indent=2, sort_keys=True)})
save_file(expected, os.path.join(here, "golden_expected_deltas.safetensors"))

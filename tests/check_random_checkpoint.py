"""Checks a folder written by clip_write_random: a safetensors file that an independent parser reads, every
CLIPModel tensor name with the shape config.json implies, and CLIP's initialisation scales. Exit 0 if all hold."""
import json, struct, sys
import numpy as np

d = sys.argv[1]
cfg = json.load(open(f"{d}/config.json"))
raw = open(f"{d}/model.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
assert (8 + n) % 8 == 0, "data not 8-byte aligned"
hdr = json.loads(raw[8:8 + n])
def get(name):
    e = hdr[name]
    b, end = e["data_offsets"]
    assert e["dtype"] == "F32"
    return np.frombuffer(raw[8 + n + b: 8 + n + end], dtype="<f4").reshape(e["shape"])
t, v, P = cfg["text_config"], cfg["vision_config"], cfg["projection_dim"]
Wt, Wv, It, Iv = t["hidden_size"], v["hidden_size"], t["intermediate_size"], v["intermediate_size"]
grid = v["image_size"] // v["patch_size"]
want = {
    "text_model.embeddings.token_embedding.weight": [t["vocab_size"], Wt],
    "text_model.embeddings.position_embedding.weight": [t["max_position_embeddings"], Wt],
    "text_model.final_layer_norm.weight": [Wt], "text_model.final_layer_norm.bias": [Wt],
    "vision_model.embeddings.class_embedding": [Wv],
    "vision_model.embeddings.patch_embedding.weight": [Wv, 3, v["patch_size"], v["patch_size"]],
    "vision_model.embeddings.position_embedding.weight": [grid * grid + 1, Wv],
    "vision_model.pre_layrnorm.weight": [Wv], "vision_model.pre_layrnorm.bias": [Wv],
    "vision_model.post_layernorm.weight": [Wv], "vision_model.post_layernorm.bias": [Wv],
    "visual_projection.weight": [P, Wv], "text_projection.weight": [P, Wt], "logit_scale": [],
}
for tower, W, I, L in (("text_model", Wt, It, t["num_hidden_layers"]), ("vision_model", Wv, Iv, v["num_hidden_layers"])):
    for l in range(L):
        p = f"{tower}.encoder.layers.{l}."
        for j in ("q_proj", "k_proj", "v_proj", "out_proj"):
            want[p + f"self_attn.{j}.weight"] = [W, W]
            want[p + f"self_attn.{j}.bias"] = [W]
        for j in ("layer_norm1", "layer_norm2"):
            want[p + j + ".weight"] = [W]
            want[p + j + ".bias"] = [W]
        want[p + "mlp.fc1.weight"], want[p + "mlp.fc1.bias"] = [I, W], [I]
        want[p + "mlp.fc2.weight"], want[p + "mlp.fc2.bias"] = [W, I], [W]
got = {k: e["shape"] for k, e in hdr.items() if k != "__metadata__"}
assert got == want, f"names/shapes differ: {set(got) ^ set(want)}"
tok = get("text_model.embeddings.token_embedding.weight")
assert abs(tok.std() - 0.02) < 0.002, tok.std()
q = get("vision_model.encoder.layers.0.self_attn.q_proj.weight")
assert abs(q.std() - Wv ** -0.5) < 0.1 * Wv ** -0.5, q.std()
assert np.all(get("text_model.final_layer_norm.weight") == 1)
assert abs(float(get("logit_scale")) - cfg["logit_scale_init_value"]) < 1e-6
print("ok")

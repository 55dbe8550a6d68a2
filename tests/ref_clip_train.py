"""Reference for CLIP training (model/clip_train.c): a tiny CLIP with random weights (LayerNorms and biases too),
random pixels and token ids drawn afresh each time the fixture is made (the seed is in seed.txt), the symmetric
contrastive loss of Hugging Face CLIPModel (return_loss=True), the gradient of every weight, and one AdamW update
(torch.optim.AdamW after clip_grad_norm_, weight decay on the weight matrices only), computed in float64 with the
model of tests/ref_clip.py.

Writes OUT/model/ (config.json, model.safetensors F32), OUT/gradmodel/ (the gradients as such a folder), pixels (B,3,S,S), ids (B,T) int64, eot (B) int64,
loss (1), grad/<tensor name>.npy for every tensor and step/<tensor name>.npy the weights after the update.
"""
import json, os, sys
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_clip  # noqa: E402

OUT = sys.argv[1]
seed = int.from_bytes(os.urandom(4), "little")
torch.manual_seed(seed)
for d in ("model", "grad", "step"):
    os.makedirs(os.path.join(OUT, d), exist_ok=True)
with open(os.path.join(OUT, "seed.txt"), "w") as f:
    f.write(f"{seed}\n")

V, CTX, EOS = 100, 12, 99
cfg = {
    "architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": 20, "logit_scale_init_value": 2.6592,
    "text_config": dict(hidden_size=24, num_hidden_layers=2, num_attention_heads=2, intermediate_size=40,
                        vocab_size=V, max_position_embeddings=CTX, eos_token_id=EOS, hidden_act="quick_gelu",
                        layer_norm_eps=1e-5),
    "vision_config": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
                          patch_size=4, image_size=16, num_channels=3, hidden_act="quick_gelu", layer_norm_eps=1e-5),
}
with open(os.path.join(OUT, "model", "config.json"), "w") as f:
    json.dump(cfg, f, indent=1)

m = ref_clip.CLIP(cfg).double()
with torch.no_grad():
    for name, p in m.named_parameters():
        if name == "logit_scale":
            p.fill_(float(np.log(1 / 0.07)) + 0.3 * torch.randn(()).item())
        elif "norm" in name and name.endswith(".weight"):
            p.copy_(1 + 0.3 * torch.randn_like(p))
        else:
            p.copy_(0.2 * torch.randn_like(p) if p.dim() > 1 else 0.1 * torch.randn_like(p))
# the weights as the C side reads them (F32), the reference in float64 on those values
sd = {k: v.float().numpy() for k, v in m.state_dict().items()}
ref_clip.write_safetensors(os.path.join(OUT, "model", "model.safetensors"), sd, "F32")
with torch.no_grad():
    for k, p in m.named_parameters():
        p.copy_(torch.from_numpy(sd[k]).double())

B, T, S = 5, 9, 16
pixels = torch.randn(B, 3, S, S, dtype=torch.float64)
ids = torch.randint(0, V - 1, (B, T))
eot = torch.randint(2, T, (B,))
ids[torch.arange(B), eot] = EOS

hidden, vv, image_embeds, _ = ref_clip.vision_forward(m, pixels, 0)
embeds = m.text_model.embeddings.token_embedding(ids)
text_embeds = ref_clip.text_forward_embeds(m, embeds, eot)
image_embeds = image_embeds / image_embeds.norm(dim=-1, keepdim=True)
text_embeds = text_embeds / text_embeds.norm(dim=-1, keepdim=True)
logits_per_text = m.logit_scale.exp() * text_embeds @ image_embeds.T
labels = torch.arange(B)
loss = (F.cross_entropy(logits_per_text, labels) + F.cross_entropy(logits_per_text.T, labels)) / 2
loss.backward()


def save(sub, name, t):
    a = t.detach().numpy() if isinstance(t, torch.Tensor) else t
    np.save(os.path.join(OUT, sub, name + ".npy") if sub else os.path.join(OUT, name + ".npy"),
            a.astype(np.int64) if a.dtype == np.int64 else a.astype(np.float32))


save("", "pixels", pixels)
save("", "ids", ids)
save("", "eot", eot)
save("", "loss", loss.reshape(1))
for name, p in m.named_parameters():
    save("grad", name, p.grad)
# the same gradients as a checkpoint folder, for the C side to feed its AdamW (the optimizer tested on its own)
os.makedirs(os.path.join(OUT, "gradmodel"), exist_ok=True)
with open(os.path.join(OUT, "gradmodel", "config.json"), "w") as f:
    json.dump(cfg, f, indent=1)
ref_clip.write_safetensors(os.path.join(OUT, "gradmodel", "model.safetensors"),
                           {k: p.grad.float().numpy() for k, p in m.named_parameters()}, "F32")


# One AdamW update (lr 2e-3, betas 0.9/0.98, eps 1e-6, weight decay 0.2 on the weight matrices) from the float32
# gradients above (the C side is given the same), first clipped to a global norm of half their norm so that the
# clipping acts.
def decays(name):
    return name.endswith(("q_proj.weight", "k_proj.weight", "v_proj.weight", "out_proj.weight", "fc1.weight",
                          "fc2.weight", "patch_embedding.weight", "visual_projection.weight",
                          "text_projection.weight"))


params = dict(m.named_parameters())
for p in params.values():
    p.grad = p.grad.float().double()
norm = torch.nn.utils.clip_grad_norm_(m.parameters(), float("inf"))
torch.nn.utils.clip_grad_norm_(m.parameters(), 0.5 * norm.item())
opt = torch.optim.AdamW([{"params": [p for n, p in params.items() if decays(n)], "weight_decay": 0.2},
                         {"params": [p for n, p in params.items() if not decays(n)], "weight_decay": 0.0}],
                        lr=2e-3, betas=(0.9, 0.98), eps=1e-6)
opt.step()
save("", "grad_norm", norm.reshape(1))
for name, p in m.named_parameters():
    save("step", name, p)

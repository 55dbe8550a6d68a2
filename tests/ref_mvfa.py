"""Reference for MVFA-AD's zero-shot head (model/baseline_mvfa.c, model/mvfa_adapter.c, model/frozen_blocks.c):
MediaBrain-SJTU/MVFA-AD's arithmetic written again in plain PyTorch (float64) on a tiny random CLIP built the
open_clip way (LND layout, nn.MultiheadAttention with the packed in_proj, QuickGELU, open_clip's resize_pos_embed
with bicubic antialias), saved in the Hugging Face layout for the C side:
  CLIP_Inplanted.forward (CLIP/adapter.py)   after each layer of features_list, a seg and a det ClipAdapter
                                             (Linear without bias + LeakyReLU, twice) on the whole stream, then
                                             x = 0.8 x + 0.1 seg_out + 0.1 det_out; the bottleneck tokens are kept
  encode_text_with_prompt_ensemble (utils.py) 7 normal / 5 abnormal states x 35 templates with the class's
                                             REAL_NAME, each normalised, mean, renormalised
  test() (train_zero.py)                      image score Σ_layers mean(softmax(100 det_n @ T)[:, 1]);
                                             map Σ_layers softmax(interp(100 seg_n @ T, bilinear, align_corners))[1]
  main() (train_zero.py)                      det_loss = Σ_layers BCEWithLogits(mean p_a, y); with masks
                                             seg_loss = Σ_layers Focal + Dice(p_a); two Adam optimisers
                                             (lr 1e-4, betas (0.5, 0.999)): seg stepped only with masks
A batch of B images is MVFA-AD's arithmetic per image with the losses' batch means (upstream trains on one).
Writes OUT/ckpt/ (config.json, model.safetensors) and OUT/*.npy: pixels, masks, labels, params (seg adapters then
det adapters, per layer fc1 (P,W) then fc2 (W,P)), text, scores, maps, loss / grad with masks, loss_det / grad_det
without, and params_adam3 after three Adam steps (masks, none, masks).
"""
import json, math, os, struct, sys
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_tokenizer import SimpleTokenizer, vocab_path  # noqa: E402

OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)
torch.set_num_threads(1)
torch.set_default_dtype(torch.float64)
g = torch.Generator().manual_seed(20240617)

# sizes (mirrored in tests/test_mvfa.c)
VW, VL, VH, VMLP, PATCH, GRID0 = 32, 6, 4, 64, 8, 4   # checkpoint grid 4 (32 px); input 40 px: grid 5
TW, TL, TH, TMLP, CTX, VOCAB = 32, 2, 4, 64, 77, 49408
P = 24                     # projection dim = the adapters' bottleneck (768 for ViT-L/14)
S = 40
LAYERS = [2, 3, 6]         # adapters after these layers (1-based): one block, then three, between them
B = 3
CLS = "retinal OCT"        # MVFA-AD's REAL_NAME for Retina_RESC


def rnd(*shape, s=1.0):
    return (torch.randn(*shape, generator=g) * s).float().double()  # float32 values, as the file holds them


# ---------------------------------------------------------------------------------------------------------------
# tiny CLIP: open_clip names and modules

def block_params(W, M):
    return {"ln_1.weight": 1 + rnd(W, s=0.2), "ln_1.bias": rnd(W, s=0.1),
            "attn.in_proj_weight": rnd(3 * W, W, s=W ** -0.5), "attn.in_proj_bias": rnd(3 * W, s=0.1),
            "attn.out_proj.weight": rnd(W, W, s=W ** -0.5), "attn.out_proj.bias": rnd(W, s=0.1),
            "ln_2.weight": 1 + rnd(W, s=0.2), "ln_2.bias": rnd(W, s=0.1),
            "mlp.c_fc.weight": rnd(M, W, s=W ** -0.5), "mlp.c_fc.bias": rnd(M, s=0.1),
            "mlp.c_proj.weight": rnd(W, M, s=M ** -0.5), "mlp.c_proj.bias": rnd(W, s=0.1)}


vis = {"conv1.weight": rnd(VW, 3, PATCH, PATCH, s=(3 * PATCH * PATCH) ** -0.5), "class_embedding": rnd(VW, s=0.5),
       "positional_embedding": rnd(GRID0 * GRID0 + 1, VW, s=0.5), "ln_pre.weight": 1 + rnd(VW, s=0.2),
       "ln_pre.bias": rnd(VW, s=0.1), "ln_post.weight": 1 + rnd(VW, s=0.2), "ln_post.bias": rnd(VW, s=0.1),
       "proj": rnd(VW, P, s=VW ** -0.5)}
vblocks = [block_params(VW, VMLP) for _ in range(VL)]
txt = {"token_embedding.weight": rnd(VOCAB, TW, s=0.5), "positional_embedding": rnd(CTX, TW, s=0.3),
       "ln_final.weight": 1 + rnd(TW, s=0.2), "ln_final.bias": rnd(TW, s=0.1), "text_projection": rnd(TW, P, s=TW ** -0.5)}
tblocks = [block_params(TW, TMLP) for _ in range(TL)]


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    """open_clip transformer.py ResidualAttentionBlock (LND input), loaded from block_params."""

    def __init__(self, W, H, M, p):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(W), nn.LayerNorm(W)
        self.attn = nn.MultiheadAttention(W, H)
        self.mlp = nn.Sequential()
        self.mlp.add_module("c_fc", nn.Linear(W, M))
        self.mlp.add_module("gelu", QuickGELU())
        self.mlp.add_module("c_proj", nn.Linear(M, W))
        self.load_state_dict(p)

    def forward(self, x, attn_mask=None):
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=attn_mask)[0]
        return x + self.mlp(self.ln_2(x))


vres = [ResidualAttentionBlock(VW, VH, VMLP, p) for p in vblocks]
tres = [ResidualAttentionBlock(TW, TH, TMLP, p) for p in tblocks]
for mod in vres + tres:
    mod.requires_grad_(False)


def resize_pos_embed(pos, grid):
    """open_clip model.py resize_pos_embed: bicubic, antialias, align_corners False; the class row kept."""
    tok, img = pos[:1], pos[1:]
    old = int(math.sqrt(len(img)))
    img = img.reshape(1, old, old, -1).permute(0, 3, 1, 2)
    img = F.interpolate(img, size=(grid, grid), mode="bicubic", antialias=True, align_corners=False)
    return torch.cat([tok, img.permute(0, 2, 3, 1).reshape(grid * grid, -1)], 0)


GRID = S // PATCH
POS = resize_pos_embed(vis["positional_embedding"], GRID)


def ln(x, pre):
    return F.layer_norm(x, (x.shape[-1],), vis[pre + ".weight"], vis[pre + ".bias"], 1e-5)


# ---------------------------------------------------------------------------------------------------------------
# CLIP_Inplanted


class ClipAdapter(nn.Module):
    def __init__(self, c_in, bottleneck):
        super().__init__()
        self.fc1 = nn.Sequential(nn.Linear(c_in, bottleneck, bias=False), nn.LeakyReLU(inplace=False))
        self.fc2 = nn.Sequential(nn.Linear(bottleneck, c_in, bias=False), nn.LeakyReLU(inplace=False))

    def forward(self, x):
        x = self.fc1(x)
        y = self.fc2(x)
        return x, y


seg_adapters = nn.ModuleList([ClipAdapter(VW, P) for _ in LAYERS])
det_adapters = nn.ModuleList([ClipAdapter(VW, P) for _ in LAYERS])
with torch.no_grad():
    for a in list(seg_adapters) + list(det_adapters):
        a.fc1[0].weight.copy_(rnd(P, VW, s=VW ** -0.5))
        a.fc2[0].weight.copy_(rnd(VW, P, s=P ** -0.5))


def flat(getter):
    return torch.cat([torch.cat([getter(a.fc1[0].weight).reshape(-1), getter(a.fc2[0].weight).reshape(-1)])
                      for a in list(seg_adapters) + list(det_adapters)])


def inplanted(px):
    """CLIP_Inplanted.forward: returns the seg and det bottleneck tokens per layer, (B, T, P) each."""
    x = F.conv2d(px, vis["conv1.weight"], stride=PATCH)
    x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
    x = torch.cat([vis["class_embedding"] + torch.zeros(x.shape[0], 1, x.shape[-1]), x], dim=1)
    x = x + POS
    x = ln(x, "ln_pre")
    x = x.permute(1, 0, 2)
    seg_tokens, det_tokens = [], []
    for i in range(VL):
        x = vres[i](x)
        if (i + 1) in LAYERS:
            k = LAYERS.index(i + 1)
            seg_med, seg_out = seg_adapters[k](x)
            det_med, det_out = det_adapters[k](x)
            x = 0.8 * x + 0.1 * seg_out + 0.1 * det_out
            seg_tokens.append(seg_med.permute(1, 0, 2))
            det_tokens.append(det_med.permute(1, 0, 2))
    return seg_tokens, det_tokens


# ---------------------------------------------------------------------------------------------------------------
# text: encode_text_with_prompt_ensemble

tok = SimpleTokenizer(vocab_path())


def tokenize(texts):
    out = torch.zeros(len(texts), CTX, dtype=torch.long)
    for i, t in enumerate(texts):
        ids = tok.encode(t)  # SOT ... EOT
        out[i, :len(ids)] = torch.tensor(ids)
    return out


def encode_text(ids):
    x = txt["token_embedding.weight"][ids] + txt["positional_embedding"]
    x = x.permute(1, 0, 2)
    mask = torch.full((CTX, CTX), float("-inf")).triu(1)
    for r in tres:
        x = r(x, attn_mask=mask)
    x = x.permute(1, 0, 2)
    x = F.layer_norm(x, (TW,), txt["ln_final.weight"], txt["ln_final.bias"], 1e-5)
    return x[torch.arange(x.shape[0]), ids.argmax(dim=-1)] @ txt["text_projection"]


prompt_normal = ['{}', 'flawless {}', 'perfect {}', 'unblemished {}', '{} without flaw', '{} without defect', '{} without damage']
prompt_abnormal = ['damaged {}', 'broken {}', '{} with flaw', '{} with defect', '{} with damage']
prompt_templates = ['a bad photo of a {}.', 'a low resolution photo of the {}.', 'a bad photo of the {}.', 'a cropped photo of the {}.', 'a bright photo of a {}.', 'a dark photo of the {}.', 'a photo of my {}.', 'a photo of the cool {}.', 'a close-up photo of a {}.', 'a black and white photo of the {}.', 'a bright photo of the {}.', 'a cropped photo of a {}.', 'a jpeg corrupted photo of a {}.', 'a blurry photo of the {}.', 'a photo of the {}.', 'a good photo of the {}.', 'a photo of one {}.', 'a close-up photo of the {}.', 'a photo of a {}.', 'a low resolution photo of a {}.', 'a photo of a large {}.', 'a blurry photo of a {}.', 'a jpeg corrupted photo of the {}.', 'a good photo of a {}.', 'a photo of the small {}.', 'a photo of the large {}.', 'a black and white photo of a {}.', 'a dark photo of a {}.', 'a photo of a cool {}.', 'a photo of a small {}.', 'there is a {} in the scene.', 'there is the {} in the scene.', 'this is a {} in the scene.', 'this is the {} in the scene.', 'this is one {} in the scene.']


def encode_text_with_prompt_ensemble(obj):
    feats = []
    for states in (prompt_normal, prompt_abnormal):
        sentences = [t.format(s.format(obj)) for s in states for t in prompt_templates]
        e = encode_text(tokenize(sentences))
        e = e / e.norm(dim=-1, keepdim=True)
        e = e.mean(dim=0)
        feats.append(e / e.norm())
    return torch.stack(feats, dim=1)  # (P, 2)


# ---------------------------------------------------------------------------------------------------------------
# losses (loss.py)

def focal(logit, target, gamma=2, smooth=1e-5):
    logit = logit.reshape(logit.size(0), logit.size(1), -1).permute(0, 2, 1).reshape(-1, logit.size(1))
    idx = target.reshape(-1, 1).long()
    one_hot = torch.zeros(idx.size(0), 2).scatter_(1, idx, 1)
    one_hot = torch.clamp(one_hot, smooth / (2 - 1), 1.0 - smooth)
    pt = (one_hot * logit).sum(1) + smooth
    return (-1 * torch.pow(1 - pt, gamma) * pt.log()).mean()


def dice(inp, targets):
    N = targets.size()[0]
    i, t = inp.reshape(N, -1), targets.reshape(N, -1)
    d = (2 * (i * t).sum(1) + 1) / (i.sum(1) + t.sum(1) + 1)
    return 1 - d.sum() / N


# ---------------------------------------------------------------------------------------------------------------
# inputs, scores, maps, losses, gradients, Adam steps

def save(name, a):
    a = a.detach().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    a = np.ascontiguousarray(a)
    np.save(os.path.join(OUT, name + ".npy"), a.astype(np.int64) if a.dtype.kind == "i" else a.astype(np.float32))


pixels = torch.rand(B, 3, S, S, generator=g).float().double()  # ToTensor: [0, 1], no Normalize
masks = torch.zeros(B, S, S)
for b in range(1, B):
    y0, x0 = int(torch.randint(0, S - 16, (1,), generator=g)), int(torch.randint(0, S - 16, (1,), generator=g))
    masks[b, y0:y0 + 6 + 5 * b, x0:x0 + 11] = 1
labels = torch.tensor([0, 1, 1])
for n, v in dict(pixels=pixels, masks=masks, labels=labels, params=flat(lambda w: w)).items():
    save(n, v)

with torch.no_grad():
    T = encode_text_with_prompt_ensemble(CLS)
save("text", T.T)


def scores_maps():
    seg, det = inplanted(pixels)
    seg = [p[:, 1:, :] for p in seg]
    det = [p[:, 1:, :] for p in det]
    score = 0
    for d in det:
        d = d / d.norm(dim=-1, keepdim=True)
        score = score + torch.softmax(100.0 * d @ T, dim=-1)[:, :, 1].mean(dim=-1)
    maps = []
    for s in seg:
        s = s / s.norm(dim=-1, keepdim=True)
        am = 100.0 * s @ T
        Bn, L, C = am.shape
        H = int(np.sqrt(L))
        am = F.interpolate(am.permute(0, 2, 1).view(Bn, 2, H, H), size=S, mode="bilinear", align_corners=True)
        maps.append(torch.softmax(am, dim=1)[:, 1, :, :])
    return score, torch.stack(maps).sum(0), seg, det


with torch.no_grad():
    score, amap, _, _ = scores_maps()
save("scores", score)
save("maps", amap)
print("mvfa: scores", score.numpy().round(4), "map range", float(amap.min()), float(amap.max()))


def losses(with_masks):
    seg, det, = scores_maps()[2:]
    det_loss = 0
    for d in det:
        d = d / d.norm(dim=-1, keepdim=True)
        s = torch.softmax(100.0 * d @ T, dim=-1)[:, :, 1].mean(dim=-1)
        det_loss = det_loss + F.binary_cross_entropy_with_logits(s, labels.double())
    if not with_masks:
        return det_loss
    seg_loss = 0
    for s in seg:
        s = s / s.norm(dim=-1, keepdim=True)
        am = 100.0 * s @ T
        Bn, L, C = am.shape
        H = int(np.sqrt(L))
        am = F.interpolate(am.permute(0, 2, 1).view(Bn, 2, H, H), size=S, mode="bilinear", align_corners=True)
        am = torch.softmax(am, dim=1)
        seg_loss = seg_loss + focal(am, masks) + dice(am[:, 1, :, :], masks)
    return seg_loss + det_loss


def zero_grad():
    for prm in list(seg_adapters.parameters()) + list(det_adapters.parameters()):
        prm.grad = None


for tag, with_masks in (("", True), ("_det", False)):
    zero_grad()
    loss = losses(with_masks)
    loss.backward()
    save("loss" + tag, loss.detach().reshape(1))
    save("grad" + tag, flat(lambda w: w.grad if w.grad is not None else torch.zeros_like(w)))

# three steps as train_zero.py takes them: a batch with masks, one without (det optimiser only), one with masks
zero_grad()
seg_opt = torch.optim.Adam(seg_adapters.parameters(), lr=1e-4, betas=(0.5, 0.999))
det_opt = torch.optim.Adam(det_adapters.parameters(), lr=1e-4, betas=(0.5, 0.999))
for with_masks in (True, False, True):
    loss = losses(with_masks)
    if with_masks:
        seg_opt.zero_grad()
        det_opt.zero_grad()
        loss.backward()
        seg_opt.step()
        det_opt.step()
    else:
        det_opt.zero_grad()
        loss.backward()
        det_opt.step()
save("params_adam3", flat(lambda w: w))


# ---------------------------------------------------------------------------------------------------------------
# the checkpoint in the Hugging Face layout (our loader's)

def hf_state():
    sd = {"vision_model.embeddings.patch_embedding.weight": vis["conv1.weight"],
          "vision_model.embeddings.class_embedding": vis["class_embedding"],
          "vision_model.embeddings.position_embedding.weight": vis["positional_embedding"],
          "vision_model.pre_layrnorm.weight": vis["ln_pre.weight"], "vision_model.pre_layrnorm.bias": vis["ln_pre.bias"],
          "vision_model.post_layernorm.weight": vis["ln_post.weight"], "vision_model.post_layernorm.bias": vis["ln_post.bias"],
          "visual_projection.weight": vis["proj"].T,
          "text_model.embeddings.token_embedding.weight": txt["token_embedding.weight"],
          "text_model.embeddings.position_embedding.weight": txt["positional_embedding"],
          "text_model.final_layer_norm.weight": txt["ln_final.weight"], "text_model.final_layer_norm.bias": txt["ln_final.bias"],
          "text_projection.weight": txt["text_projection"].T, "logit_scale": torch.tensor(2.6592)}
    for tower, blocks in (("vision_model", vblocks), ("text_model", tblocks)):
        for l, p in enumerate(blocks):
            pre = "%s.encoder.layers.%d." % (tower, l)
            W = p["ln_1.weight"].shape[0]
            for j, c in enumerate("qkv"):
                sd[pre + "self_attn.%s_proj.weight" % c] = p["attn.in_proj_weight"][j * W:(j + 1) * W]
                sd[pre + "self_attn.%s_proj.bias" % c] = p["attn.in_proj_bias"][j * W:(j + 1) * W]
            sd[pre + "self_attn.out_proj.weight"] = p["attn.out_proj.weight"]
            sd[pre + "self_attn.out_proj.bias"] = p["attn.out_proj.bias"]
            for a, b_ in (("ln_1", "layer_norm1"), ("ln_2", "layer_norm2")):
                sd[pre + b_ + ".weight"], sd[pre + b_ + ".bias"] = p[a + ".weight"], p[a + ".bias"]
            sd[pre + "mlp.fc1.weight"], sd[pre + "mlp.fc1.bias"] = p["mlp.c_fc.weight"], p["mlp.c_fc.bias"]
            sd[pre + "mlp.fc2.weight"], sd[pre + "mlp.fc2.bias"] = p["mlp.c_proj.weight"], p["mlp.c_proj.bias"]
    return sd


def write_ckpt(d):
    os.makedirs(d, exist_ok=True)
    vc = dict(hidden_size=VW, num_hidden_layers=VL, num_attention_heads=VH, intermediate_size=VMLP, patch_size=PATCH,
              image_size=GRID0 * PATCH, hidden_act="quick_gelu", layer_norm_eps=1e-5, num_channels=3,
              projection_dim=P, model_type="clip_vision_model")
    tc = dict(hidden_size=TW, num_hidden_layers=TL, num_attention_heads=TH, intermediate_size=TMLP, vocab_size=VOCAB,
              max_position_embeddings=CTX, eos_token_id=49407, bos_token_id=49406, pad_token_id=1,
              hidden_act="quick_gelu", layer_norm_eps=1e-5, projection_dim=P, model_type="clip_text_model")
    cfg = {"architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": P, "logit_scale_init_value": 2.6592,
           "text_config": tc, "vision_config": vc}
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    sd = hf_state()
    header, blobs, off = {}, [], 0
    for k in sorted(sd):
        raw = sd[k].float().contiguous().numpy().tobytes()
        header[k] = {"dtype": "F32", "shape": list(sd[k].shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * (-(8 + len(h)) % 8)
    with open(os.path.join(d, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for blob in blobs:
            f.write(blob)


write_ckpt(os.path.join(OUT, "ckpt"))

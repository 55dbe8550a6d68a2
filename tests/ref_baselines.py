"""Reference for the baselines (model/baseline*.c): a tiny random CLIP in the Hugging Face layout and, in plain
PyTorch (float64), each baseline written the way its public code computes it (docs/reference/zsad-anchors.md):
  CLIP / CLIP-AC   cos(CLS, T)*scale softmax; last-layer patch tokens -> post-LN + proj -> softmax on the grid ->
                   bilinear (align_corners False) -> scipy gaussian_filter
  WinCLIP          anomalib torch_model: F.unfold masks, window embeddings by index_select on the embedded tokens
                   before ln_pre, harmonic aggregation per scale and across scales with the image score, bilinear
  April-GAN        raw hidden states -> nn.Linear -> normalise -> 100 * tok @ T -> bilinear(align_corners True) ->
                   softmax, summed over layers; training loss Focal + Dice(p_a) and its gradient (autograd)
  AnomalyCLIP      learnable ctx (normal/abnormal) + deep prompts overwriting positions 1..n in text layers
                   1..D-1; V-V dual path; global without post-LN; softmax -> bilinear -> sum -> gaussian; loss
                   CE + lambda * (Focal + Dice + Dice) with autograd gradients; the aliased variant as well
Writes OUT/ckpt/ (config.json, model.safetensors), OUT/*.npy.
"""
import json, math, os, struct, sys
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_tokenizer import SimpleTokenizer, vocab_path  # noqa: E402

OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)
torch.set_num_threads(1)
torch.set_default_dtype(torch.float64)

# ---------------------------------------------------------------------------------------------------------------
# tiny CLIP, Hugging Face names

VC = dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=4, intermediate_size=64, patch_size=8,
          image_size=32, hidden_act="quick_gelu", layer_norm_eps=1e-5, num_channels=3, projection_dim=24)
TC = dict(hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64, vocab_size=49408,
          max_position_embeddings=77, eos_token_id=49407, bos_token_id=49406, pad_token_id=1,
          hidden_act="quick_gelu", layer_norm_eps=1e-5, projection_dim=24)
P = 24
S = 48                      # input size: grid 6 (the checkpoint's grid is 4: positions resized bilinearly)
CLS = "metal_nut"


def qgelu(x):
    return x * torch.sigmoid(1.702 * x)


class Attn(nn.Module):
    def __init__(self, W, H):
        super().__init__()
        self.H = H
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(W, W) for _ in range(4))

    def mha(self, q, k, v, causal=False):
        B, T, W = q.shape
        sp = lambda x: x.view(B, T, self.H, W // self.H).transpose(1, 2)
        q, k, v = sp(q), sp(k), sp(v)
        s = q @ k.transpose(-1, -2) * (W // self.H) ** -0.5
        if causal:
            s = s.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf"))
        return self.out_proj((s.softmax(-1) @ v).transpose(1, 2).reshape(B, T, W))


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        W = c["hidden_size"]
        self.self_attn = Attn(W, c["num_attention_heads"])
        self.layer_norm1 = nn.LayerNorm(W, eps=1e-5)
        self.layer_norm2 = nn.LayerNorm(W, eps=1e-5)
        self.mlp = nn.Module()
        self.mlp.fc1 = nn.Linear(W, c["intermediate_size"])
        self.mlp.fc2 = nn.Linear(c["intermediate_size"], W)

    def attn(self, x, causal=False):
        a = self.self_attn
        return a.mha(a.q_proj(x), a.k_proj(x), a.v_proj(x), causal)

    def attn_vv(self, x):
        a = self.self_attn
        v = a.v_proj(x)
        return a.mha(v, v, v)

    def forward(self, x, causal=False):
        x = x + self.attn(self.layer_norm1(x), causal)
        return x + self.mlp.fc2(qgelu(self.mlp.fc1(self.layer_norm2(x))))


class Tower(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.encoder = nn.Module()
        self.encoder.layers = nn.ModuleList(Layer(c) for _ in range(c["num_hidden_layers"]))


class CLIP(nn.Module):
    def __init__(self):
        super().__init__()
        self.text_model = Tower(TC)
        tm = self.text_model
        tm.embeddings = nn.Module()
        tm.embeddings.token_embedding = nn.Embedding(TC["vocab_size"], TC["hidden_size"])
        tm.embeddings.position_embedding = nn.Embedding(77, TC["hidden_size"])
        tm.final_layer_norm = nn.LayerNorm(TC["hidden_size"], eps=1e-5)
        self.vision_model = Tower(VC)
        vm = self.vision_model
        W, p = VC["hidden_size"], VC["patch_size"]
        vm.embeddings = nn.Module()
        vm.embeddings.class_embedding = nn.Parameter(torch.zeros(W))
        vm.embeddings.patch_embedding = nn.Conv2d(3, W, p, stride=p, bias=False)
        vm.embeddings.position_embedding = nn.Embedding((VC["image_size"] // p) ** 2 + 1, W)
        vm.pre_layrnorm = nn.LayerNorm(W, eps=1e-5)
        vm.post_layernorm = nn.LayerNorm(W, eps=1e-5)
        self.visual_projection = nn.Linear(W, P, bias=False)
        self.text_projection = nn.Linear(TC["hidden_size"], P, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(2.6592))


g = torch.Generator().manual_seed(20250413)
m = CLIP()
with torch.no_grad():
    for name, p_ in m.named_parameters():
        if name.endswith("logit_scale"):
            continue
        if "norm" in name and name.endswith("weight"):
            p_.copy_(1 + 0.2 * torch.randn(p_.shape, generator=g))
        elif p_.dim() == 1:
            p_.copy_((0.5 if "class_embedding" in name else 0.1) * torch.randn(p_.shape, generator=g))
        elif "embedding" in name and "patch" not in name:
            p_.copy_(0.5 * torch.randn(p_.shape, generator=g))
        else:
            p_.copy_(torch.randn(p_.shape, generator=g) / math.sqrt(p_[0].numel()))
# round the weights to float32 (the file's precision), then compute in float64
with torch.no_grad():
    for p_ in m.parameters():
        p_.copy_(p_.float().double())


def write_ckpt(d):
    os.makedirs(d, exist_ok=True)
    cfg = {"architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": P, "logit_scale_init_value": 2.6592,
           "text_config": dict(TC, model_type="clip_text_model"),
           "vision_config": dict(VC, model_type="clip_vision_model")}
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    header, blobs, off = {}, [], 0
    sd = m.state_dict()
    for k in sorted(sd):
        raw = sd[k].float().numpy().tobytes()
        header[k] = {"dtype": "F32", "shape": list(sd[k].shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * (-(8 + len(h)) % 8)
    with open(os.path.join(d, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


write_ckpt(os.path.join(OUT, "ckpt"))


def save(name, a):
    a = a.detach().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    np.save(os.path.join(OUT, name + ".npy"), a.astype(np.int64) if a.dtype.kind == "i" else a.astype(np.float32))


# ---------------------------------------------------------------------------------------------------------------
# towers

tok = SimpleTokenizer(vocab_path())


def tokenize(texts, ctx=77):
    out = torch.zeros(len(texts), ctx, dtype=torch.long)
    for i, t in enumerate(texts):
        ids = tok.encode(t)
        if len(ids) > ctx:
            ids = ids[:ctx]
            ids[-1] = 49407
        out[i, :len(ids)] = torch.tensor(ids)
    return out


def encode_text_embeds(x, eot, deep=None, half=False):
    """x (B,77,W) input embeddings; deep: list of (n,W) overwriting positions 1..n before text layers 1..len.
    half: as ResidualAttentionBlock_learnable_token, each text's copy is cast with .half() before the cat (torch
    rounds the values to fp16, and autograd each text's gradient before the expand sums them)."""
    tm = m.text_model
    x = x + tm.embeddings.position_embedding.weight
    for i, layer in enumerate(tm.encoder.layers):
        if deep is not None and 1 <= i <= len(deep):
            n = deep[i - 1].shape[0]
            ctx = deep[i - 1].unsqueeze(0).expand(x.shape[0], -1, -1)
            if half:
                ctx = ctx.half().to(x.dtype)
            x = torch.cat([x[:, :1], ctx, x[:, 1 + n:]], 1)
        x = layer(x, causal=True)
    x = tm.final_layer_norm(x)
    return m.text_projection(x[torch.arange(x.shape[0]), eot])


def encode_text(texts):
    ids = tokenize(texts)
    return encode_text_embeds(m.text_model.embeddings.token_embedding.weight[ids], ids.argmax(-1))


def embed_tokens(px):
    """AnomalyCLIP/anomalib: patch conv, class token, positions resized bilinearly (align_corners False)."""
    vm = m.vision_model
    x = vm.embeddings.patch_embedding(px)
    B, W, gg, _ = x.shape
    x = torch.cat([vm.embeddings.class_embedding.expand(B, 1, W), x.flatten(2).transpose(1, 2)], 1)
    pos = vm.embeddings.position_embedding.weight
    side = int(round(math.sqrt(pos.shape[0] - 1)))
    img = pos[1:].reshape(1, side, side, W).permute(0, 3, 1, 2)
    img = F.interpolate(img, size=(gg, gg), mode="bilinear", align_corners=False)
    pos = torch.cat([pos[:1], img[0].reshape(W, gg * gg).T], 0)
    return x + pos


def vision(px, vv_from=0):
    """hidden[l] (original path after layer l), vv[l] (V-V path), pooled with and without post-LN."""
    vm = m.vision_model
    x = vm.pre_layrnorm(embed_tokens(px))
    hidden, vv, s = [x], [x], x
    for l, layer in enumerate(vm.encoder.layers, start=1):
        if vv_from and l >= vv_from:
            s = s + layer.attn_vv(layer.layer_norm1(x))
        x = layer(x)
        if not vv_from or l < vv_from:
            s = x
        hidden.append(x)
        vv.append(s)
    return hidden, vv, m.visual_projection(vm.post_layernorm(x[:, 0])), m.visual_projection(x[:, 0])


def proj_tokens(t):
    return m.visual_projection(m.vision_model.post_layernorm(t))


def unit(x):
    return x / x.norm(dim=-1, keepdim=True)


def p_abn(feat, text, scale):
    return (scale * unit(feat) @ unit(text).T).softmax(-1)[..., 1]


def map_softmax_first(tokens, text, scale, align):
    """AnomalyCLIP compute_similarity + get_similarity_map: softmax on the grid, then bilinear."""
    B, N, _ = tokens.shape
    gg = int(math.isqrt(N))
    sim = (scale * unit(tokens) @ unit(text).T).softmax(-1)
    sim = sim.reshape(B, gg, gg, 2).permute(0, 3, 1, 2)
    sim = F.interpolate(sim, size=(S, S), mode="bilinear", align_corners=align)
    return sim[:, 1]


def map_logits_first(tokens, text, scale, align):
    """APRIL-GAN test.py: logits reshaped, bilinear, then softmax."""
    B, N, _ = tokens.shape
    gg = int(math.isqrt(N))
    lg = (scale * unit(tokens) @ unit(text).T).permute(0, 2, 1).reshape(B, 2, gg, gg)
    lg = F.interpolate(lg, size=(S, S), mode="bilinear", align_corners=align)
    return lg.softmax(1)[:, 1]


def gauss(maps, sigma):
    return torch.from_numpy(np.stack([gaussian_filter(a, sigma=sigma) for a in maps.detach().numpy()]))


# ---------------------------------------------------------------------------------------------------------------
# prompts (strings of the public code)

NORMAL = ['{}', 'flawless {}', 'perfect {}', 'unblemished {}', '{} without flaw', '{} without defect', '{} without damage']
WIN_ABN = ['damaged {}', '{} with flaw', '{} with defect', '{} with damage']
APRIL_ABN = ['damaged {}', 'broken {}', '{} with flaw', '{} with defect', '{} with damage']
WIN_TPL = ["a cropped photo of the {}.", "a close-up photo of a {}.", "a close-up photo of the {}.",
           "a bright photo of a {}.", "a bright photo of the {}.", "a dark photo of the {}.", "a dark photo of a {}.",
           "a jpeg corrupted photo of the {}.", "a jpeg corrupted photo of the {}.", "a blurry photo of the {}.",
           "a blurry photo of a {}.", "a photo of a {}.", "a photo of the {}.", "a photo of a small {}.",
           "a photo of the small {}.", "a photo of a large {}.", "a photo of the large {}.",
           "a photo of the {} for visual inspection.", "a photo of a {} for visual inspection.",
           "a photo of the {} for anomaly detection.", "a photo of a {} for anomaly detection."]
APRIL_TPL = ['a bad photo of a {}.', 'a low resolution photo of the {}.', 'a bad photo of the {}.',
             'a cropped photo of the {}.', 'a bright photo of a {}.', 'a dark photo of the {}.', 'a photo of my {}.',
             'a photo of the cool {}.', 'a close-up photo of a {}.', 'a black and white photo of the {}.',
             'a bright photo of the {}.', 'a cropped photo of a {}.', 'a jpeg corrupted photo of a {}.',
             'a blurry photo of the {}.', 'a photo of the {}.', 'a good photo of the {}.', 'a photo of one {}.',
             'a close-up photo of the {}.', 'a photo of a {}.', 'a low resolution photo of a {}.',
             'a photo of a large {}.', 'a blurry photo of a {}.', 'a jpeg corrupted photo of the {}.',
             'a good photo of a {}.', 'a photo of the small {}.', 'a photo of the large {}.',
             'a black and white photo of a {}.', 'a dark photo of a {}.', 'a photo of a cool {}.',
             'a photo of a small {}.', 'there is a {} in the scene.', 'there is the {} in the scene.',
             'this is a {} in the scene.', 'this is the {} in the scene.', 'this is one {} in the scene.']
IMAGENET_TPL = [
    'a bad photo of a {}.', 'a photo of many {}.', 'a sculpture of a {}.', 'a photo of the hard to see {}.',
    'a low resolution photo of the {}.', 'a rendering of a {}.', 'graffiti of a {}.', 'a bad photo of the {}.',
    'a cropped photo of the {}.', 'a tattoo of a {}.', 'the embroidered {}.', 'a photo of a hard to see {}.',
    'a bright photo of a {}.', 'a photo of a clean {}.', 'a photo of a dirty {}.', 'a dark photo of the {}.',
    'a drawing of a {}.', 'a photo of my {}.', 'the plastic {}.', 'a photo of the cool {}.',
    'a close-up photo of a {}.', 'a black and white photo of the {}.', 'a painting of the {}.',
    'a painting of a {}.', 'a pixelated photo of the {}.', 'a sculpture of the {}.', 'a bright photo of the {}.',
    'a cropped photo of a {}.', 'a plastic {}.', 'a photo of the dirty {}.', 'a jpeg corrupted photo of a {}.',
    'a blurry photo of the {}.', 'a photo of the {}.', 'a good photo of the {}.', 'a rendering of the {}.',
    'a {} in a video game.', 'a photo of one {}.', 'a doodle of a {}.', 'a close-up photo of the {}.',
    'a photo of a {}.', 'the origami {}.', 'the {} in a video game.', 'a sketch of a {}.', 'a doodle of the {}.',
    'a origami {}.', 'a low resolution photo of a {}.', 'the toy {}.', 'a rendition of the {}.',
    'a photo of the clean {}.', 'a photo of a large {}.', 'a rendition of a {}.', 'a photo of a nice {}.',
    'a photo of a weird {}.', 'a blurry photo of a {}.', 'a cartoon {}.', 'art of a {}.', 'a sketch of the {}.',
    'a embroidered {}.', 'a pixelated photo of a {}.', 'itap of the {}.', 'a jpeg corrupted photo of the {}.',
    'a good photo of a {}.', 'a plushie {}.', 'a photo of the nice {}.', 'a photo of the small {}.',
    'a photo of the weird {}.', 'the cartoon {}.', 'art of the {}.', 'a drawing of the {}.',
    'a photo of the large {}.', 'a black and white photo of a {}.', 'the plushie {}.', 'a dark photo of a {}.',
    'itap of a {}.', 'graffiti of the {}.', 'a toy {}.', 'itap of my {}.', 'a photo of a cool {}.',
    'a photo of a small {}.', 'a tattoo of the {}.']
assert len(WIN_TPL) == 21 and len(APRIL_TPL) == 35 and len(IMAGENET_TPL) == 80


def ensemble_unit(states, templates, cls):
    """CLIP / APRIL-GAN: each sentence normalised, mean, renormalised."""
    e = unit(encode_text([t.format(s.format(cls)) for s in states for t in templates]))
    return unit(e.mean(0))


def ensemble_raw(states, templates, cls):
    """anomalib WinCLIP: mean of the raw sentence embeddings."""
    return encode_text([t.format(s.format(cls)) for s in states for t in templates]).mean(0)


# ---------------------------------------------------------------------------------------------------------------
# inputs

B = 3
pixels = torch.randn(B, 3, S, S, generator=g).float().double()
masks = torch.zeros(B, S, S)
for b in range(1, B):  # image 0 normal; rectangles of defects elsewhere
    y0, x0 = int(torch.randint(0, S - 16, (1,), generator=g)), int(torch.randint(0, S - 16, (1,), generator=g))
    masks[b, y0:y0 + 8 + 4 * b, x0:x0 + 12] = 1
labels = torch.tensor([0, 1, 1])
save("pixels", pixels)
save("masks", masks)
save("labels", labels)
L = VC["num_hidden_layers"]
SCALE100, SCALE007 = 100.0, 1 / 0.07

with torch.no_grad():
    hidden, _, glob, glob_noln = vision(pixels)
    # CLIP: two prompts, class token, last-layer patch tokens
    cls_word = CLS.replace("_", " ")
    t = unit(encode_text(["a photo of a normal %s." % cls_word, "a photo of an anomalous %s." % cls_word]))
    save("clip_text", t)
    save("clip_scores", p_abn(glob, t, SCALE100))
    save("clip_maps", gauss(map_softmax_first(proj_tokens(hidden[L])[:, 1:], t, SCALE100, False), 4.0))
    # CLIP-AC: 'normal [c]' / 'anomalous [c]' under the ImageNet ensemble
    t = torch.stack([ensemble_unit(['normal {}'], IMAGENET_TPL, cls_word), ensemble_unit(['anomalous {}'], IMAGENET_TPL, cls_word)])
    save("clipac_text", t)
    save("clipac_scores", p_abn(glob, t, SCALE100))
    save("clipac_maps", gauss(map_softmax_first(proj_tokens(hidden[L])[:, 1:], t, SCALE100, False), 4.0))

    # WinCLIP (anomalib torch_model), scales (2, 3), temperature 0.07, no gaussian; anomalib's setup passes the
    # category as its folder names it ("metal_nut"); the spaced form ("metal nut") is our switch
    save("winclip_spaces_text", torch.stack([ensemble_raw(NORMAL, WIN_TPL, cls_word), ensemble_raw(WIN_ABN, WIN_TPL, cls_word)]))
    t = torch.stack([ensemble_raw(NORMAL, WIN_TPL, CLS), ensemble_raw(WIN_ABN, WIN_TPL, CLS)])
    save("winclip_text", t)
    img_scores = p_abn(glob, t, SCALE007)
    gg = S // VC["patch_size"]
    feature_map = embed_tokens(pixels)  # before ln_pre (the patch_dropout hook)
    vm = m.vision_model
    multi = [img_scores.view(-1, 1, 1).repeat(1, gg, gg)]
    for k in (2, 3):
        mk = F.unfold(torch.arange(gg * gg).reshape(1, gg, gg).double(), kernel_size=k, stride=1).long()
        full = torch.cat((torch.zeros(1, mk.shape[1], dtype=torch.long), mk + 1)).T
        masked = torch.cat([torch.index_select(feature_map, 1, row) for row in full])
        x = vm.pre_layrnorm(masked)
        for layer in vm.encoder.layers:
            x = layer(x)
        pooled = m.visual_projection(vm.post_layernorm(x[:, 0]))
        we = pooled.reshape(mk.shape[1], B, -1).permute(1, 0, 2)
        sc = p_abn(we, t, SCALE007)  # (B, n_windows)
        agg = []
        for idx in range(gg * gg):
            hit = torch.any(mk == idx, dim=0)
            agg.append(hit.sum() / (1 / sc.T[hit]).sum(dim=0))
        multi.append(torch.stack(agg).T.reshape(B, gg, gg))
    zs = 3 / (1 / torch.stack(multi)).sum(0)
    save("winclip_scores", img_scores)
    save("winclip_maps", F.interpolate(zs.unsqueeze(1), size=(S, S), mode="bilinear")[:, 0])

# April-GAN: layers (1..4) at L/4 multiples, raw hidden states, linear maps, scale 100, logits upsampled first
april_layers = [1, 2, 3, 4]
Wv = VC["hidden_size"]
lin = [nn.Linear(Wv, P) for _ in april_layers]
with torch.no_grad():
    for li in lin:
        li.weight.copy_((torch.randn(P, Wv, generator=g) / math.sqrt(Wv)).float().double())
        li.bias.copy_((0.1 * torch.randn(P, generator=g)).float().double())
save("aprilgan_params", torch.cat([torch.cat([li.weight.reshape(-1), li.bias]) for li in lin]))
with torch.no_grad():
    t = torch.stack([ensemble_unit(NORMAL, APRIL_TPL, CLS), ensemble_unit(APRIL_ABN, APRIL_TPL, CLS)])  # raw name
save("aprilgan_text", t)
with torch.no_grad():
    save("aprilgan_scores", p_abn(glob, t, SCALE100))
    amap = sum(map_logits_first(li(hidden[l][:, 1:]), t, SCALE100, True) for li, l in zip(lin, april_layers))
    save("aprilgan_maps", amap)


def focal(prob, gt):
    """AnomalyCLIP/APRIL-GAN FocalLoss(gamma 2, alpha None, smooth 1e-5) on probabilities (N,2,H,W)."""
    logit = prob.permute(0, 2, 3, 1).reshape(-1, 2)
    target = gt.reshape(-1, 1).long()
    one_hot = torch.zeros(target.size(0), 2).scatter_(1, target, 1)
    one_hot = torch.clamp(one_hot, 1e-5 / (2 - 1), 1.0 - 1e-5)
    pt = (one_hot * logit).sum(1) + 1e-5
    return (-1 * torch.pow(1 - pt, 2) * pt.log()).mean()


def dice(p, gt):
    N = gt.shape[0]
    p, gt = p.reshape(N, -1), gt.reshape(N, -1)
    d = (2 * (p * gt).sum(1) + 1) / (p.sum(1) + gt.sum(1) + 1)
    return 1 - d.sum() / N


# April-GAN training loss: per layer softmax(bilinear(100 * tok @ T, align True)) -> Focal + Dice(p_a)
loss = 0
for li, l in zip(lin, april_layers):
    tokn = unit(li(hidden[l][:, 1:]))
    gg = int(math.isqrt(tokn.shape[1]))
    lg = (SCALE100 * tokn @ t.T).permute(0, 2, 1).reshape(B, 2, gg, gg)
    prob = F.interpolate(lg, size=(S, S), mode="bilinear", align_corners=True).softmax(1)
    loss = loss + focal(prob, masks) + dice(prob[:, 1], masks)
loss.backward()
save("aprilgan_loss", loss.detach().reshape(1))
save("aprilgan_grad", torch.cat([torch.cat([li.weight.grad.reshape(-1), li.bias.grad]) for li in lin]))

# AnomalyCLIP: n_ctx 12, deep prompts depth 3 (2 tensors of 4 tokens: text layers 1 and 2), V-V from layer 2,
# layers [1..4], global without post-LN, scale 1/0.07, softmax first, align False, gaussian 4
N_CTX, DEPTH, NDEEP = 12, 3, 4
Wt = TC["hidden_size"]
ctx = [(0.5 * torch.randn(N_CTX, Wt, generator=g)).float().double().requires_grad_() for _ in range(2)]
deep = [(0.5 * torch.randn(NDEEP, Wt, generator=g)).float().double().requires_grad_() for _ in range(DEPTH - 1)]
save("anomalyclip_params", torch.cat([x.reshape(-1) for x in ctx + deep]))


def anomalyclip_text(half=False):
    ids = tokenize([" ".join(["X"] * N_CTX) + " object.", " ".join(["X"] * N_CTX) + " damaged object."])
    emb = m.text_model.embeddings.token_embedding.weight[ids].detach()
    emb = torch.cat([emb[:, :1], torch.stack(ctx), emb[:, 1 + N_CTX:]], 1)
    return encode_text_embeds(emb, ids.argmax(-1), deep, half)


def vision_tokens_inplace(px, vv_from, layers):
    """AnomalyCLIP_lib/AnomalyCLIP.py before commit 2a7c886: Transformer.forward appends the block's output
    without .clone(); from the first dual-path block on, the V-V path is that same tensor updated in place
    (`x += x_res`), so every recorded tensor from layer vv_from-1 on ends as the final V-V tokens."""
    vm = m.vision_model
    x = vm.pre_layrnorm(embed_tokens(px))
    out, s = [], None
    for l, layer in enumerate(vm.encoder.layers, start=1):
        if l >= vv_from:
            if s is None:
                s = x                       # the first dual-path block: x (the previous output) becomes the V-V path
            x_res = layer.attn_vv(layer.layer_norm1(x))
            x = layer(x)                    # x_ori: a new tensor
            s += x_res                      # in place, as upstream's `x += x_res`
            rec = s
        else:
            x = layer(x)
            rec = x
        if l in layers:
            out.append(rec)
    return out


def anomalyclip(tag, aliased, lam, layers=(1, 2, 3, 4), vv_from=2, half=False):
    for x in ctx + deep:
        x.grad = None
    t = unit(anomalyclip_text(half))
    with torch.no_grad():
        _, vv, _, gnoln = vision(pixels, vv_from)
        toks = vision_tokens_inplace(pixels, vv_from, layers) if aliased else [vv[l] for l in layers]
    feats = [proj_tokens(tk)[:, 1:] for tk in toks]
    with torch.no_grad():
        save(tag + "_scores", p_abn(gnoln, t, SCALE007))
        mp = sum(map_softmax_first(f, t, SCALE007, False) for f in feats)
        save(tag + "_maps", gauss(mp, 4.0))
    logits = unit(gnoln) @ t.T / 0.07
    image_loss = F.cross_entropy(logits, labels)
    local = 0
    for f in feats:
        gg = int(math.isqrt(f.shape[1]))
        sim = (unit(f) @ t.T / 0.07).softmax(-1).reshape(B, gg, gg, 2).permute(0, 3, 1, 2)
        sim = F.interpolate(sim, size=(S, S), mode="bilinear")
        local = local + focal(sim, masks) + dice(sim[:, 1], masks) + dice(sim[:, 0], 1 - masks)
    loss = lam * local + image_loss
    loss.backward()
    save(tag + "_loss", loss.detach().reshape(1))
    save(tag + "_grad", torch.cat([x.grad.reshape(-1) for x in ctx + deep]))


anomalyclip("anomalyclip", False, 1.0)
anomalyclip("anomalyclip_alias", True, 4.0)
anomalyclip("anomalyclip_alias_vv3", True, 4.0, vv_from=3)  # layer 1 precedes vv_from-1: its own tokens
anomalyclip("anomalyclip_fp16", False, 1.0, half=True)

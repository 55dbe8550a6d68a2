"""Reference for the KAnoCLIP heads (model/kanoclip*.c, bicmci.c, deform_attn.c): a plain-PyTorch implementation
of docs/reference/kanoclip-components.md (§4.3 KnPL + KD, §5.4 Bi-CMCI with BiXT cross-attention and DAT v1 deformable attention
written as the DAT code computes it, channels-first with F.grid_sample, §6.2 Conv-Adapter, §7 AnomalyCLIP's focal
and dice), run in float64 on a tiny model, with torch.optim.Adam.

Scenarios, each in OUT/<name>/:
  grads     lean, all parts on, random (non-zero) init: loss terms, every gradient, eval maps and scores
  full      full variant (MLPs), triplet KD: loss terms and gradients
  ablate    KnPL off (fixed text), InfoNCE unused, Bi-CMCI off, adapter on with residual: losses and gradients
  msda      Deformable-DETR attention instead of DAT (2 points per head): three steps, gradients of the first
  noadapt   Conv-Adapter off, KD InfoNCE, maps from the original text: losses and gradients
  deep      KnPL with AnomalyCLIP-style deep text prompts (overwriting positions 1..NDEEP before text layer 2):
            two Adam steps, gradients of the first (the deep prompts' included)
  fused     L_local once on the fused maps, max(M) inside the global BCE: two steps
  minmax    L_local on the fused maps with Norm = per-image min-max (maps at eval too): one step
  adjectives two prompts per state (one per adjective, shared context), features averaged: two steps
  globalvv  method.global_source vv: the global feature is Eq. 8's V-V class token (row 0 of the last stage): two steps
  train10   the default switches (zero-initialised out-projections, bounded KD), ten Adam steps: per-step
            loss terms and the parameters after the tenth step
Files: p_NAME (initial parameters, names as the C layout), g_NAME (gradients of the first step), pT_NAME (after
the last step), vT_NAME (sqrt of Adam's second moment after the last step), losses (steps, 9) = total kd global local focal dice cos_ak cos_nk cos_an, maps (B,S,S),
pglobal (B), score (B). Shared inputs in OUT/: stage (B,n_stages,1+N,P), global (B,P), mask (B,S,S),
label/class_id (B) int64, kb (n_classes,P), fixed_text (n_classes,2,P), tt_<hf name> text-tower weights.
"""
import os, sys
import numpy as np
import scipy.ndimage
import torch
import torch.nn.functional as F

OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)
torch.set_default_dtype(torch.float64)
gen = torch.Generator().manual_seed(2025)

# ---- sizes (mirrored in tests/test_kanoclip.c) ----
P, TW, TL, TH, TMLP, CTX, VOCAB = 24, 16, 2, 2, 32, 12, 49408
H, G, K, HG, WG, S, NST = 4, 2, 3, 5, 6, 13, 2
B, NCLS, NCTX, RATIO, KP = 3, 3, 3, 4, 2
DEEP_DEPTH, NDEEP = 2, 2  # deep prompts before text layers 1..DEEP_DEPTH-1 (0-based), at positions 1..NDEEP
N, HD, CG, R = HG * WG, P // H, P // G, P // RATIO
TAU = 0.07
CLASS_WORDS = [[1000], [1001, 1002], [1003, 1004, 1005]]  # token ids of each class name
STATE_WORDS = [500, 600]  # "normal", "damaged"
DOT = 269


def rnd(*shape, s=1.0):
    return torch.randn(*shape, generator=gen) * s


def f32(t):
    return t.float().double()  # what the C side reads back


def save(d, name, t):
    os.makedirs(d, exist_ok=True)
    if isinstance(t, torch.Tensor):
        t = t.detach().numpy()
    np.save(os.path.join(d, name + ".npy"), np.ascontiguousarray(t).astype(np.float32))


def l2n(x):
    return x / x.norm(dim=-1, keepdim=True)


def ln(x, w, b):
    return F.layer_norm(x, (x.shape[-1],), w, b, 1e-5)


# ---- frozen text tower (Hugging Face CLIPTextModel semantics, quick_gelu) ----
tt = {"text_model.embeddings.token_embedding.weight": rnd(VOCAB, TW, s=0.5),
      "text_model.embeddings.position_embedding.weight": rnd(CTX, TW, s=0.3),
      "text_model.final_layer_norm.weight": 1 + rnd(TW, s=0.1), "text_model.final_layer_norm.bias": rnd(TW, s=0.1),
      "text_projection.weight": rnd(P, TW, s=0.3)}
for l in range(TL):
    pre = "text_model.encoder.layers.%d." % l
    for part in ("q", "k", "v", "out"):
        tt[pre + "self_attn.%s_proj.weight" % part] = rnd(TW, TW, s=0.3)
        tt[pre + "self_attn.%s_proj.bias" % part] = rnd(TW, s=0.1)
    for n in ("layer_norm1", "layer_norm2"):
        tt[pre + n + ".weight"] = 1 + rnd(TW, s=0.1)
        tt[pre + n + ".bias"] = rnd(TW, s=0.1)
    tt[pre + "mlp.fc1.weight"], tt[pre + "mlp.fc1.bias"] = rnd(TMLP, TW, s=0.3), rnd(TMLP, s=0.1)
    tt[pre + "mlp.fc2.weight"], tt[pre + "mlp.fc2.bias"] = rnd(TW, TMLP, s=0.3), rnd(TW, s=0.1)
tt = {k: f32(v) for k, v in tt.items()}
for k, v in tt.items():
    save(OUT, "tt_" + k, v)


def text_tower(emb, eot, deep=None):
    x = emb + tt["text_model.embeddings.position_embedding.weight"][: emb.shape[1]]
    n, L, W = x.shape
    mask = torch.triu(torch.ones(L, L, dtype=torch.bool), 1)
    for l in range(TL):
        if deep is not None and 1 <= l < DEEP_DEPTH:  # AnomalyCLIP: the hidden states are replaced, not added to
            x = torch.cat([x[:, :1], deep[l - 1].expand(n, NDEEP, W), x[:, 1 + NDEEP:]], 1)
        p = lambda s: tt["text_model.encoder.layers.%d.%s" % (l, s)]
        h = ln(x, p("layer_norm1.weight"), p("layer_norm1.bias"))
        q, k, v = (F.linear(h, p("self_attn.%s_proj.weight" % c), p("self_attn.%s_proj.bias" % c)).view(n, L, TH, -1)
                   .transpose(1, 2) for c in "qkv")
        a = (q @ k.transpose(-1, -2) * (W // TH) ** -0.5).masked_fill(mask, float("-inf")).softmax(-1)
        x = x + F.linear((a @ v).transpose(1, 2).reshape(n, L, W), p("self_attn.out_proj.weight"), p("self_attn.out_proj.bias"))
        h = F.linear(ln(x, p("layer_norm2.weight"), p("layer_norm2.bias")), p("mlp.fc1.weight"), p("mlp.fc1.bias"))
        x = x + F.linear(h * torch.sigmoid(1.702 * h), p("mlp.fc2.weight"), p("mlp.fc2.bias"))
    x = ln(x, tt["text_model.final_layer_norm.weight"], tt["text_model.final_layer_norm.bias"])
    return x[torch.arange(n), eot] @ tt["text_projection.weight"].T


ADJ_WORDS = [[500, 501], [600, 601]]  # scenario "adjectives": two adjectives per state ("normal", "perfect", ...)


def prompt_ids(state, c, word=None):
    words = [STATE_WORDS[state] if word is None else word] + CLASS_WORDS[c] + [DOT]
    ids = [49406] + [343] * NCTX + words + [49407]
    return ids + [0] * (CTX - len(ids)), len(ids) - 1


# ---- shared inputs ----
stage = f32(rnd(B, NST, 1 + N, P))
glob = f32(rnd(B, P))
label = torch.tensor([1, 0, 1])
class_id = torch.tensor([2, 0, 2])
mask = torch.zeros(B, S, S)
yy, xx = torch.meshgrid(torch.arange(S), torch.arange(S), indexing="ij")
mask[0] = (((yy - 4.0) ** 2 + (xx - 7.0) ** 2) < 10).double()
mask[2] = ((yy > 6) & (xx < 5)).double()
kb = f32(rnd(NCLS, P))
fixed_text = f32(rnd(NCLS, 2, P))
for k, v in dict(stage=stage, glob=glob, mask=mask, kb=kb, fixed_text=fixed_text).items():
    save(OUT, k, v)
np.save(os.path.join(OUT, "label.npy"), label.numpy())
np.save(os.path.join(OUT, "class_id.npy"), class_id.numpy())


# ---- parameters, named as the C layout (model/kanoclip_params.c) ----
def make_params(cfg, init):
    """init: 'random' (every tensor random, so every path carries gradient) or 'spec' (§4.3/§5.4/§6.2 init)."""
    ps = {}

    def add(name, shape, kind):
        if init == "random":
            t = {"w": rnd(*shape, s=0.25), "b": rnd(*shape, s=0.1), "lnw": 1 + rnd(*shape, s=0.1),
                 "ctx": rnd(*shape, s=0.3), "rpe": rnd(*shape, s=0.5), "off": rnd(*shape, s=0.6),
                 "out": rnd(*shape, s=0.25)}[kind]
        else:
            t = {"w": rnd(*shape, s=0.2), "b": torch.zeros(shape), "lnw": torch.ones(shape),
                 "ctx": rnd(*shape, s=0.02), "rpe": rnd(*shape, s=0.01), "off": rnd(*shape, s=0.2),
                 "out": torch.zeros(shape)}[kind]
        ps[name] = f32(t)

    if cfg["knpl"]:
        add("knpl.ctx_n", (NCTX, TW), "ctx"); add("knpl.ctx_a", (NCTX, TW), "ctx")
        if cfg.get("deep"):
            add("knpl.deep", (DEEP_DEPTH - 1, NDEEP, TW), "ctx")
    if cfg["adapter"]:
        add("adapter.ln_w", (P,), "lnw"); add("adapter.ln_b", (P,), "b")
        add("adapter.down_w", (R, P), "w"); add("adapter.down_b", (R,), "b")
        add("adapter.up_w", (P, R), "out" if cfg["adapter_residual"] else "w"); add("adapter.up_b", (P,), "b")
    if cfg["bicmci"]:
        for s in range(NST):
            pre = "stage%d." % s
            for n in ("ln_t", "ln_p"):
                add(pre + n + "_w", (P,), "lnw"); add(pre + n + "_b", (P,), "b")
            for n in ("rv_t", "rv_p"):
                add(pre + n + "_w", (2 * P, P), "w"); add(pre + n + "_b", (2 * P,), "b")
            for n in ("o_t", "o_p"):
                add(pre + n + "_w", (P, P), "out"); add(pre + n + "_b", (P,), "b")
            add(pre + "sa_ln_w", (P,), "lnw"); add(pre + "sa_ln_b", (P,), "b")
            add(pre + "sa_qkv_w", (3 * P, P), "w"); add(pre + "sa_qkv_b", (3 * P,), "b")
            add(pre + "sa_o_w", (P, P), "out"); add(pre + "sa_o_b", (P,), "b")
            add(pre + "d_ln_w", (P,), "lnw"); add(pre + "d_ln_b", (P,), "b")
            if cfg.get("deform") == "msda":
                add(pre + "msda.v_w", (P, P), "w"); add(pre + "msda.v_b", (P,), "b")
                add(pre + "msda.off_w", (H * KP * 2, P), "w"); add(pre + "msda.off_b", (H * KP * 2,), "ctx")
                add(pre + "msda.att_w", (H * KP, P), "w"); add(pre + "msda.att_b", (H * KP,), "b")
                add(pre + "msda.o_w", (P, P), "out"); add(pre + "msda.o_b", (P,), "b")
                continue
            for n in ("q", "k", "v"):
                add(pre + "dat.%s_w" % n, (P, P), "w"); add(pre + "dat.%s_b" % n, (P,), "b")
            add(pre + "dat.o_w", (P, P), "out"); add(pre + "dat.o_b", (P,), "b")
            add(pre + "dat.off_dw_w", (CG, K * K), "off"); add(pre + "dat.off_dw_b", (CG,), "b")
            add(pre + "dat.off_ln_w", (CG,), "lnw"); add(pre + "dat.off_ln_b", (CG,), "b")
            add(pre + "dat.off_pw_w", (2, CG), "off")
            add(pre + "dat.rpe", (H, 2 * HG - 1, 2 * WG - 1), "rpe")
            if cfg["full"]:
                for m in ("mlp_ca_t", "mlp_ca_p", "mlp_sa_t", "mlp_d_p"):
                    add(pre + m + ".ln_w", (P,), "lnw"); add(pre + m + ".ln_b", (P,), "b")
                    add(pre + m + ".fc1_w", (4 * P, P), "w"); add(pre + m + ".fc1_b", (4 * P,), "b")
                    add(pre + m + ".fc2_w", (P, 4 * P), "w"); add(pre + m + ".fc2_b", (P,), "b")
    return ps


# ---- the method ----
def mlp(x, p, pre):
    h = F.linear(ln(x, p[pre + ".ln_w"], p[pre + ".ln_b"]), p[pre + ".fc1_w"], p[pre + ".fc1_b"])
    return x + F.linear(F.gelu(h), p[pre + ".fc2_w"], p[pre + ".fc2_b"])


def dat_attention(x, p, pre):
    """DAT v1 DAttentionBaseline (stride 1, offset_range_factor 2, rpe), on x (N, P) seen as (1, P, HG, WG)."""
    xc = x.T.reshape(1, P, HG, WG)
    conv1 = lambda t, n: torch.einsum("oc,bchw->bohw", p[pre + "dat.%s_w" % n], t) + p[pre + "dat.%s_b" % n].view(1, -1, 1, 1)
    q = conv1(xc, "q")
    q_off = q.reshape(G, CG, HG, WG)
    off = F.conv2d(q_off, p[pre + "dat.off_dw_w"].view(CG, 1, K, K), p[pre + "dat.off_dw_b"], padding=K // 2, groups=CG)
    off = ln(off.permute(0, 2, 3, 1), p[pre + "dat.off_ln_w"], p[pre + "dat.off_ln_b"]).permute(0, 3, 1, 2)
    off = torch.einsum("oc,bchw->bohw", p[pre + "dat.off_pw_w"], F.gelu(off))  # (G, 2, HG, WG): (dy, dx)
    off = off.tanh() * torch.tensor([1.0 / HG, 1.0 / WG]).view(1, 2, 1, 1) * 2.0
    off = off.permute(0, 2, 3, 1)
    ref_y, ref_x = torch.meshgrid(torch.linspace(0.5, HG - 0.5, HG), torch.linspace(0.5, WG - 0.5, WG), indexing="ij")
    ref = torch.stack((ref_y / HG * 2 - 1, ref_x / WG * 2 - 1), -1)  # (HG, WG, 2) (y, x)
    pos = off + ref[None]
    xs = F.grid_sample(xc.reshape(G, CG, HG, WG), pos[..., (1, 0)], mode="bilinear", align_corners=True)
    xs = xs.reshape(1, P, HG, WG)
    qh = q.reshape(H, HD, N)
    kh = conv1(xs, "k").reshape(H, HD, N)
    vh = conv1(xs, "v").reshape(H, HD, N)
    attn = torch.einsum("bcm,bcn->bmn", qh, kh) * HD ** -0.5
    disp = (ref.reshape(1, N, 1, 2) - pos.reshape(G, 1, N, 2)) * 0.5
    bias = F.grid_sample(p[pre + "dat.rpe"].reshape(G, H // G, 2 * HG - 1, 2 * WG - 1), disp[..., (1, 0)],
                         mode="bilinear", align_corners=True).reshape(H, N, N)
    attn = (attn + bias).softmax(dim=2)
    out = torch.einsum("bmn,bcn->bcm", attn, vh).reshape(P, N).T
    return F.linear(out, p[pre + "dat.o_w"], p[pre + "dat.o_b"])


def sine_positions():
    """DETR PositionEmbeddingSine(num_pos_feats=P/2, temperature=10000, normalize=True) on the grid, (N, P)."""
    nf, eps, scale = P // 2, 1e-6, 2 * np.pi
    y = ((torch.arange(HG) + 1.0) / (HG + eps) * scale)[:, None].expand(HG, WG)
    x = ((torch.arange(WG) + 1.0) / (WG + eps) * scale)[None, :].expand(HG, WG)
    dim_t = 10000 ** (2 * (torch.arange(nf) // 2) / nf)
    px, py = x[..., None] / dim_t, y[..., None] / dim_t
    px = torch.stack((px[..., 0::2].sin(), px[..., 1::2].cos()), dim=3).flatten(2)
    py = torch.stack((py[..., 0::2].sin(), py[..., 1::2].cos()), dim=3).flatten(2)
    return torch.cat((py, px), dim=2).reshape(N, P)


def msda_attention(x, p, pre):
    """Deformable DETR MSDeformAttn with one level (ms_deform_attn_core_pytorch semantics)."""
    q = x + sine_positions()
    value = F.linear(x, p[pre + "msda.v_w"], p[pre + "msda.v_b"])
    off = F.linear(q, p[pre + "msda.off_w"], p[pre + "msda.off_b"]).view(N, H, KP, 2)
    a = F.linear(q, p[pre + "msda.att_w"], p[pre + "msda.att_b"]).view(N, H, KP).softmax(-1)
    ii, jj = torch.meshgrid(torch.arange(HG), torch.arange(WG), indexing="ij")
    ref = torch.stack(((jj.reshape(-1) + 0.5) / WG, (ii.reshape(-1) + 0.5) / HG), -1)  # (N, 2) (x, y)
    loc = ref[:, None, None, :] + off / torch.tensor([WG, HG])
    v = value.view(N, H, HD).permute(1, 2, 0).reshape(H, HD, HG, WG)
    samp = F.grid_sample(v, (2 * loc - 1).permute(1, 0, 2, 3), mode="bilinear", padding_mode="zeros",
                         align_corners=False)  # (H, HD, N, KP)
    out = (samp * a.permute(1, 0, 2)[:, None]).sum(-1).permute(2, 0, 1).reshape(N, P)
    return F.linear(out, p[pre + "msda.o_w"], p[pre + "msda.o_b"])


def bicmci(Fp, T, p, pre, cfg):
    if not cfg["bicmci"]:
        return (l2n(Fp) @ l2n(T).T / TAU).softmax(-1)
    tl, fl = ln(T, p[pre + "ln_t_w"], p[pre + "ln_t_b"]), ln(Fp, p[pre + "ln_p_w"], p[pre + "ln_p_b"])
    rt, vt = F.linear(tl, p[pre + "rv_t_w"], p[pre + "rv_t_b"]).split(P, -1)
    rp, vp = F.linear(fl, p[pre + "rv_p_w"], p[pre + "rv_p_b"]).split(P, -1)
    heads = lambda t: t.view(t.shape[0], H, HD).transpose(0, 1)
    A = heads(rt) @ heads(rp).transpose(-1, -2) * HD ** -0.5  # (H, 2, N): one similarity for both directions
    ot = (A.softmax(-1) @ heads(vp)).transpose(0, 1).reshape(2, P)
    op = (A.transpose(-1, -2).softmax(-1) @ heads(vt)).transpose(0, 1).reshape(N, P)
    T1 = T + F.linear(ot, p[pre + "o_t_w"], p[pre + "o_t_b"])
    F1 = Fp + F.linear(op, p[pre + "o_p_w"], p[pre + "o_p_b"])
    if cfg["full"]:
        T1, F1 = mlp(T1, p, pre + "mlp_ca_t"), mlp(F1, p, pre + "mlp_ca_p")
    q, k, v = F.linear(ln(T1, p[pre + "sa_ln_w"], p[pre + "sa_ln_b"]), p[pre + "sa_qkv_w"], p[pre + "sa_qkv_b"]).split(P, -1)
    sa = ((heads(q) @ heads(k).transpose(-1, -2) * HD ** -0.5).softmax(-1) @ heads(v)).transpose(0, 1).reshape(2, P)
    T2 = T1 + F.linear(sa, p[pre + "sa_o_w"], p[pre + "sa_o_b"])
    if cfg["full"]:
        T2 = mlp(T2, p, pre + "mlp_sa_t")
    attn = msda_attention if cfg.get("deform") == "msda" else dat_attention
    F2 = F1 + attn(ln(F1, p[pre + "d_ln_w"], p[pre + "d_ln_b"]), p, pre)
    if cfg["full"]:
        F2 = mlp(F2, p, pre + "mlp_d_p")
    Tm = T2 if cfg["updated_text"] else T
    return (l2n(F2) @ l2n(Tm).T / TAU).softmax(-1)  # (N, 2)


def focal_loss(inp, target):
    """AnomalyCLIP loss.py FocalLoss(apply_nonlin=None, alpha=None, gamma=2, smooth=1e-5) on probabilities."""
    C = inp.shape[1]
    logit = inp.view(inp.size(0), C, -1).permute(0, 2, 1).reshape(-1, C)
    idx = target.reshape(-1, 1).long()
    one_hot = torch.zeros(idx.shape[0], C).scatter_(1, idx, 1)
    one_hot = torch.clamp(one_hot, 1e-5 / (C - 1), 1.0 - 1e-5)
    pt = (one_hot * logit).sum(1) + 1e-5
    return (-1 * torch.pow(1 - pt, 2) * pt.log()).mean()


def dice_loss(inp, target):
    """AnomalyCLIP loss.py BinaryDiceLoss."""
    n = target.shape[0]
    i, t = inp.view(n, -1), target.view(n, -1)
    dice = (2 * (i * t).sum(1) + 1) / (i.sum(1) + t.sum(1) + 1)
    return 1 - dice.sum() / n


def text_features(p, cfg, classes):
    if not cfg["knpl"]:
        tf = l2n(fixed_text[classes])  # (U, 2, P)
        return tf[:, 0], tf[:, 1]
    # one prompt per adjective, the state's context shared; t = norm(mean of the adjectives' unit features)
    words = ADJ_WORDS if cfg.get("adjectives") else [[w] for w in STATE_WORDS]
    A = len(words[0])
    emb, eots = [], []
    for state, ctx in ((0, p["knpl.ctx_n"]), (1, p["knpl.ctx_a"])):
        for c in classes:
            for w in words[state]:
                ids, eot = prompt_ids(state, c, w)
                e = tt["text_model.embeddings.token_embedding.weight"][torch.tensor(ids)]
                emb.append(torch.cat([e[:1], ctx, e[1 + NCTX:]], 0))
                eots.append(eot)
    feats = l2n(text_tower(torch.stack(emb), torch.tensor(eots), p["knpl.deep"] if cfg.get("deep") else None))
    U = len(classes)
    feats = l2n(feats.reshape(2, U, A, P).mean(2)) if A > 1 else feats.reshape(2, U, P)
    return feats[0], feats[1]


def run(p, cfg, train=True):
    classes = sorted(set(class_id.tolist()))
    uidx = torch.tensor([classes.index(c) for c in class_id.tolist()])
    tn, ta = text_features(p, cfg, classes)
    out = {}
    # KD
    kd = torch.zeros(())
    if cfg["knpl"]:
        a, n, k = l2n(ta.mean(0)), l2n(tn.mean(0)), l2n(l2n(kb[classes]).mean(0))
        ca, cn = a @ k, n @ k
        if cfg["kd"] == "bounded":
            kd = ((a - k) ** 2).sum() - ((n - k) ** 2).sum()
        elif cfg["kd"] == "triplet":
            da, dn = ((a - k) ** 2).sum(), ((n - k) ** 2).sum()
            kd = da + torch.clamp(da - dn + 0.1, min=0)
        else:
            kd = -torch.log_softmax(torch.stack([ca, cn]) / 0.07, 0)[0]
        out["cos"] = [ca.item(), cn.item(), (a @ n).item()]
    else:
        out["cos"] = [0.0, 0.0, 0.0]
    # global: the original path's class token, or with global_vv Eq. 8's V-V class token S_L[0] through ln_post +
    # proj, which is row 0 of the last stage (the stage features are the V-V tokens after ln_post + proj)
    I = stage[:, NST - 1, 0] if cfg.get("global_vv") else glob
    if cfg["adapter"]:
        h = F.relu(F.linear(ln(I, p["adapter.ln_w"], p["adapter.ln_b"]), p["adapter.down_w"], p["adapter.down_b"]))
        Ic = F.linear(h, p["adapter.up_w"], p["adapter.up_b"]) + (I if cfg["adapter_residual"] else 0)
    else:
        Ic = I
    T_img = torch.stack([tn[uidx], ta[uidx]], 1)  # (B, 2, P)
    logits = (l2n(Ic)[:, None, :] * T_img).sum(-1) / TAU
    lglobal = F.cross_entropy(logits, label)
    pglobal = logits.softmax(-1)[:, 1]
    # local: per-stage terms (AnomalyCLIP), or once on the fused maps M = Norm(sum over stages) (local_fused);
    # Norm = mean or per-image min-max of each channel (minmax)
    gt = (mask > 0.5).double()
    focal_t, dice_t, total_up = 0.0, 0.0, 0.0
    for s in range(NST):
        probs = torch.stack([bicmci(stage[b, s, 1:], T_img[b], p, "stage%d." % s, cfg) for b in range(B)])
        up = F.interpolate(probs.transpose(1, 2).reshape(B, 2, HG, WG), size=(S, S), mode="bilinear", align_corners=False)
        if not cfg.get("local_fused"):
            focal_t = focal_t + focal_loss(up, gt)
            dice_t = dice_t + dice_loss(up[:, 1], gt) + dice_loss(up[:, 0], 1 - gt)
        total_up = total_up + up
    if cfg.get("minmax"):
        lo, hi = total_up.amin(dim=(2, 3), keepdim=True), total_up.amax(dim=(2, 3), keepdim=True)
        M = (total_up - lo) / (hi - lo)
    else:
        M = total_up / NST
    if cfg.get("local_fused"):
        focal_t = focal_loss(M, gt)
        dice_t = dice_loss(M[:, 1], gt) + dice_loss(M[:, 0], 1 - gt)
    if cfg.get("global_max"):  # BCE on (p_a + max M_a) / 2, max over the unsmoothed fused map (amax: ties share)
        lglobal = F.binary_cross_entropy((pglobal + M[:, 1].amax(dim=(1, 2))) / 2, label.double())
    maps = M[:, 1].detach()
    local = focal_t + dice_t
    total = 1.0 * (kd if cfg["knpl"] else 0) + 1.0 * lglobal + 1.0 * local
    out["losses"] = [total.item(), kd.item(), lglobal.item(), local.item(), float(focal_t), float(dice_t)] + out["cos"]
    out["total"] = total
    smooth = np.stack([scipy.ndimage.gaussian_filter(m.numpy(), sigma=4) for m in maps])
    out["maps"], out["pglobal"] = smooth, pglobal.detach().numpy()
    out["score"] = out["pglobal"] + smooth.reshape(B, -1).max(1)
    return out


SCEN = {
    "grads": dict(knpl=1, adapter=1, adapter_residual=0, bicmci=1, full=0, kd="bounded", updated_text=1, init="random", steps=1),
    "full": dict(knpl=1, adapter=1, adapter_residual=0, bicmci=1, full=1, kd="triplet", updated_text=1, init="random", steps=1),
    "ablate": dict(knpl=0, adapter=1, adapter_residual=1, bicmci=0, full=0, kd="bounded", updated_text=1, init="random", steps=1),
    "noadapt": dict(knpl=1, adapter=0, adapter_residual=0, bicmci=1, full=0, kd="infonce", updated_text=0, init="random", steps=1),
    "msda": dict(knpl=1, adapter=1, adapter_residual=0, bicmci=1, full=0, kd="bounded", updated_text=1, init="random", steps=3, deform="msda"),
    "train10": dict(knpl=1, adapter=1, adapter_residual=0, bicmci=1, full=0, kd="bounded", updated_text=1, init="spec", steps=10),
    # after train10, so that its draws from the generator (and thus train10's fixtures) stay as they were
    "deep": dict(knpl=1, adapter=1, adapter_residual=0, bicmci=1, full=0, kd="bounded", updated_text=1, init="random", steps=2, deep=1),
    # the paper switches (docs/paper-switches.md), after the others for the same reason
    "fused": dict(knpl=1, adapter=1, adapter_residual=0, bicmci=1, full=0, kd="bounded", updated_text=1, init="random", steps=2,
                  local_fused=1, global_max=1),
    "minmax": dict(knpl=1, adapter=1, adapter_residual=0, bicmci=1, full=0, kd="bounded", updated_text=1, init="random", steps=1,
                   local_fused=1, minmax=1),
    # one prompt per adjective, two per state (the paper's [Normal] / [Abnormal])
    "adjectives": dict(knpl=1, adapter=1, adapter_residual=0, bicmci=1, full=0, kd="bounded", updated_text=1, init="random",
                       steps=2, adjectives=1),
    # method.global_source: vv, the global feature from the V-V path (Eq. 8): two steps
    "globalvv": dict(knpl=1, adapter=1, adapter_residual=0, bicmci=1, full=0, kd="bounded", updated_text=1, init="random",
                     steps=2, global_vv=1),
}

for name, cfg in SCEN.items():
    d = os.path.join(OUT, name)
    p = make_params(cfg, cfg["init"])
    for k, v in p.items():
        save(d, "p_" + k, v)
    params = {k: v.clone().requires_grad_() for k, v in p.items()}
    opt = torch.optim.Adam(params.values(), lr=1e-3, betas=(0.5, 0.999), eps=1e-8)
    losses = []
    for step in range(cfg["steps"]):
        opt.zero_grad()
        out = run(params, cfg)
        out["total"].backward()
        losses.append(out["losses"])
        if step == 0:
            for k, v in params.items():
                save(d, "g_" + k, v.grad if v.grad is not None else torch.zeros_like(v))
            save(d, "maps", out["maps"]); save(d, "pglobal", out["pglobal"]); save(d, "score", out["score"])
        opt.step()
    save(d, "losses", np.array(losses))
    for k, v in params.items():
        save(d, "pT_" + k, v)
        save(d, "vT_" + k, opt.state[v]["exp_avg_sq"].sqrt() if "exp_avg_sq" in opt.state[v] else torch.zeros_like(v))

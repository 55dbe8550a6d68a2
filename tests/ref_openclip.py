"""Fixtures for tests/test_convert_openclip.c: a tiny random CLIP ViT with open_clip's tensor names, saved with
torch.save as open_clip releases them (oc.pt), as a training checkpoint ({"epoch", "state_dict"} with a "module."
prefix: oc_wrapped.pt) and with one tensor a plain ViT does not have (oc_layerscale.pt), plus image and text
features computed the way open_clip's model computes them (torch.nn.MultiheadAttention with the packed in_proj,
GELU MLPs, the class token through ln_post @ proj, text pooled at argmax(ids) through ln_final @ text_projection).

usage: python3 tests/ref_openclip.py OUT_DIR
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)
gen = torch.Generator().manual_seed(7)

# vision: width 128 -> 2 heads at open_clip's head width 64 (the converter's default); text: width 64 with
# 2 heads, which the converter must be told (--text-heads 2)
VW, VL, VH, VMLP, PATCH, GRID = 128, 2, 2, 256, 8, 4
TW, TL, TH, TMLP, CTX, VOCAB = 64, 2, 2, 128, 16, 49408
EMBED = 48
IMG = PATCH * GRID


def rnd(*shape, s=0.1):
    return torch.randn(*shape, generator=gen) * s


def blocks(prefix, W, L, I):
    d = {}
    for i in range(L):
        p = "%stransformer.resblocks.%d." % (prefix, i)
        d[p + "ln_1.weight"], d[p + "ln_1.bias"] = 1 + rnd(W), rnd(W)
        d[p + "attn.in_proj_weight"], d[p + "attn.in_proj_bias"] = rnd(3 * W, W, s=0.2), rnd(3 * W)
        d[p + "attn.out_proj.weight"], d[p + "attn.out_proj.bias"] = rnd(W, W, s=0.2), rnd(W)
        d[p + "ln_2.weight"], d[p + "ln_2.bias"] = 1 + rnd(W), rnd(W)
        d[p + "mlp.c_fc.weight"], d[p + "mlp.c_fc.bias"] = rnd(I, W, s=0.2), rnd(I)
        d[p + "mlp.c_proj.weight"], d[p + "mlp.c_proj.bias"] = rnd(W, I, s=0.2), rnd(W)
    return d


sd = {"visual.class_embedding": rnd(VW, s=0.5), "visual.positional_embedding": rnd(GRID * GRID + 1, VW, s=0.3),
      "visual.proj": rnd(VW, EMBED, s=0.2), "visual.conv1.weight": rnd(VW, 3, PATCH, PATCH, s=0.1),
      "visual.ln_pre.weight": 1 + rnd(VW), "visual.ln_pre.bias": rnd(VW),
      "visual.ln_post.weight": 1 + rnd(VW), "visual.ln_post.bias": rnd(VW),
      "token_embedding.weight": rnd(VOCAB, TW, s=0.5), "positional_embedding": rnd(CTX, TW, s=0.3),
      "ln_final.weight": 1 + rnd(TW), "ln_final.bias": rnd(TW), "text_projection": rnd(TW, EMBED, s=0.2),
      "logit_scale": torch.tensor(4.6052)}
sd.update(blocks("visual.", VW, VL, VMLP))
sd.update(blocks("", TW, TL, TMLP))


def resblocks(x, prefix, L, heads, causal):
    """open_clip ResidualAttentionBlock: x + attn(ln_1(x)); x + mlp(ln_2(x)), nn.GELU; x is (T, N, W)."""
    T, W = x.shape[0], x.shape[2]
    mask = torch.full((T, T), float("-inf")).triu(1) if causal else None
    for i in range(L):
        p = lambda s: sd["%stransformer.resblocks.%d.%s" % (prefix, i, s)]
        h = F.layer_norm(x, (W,), p("ln_1.weight"), p("ln_1.bias"))
        a, _ = F.multi_head_attention_forward(h, h, h, W, heads, p("attn.in_proj_weight"), p("attn.in_proj_bias"),
                                              None, None, False, 0.0, p("attn.out_proj.weight"),
                                              p("attn.out_proj.bias"), need_weights=False, attn_mask=mask)
        x = x + a
        h = F.linear(F.layer_norm(x, (W,), p("ln_2.weight"), p("ln_2.bias")), p("mlp.c_fc.weight"), p("mlp.c_fc.bias"))
        x = x + F.linear(F.gelu(h), p("mlp.c_proj.weight"), p("mlp.c_proj.bias"))
    return x


def encode_image(pixels):
    x = F.conv2d(pixels, sd["visual.conv1.weight"], stride=PATCH).flatten(2).transpose(1, 2)  # (N, g², W)
    cls = sd["visual.class_embedding"].expand(x.shape[0], 1, VW)
    x = torch.cat([cls, x], 1) + sd["visual.positional_embedding"]
    x = F.layer_norm(x, (VW,), sd["visual.ln_pre.weight"], sd["visual.ln_pre.bias"])
    x = resblocks(x.transpose(0, 1), "visual.", VL, VH, False).transpose(0, 1)
    x = F.layer_norm(x[:, 0], (VW,), sd["visual.ln_post.weight"], sd["visual.ln_post.bias"])
    return x @ sd["visual.proj"]


def encode_text(ids):
    x = sd["token_embedding.weight"][ids] + sd["positional_embedding"]
    x = resblocks(x.transpose(0, 1), "", TL, TH, True).transpose(0, 1)
    x = F.layer_norm(x, (TW,), sd["ln_final.weight"], sd["ln_final.bias"])
    return x[torch.arange(ids.shape[0]), ids.argmax(-1)] @ sd["text_projection"]


with torch.no_grad():
    pixels = torch.randn(2, 3, IMG, IMG, generator=gen)
    ids = torch.zeros(3, CTX, dtype=torch.long)
    for r, words in enumerate([[320, 1125, 539], [4009], [518, 3077, 17, 6707, 269]]):
        row = [49406] + words + [49407]
        ids[r, :len(row)] = torch.tensor(row)
    np.save(os.path.join(OUT, "pixels.npy"), pixels.numpy().astype(np.float32))
    np.save(os.path.join(OUT, "ids.npy"), ids.numpy().astype(np.int64))
    np.save(os.path.join(OUT, "image_embeds.npy"), encode_image(pixels).numpy().astype(np.float32))
    np.save(os.path.join(OUT, "text_embeds.npy"), encode_text(ids).numpy().astype(np.float32))

torch.save(sd, os.path.join(OUT, "oc.pt"))
torch.save({"epoch": 32, "name": "tiny", "state_dict": {"module." + k: v for k, v in sd.items()}},
           os.path.join(OUT, "oc_wrapped.pt"))
extra = dict(sd)
extra["visual.transformer.resblocks.0.ls_1.gamma"] = torch.ones(VW)
torch.save(extra, os.path.join(OUT, "oc_layerscale.pt"))

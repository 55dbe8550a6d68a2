"""Reference for the CLIP towers (model/clip_*.c): tiny random CLIP checkpoints in the Hugging Face layout and the
outputs of a plain-PyTorch CLIP with Hugging Face semantics and tensor names, computed in float64.

For each shape (a, b, c) it writes under OUT/SHAPE/:
  f32/, f16/, bf16/ (shape a), bin/   checkpoint folders: config.json, preprocessor_config.json and
                                      model.safetensors (F32 / F16 / BF16) or pytorch_model.bin (torch.save)
  images/img_K.png                    random RGB PNGs, already at the tower's input size
  ref/*.npy                           reference outputs for the F32 weights (the .bin holds the same weights)
  ref_f16/*.npy, ref_bf16/*.npy       the same on the F16-/BF16-rounded weights
Reference names: pixels (N,3,S,S); image_embeds (N,P); hidden_LL (N,T,W) for LL = 0..L; vv_LL (N,T,W) for
LL = 0..L (the V-V path, equal to hidden_LL before vv_from); stage_LL (N,T,P) = post-LN + projection of vv_LL;
image_embeds_noln (N,P) (projection without post-LN); ids (M,ctx) int64; eot (M) int64; text_embeds (M,P);
ctx_embeds (M,ctx,W) token embeddings with context vectors written at positions 1..n_ctx; text_embeds_ctx (M,P);
dtext (M,P) a random upstream gradient and dembeds (M,ctx,W) the gradient of <text_embeds_ctx, dtext> w.r.t.
ctx_embeds; meta (3) int64 = input size, vv_from, layers. Shapes b and c also have image_embeds_bicubic and hidden_L_bicubic (positions resized bicubically).
"""
import json, math, os, struct, sys
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

OUT = sys.argv[1] if __name__ == "__main__" else None

# --------------------------------------------------------------------------------------------------------------
# plain-PyTorch CLIP with Hugging Face module names (modeling_clip.py semantics)

ACT = {"quick_gelu": lambda x: x * torch.sigmoid(1.702 * x), "gelu": F.gelu}


class Attention(nn.Module):
    def __init__(self, W, H):
        super().__init__()
        self.H = H
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(W, W) for _ in range(4))

    def heads(self, x):
        B, T, W = x.shape
        return x.view(B, T, self.H, W // self.H).transpose(1, 2)

    def mha(self, q, k, v, causal):
        B, T, W = q.shape
        q, k, v = self.heads(q), self.heads(k), self.heads(v)
        s = q @ k.transpose(-1, -2) * (W // self.H) ** -0.5
        if causal:
            s = s.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf"))
        return (s.softmax(-1) @ v).transpose(1, 2).reshape(B, T, W)

    def forward(self, x, causal):
        return self.out_proj(self.mha(self.q_proj(x), self.k_proj(x), self.v_proj(x), causal))

    def forward_vv(self, x):
        v = self.v_proj(x)
        return self.out_proj(self.mha(v, v, v, False))


class MLP(nn.Module):
    def __init__(self, W, I, act):
        super().__init__()
        self.fc1, self.fc2, self.act = nn.Linear(W, I), nn.Linear(I, W), ACT[act]

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Layer(nn.Module):
    def __init__(self, W, H, I, act, eps):
        super().__init__()
        self.self_attn = Attention(W, H)
        self.layer_norm1 = nn.LayerNorm(W, eps=eps)
        self.mlp = MLP(W, I, act)
        self.layer_norm2 = nn.LayerNorm(W, eps=eps)

    def forward(self, x, causal=False):
        x = x + self.self_attn(self.layer_norm1(x), causal)
        return x + self.mlp(self.layer_norm2(x))


class Encoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layers = nn.ModuleList(Layer(c["hidden_size"], c["num_attention_heads"], c["intermediate_size"],
                                          c["hidden_act"], c["layer_norm_eps"]) for _ in range(c["num_hidden_layers"]))


class TextEmbeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.token_embedding = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.position_embedding = nn.Embedding(c["max_position_embeddings"], c["hidden_size"])


class TextModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embeddings = TextEmbeddings(c)
        self.encoder = Encoder(c)
        self.final_layer_norm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])


class VisionEmbeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        W, p = c["hidden_size"], c["patch_size"]
        self.class_embedding = nn.Parameter(torch.zeros(W))
        self.patch_embedding = nn.Conv2d(3, W, p, stride=p, bias=False)
        self.position_embedding = nn.Embedding((c["image_size"] // p) ** 2 + 1, W)


class VisionModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embeddings = VisionEmbeddings(c)
        self.pre_layrnorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])
        self.encoder = Encoder(c)
        self.post_layernorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])


class CLIP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        tc, vc = cfg["text_config"], cfg["vision_config"]
        self.text_model = TextModel(tc)
        self.vision_model = VisionModel(vc)
        self.visual_projection = nn.Linear(vc["hidden_size"], cfg["projection_dim"], bias=False)
        self.text_projection = nn.Linear(tc["hidden_size"], cfg["projection_dim"], bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(cfg["logit_scale_init_value"]))
        self.eos = tc["eos_token_id"]


def resize_positions(pos, grid, mode):
    """AnomalyCLIP: the patch positions resized as an image (align_corners=False), the class position kept."""
    n, W = pos.shape
    side = int(round(math.sqrt(n - 1)))
    if side == grid:
        return pos
    img = pos[1:].reshape(1, side, side, W).permute(0, 3, 1, 2)
    img = F.interpolate(img, size=(grid, grid), mode=mode, align_corners=False)
    return torch.cat([pos[:1], img[0].reshape(W, grid * grid).T], 0)


def vision_forward(m, pixels, vv_from, pos_mode="bilinear"):
    """Returns hidden (list of L+1), vv (list of L+1), image_embeds, image_embeds without post-LN."""
    vm = m.vision_model
    x = vm.embeddings.patch_embedding(pixels)  # (N, W, g, g)
    N, W, g, _ = x.shape
    x = x.flatten(2).transpose(1, 2)
    x = torch.cat([vm.embeddings.class_embedding.expand(N, 1, W), x], 1)
    x = x + resize_positions(vm.embeddings.position_embedding.weight, g, pos_mode)
    x = vm.pre_layrnorm(x)
    hidden, vv = [x], [x]
    s = x
    for l, layer in enumerate(vm.encoder.layers, start=1):
        if vv_from and l >= vv_from:  # V-V branch: LN1 of the original stream, no MLP (kanoclip-components §3.4)
            s = s + layer.self_attn.forward_vv(layer.layer_norm1(x))
        x = layer(x)
        if not vv_from or l < vv_from:
            s = x
        hidden.append(x)
        vv.append(s)
    pooled = vm.post_layernorm(x[:, 0])
    return hidden, vv, m.visual_projection(pooled), m.visual_projection(x[:, 0])


def stage_features(m, s):
    return m.visual_projection(m.vision_model.post_layernorm(s))


def eot_positions(ids, eos):
    if eos == 2:  # legacy configs: argmax of the ids (HF before PR #24773)
        return ids.argmax(-1)
    return (ids == eos).int().argmax(-1)


def text_forward_embeds(m, embeds, eot):
    tm = m.text_model
    T = embeds.shape[1]
    x = embeds + tm.embeddings.position_embedding.weight[:T]
    for layer in tm.encoder.layers:
        x = layer(x, causal=True)
    x = tm.final_layer_norm(x)
    return m.text_projection(x[torch.arange(x.shape[0]), eot])


# --------------------------------------------------------------------------------------------------------------
# files

DT = {"F32": (np.float32, 4), "F16": (np.float16, 2), "I64": (np.int64, 8)}


def write_safetensors(path, tensors, dtype):
    """tensors: name -> numpy array; float tensors stored as dtype (F32, F16, BF16), int64 as I64."""
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        a = tensors[name]
        if a.dtype == np.int64:
            dt, raw = "I64", a.tobytes()
        elif dtype == "BF16":
            u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
            dt, raw = "BF16", ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16).tobytes()
        else:
            dt, raw = dtype, a.astype(DT[dtype][0]).tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-(8 + len(h)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def round_to(sd, dtype):
    """The weights as the reader will see them from an F16/BF16 file (round to nearest even)."""
    out = {}
    for k, v in sd.items():
        if v.dtype != torch.float32:
            out[k] = v
        elif dtype == "F16":
            out[k] = v.half().float()
        else:
            out[k] = v.bfloat16().float()
    return out


def save(d, name, t):
    a = t.detach().numpy() if isinstance(t, torch.Tensor) else t
    np.save(os.path.join(d, name + ".npy"), a.astype(np.int64) if a.dtype == np.int64 else a.astype(np.float32))


# --------------------------------------------------------------------------------------------------------------
# shapes: different widths, heads, patch sizes, activations, pooling rules; b and c run at an input size other
# than the checkpoint's (b upsamples the position grid 4 -> 6, c downsamples 6 -> 4)

SHAPES = {
    "a": dict(vision=dict(hidden_size=64, num_hidden_layers=3, num_attention_heads=4, intermediate_size=256,
                          patch_size=8, image_size=32, hidden_act="quick_gelu"),
              text=dict(hidden_size=48, num_hidden_layers=2, num_attention_heads=4, intermediate_size=192,
                        vocab_size=49408, max_position_embeddings=77, eos_token_id=49407, hidden_act="quick_gelu"),
              projection_dim=40, input_size=32, vv_from=1, n_images=3, n_texts=3, n_ctx=4,
              formats=("F32", "F16", "BF16", "bin"), position_ids=True,
              mean=[0.48145466, 0.4578275, 0.40821073], std=[0.26862954, 0.26130258, 0.27577711]),
    "b": dict(vision=dict(hidden_size=96, num_hidden_layers=4, num_attention_heads=6, intermediate_size=160,
                          patch_size=7, image_size=28, hidden_act="quick_gelu"),
              text=dict(hidden_size=64, num_hidden_layers=3, num_attention_heads=2, intermediate_size=128,
                        vocab_size=49408, max_position_embeddings=77, eos_token_id=2, hidden_act="quick_gelu"),
              projection_dim=32, input_size=42, vv_from=2, n_images=2, n_texts=4, n_ctx=6,
              formats=("F32", "F16", "bin"), position_ids=False,
              mean=[0.5, 0.4, 0.3], std=[0.2, 0.25, 0.3]),
    "c": dict(vision=dict(hidden_size=48, num_hidden_layers=2, num_attention_heads=3, intermediate_size=96,
                          patch_size=4, image_size=24, hidden_act="gelu"),
              text=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=80,
                        vocab_size=500, max_position_embeddings=16, eos_token_id=2, hidden_act="gelu"),
              projection_dim=24, input_size=16, vv_from=2, n_images=2, n_texts=3, n_ctx=3,
              formats=("F32", "F16", "bin"), position_ids=False,
              mean=[0.48145466, 0.4578275, 0.40821073], std=[0.26862954, 0.26130258, 0.27577711]),
}


def make_config(s):
    vc = dict(s["vision"], layer_norm_eps=1e-5, num_channels=3, projection_dim=s["projection_dim"],
              model_type="clip_vision_model")
    tc = dict(s["text"], layer_norm_eps=1e-5, projection_dim=s["projection_dim"], bos_token_id=49406 if
              s["text"]["eos_token_id"] != 2 else 0, pad_token_id=1, model_type="clip_text_model")
    return {"architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": s["projection_dim"],
            "logit_scale_init_value": 2.6592, "initializer_factor": 1.0, "torch_dtype": "float32",
            "text_config": tc, "vision_config": vc}


def random_weights(m, g):
    """Fan-in scaled normal weights and perturbed LayerNorms, so every term matters."""
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith("logit_scale"):
                continue
            if "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            elif p.dim() == 1:
                p.copy_((0.5 if "class_embedding" in name else 0.1) * torch.randn(p.shape, generator=g))
            elif "embedding" in name and "patch" not in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(fan_in))


def text_ids(s, g):
    """Token-id rows padded to the context length: SOT, words, EOT, then padding that must not matter."""
    tc = s["text"]
    ctx, V, n = tc["max_position_embeddings"], tc["vocab_size"], s["n_texts"]
    ids = torch.zeros(n, ctx, dtype=torch.int64)
    for i in range(n):
        if V < 49408:  # small vocabulary, legacy argmax pooling over random ids
            ids[i] = torch.randint(0, V, (ctx,), generator=g)
            continue
        length = [5, ctx, 9, 2][i % 4] if i else 7  # one full-length row; EOT positions differ per row
        length = max(2, min(length, ctx))
        ids[i, 0] = 49406
        ids[i, 1:length - 1] = torch.randint(256, 49406, (length - 2,), generator=g)
        ids[i, length - 1] = 49407
        ids[i, length:] = torch.randint(0, 49406, (ctx - length,), generator=g)  # junk after EOT
    return ids


def reference(m, s, pixels, ids, ctx_vec, dtext, d):
    os.makedirs(d, exist_ok=True)
    m = m.double()
    L = s["vision"]["num_hidden_layers"]
    with torch.no_grad():
        hidden, vv, emb, emb_noln = vision_forward(m, pixels.double(), s["vv_from"])
        save(d, "image_embeds", emb)
        save(d, "image_embeds_noln", emb_noln)
        for l in range(L + 1):
            save(d, "hidden_%02d" % l, hidden[l])
            save(d, "vv_%02d" % l, vv[l])
            save(d, "stage_%02d" % l, stage_features(m, vv[l]))
        if s["input_size"] != s["vision"]["image_size"]:
            hb, _, eb, _ = vision_forward(m, pixels.double(), 0, "bicubic")
            save(d, "image_embeds_bicubic", eb)
            save(d, "hidden_%02d_bicubic" % L, hb[L])
        eot = eot_positions(ids, m.eos)
        tok = m.text_model.embeddings.token_embedding.weight[ids]
        save(d, "text_embeds", text_forward_embeds(m, tok, eot))
    embeds = tok.clone()
    embeds[:, 1:1 + s["n_ctx"]] = ctx_vec.double()
    embeds.requires_grad_()
    out = text_forward_embeds(m, embeds, eot)
    out.backward(dtext.double())
    save(d, "ctx_embeds", embeds)
    save(d, "text_embeds_ctx", out)
    save(d, "dembeds", embeds.grad)
    save(d, "eot", eot)


def build(tag, s):
    g = torch.Generator().manual_seed(sum(map(ord, tag)) * 7919)
    cfg = make_config(s)
    m = CLIP(cfg)
    random_weights(m, g)
    sd = {k: v.detach().clone() for k, v in m.state_dict().items()}
    if s["position_ids"]:  # older HF files carry these int64 buffers; readers must ignore them
        sd["text_model.embeddings.position_ids"] = torch.arange(s["text"]["max_position_embeddings"])[None]
        n = (s["vision"]["image_size"] // s["vision"]["patch_size"]) ** 2 + 1
        sd["vision_model.embeddings.position_ids"] = torch.arange(n)[None]
    root = os.path.join(OUT, tag)
    pre = {"crop_size": s["input_size"], "do_center_crop": True, "do_normalize": True, "do_resize": True,
           "image_mean": s["mean"], "image_std": s["std"], "resample": 3, "size": s["input_size"]}

    for fmt in s["formats"]:
        d = os.path.join(root, fmt.lower())
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        with open(os.path.join(d, "preprocessor_config.json"), "w") as f:
            json.dump(pre, f, indent=2)
        if fmt == "bin":
            torch.save(sd, os.path.join(d, "pytorch_model.bin"))
        else:
            write_safetensors(os.path.join(d, "model.safetensors"), {k: v.numpy() for k, v in sd.items()}, fmt)

    # inputs: PNGs at the input size (preprocessing is then decode + normalise), their float pixels, token ids
    S = s["input_size"]
    imgs = torch.randint(0, 256, (s["n_images"], S, S, 3), generator=g, dtype=torch.uint8)
    os.makedirs(os.path.join(root, "images"), exist_ok=True)
    for i in range(s["n_images"]):
        Image.fromarray(imgs[i].numpy()).save(os.path.join(root, "images", "img_%d.png" % i))
    mean, std = torch.tensor(s["mean"]).view(1, 3, 1, 1), torch.tensor(s["std"]).view(1, 3, 1, 1)
    pixels = ((imgs.permute(0, 3, 1, 2).float() / 255.0) - mean) / std  # float32, as ToTensor + Normalize
    ids = text_ids(s, g)
    ctx_vec = 0.5 * torch.randn(s["n_texts"], s["n_ctx"], s["text"]["hidden_size"], generator=g)
    dtext = torch.randn(s["n_texts"], s["projection_dim"], generator=g)
    d = os.path.join(root, "ref")
    os.makedirs(d, exist_ok=True)
    if tag == "a":  # an image at another size: kanoclip embed resizes it (PIL bicubic, AnomalyCLIP's square)
        big = Image.fromarray(torch.randint(0, 256, (37, 45, 3), generator=g, dtype=torch.uint8).numpy())
        big.save(os.path.join(root, "images", "odd_45x37.png"))
        small = torch.from_numpy(np.asarray(big.resize((S, S), Image.BICUBIC)).copy())
        px = ((small.permute(2, 0, 1)[None].float() / 255.0) - mean) / std
        mm = CLIP(cfg)
        mm.load_state_dict({k: v for k, v in sd.items() if not k.endswith("position_ids")})
        mm = mm.double()
        # OpenAI CLIP's _transform (clip/clip.py): Resize(S, BICUBIC) sets the short side to S and the long one to
        # int(S * long / short) (torchvision's rule), CenterCrop(S) takes top/left = int(round((side - S) / 2.0))
        w, h = big.size
        nw, nh = (S, int(S * h / w)) if w <= h else (int(S * w / h), S)
        mid = big.resize((nw, nh), Image.BICUBIC)
        top, left = int(round((nh - S) / 2.0)), int(round((nw - S) / 2.0))
        crop = torch.from_numpy(np.asarray(mid.crop((left, top, left + S, top + S))).copy())
        px_crop = ((crop.permute(2, 0, 1)[None].float() / 255.0) - mean) / std
        with torch.no_grad():
            save(os.path.join(root, "ref"), "image_embeds_odd", vision_forward(mm, px.double(), 0)[2])
            save(os.path.join(root, "ref"), "image_embeds_odd_short_crop", vision_forward(mm, px_crop.double(), 0)[2])
    meta = np.array([S, s["vv_from"], s["vision"]["num_hidden_layers"]], dtype=np.int64)
    for name, t in (("pixels", pixels), ("ids", ids), ("dtext", dtext), ("ctx", ctx_vec), ("meta", meta)):
        save(d, name, t)

    for fmt, d in (("F32", "ref"), ("F16", "ref_f16"), ("BF16", "ref_bf16")):
        if fmt not in s["formats"]:
            continue
        mm = CLIP(cfg)
        w = sd if fmt == "F32" else round_to(sd, fmt)
        mm.load_state_dict({k: v for k, v in w.items() if not k.endswith("position_ids")})
        reference(mm, s, pixels, ids, ctx_vec, dtext, os.path.join(root, d))


CLI_TEXTS = ["a photo of a damaged screw.", "Flawless  metal nut!", "a close-up photo of a bottle with a crack"]


def cli_text_reference():
    """text_embeds of CLI_TEXTS for shape a, tokenized by the independent Python tokenizer of
    tests/ref_tokenizer.py (skipped when the shared vocabulary is absent)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import ref_tokenizer
    path = ref_tokenizer.vocab_path()
    if not os.path.exists(path):
        print("ref_clip.py: %s not found; no reference for kanoclip embed --text" % path)
        return
    tok = ref_tokenizer.SimpleTokenizer(path)
    s = SHAPES["a"]
    ctx = s["text"]["max_position_embeddings"]
    ids = torch.zeros(len(CLI_TEXTS), ctx, dtype=torch.int64)
    for i, t in enumerate(CLI_TEXTS):
        e = tok.encode(t)
        ids[i, :len(e)] = torch.tensor(e)
    m = CLIP(make_config(s))
    sd = torch.load(os.path.join(OUT, "a", "bin", "pytorch_model.bin"))
    m.load_state_dict({k: v for k, v in sd.items() if not k.endswith("position_ids")})
    m = m.double()
    with torch.no_grad():
        out = text_forward_embeds(m, m.text_model.embeddings.token_embedding.weight[ids], eot_positions(ids, m.eos))
    d = os.path.join(OUT, "a", "ref")
    save(d, "cli_text_embeds", out)
    save(d, "cli_ids", ids)
    with open(os.path.join(d, "cli_texts.json"), "w") as f:
        json.dump(CLI_TEXTS, f)


if __name__ == "__main__":
    torch.set_num_threads(1)
    for tag, s in SHAPES.items():
        build(tag, s)
    cli_text_reference()

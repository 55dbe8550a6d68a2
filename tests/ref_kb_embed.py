#!/usr/bin/python3
"""Reference for the knowledge-base embeddings (harness/kb/kb_embed.c): two tiny random CLIP text towers in the
Hugging Face layout, a shipped description file, and what a plain-PyTorch CLIP (Hugging Face
get_text_features semantics, float64) makes of those descriptions.

Usage: /usr/bin/python3 tests/ref_kb_embed.py OUT_DIR   (run from the repository root by `make fixtures`)
Writes under OUT_DIR:
  ckpt_a/, ckpt_b/     config.json, model.safetensors (text tower and text projection only, F32), vocab.json and
                       merges.txt (the real CLIP BPE vocabulary in Hugging Face form); b has other random weights
  shipped/mvtec.jsonl  one shipped entry per class (the loader's input); descriptions include an exact duplicate
                       within a class, a text shared by two classes, a text beyond the 77-token context, HTML
                       entities and non-ASCII letters
  texts.json           {"classes": [...], "texts": [...], "class_start": [...]}: the embedding order of
                       kb_embed_order (duplicates within a class dropped)
  ids.npy (N,77) int64 the token rows (truncated to 77 keeping EOT), for diagnosis
  a/embeds.npy (N,P), a/means.npy (C,P); the same under b/: L2-normalised text features and per-class
                       L2-normalised means of them
The tokenizer is tests/ref_tokenizer.py's independent SimpleTokenizer over
$KANOCLIP_SHARED/data/clip/bpe_simple_vocab_16e6.txt.gz (else ../shared/data/clip/...).
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_tokenizer  # noqa: E402

OUT = sys.argv[1]
torch.set_num_threads(1)

TEXT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=80, vocab_size=49408,
            max_position_embeddings=77, eos_token_id=49407, hidden_act="quick_gelu", layer_norm_eps=1e-5)
PROJ = 24
LONG = ("A long and winding description of a defect on the bottle: " +
        " ".join("scratch number %d runs from the rim to the base," % i for i in range(20)) + " and ends there.")
CLASSES = [
    ("widget0", ["A dark crack near the rim.", "A brown stain at the centre.", LONG, "A dark crack near the rim.",
                 "Ünïcödé smudge, café-coloured and 3 mm wide, at the top left."]),
    ("widget1", ["A small round hole at the bottom.", "A dark crack near the rim.",
                 "Fine scratches across the top &amp; a bent edge."]),
    ("widget2", ["Missing piece on the left side; the edge is jagged and grey."]),
]


def quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)


def random_text_tower(seed):
    """Hugging Face names -> float64 tensors: fan-in scaled weights, perturbed LayerNorms, random biases."""
    g = torch.Generator().manual_seed(seed)
    W, I, V, T = TEXT["hidden_size"], TEXT["intermediate_size"], TEXT["vocab_size"], TEXT["max_position_embeddings"]
    sd = {"text_model.embeddings.token_embedding.weight": 0.5 * torch.randn(V, W, generator=g),
          "text_model.embeddings.position_embedding.weight": 0.5 * torch.randn(T, W, generator=g)}

    def lin(name, o, i):
        sd[name + ".weight"] = torch.randn(o, i, generator=g) / math.sqrt(i)
        sd[name + ".bias"] = 0.1 * torch.randn(o, generator=g)

    def ln(name):
        sd[name + ".weight"] = 1 + 0.2 * torch.randn(W, generator=g)
        sd[name + ".bias"] = 0.1 * torch.randn(W, generator=g)

    for l in range(TEXT["num_hidden_layers"]):
        p = "text_model.encoder.layers.%d." % l
        for n in ("q_proj", "k_proj", "v_proj", "out_proj"):
            lin(p + "self_attn." + n, W, W)
        ln(p + "layer_norm1")
        ln(p + "layer_norm2")
        lin(p + "mlp.fc1", I, W)
        lin(p + "mlp.fc2", W, I)
    ln("text_model.final_layer_norm")
    sd["text_projection.weight"] = torch.randn(PROJ, W, generator=g) / math.sqrt(W)
    return sd


def text_features(sd, ids):
    """get_text_features (modeling_clip.py) in float64: ids (N, 77) padded with 0 after the EOT."""
    sd = {k: v.double() for k, v in sd.items()}
    W, H = TEXT["hidden_size"], TEXT["num_attention_heads"]
    N, T = ids.shape
    x = sd["text_model.embeddings.token_embedding.weight"][ids] + sd["text_model.embeddings.position_embedding.weight"][:T]
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
    eps = TEXT["layer_norm_eps"]

    def lin(name, v):
        return v @ sd[name + ".weight"].T + sd[name + ".bias"]

    def ln(name, v):
        return F.layer_norm(v, (W,), sd[name + ".weight"], sd[name + ".bias"], eps)

    def heads(v):
        return v.view(N, T, H, W // H).transpose(1, 2)

    for l in range(TEXT["num_hidden_layers"]):
        p = "text_model.encoder.layers.%d." % l
        h = ln(p + "layer_norm1", x)
        q, k, v = (heads(lin(p + "self_attn." + n, h)) for n in ("q_proj", "k_proj", "v_proj"))
        s = (q @ k.transpose(-1, -2)) * (W // H) ** -0.5
        a = s.masked_fill(mask, float("-inf")).softmax(-1) @ v
        x = x + lin(p + "self_attn.out_proj", a.transpose(1, 2).reshape(N, T, W))
        x = x + lin(p + "mlp.fc2", quick_gelu(lin(p + "mlp.fc1", ln(p + "layer_norm2", x))))
    x = ln("text_model.final_layer_norm", x)
    eot = (ids == TEXT["eos_token_id"]).int().argmax(-1)  # first EOT (Hugging Face, eos_token_id 49407)
    return x[torch.arange(N), eot] @ sd["text_projection.weight"].T


def write_safetensors(path, tensors):
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        raw = tensors[name].float().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-(8 + len(h)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def write_checkpoint(d, sd, tok):
    os.makedirs(d, exist_ok=True)
    cfg = {"architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": PROJ,
           "logit_scale_init_value": 2.6592,
           "text_config": dict(TEXT, projection_dim=PROJ, bos_token_id=49406, pad_token_id=1),
           "vision_config": dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64,
                                 image_size=16, patch_size=8, projection_dim=PROJ, hidden_act="quick_gelu")}
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    write_safetensors(os.path.join(d, "model.safetensors"), sd)
    with open(os.path.join(d, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(tok.encoder, f, ensure_ascii=False)
    with open(os.path.join(d, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "".join(" ".join(m) + "\n" for m in tok.merges))


def save(d, name, a):
    os.makedirs(d, exist_ok=True)
    np.save(os.path.join(d, name + ".npy"), a)


def main():
    path = ref_tokenizer.vocab_path()
    if not os.path.exists(path):
        sys.exit("ref_kb_embed.py: %s not found (set KANOCLIP_SHARED)" % path)
    tok = ref_tokenizer.SimpleTokenizer(path)
    os.makedirs(os.path.join(OUT, "shipped"), exist_ok=True)
    with open(os.path.join(OUT, "shipped", "mvtec.jsonl"), "w", encoding="utf-8") as f:
        for name, texts in CLASSES:
            f.write(json.dumps({"dataset": "mvtec", "class": name, "aliases": [], "prompt_name": name,
                                "descriptions": texts, "source": "tests/ref_kb_embed.py"}, ensure_ascii=False) + "\n")

    # kb_embed_order: class by class, an exact duplicate within a class kept once.
    texts, class_start = [], []
    for _, ts in CLASSES:
        class_start.append(len(texts))
        for t in ts:
            if t not in texts[class_start[-1]:]:
                texts.append(t)
    class_start.append(len(texts))
    ctx = TEXT["max_position_embeddings"]
    ids = torch.zeros(len(texts), ctx, dtype=torch.int64)
    n_truncated = 0
    for i, t in enumerate(texts):
        e = tok.encode(t)
        if len(e) > ctx:  # openai/CLIP tokenize(truncate=True): first ctx tokens, the last one made EOT
            e = e[:ctx - 1] + [TEXT["eos_token_id"]]
            n_truncated += 1
        ids[i, :len(e)] = torch.tensor(e)
    assert n_truncated == 1, "the long description must exceed the context"
    save(OUT, "ids", ids.numpy())
    with open(os.path.join(OUT, "texts.json"), "w", encoding="utf-8") as f:
        json.dump({"classes": [c for c, _ in CLASSES], "texts": texts, "class_start": class_start}, f,
                  ensure_ascii=False)

    for tag, seed in (("a", 1), ("b", 2)):
        sd = random_text_tower(seed)
        write_checkpoint(os.path.join(OUT, "ckpt_" + tag), sd, tok)
        # The reference runs on the weights as stored (float32), in float64.
        sd32 = {k: v.float() for k, v in sd.items()}
        with torch.no_grad():
            emb = F.normalize(text_features(sd32, ids), dim=-1)
            means = torch.stack([F.normalize(emb[class_start[c]:class_start[c + 1]].mean(0), dim=-1)
                                 for c in range(len(CLASSES))])
        save(os.path.join(OUT, tag), "embeds", emb.numpy().astype(np.float32))
        save(os.path.join(OUT, tag), "means", means.numpy().astype(np.float32))
    print("ref_kb_embed: %d texts in %d classes, 2 checkpoints -> %s" % (len(texts), len(CLASSES), OUT))


if __name__ == "__main__":
    main()

"""Random CLIP checkpoints for `make bench` (generated into build/, never committed), and the PyTorch vision tower
that the PyTorch and ONNX Runtime peers run.

Usage: /usr/bin/python3 tests/bench_engine_models.py OUT_DIR
Writes, when missing: OUT_DIR/vit_b16/ (ViT-B/16 CLIP shapes at 224 px) and OUT_DIR/vit_l14_336/ (ViT-L/14@336),
each config.json + model.safetensors (F32, Hugging Face names); OUT_DIR/vit_b16/vision.onnx (pixels -> image_embeds,
dynamic batch, exported with torch.onnx.export from the same module and weights); OUT_DIR/image_518.png.
"""
import json, math, os, struct, sys
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_clip  # noqa: E402  (the plain-PyTorch CLIP with Hugging Face names)

SHAPES = {
    "vit_b16": dict(projection_dim=512,
                    vision=dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                                patch_size=16, image_size=224),
                    text=dict(hidden_size=512, num_hidden_layers=12, num_attention_heads=8, intermediate_size=2048)),
    "vit_l14_336": dict(projection_dim=768,
                        vision=dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                                    intermediate_size=4096, patch_size=14, image_size=336),
                        text=dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                  intermediate_size=3072)),
}


def config(s):
    vc = dict(s["vision"], hidden_act="quick_gelu", layer_norm_eps=1e-5, num_channels=3,
              projection_dim=s["projection_dim"])
    tc = dict(s["text"], hidden_act="quick_gelu", layer_norm_eps=1e-5, vocab_size=49408, max_position_embeddings=77,
              eos_token_id=49407, projection_dim=s["projection_dim"])
    return {"architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": s["projection_dim"],
            "logit_scale_init_value": 2.6592, "torch_dtype": "float32", "text_config": tc, "vision_config": vc}


def write_random_checkpoint(d, cfg, seed):
    """Streams random F32 tensors (fan-in scaled normals, LayerNorm weights near 1) into d/model.safetensors."""
    os.makedirs(d, exist_ok=True)
    torch.manual_seed(seed)
    m = ref_clip.CLIP(cfg)  # the default init gives the names and shapes; values are replaced below
    shapes = {k: tuple(v.shape) for k, v in m.state_dict().items()}
    del m
    header, off = {"__metadata__": {"format": "pt"}}, 0
    names = sorted(shapes)
    for n in names:
        size = 4 * int(np.prod(shapes[n], dtype=np.int64))
        header[n] = {"dtype": "F32", "shape": list(shapes[n]), "data_offsets": [off, off + size]}
        off += size
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-(8 + len(h)) % 8)
    rng = np.random.default_rng(seed)
    tmp = os.path.join(d, "model.safetensors.tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for n in names:
            shp = shapes[n]
            if "norm" in n and n.endswith("weight"):
                a = 1 + 0.1 * rng.standard_normal(shp, dtype=np.float32)
            elif len(shp) <= 1:
                a = 0.02 * rng.standard_normal(shp, dtype=np.float32)
            else:
                a = rng.standard_normal(shp, dtype=np.float32) * np.float32(1 / math.sqrt(np.prod(shp[1:])))
            f.write(np.ascontiguousarray(a, dtype=np.float32).tobytes())
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    os.replace(tmp, os.path.join(d, "model.safetensors"))


def load_safetensors(path):
    """name -> torch tensor (F32 only), memory-mapped."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        assert v["dtype"] == "F32", k
        b, e = v["data_offsets"]
        out[k] = torch.from_numpy(np.array(data[b:e].view(np.float32)).reshape(v["shape"]))
    return out


class VisionTower(torch.nn.Module):
    """pixels (B,3,S,S) -> image_embeds (B,P): Hugging Face get_image_features."""

    def __init__(self, d):
        super().__init__()
        cfg = json.load(open(os.path.join(d, "config.json")))
        self.clip = ref_clip.CLIP(cfg)
        sd = load_safetensors(os.path.join(d, "model.safetensors"))
        self.clip.load_state_dict(sd)
        del self.clip.text_model
        self.clip.eval()

    def forward(self, pixels):
        vm = self.clip.vision_model
        x = vm.embeddings.patch_embedding(pixels).flatten(2).transpose(1, 2)
        x = torch.cat([vm.embeddings.class_embedding.expand(x.shape[0], 1, x.shape[2]), x], 1)
        x = vm.pre_layrnorm(x + vm.embeddings.position_embedding.weight)
        for layer in vm.encoder.layers:
            x = layer(x)
        return self.clip.visual_projection(vm.post_layernorm(x[:, 0]))


def main(out):
    for name, s in SHAPES.items():
        d = os.path.join(out, name)
        if not os.path.exists(os.path.join(d, "model.safetensors")):
            print("writing %s (random weights)" % d, flush=True)
            write_random_checkpoint(d, config(s), seed=len(name))
    onnx = os.path.join(out, "vit_b16", "vision.onnx")
    if not os.path.exists(onnx):
        print("exporting %s" % onnx, flush=True)
        m = VisionTower(os.path.join(out, "vit_b16"))
        x = torch.randn(1, 3, 224, 224)
        torch.onnx.export(m, x, onnx + ".tmp", input_names=["pixels"], output_names=["image_embeds"],
                          dynamic_axes={"pixels": {0: "batch"}, "image_embeds": {0: "batch"}}, opset_version=14)
        os.replace(onnx + ".tmp", onnx)
    png = os.path.join(out, "image_518.png")
    if not os.path.exists(png):
        from PIL import Image
        rng = np.random.default_rng(5)
        Image.fromarray(rng.integers(0, 256, (518, 518, 3), dtype=np.uint8)).save(png)


if __name__ == "__main__":
    main(sys.argv[1])

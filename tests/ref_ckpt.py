"""Fixtures for tests/test_checkpoint.c: tiny random CLIP state dicts with Hugging Face tensor names, written as
model.safetensors (F32, F16, BF16; our own writer, laid out like the reference one) and as pytorch_model.bin
(torch.save), each folder with config.json and the float32 values the loader must return (expected.txt lists
name and shape, expected.f32 holds the values in that order). bad/ holds broken files for the error tests.

usage: python3 tests/ref_ckpt.py OUT_DIR
"""
import io
import json
import os
import pickletools
import struct
import sys
import zipfile
from collections import OrderedDict

import numpy as np
import torch

TEXT = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            max_position_embeddings=16, vocab_size=100)
VISION = dict(hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
              image_size=32, patch_size=8)
PROJ = 24

SAFETENSORS_DTYPE = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64"}
DTYPE_SIZE = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8}


def clip_state_dict(gen):
    """HF CLIPModel names and shapes (engine-anchors §3.3) with seeded normal values."""
    sd = OrderedDict()

    def r(*shape):
        return torch.randn(*shape, generator=gen)

    def tower(prefix, d, inner, layers):
        for i in range(layers):
            p = f"{prefix}.encoder.layers.{i}."
            for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
                sd[p + f"self_attn.{proj}.weight"] = r(d, d)
                sd[p + f"self_attn.{proj}.bias"] = r(d)
            sd[p + "layer_norm1.weight"] = r(d)
            sd[p + "layer_norm1.bias"] = r(d)
            sd[p + "mlp.fc1.weight"] = r(inner, d)
            sd[p + "mlp.fc1.bias"] = r(inner)
            sd[p + "mlp.fc2.weight"] = r(d, inner)
            sd[p + "mlp.fc2.bias"] = r(d)
            sd[p + "layer_norm2.weight"] = r(d)
            sd[p + "layer_norm2.bias"] = r(d)

    dt, dv = TEXT["hidden_size"], VISION["hidden_size"]
    ctx = TEXT["max_position_embeddings"]
    nv = (VISION["image_size"] // VISION["patch_size"]) ** 2 + 1
    sd["text_model.embeddings.token_embedding.weight"] = r(TEXT["vocab_size"], dt)
    sd["text_model.embeddings.position_embedding.weight"] = r(ctx, dt)
    sd["text_model.embeddings.position_ids"] = torch.arange(ctx).unsqueeze(0)
    tower("text_model", dt, TEXT["intermediate_size"], TEXT["num_hidden_layers"])
    sd["text_model.final_layer_norm.weight"] = r(dt)
    sd["text_model.final_layer_norm.bias"] = r(dt)
    sd["vision_model.embeddings.class_embedding"] = r(dv)
    p = VISION["patch_size"]
    sd["vision_model.embeddings.patch_embedding.weight"] = r(dv, 3, p, p)
    sd["vision_model.embeddings.position_embedding.weight"] = r(nv, dv)
    sd["vision_model.embeddings.position_ids"] = torch.arange(nv).unsqueeze(0)
    sd["vision_model.pre_layrnorm.weight"] = r(dv)
    sd["vision_model.pre_layrnorm.bias"] = r(dv)
    tower("vision_model", dv, VISION["intermediate_size"], VISION["num_hidden_layers"])
    sd["vision_model.post_layernorm.weight"] = r(dv)
    sd["vision_model.post_layernorm.bias"] = r(dv)
    sd["visual_projection.weight"] = r(PROJ, dv)
    sd["text_projection.weight"] = r(PROJ, dt)
    sd["logit_scale"] = torch.tensor(2.6592)
    # Values the half-precision conversions must get bit-exact: signed zero, extremes, subnormals, Inf, NaN.
    sd["extra.special_values"] = torch.tensor(
        [0.0, -0.0, 1.0, -2.5, 65504.0, -65504.0, 6e-8, -3e-5, 1e-40, 3e38, float("inf"), float("-inf"),
         float("nan"), 1.0009765625, 0.333333333])
    return sd


def config_json():
    return {
        "architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": PROJ,
        "logit_scale_init_value": 2.6592, "torch_dtype": "float32",
        "text_config": dict(TEXT, hidden_act="quick_gelu", layer_norm_eps=1e-5, eos_token_id=49407,
                            projection_dim=PROJ),
        "vision_config": dict(VISION, hidden_act="quick_gelu", layer_norm_eps=1e-5, num_channels=3,
                              projection_dim=PROJ),
    }


def tensor_bytes(t):
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()


def safetensors_layout(sd):
    """Header entries and byte buffer as the reference writer lays them out: tensors ordered by decreasing dtype
    size then name, packed back to back; the header padded with spaces so the data starts 8-byte aligned."""
    order = sorted(sd, key=lambda k: (-DTYPE_SIZE[SAFETENSORS_DTYPE[sd[k].dtype]], k))
    header, chunks, at = OrderedDict(), [], 0
    for k in order:
        b = tensor_bytes(sd[k])
        header[k] = {"dtype": SAFETENSORS_DTYPE[sd[k].dtype], "shape": list(sd[k].shape), "data_offsets": [at, at + len(b)]}
        chunks.append(b)
        at += len(b)
    return header, b"".join(chunks)


def safetensors_bytes(header, data, metadata={"format": "pt"}):
    h = OrderedDict()
    if metadata is not None:
        h["__metadata__"] = metadata
    h.update(header)
    js = json.dumps(h, separators=(",", ":")).encode()
    js += b" " * (-(8 + len(js)) % 8)
    return struct.pack("<Q", len(js)) + js + data


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def write_expected(folder, sd):
    """expected.txt: 'name ndim d0 d1 ...' per floating tensor; expected.f32: their float32 values in that order."""
    lines, blobs = [], []
    for k, t in sd.items():
        if not t.is_floating_point():
            continue
        lines.append(" ".join([k, str(t.dim())] + [str(d) for d in t.shape]))
        blobs.append(t.float().contiguous().numpy().astype("<f4").tobytes())
    write(os.path.join(folder, "expected.txt"), ("\n".join(lines) + "\n").encode())
    write(os.path.join(folder, "expected.f32"), b"".join(blobs))


def cast(sd, dtype):
    return OrderedDict((k, v.to(dtype) if v.is_floating_point() else v) for k, v in sd.items())


def state_dict_with_metadata(sd):
    """An OrderedDict carrying _metadata the way nn.Module.state_dict() does, so the pickle has a BUILD."""
    out = OrderedDict(sd)
    out._metadata = OrderedDict([("", {"version": 1}), ("text_model", {"version": 1})])
    return out


def rewrite_pickle(src, dst, edit, byteorder=None):
    """Copies a torch zip, replacing data.pkl by edit(bytes) and adding a PREFIX/byteorder record (torch >= 2.1)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename.endswith("/data.pkl"):
                data = edit(data)
                if byteorder:
                    zout.writestr(info.filename[: -len("data.pkl")] + "byteorder", byteorder)
            zout.writestr(info.filename, data)


def main(out):
    gen = torch.Generator().manual_seed(20240607)
    sd = clip_state_dict(gen)
    cfg = json.dumps(config_json(), indent=2).encode()

    for name, dtype in (("f32", torch.float32), ("f16", torch.float16), ("bf16", torch.bfloat16)):
        folder = os.path.join(out, name)
        os.makedirs(folder, exist_ok=True)
        cast_sd = cast(sd, dtype)
        header, data = safetensors_layout(cast_sd)
        write(os.path.join(folder, "model.safetensors"), safetensors_bytes(header, data))
        write(os.path.join(folder, "config.json"), cfg)
        write_expected(folder, cast_sd)   # the values after rounding to dtype, widened back to float32

    # pytorch_model.bin, plus a view into another tensor's storage (storage_offset != 0).
    folder = os.path.join(out, "bin")
    os.makedirs(folder, exist_ok=True)
    bin_sd = OrderedDict(sd)
    base = torch.randn(6, 5, generator=gen)
    bin_sd["extra.base"] = base
    bin_sd["extra.rows_from_2"] = base[2:]
    torch.save(state_dict_with_metadata(bin_sd), os.path.join(folder, "pytorch_model.bin"))
    write(os.path.join(folder, "config.json"), cfg)
    write_expected(folder, bin_sd)
    # The same weights as F16 storages.
    folder = os.path.join(out, "bin_f16")
    os.makedirs(folder, exist_ok=True)
    half_sd = cast(sd, torch.float16)
    torch.save(state_dict_with_metadata(half_sd), os.path.join(folder, "pytorch_model.bin"))
    write(os.path.join(folder, "config.json"), cfg)
    write_expected(folder, half_sd)

    bad = os.path.join(out, "bad")
    os.makedirs(bad, exist_ok=True)
    header, data = safetensors_layout(sd)
    names = list(header)

    def bad_safetensors(fname, mutate):
        h = json.loads(json.dumps(header), object_pairs_hook=OrderedDict)
        mutate(h)
        write(os.path.join(bad, fname), safetensors_bytes(h, data))

    # Offsets past the end of the data (the shape still matches the byte count).
    last = max(names, key=lambda k: header[k]["data_offsets"][1])
    bad_safetensors("past_end.safetensors",
                    lambda h: h[last].__setitem__("data_offsets", [o + 64 for o in h[last]["data_offsets"]]))
    # Offsets that hold fewer bytes than the shape needs.
    victim = "text_projection.weight"
    bad_safetensors("short.safetensors",
                    lambda h: h[victim].__setitem__("data_offsets", [h[victim]["data_offsets"][0], h[victim]["data_offsets"][1] - 4]))
    # Two tensors of the same size sharing their bytes.
    a, b = "text_model.encoder.layers.0.self_attn.q_proj.weight", "text_model.encoder.layers.0.self_attn.k_proj.weight"
    bad_safetensors("overlap.safetensors", lambda h: h[b].__setitem__("data_offsets", list(h[a]["data_offsets"])))
    # A dtype nobody defines, for a tensor whose size is otherwise right.
    bad_safetensors("unknown_dtype.safetensors", lambda h: h["logit_scale"].__setitem__("dtype", "Q7"))
    # end < begin
    bad_safetensors("reversed.safetensors",
                    lambda h: h[victim].__setitem__("data_offsets", list(reversed(h[victim]["data_offsets"]))))
    # A header length that runs past the end of the file, and one over the 100 MB cap.
    good = safetensors_bytes(header, data)
    write(os.path.join(bad, "header_past_end.safetensors"), struct.pack("<Q", len(good)) + good[8:])
    write(os.path.join(bad, "header_huge.safetensors"), struct.pack("<Q", 1 << 40) + good[8:])
    write(os.path.join(bad, "header_not_json.safetensors"), struct.pack("<Q", 8) + b"{nope!!}" + data)
    dup = b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}'
    write(os.path.join(bad, "duplicate.safetensors"), struct.pack("<Q", len(dup)) + dup + b"\0" * 8)

    # torch zips: a non-contiguous (transposed) tensor, and pickles broken in several ways.
    nc = OrderedDict(sd)
    nc["text_projection.weight"] = sd["text_projection.weight"].t()
    torch.save(nc, os.path.join(bad, "noncontiguous.bin"))
    good_bin = os.path.join(out, "bin", "pytorch_model.bin")
    with zipfile.ZipFile(good_bin) as z:
        pkl = z.read([n for n in z.namelist() if n.endswith("/data.pkl")][0])
    rewrite_pickle(good_bin, os.path.join(bad, "pickle_truncated.bin"), lambda p: p[: len(p) // 2])
    rewrite_pickle(good_bin, os.path.join(bad, "pickle_no_stop.bin"), lambda p: p[:-1])
    # An opcode byte no pickle protocol defines, put at an opcode boundary a third of the way in.
    cut = next(pos for _, _, pos in pickletools.genops(pkl) if pos >= len(pkl) // 3)
    rewrite_pickle(good_bin, os.path.join(bad, "pickle_bad_opcode.bin"), lambda p: p[:cut] + b"\xff" + p[cut:])
    # A storage key that names no record in the zip.
    rewrite_pickle(good_bin, os.path.join(bad, "pickle_missing_storage.bin"), lambda p: p.replace(b"X\x01\x00\x00\x000", b"X\x01\x00\x00\x00x", 1))
    # A tensor whose size runs past its storage: the [6, 5] view of extra.base made [60, 5].
    rewrite_pickle(good_bin, os.path.join(bad, "pickle_past_storage.bin"), lambda p: p.replace(b"K\x06K\x05\x86", b"K\x3cK\x05\x86", 1))
    assert pkl.count(b"K\x06K\x05\x86") >= 1 and pkl.count(b"X\x01\x00\x00\x000") >= 1
    rewrite_pickle(good_bin, os.path.join(out, "byteorder_little.bin"), lambda p: p, byteorder="little")
    rewrite_pickle(good_bin, os.path.join(bad, "byteorder_big.bin"), lambda p: p, byteorder="big")
    write(os.path.join(out, "bin", "data.pkl"), pkl)   # the bare pickle, for fuzzing the interpreter directly
    # F32 data at a file offset that is not a multiple of 4 (legal: F16 first, then F32 packed after it).
    mis = OrderedDict([("a", {"dtype": "F16", "shape": [1], "data_offsets": [0, 2]}),
                       ("b", {"dtype": "F32", "shape": [3], "data_offsets": [2, 14]})])
    mis_data = np.array([1.5], "<f2").tobytes() + np.array([0.25, -7.0, 3.0e-3], "<f4").tobytes()
    write(os.path.join(out, "misaligned.safetensors"), safetensors_bytes(mis, mis_data, metadata=None))
    # A legacy (non-zip) torch.save stream.
    torch.save({"a": torch.zeros(2)}, os.path.join(bad, "legacy.bin"), _use_new_zipfile_serialization=False)


if __name__ == "__main__":
    main(sys.argv[1])

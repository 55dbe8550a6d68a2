#!/usr/bin/python3
"""Reference for the image tests: files written by PIL (and a small raw PNG writer for 16-bit colour types
PIL cannot save), PIL's decoded arrays, PIL resizes, and CLIP input tensors as torchvision computes them
(Resize -> CenterCrop -> ToTensor -> Normalize, written out with PIL and torch since torchvision is not
installed).

Usage: /usr/bin/python3 tests/ref_image.py OUT_DIR   (make fixtures)
Writes OUT_DIR/manifest.json and the files it names: images, raw uint8 arrays (.u8, HWC), float32 (.f32).
"""
import io
import json
import os
import struct
import sys
import zlib

import numpy as np
import torch
from PIL import Image

MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]


def raw_png(w, h, color_type, depth, rows, interlace=0):
    """A PNG from rows of raw samples (16-bit ones big-endian), filter 0, one IDAT; PIL cannot write
    16-bit colour or interlaced files. rows: the image's rows, or with interlace=1 its pixel array (h, w, ch)."""
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    if interlace:  # Adam7: seven sub-images, each filtered row by row
        a, data = rows, b""
        for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
                               (0, 1, 1, 2)):
            sub = a[y0::dy, x0::dx]
            if sub.size:
                data += b"".join(b"\x00" + r.tobytes() for r in sub.reshape(sub.shape[0], -1))
    else:
        data = b"".join(b"\x00" + r for r in rows)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, interlace)) +
            chunk(b"IDAT", zlib.compress(data)) + chunk(b"IEND", b""))


class Writer:
    def __init__(self, out):
        self.out = out
        self.m = {"decode": [], "resize": [], "preprocess": [], "bilinear_f32": [], "bad": []}

    def path(self, name):
        return os.path.join(self.out, name)

    def save_u8(self, name, arr):
        np.ascontiguousarray(arr, dtype=np.uint8).tofile(self.path(name))
        return name

    def save_f32(self, name, arr):
        np.ascontiguousarray(arr, dtype=np.float32).tofile(self.path(name))
        return name

    def decode_case(self, name, data, rgb=None, grey=None, tol=0, note=""):
        with open(self.path(name), "wb") as f:
            f.write(data)
        im = Image.open(io.BytesIO(data))
        rgb = np.asarray(im.convert("RGB")) if rgb is None else rgb
        grey = np.asarray(Image.open(io.BytesIO(data)).convert("L")) if grey is None else grey
        h, w = rgb.shape[:2]
        self.m["decode"].append({"file": name, "w": w, "h": h, "tol": tol, "note": note or im.mode,
                                 "rgb": self.save_u8(name + ".rgb.u8", rgb),
                                 "grey": self.save_u8(name + ".grey.u8", grey)})


def pil_bytes(im, fmt, **kw):
    b = io.BytesIO()
    im.save(b, fmt, **kw)
    return b.getvalue()


def smooth_rgb(rng, w, h):
    """A photo-like image (smooth gradients plus noise), for JPEG, whose decode of noise is uninformative."""
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([128 + 100 * np.sin(x / 7.0 + c) * np.cos(y / 5.0 - c) for c in range(3)], -1)
    return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(20240611)
    W = Writer(out)

    # ---- decoding: PNG
    noise = lambda *s: rng.integers(0, 256, s, dtype=np.uint8)
    W.decode_case("rgb8.png", pil_bytes(Image.fromarray(noise(23, 37, 3)), "PNG"))
    W.decode_case("rgba8.png", pil_bytes(Image.fromarray(noise(19, 31, 4), "RGBA"), "PNG"))
    W.decode_case("grey8.png", pil_bytes(Image.fromarray(noise(17, 29)), "PNG"))
    W.decode_case("greyalpha8.png", pil_bytes(Image.fromarray(noise(13, 21, 2), "LA"), "PNG"))
    pal = Image.fromarray(rng.integers(0, 200, (15, 26), dtype=np.uint8), "P")
    pal.putpalette(list(noise(768)))
    W.decode_case("palette8.png", pil_bytes(pal, "PNG", transparency=3))
    pal4 = Image.fromarray(rng.integers(0, 16, (11, 9), dtype=np.uint8), "P")
    pal4.putpalette(list(noise(48)))
    W.decode_case("palette4.png", pil_bytes(pal4, "PNG", bits=4))
    W.decode_case("bilevel.png", pil_bytes(Image.fromarray(noise(10, 13) > 127), "PNG"))
    # 16-bit: PIL keeps the high byte of RGB, RGBA, grey+alpha; a 16-bit grey PNG opens as mode I, whose
    # convert('RGB') saturates at 255 (PIL 9): our RGB takes the high byte instead (stated in image.h), our
    # grey matches PIL's convert('L') (clip at 255).
    for ct, nch, name in ((2, 3, "rgb16.png"), (6, 4, "rgba16.png"), (4, 2, "greyalpha16.png")):
        a = rng.integers(0, 65536, (14, 17, nch), dtype=np.uint16)
        W.decode_case(name, raw_png(17, 14, ct, 16, [a[i].astype(">u2").tobytes() for i in range(14)]))
    g = rng.integers(0, 65536, (12, 15), dtype=np.uint16)
    g[0, :5] = [0, 1, 255, 256, 65535]
    data = raw_png(15, 12, 0, 16, [g[i].astype(">u2").tobytes() for i in range(12)])
    W.decode_case("grey16.png", data, rgb=np.repeat((g >> 8).astype(np.uint8)[..., None], 3, -1),
                  note="I;16 (RGB: high byte, not PIL)")

    W.decode_case("interlaced8.png", raw_png(13, 11, 2, 8, noise(11, 13, 3), interlace=1))
    W.decode_case("interlaced16.png", raw_png(9, 10, 6, 16, rng.integers(0, 65536, (10, 9, 4)).astype(">u2"),
                                              interlace=1))

    # ---- decoding: JPEG (libjpeg on both sides; tolerance stated in the test)
    photo = smooth_rgb(rng, 45, 33)
    W.decode_case("rgb420.jpg", pil_bytes(Image.fromarray(photo), "JPEG", quality=90), tol=1)
    W.decode_case("rgb444.jpg", pil_bytes(Image.fromarray(photo), "JPEG", quality=95, subsampling=0), tol=1)
    W.decode_case("progressive.jpg", pil_bytes(Image.fromarray(photo), "JPEG", quality=80, progressive=True), tol=1)
    W.decode_case("grey.jpg", pil_bytes(Image.fromarray(photo[..., 1]), "JPEG", quality=90), tol=1)

    # ---- decoding: BMP
    W.decode_case("rgb24.bmp", pil_bytes(Image.fromarray(noise(21, 30, 3)), "BMP"))
    W.decode_case("rgba32.bmp", pil_bytes(Image.fromarray(noise(9, 14, 4), "RGBA"), "BMP"))
    W.decode_case("palette8.bmp", pil_bytes(pal, "BMP"))
    W.decode_case("grey8.bmp", pil_bytes(Image.fromarray(noise(8, 11)), "BMP"))
    W.decode_case("bilevel.bmp", pil_bytes(Image.fromarray(noise(7, 19) > 100), "BMP"))

    # ---- errors
    def bad(name, data, expect):
        with open(W.path(name), "wb") as f:
            f.write(data)
        W.m["bad"].append({"file": name, "expect": expect})
    png = pil_bytes(Image.fromarray(noise(40, 40, 3)), "PNG")
    bad("truncated.png", png[: len(png) // 2], "PNG")
    jpg = pil_bytes(Image.fromarray(smooth_rgb(rng, 64, 64)), "JPEG")
    bad("truncated.jpg", jpg[: len(jpg) * 2 // 3], "JPEG")
    bmp = pil_bytes(Image.fromarray(noise(20, 20, 3)), "BMP")
    bad("truncated.bmp", bmp[: len(bmp) - 100], "truncated")
    bad("not_an_image.png", b"this is a text file, not a PNG\n", "not a PNG, JPEG or BMP")
    bad("empty.jpg", b"", "empty")
    bad("image.tif", pil_bytes(Image.fromarray(noise(5, 5, 3)), "TIFF"), "TIFF")
    bad("cmyk.jpg", pil_bytes(Image.fromarray(noise(8, 8, 4), "CMYK"), "JPEG"), "CMYK")
    bad("bad_crc.png", png[:40] + bytes([png[40] ^ 0xFF]) + png[41:], "PNG")

    # ---- resizing: PIL's resize on noise (the worst case for rounding and clamping), RGB and grey
    sizes = [((37, 23), (64, 64)), ((64, 48), (32, 32)), ((50, 80), (23, 41)), ((120, 90), (336, 336)),
             ((300, 200), (17, 29)), ((40, 30), (55, 30)), ((40, 30), (40, 77)), ((33, 33), (33, 33)),
             ((7, 5), (224, 224)), ((518, 300), (518, 518))]
    for i, ((w, h), (ow, oh)) in enumerate(sizes):
        for c in (3, 1):
            src = noise(h, w, c) if c == 3 else noise(h, w)
            im = Image.fromarray(src)
            for filt, pil_filter in (("bicubic", Image.BICUBIC), ("bilinear", Image.BILINEAR)):
                res = np.asarray(im.resize((ow, oh), pil_filter))
                W.m["resize"].append({"w": w, "h": h, "c": c, "ow": ow, "oh": oh, "filter": filt,
                                      "src": W.save_u8(f"resize{i}_c{c}.u8", src),
                                      "out": W.save_u8(f"resize{i}_c{c}_{filt}.u8", res)})

    # ---- CLIP input tensors, as torchvision would compute them
    def to_tensor_normalize(im):
        t = torch.from_numpy(np.array(im, dtype=np.uint8)).permute(2, 0, 1).contiguous().float().div(255)
        mean = torch.as_tensor(MEAN, dtype=torch.float32)[:, None, None]
        std = torch.as_tensor(STD, dtype=torch.float32)[:, None, None]
        return t.sub_(mean).div_(std).numpy()

    def center_crop(im, s):  # torchvision: int(round((H - s) / 2.0))
        w, h = im.size
        top, left = int(round((h - s) / 2.0)), int(round((w - s) / 2.0))
        return im.crop((left, top, left + s, top + s))

    for i, (w, h, s, fmt) in enumerate([(64, 48, 32, "PNG"), (45, 64, 32, "JPEG"), (35, 32, 32, "PNG"),
                                        (70, 50, 24, "PNG"), (32, 32, 32, "PNG"), (120, 97, 56, "JPEG")]):
        name = f"pre{i}.{'png' if fmt == 'PNG' else 'jpg'}"
        with open(W.path(name), "wb") as f:
            f.write(pil_bytes(Image.fromarray(smooth_rgb(rng, w, h)), fmt))
        im = Image.open(W.path(name)).convert("RGB")
        square = to_tensor_normalize(center_crop(im.resize((s, s), Image.BICUBIC), s))   # AnomalyCLIP
        short, long = min(w, h), max(w, h)
        nl = int(s * long / short)
        nw, nh = (s, nl) if w <= h else (nl, s)
        crop = to_tensor_normalize(center_crop(im.resize((nw, nh), Image.BICUBIC), s))    # OpenAI CLIP
        W.m["preprocess"].append({"file": name, "size": s, "square": W.save_f32(name + ".square.f32", square),
                                  "crop": W.save_f32(name + ".crop.f32", crop)})

    # ---- bilinear interpolation of float maps (torch.nn.functional.interpolate)
    for i, (c, h, w, oh, ow) in enumerate([(2, 7, 9, 20, 15), (1, 37, 37, 100, 100), (3, 12, 10, 5, 4),
                                           (1, 1, 6, 3, 11)]):
        x = torch.from_numpy(rng.standard_normal((c, h, w)).astype(np.float32))
        for ac in (0, 1):
            y = torch.nn.functional.interpolate(x[None], size=(oh, ow), mode="bilinear", align_corners=bool(ac))[0]
            W.m["bilinear_f32"].append({"c": c, "h": h, "w": w, "oh": oh, "ow": ow, "align_corners": ac,
                                        "src": W.save_f32(f"map{i}.f32", x.numpy()),
                                        "out": W.save_f32(f"map{i}_ac{ac}.f32", y.numpy())})

    with open(W.path("manifest.json"), "w") as f:
        json.dump(W.m, f, indent=1)
    print(f"ref_image: {len(W.m['decode'])} decodes, {len(W.m['resize'])} resizes, "
          f"{len(W.m['preprocess'])} tensors, {len(W.m['bilinear_f32'])} maps, {len(W.m['bad'])} bad files -> {out}")


if __name__ == "__main__":
    main()

"""Fixtures for tests/test_image_mosaic.c: four small RGB images and two masks, and the mosaic April-GAN's
MVTecDataset.combine_img builds from them (PIL: a 2 x 2 canvas of twice the first image's size, Image.paste of
each image and mask, normal images contributing zero masks), then the training transform: Resize((S, S),
BICUBIC) + ToTensor + Normalize(OpenAI mean/std) for the image, Resize((S, S)) (bilinear) + ToTensor + (> 0.5)
for the mask. Images 2 and 3 are larger / smaller than the first, to check that paste cuts and leaves black.

usage: python3 tests/ref_mosaic.py OUT_DIR
"""
import os
import sys

import numpy as np
from PIL import Image

OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)
rng = np.random.default_rng(11)
S = 29
MEAN = np.array([0.48145466, 0.4578275, 0.40821073], np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], np.float32)

sizes = [36, 36, 40, 30]
imgs = []
for i, n in enumerate(sizes):
    a = rng.integers(0, 256, (n, n, 3), dtype=np.uint8)
    im = Image.fromarray(a, "RGB")
    im.save(os.path.join(OUT, "img%d.png" % i))
    imgs.append(im)
masks = [None] * 4
for i in (0, 3):  # images 0 and 3 are anomalous: grey masks with several non-zero values
    m = np.zeros((sizes[i], sizes[i]), np.uint8)
    m[5:20, 8:30 if i == 0 else 25] = 200
    m[22:26, 2:9] = 1
    Image.fromarray(m, "L").save(os.path.join(OUT, "mask%d.png" % i))
    masks[i] = Image.fromarray(m, "L")

W, H = imgs[0].size
canvas = Image.new("RGB", (2 * W, 2 * H))
mcanvas = Image.new("L", (2 * W, 2 * H))
for i, im in enumerate(imgs):
    x, y = (i % 2) * W, (i // 2) * H
    canvas.paste(im, (x, y))
    if masks[i] is None:
        m = Image.fromarray(np.zeros((im.size[1], im.size[0]), np.uint8), mode="L")
    else:
        m = Image.fromarray((np.array(masks[i].convert("L")) > 0).astype(np.uint8) * 255, mode="L")
    mcanvas.paste(m, (x, y))

px = np.asarray(canvas.resize((S, S), Image.BICUBIC), np.float32) / 255.0
px = ((px - MEAN) / STD).transpose(2, 0, 1)
mk = (np.asarray(mcanvas.resize((S, S), Image.BILINEAR), np.float32) / 255.0 > 0.5).astype(np.uint8)
np.save(os.path.join(OUT, "pixels.npy"), np.ascontiguousarray(px, np.float32))
np.save(os.path.join(OUT, "mask.npy"), mk)

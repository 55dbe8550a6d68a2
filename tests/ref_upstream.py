"""Fixtures for tests/test_upstream.c: the arithmetic of the baselines' public code where ours once differed.

pos_*: open_clip's resize_pos_embed (open_clip/model.py, used by April-GAN): the patch rows of a positional
embedding as a (1, W, g, g) image through F.interpolate(size, mode="bicubic", antialias=True,
align_corners=False); beside it the plain bicubic (aten's A = -0.75) and bilinear forms, for grids that grow
(7 -> 12, 3 -> 37) and shrink (12 -> 5). Float32 inputs, float32 torch, as upstream runs it.

usage: python3 tests/ref_upstream.py OUT_DIR
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)
g = torch.Generator().manual_seed(20261206)


def save(name, t):
    a = t.detach().numpy() if isinstance(t, torch.Tensor) else t
    np.save(os.path.join(OUT, name + ".npy"), np.ascontiguousarray(a))


W = 6
for gin, gout in ((7, 12), (3, 37), (12, 5)):
    pos = torch.randn(gin * gin + 1, W, generator=g)
    tag = "pos_%d_%d" % (gin, gout)
    save(tag + "_in", pos)
    img = pos[1:].reshape(1, gin, gin, W).permute(0, 3, 1, 2)
    for mode, kw in (("bilinear", dict(mode="bilinear")), ("bicubic", dict(mode="bicubic")),
                     ("bicubic_aa", dict(mode="bicubic", antialias=True))):
        out = F.interpolate(img, size=(gout, gout), align_corners=False, **kw)
        save(tag + "_" + mode, torch.cat([pos[:1], out[0].reshape(W, gout * gout).T], 0))

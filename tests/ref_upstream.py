"""Fixtures for tests/test_upstream.c: the arithmetic of the baselines' public code where ours once differed.

pos_*: open_clip's resize_pos_embed (open_clip/model.py, used by April-GAN): the patch rows of a positional
embedding as a (1, W, g, g) image through F.interpolate(size, mode="bicubic", antialias=True,
align_corners=False); beside it the plain bicubic (aten's A = -0.75) and bilinear forms, for grids that grow
(7 -> 12, 3 -> 37) and shrink (12 -> 5). Float32 inputs, float32 torch, as upstream runs it.

ac200_*: AnomalyCLIP's cal_pro_score with float32 and with float64 threshold comparisons (below).

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

# ac200_*: AnomalyCLIP metrics.py cal_pro_score on float32 maps whose values sit on its threshold grid. The
# thresholds come from np.arange over float64 extremes-derived steps; `amaps > th` compares a float32 array with
# a float64 scalar, which numpy 1.x does in float32 (value-based casting): written out here as np.float32(th).
# Regions: skimage.measure.label's default full (8-) connectivity, via scipy.ndimage.label.
from scipy import ndimage
from sklearn.metrics import auc

rng = np.random.default_rng(1206)
H = W2 = 24
n_img = 4
lo, hi = np.float32(0.0), np.float32(1.0)
grid = np.arange(np.float64(lo), np.float64(hi), (np.float64(hi) - np.float64(lo)) / 200)
on_grid = grid.astype(np.float32)
maps = on_grid[rng.integers(0, 200, (n_img, H, W2))].astype(np.float32)
maps[0, 0, 0], maps[0, 0, 1] = lo, hi  # the extremes fix min and max
masks = np.zeros((n_img, H, W2), np.uint8)
for i in range(n_img):
    y, x = rng.integers(0, H - 8, 2)
    masks[i, y:y + 5 + i, x:x + 6] = 1
    maps[i][masks[i] > 0] = on_grid[rng.integers(80, 200, int(masks[i].sum()))]
maps[0, 0, 0], maps[0, 0, 1] = lo, hi


def cal_pro_score(amaps, masks, compare, max_step=200, expect_fpr=0.3):
    min_th, max_th = np.float64(amaps.min()), np.float64(amaps.max())
    delta = (max_th - min_th) / max_step
    regions = []
    for m in masks:
        labeled, k = ndimage.label(m, structure=np.ones((3, 3), int))
        regions.append([labeled == r for r in range(1, k + 1)])
    inverse = 1 - masks
    pros, fprs = [], []
    for th in np.arange(min_th, max_th, delta):
        binary = amaps > compare(th)
        pros.append(np.mean([binary[i][reg].sum() / reg.sum() for i, regs in enumerate(regions) for reg in regs]))
        fprs.append(np.logical_and(inverse, binary).sum() / inverse.sum())
    pros, fprs = np.array(pros), np.array(fprs)
    idx = fprs < expect_fpr
    fprs = fprs[idx]
    fprs = (fprs - fprs.min()) / (fprs.max() - fprs.min())
    return float(auc(fprs, pros[idx]))


save("ac200_maps", maps)
save("ac200_masks", masks)
save("ac200_f32", np.array([cal_pro_score(maps, masks, np.float32)], np.float32))
save("ac200_f64", np.array([cal_pro_score(maps.astype(np.float64), masks, np.float64)], np.float32))

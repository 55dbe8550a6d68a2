#!/usr/bin/env python3
"""Reference values for the metrics tests, from scikit-learn and scipy (independent of the C code).

Writes into OUT_DIR:
  image_cases.json   random label/score cases (ties from rounding, 1:20 imbalance, several seeds) with
                     sklearn roc_auc_score, average_precision_score and F1-max over precision_recall_curve
  bootstrap.json     one case with a numpy stratified percentile bootstrap interval of AUROC
  pixel_NAME.h5      maps [N,H,W] float32, masks [N,H,W] uint8, scipy labels [N,H,W] int32 (8-connected),
                     attributes with pixel AUROC/AP/F1-max (sklearn on all pixels), AUPRO (MVTec definition,
                     exact thresholds), AUPRO as AnomalyCLIP's cal_pro_score (200 thresholds), and the image
                     metrics of max-of-map scores against labels "mask has an anomalous pixel"
  classes.h5         two pixel cases stacked with a `classes` dataset; per-class and mean values as attributes
  cluster_bootstrap.json  the two classes of classes.h5 resampled by image (stratified by image label) with the
                     C code's draws replayed (splitmix64, metrics/metrics_boot.h): per resample and class the
                     sklearn/MVTec values on the resampled images, their class mean, and the 95% percentile intervals
"""
import json
import os
import sys
from bisect import bisect

import h5py
import numpy as np
from scipy import ndimage
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_auc_score

STRUCT8 = np.ones((3, 3), dtype=int)


def f1_max(labels, scores):
    # As AnomalyCLIP / APRIL-GAN / AdaCLIP: 2PR/(P+R) over precision_recall_curve, max over finite values.
    p, r, _ = precision_recall_curve(labels, scores)
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = 2 * p * r / (p + r)
    return float(np.max(f1[np.isfinite(f1)]))


def image_case(rng, n, pos_rate, levels):
    labels = (rng.random(n) < pos_rate).astype(np.uint8)
    labels[0], labels[1] = 1, 0  # both classes present
    scores = rng.normal(size=n) + 1.2 * labels
    if levels:
        scores = np.round(scores * levels / 4.0) / levels  # few distinct values: many ties
    return labels, scores


def write_image_cases(out):
    cases = []
    for seed in range(6):
        rng = np.random.default_rng(1000 + seed)
        for n, pos_rate, levels in [(40, 0.5, 2), (300, 1 / 21, 3), (1000, 1 / 21, 0), (500, 0.3, 8), (2000, 1 / 21, 5)]:
            labels, scores = image_case(rng, n, pos_rate, levels)
            cases.append({
                "name": f"seed{seed}_n{n}_levels{levels}",
                "labels": labels.tolist(),
                "scores": [float(s) for s in scores],
                "auroc": float(roc_auc_score(labels, scores)),
                "ap": float(average_precision_score(labels, scores)),
                "f1_max": f1_max(labels, scores),
                "n_distinct": int(len(np.unique(scores))),
            })
    with open(os.path.join(out, "image_cases.json"), "w") as f:
        json.dump(cases, f)
    # One CSV for the end-to-end command test.
    c = cases[7]
    with open(os.path.join(out, "scores.csv"), "w") as f:
        f.write("label,score\n")
        for lab, s in zip(c["labels"], c["scores"]):
            f.write(f"{lab},{s!r}\n")
    with open(os.path.join(out, "scores.json"), "w") as f:
        json.dump({k: c[k] for k in ("auroc", "ap", "f1_max")} | {"n_pos": int(sum(c["labels"])),
                                                                  "n_neg": len(c["labels"]) - int(sum(c["labels"]))}, f)


def write_bootstrap(out):
    rng = np.random.default_rng(77)
    labels, scores = image_case(rng, 240, 0.25, 0)
    pos, neg = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    aucs = []
    for _ in range(4000):
        idx = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
        aucs.append(roc_auc_score(labels[idx], scores[idx]))
    lo, hi = np.percentile(aucs, [2.5, 97.5])
    with open(os.path.join(out, "bootstrap.json"), "w") as f:
        json.dump({"labels": labels.tolist(), "scores": scores.tolist(), "lo": float(lo), "hi": float(hi),
                   "auroc": float(roc_auc_score(labels, scores))}, f)


def blob_masks(rng, n, h, w):
    masks = np.zeros((n, h, w), dtype=np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    for i in range(n):
        if i % 3 == 0:
            continue  # a third of the images are normal
        for _ in range(rng.integers(1, 4)):
            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
            ry, rx = rng.uniform(1.0, h / 5), rng.uniform(1.0, w / 5)
            masks[i][((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = 1
        # Pixels that touch a blob only diagonally, and isolated single pixels: 8- vs 4-connectivity.
        y, x = rng.integers(1, h - 2), rng.integers(1, w - 2)
        masks[i, y, x] = 1
        masks[i, y + 1, x + 1] = 1
        masks[i, rng.integers(0, h), rng.integers(0, w)] = 1
    return masks


def pixel_maps(rng, masks, levels, offset, scale):
    n, h, w = masks.shape
    noise = ndimage.gaussian_filter(rng.normal(size=(n, h, w)), sigma=(0, 1.5, 1.5))
    soft = ndimage.gaussian_filter(masks.astype(float), sigma=(0, 2, 2))
    maps = noise / noise.std() * 0.5 + 1.5 * soft
    if levels:
        maps = np.round(maps * levels) / levels
    return (offset + scale * maps).astype(np.float32)


def mvtec_aupro(maps, masks, limit=0.3):
    """MVTec AD evaluation code: exact thresholds over all sorted scores, trapezoid to `limit`, / limit."""
    fp_changes, pro_changes = [], []
    n_ok, n_regions = 0, 0
    for m in masks:
        labeled, k = ndimage.label(m, structure=STRUCT8)
        n_regions += k
        ok = labeled == 0
        n_ok += ok.sum()
        pc = np.zeros(m.shape)
        for r in range(1, k + 1):
            region = labeled == r
            pc[region] = 1.0 / region.sum()
        fp_changes.append(ok.astype(np.float64))
        pro_changes.append(pc)
    scores = maps.astype(np.float64).ravel()
    order = np.argsort(scores, kind="stable")[::-1]
    s = scores[order]
    fprs = np.cumsum(np.concatenate([f.ravel() for f in fp_changes])[order]) / n_ok
    pros = np.cumsum(np.concatenate([p.ravel() for p in pro_changes])[order]) / n_regions
    keep = np.append(np.diff(s) != 0, True)
    fprs = np.concatenate([[0.0], np.clip(fprs[keep], None, 1.0)])
    pros = np.concatenate([[0.0], np.clip(pros[keep], None, 1.0)])
    return trapezoid(fprs, pros, limit) / limit


def trapezoid(x, y, x_max):
    # MVTec's generic_util.trapezoid with x_max: cut the last segment by linear interpolation.
    correction = 0.0
    if x_max not in x:
        ins = bisect(x, x_max)
        assert 0 < ins < len(x)
        y_interp = y[ins - 1] + (y[ins] - y[ins - 1]) * (x_max - x[ins - 1]) / (x[ins] - x[ins - 1])
        correction = 0.5 * (y_interp + y[ins - 1]) * (x_max - x[ins - 1])
    mask = x <= x_max
    x, y = x[mask], y[mask]
    return float(np.sum(0.5 * (y[1:] + y[:-1]) * (x[1:] - x[:-1])) + correction)


def anomalyclip_aupro(maps, masks, max_step=200, expect_fpr=0.3):
    """AnomalyCLIP metrics.py cal_pro_score (from cflow-ad), regions from scipy (8-connected)."""
    amaps = maps.astype(np.float64)
    min_th, max_th = amaps.min(), amaps.max()
    delta = (max_th - min_th) / max_step
    region_lists = []
    for m in masks:
        labeled, k = ndimage.label(m, structure=STRUCT8)
        region_lists.append([labeled == r for r in range(1, k + 1)])
    inverse = 1 - masks
    pros, fprs = [], []
    for th in np.arange(min_th, max_th, delta):
        binary = amaps > th
        pro = [binary[i][reg].sum() / reg.sum() for i, regs in enumerate(region_lists) for reg in regs]
        fprs.append(np.logical_and(inverse, binary).sum() / inverse.sum())
        pros.append(np.mean(pro))
    pros, fprs = np.array(pros), np.array(fprs)
    idx = fprs < expect_fpr
    fprs = fprs[idx]
    fprs = (fprs - fprs.min()) / (fprs.max() - fprs.min())
    return float(auc(fprs, pros[idx]))


def pixel_reference(maps, masks):
    gt, pr = (masks.ravel() > 0).astype(np.uint8), maps.astype(np.float64).ravel()
    labels = (masks.reshape(len(masks), -1).max(axis=1) > 0).astype(np.uint8)
    img = maps.reshape(len(maps), -1).max(axis=1).astype(np.float64)
    return {
        "auroc": float(roc_auc_score(gt, pr)),
        "ap": float(average_precision_score(gt, pr)),
        "f1_max": f1_max(gt, pr),
        "aupro": mvtec_aupro(maps, masks),
        "aupro_ac200": anomalyclip_aupro(maps, masks),
        "n_regions": int(sum(ndimage.label(m, structure=STRUCT8)[1] for m in masks)),
        "image_auroc": float(roc_auc_score(labels, img)),
        "image_ap": float(average_precision_score(labels, img)),
        "image_f1_max": f1_max(labels, img),
    }


def write_pixel_case(path, maps, masks, ref, classes=None):
    with h5py.File(path, "w") as f:
        f["maps"] = maps
        f["masks"] = masks
        f["labels8"] = np.stack([ndimage.label(m, structure=STRUCT8)[0] for m in masks]).astype(np.int32)
        if classes is not None:
            f["classes"] = np.array(classes, dtype="S")  # fixed-length ASCII
        for k, v in ref.items():
            f.attrs[k] = v
    if classes is not None:  # the same with variable-length UTF-8 strings, as h5py writes str lists
        with h5py.File(path.replace(".h5", "_vlen.h5"), "w") as f:
            f["maps"] = maps
            f["masks"] = masks
            f.create_dataset("classes", data=classes, dtype=h5py.string_dtype())


M64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def splitmix64(state):
    """common/rng.h rng_splitmix64: (next state, output)."""
    state = (state + GOLDEN) & M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return state, z ^ (z >> 31)


def boot_stream(seed, class_index):
    return splitmix64((seed + class_index * GOLDEN) & M64)[1]


def boot_draw(state, labels):
    """One resample's draw counts: the anomalous images drawn among themselves, then the normal ones."""
    counts = np.zeros(len(labels), dtype=np.int64)
    for want in (1, 0):
        members = np.flatnonzero(labels == want)
        m = len(members)
        for _ in range(m):
            state, x = splitmix64(state)
            counts[members[(x * m) >> 64]] += 1
    return state, counts


BOOT_METRICS = ["image.auroc", "image.ap", "image.f1_max", "pixel.auroc", "pixel.ap", "pixel.f1_max", "pixel.aupro"]


def resample_metrics(maps, masks, counts):
    idx = np.repeat(np.arange(len(maps)), counts)  # image i counted counts[i] times, its pixels together
    m, k = maps[idx], masks[idx]
    labels = (k.reshape(len(k), -1).max(axis=1) > 0).astype(np.uint8)
    img = m.reshape(len(m), -1).max(axis=1).astype(np.float64)
    gt, pr = (k.ravel() > 0).astype(np.uint8), m.astype(np.float64).ravel()
    return {"image.auroc": float(roc_auc_score(labels, img)), "image.ap": float(average_precision_score(labels, img)),
            "image.f1_max": f1_max(labels, img), "pixel.auroc": float(roc_auc_score(gt, pr)),
            "pixel.ap": float(average_precision_score(gt, pr)), "pixel.f1_max": f1_max(gt, pr),
            "pixel.aupro": mvtec_aupro(m, k)}


def write_cluster_bootstrap(out, classes, seed=2024, n_resamples=60):
    """classes: [(name, maps, masks)] in class order (class index = stream)."""
    result = {"seed": seed, "resamples": n_resamples, "classes": {}, "class_order": [c[0] for c in classes]}
    for c, (name, maps, masks) in enumerate(classes):
        labels = (masks.reshape(len(masks), -1).max(axis=1) > 0).astype(np.uint8)
        state = boot_stream(seed, c)
        samples = {k: [] for k in BOOT_METRICS}
        draws = []
        for _ in range(n_resamples):
            state, counts = boot_draw(state, labels)
            draws.append(counts.tolist())
            for k, v in resample_metrics(maps, masks, counts).items():
                samples[k].append(v)
        result["classes"][name] = {"samples": samples, "draws": draws[:3],
                                   "ci": {k: np.percentile(v, [2.5, 97.5]).tolist() for k, v in samples.items()}}
    mean = {k: np.mean([result["classes"][n]["samples"][k] for n in result["class_order"]], axis=0).tolist()
            for k in BOOT_METRICS}
    result["mean"] = {"samples": mean, "ci": {k: np.percentile(v, [2.5, 97.5]).tolist() for k, v in mean.items()}}
    with open(os.path.join(out, "cluster_bootstrap.json"), "w") as f:
        json.dump(result, f)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    write_image_cases(out)
    write_bootstrap(out)
    h, w = 40, 52
    cases = {}
    for name, seed, levels, offset, scale in [("continuous", 1, 0, 0.0, 1.0), ("ties", 2, 6, 0.0, 1.0),
                                              ("shifted", 3, 0, -3.0, 0.01), ("coarse_ties", 4, 2, 0.5, 0.25)]:
        rng = np.random.default_rng(seed)
        masks = blob_masks(rng, 15, h, w)
        maps = pixel_maps(rng, masks, levels, offset, scale)
        ref = pixel_reference(maps, masks)
        write_pixel_case(os.path.join(out, f"pixel_{name}.h5"), maps, masks, ref)
        cases[name] = (maps, masks, ref)
    # Two classes in one file: per class, then the unweighted mean.
    (ma, ka, ra), (mb, kb, rb) = cases["continuous"], cases["ties"]
    mean = {k: (ra[k] + rb[k]) / 2 for k in ("auroc", "ap", "f1_max", "aupro", "aupro_ac200", "image_auroc")}
    write_pixel_case(os.path.join(out, "classes.h5"), np.concatenate([ma, mb]), np.concatenate([ka, kb]),
                     {f"mean_{k}": v for k, v in mean.items()}, classes=["bottle"] * len(ma) + ["wood"] * len(mb))
    write_cluster_bootstrap(out, [("bottle", ma, ka), ("wood", mb, kb)])


if __name__ == "__main__":
    main()

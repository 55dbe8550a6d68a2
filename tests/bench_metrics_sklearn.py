#!/usr/bin/env python3
"""scikit-learn side of tests/bench_metrics.sh: pixel AUROC, AP (sklearn) and AUPRO (the MVTec reference
way, exact thresholds, scipy 8-connected regions, as tests/ref_metrics.py) over maps [N,H,W] + masks in an
HDF5 file. Prints one JSON line with the values, the seconds each took and the peak RSS."""
import json
import os
import resource
import sys
import time

import h5py
import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_metrics import mvtec_aupro  # noqa: E402


def main():
    with h5py.File(sys.argv[1], "r") as f:
        maps, masks = f["maps"][()], f["masks"][()]
    gt, pr = masks.ravel(), maps.ravel()
    out = {"n_images": len(maps), "pixels": int(gt.size)}
    t = time.perf_counter()
    out["auroc"] = float(roc_auc_score(gt, pr))
    out["seconds_auroc"] = time.perf_counter() - t
    t = time.perf_counter()
    out["ap"] = float(average_precision_score(gt, pr))
    out["seconds_ap"] = time.perf_counter() - t
    t = time.perf_counter()
    out["aupro"] = mvtec_aupro(maps, masks)
    out["seconds_aupro"] = time.perf_counter() - t
    out["seconds_total"] = out["seconds_auroc"] + out["seconds_ap"] + out["seconds_aupro"]
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps(out))


if __name__ == "__main__":
    main()

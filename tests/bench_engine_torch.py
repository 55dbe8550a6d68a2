"""PyTorch peer for `make bench`: the Hugging Face-semantics vision tower (tests/ref_clip.py modules) in float32
with Debian's torch, answering "vision B N" lines on stdin with "vision B SECONDS_PER_FORWARD", "rss" with the
peak RSS in kB. Usage: bench_engine_torch.py MODEL_DIR IMAGE_SIZE THREADS"""
import os, resource, sys, time
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_engine_models import VisionTower  # noqa: E402

model_dir, S, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
torch.set_num_interop_threads(1)
m = VisionTower(model_dir)
g = torch.Generator().manual_seed(7)
print("ready", flush=True)
for line in sys.stdin:
    parts = line.split()
    if parts and parts[0] == "rss":
        print("rss %d" % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, flush=True)
    elif len(parts) == 3 and parts[0] == "vision":
        B, n = int(parts[1]), int(parts[2])
        x = torch.rand(B, 3, S, S, generator=g) * 2 - 1
        with torch.inference_mode():
            t = time.perf_counter()
            for _ in range(n):
                m(x)
            dt = (time.perf_counter() - t) / n
        print("vision %d %.6f" % (B, dt), flush=True)
    else:
        print("error unknown request", flush=True)

"""`make bench` for the CPU engine: the vision tower against OpenBLAS SGEMM, PyTorch and ONNX Runtime, measured
interleaved in one run on the same machine (the peers run side by side as servers, each asked in turn, so load from
elsewhere hits them alike), plus the ViT-L/14-336 memory check at 518 px.

Usage: /usr/bin/python3 tests/bench_engine.py  (from the repository root; env THREADS (2), ROUNDS (3))
Needs build/tests/bench_engine (make) and writes its random checkpoints under build/bench/.
"""
import os, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import bench_engine_models  # noqa: E402

THREADS = int(os.environ.get("THREADS", "2"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
BENCH = os.path.join(ROOT, "build", "bench")
ORT_DIR = os.path.join(ROOT, "build", "ort")
ENGINE = os.path.join(ROOT, "build", "tests", "bench_engine")


def vision_gflop(cfg, S):
    """FLOPs (2 x MAC) of one image through the vision tower: patch GEMM, per layer q|k|v, attention, out_proj,
    MLP, and the projection of the class token."""
    v = cfg["vision_config"]
    W, Wm, L, p = v["hidden_size"], v["intermediate_size"], v["num_hidden_layers"], v["patch_size"]
    g = S // p
    T = g * g + 1
    per_layer = 2 * T * W * 3 * W + 4 * T * T * W + 2 * T * W * W + 4 * T * W * Wm
    return (2 * g * g * 3 * p * p * W + L * per_layer + 2 * W * cfg["projection_dim"]) / 1e9, T


class Worker:
    def __init__(self, name, cmd, env=None):
        self.name = name
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env=env, cwd=ROOT)
        line = self.p.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError("%s did not start: %s %s" % (name, line, self.p.stderr.read()[-2000:]))

    def ask(self, req):
        self.p.stdin.write(req + "\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline().split()
        if not line or line[0] == "error":
            raise RuntimeError("%s: %r -> %r %s" % (self.name, req, line, self.p.stderr.read()[-2000:]))
        return float(line[-1])

    def close(self):
        self.p.stdin.close()
        self.p.wait()


def ensure_ort():
    """onnxruntime-node in build/ort (npm install --ignore-scripts); None, or the reason it is unavailable."""
    if os.path.exists(os.path.join(ORT_DIR, "node_modules", "onnxruntime-node", "package.json")):
        return None
    os.makedirs(ORT_DIR, exist_ok=True)
    try:
        r = subprocess.run(["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund", "onnxruntime-node"],
                           cwd=ORT_DIR, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as e:
        return "npm install --ignore-scripts onnxruntime-node failed: %s" % e
    if r.returncode != 0:
        return "npm install --ignore-scripts onnxruntime-node failed (exit %d): %s" % (
            r.returncode, (r.stderr or r.stdout).strip().splitlines()[-1:])
    return None


def main():
    bench_engine_models.main(BENCH)
    import json
    b16 = os.path.join(BENCH, "vit_b16")
    cfg = json.load(open(os.path.join(b16, "config.json")))
    S = cfg["vision_config"]["image_size"]
    gflop, T = vision_gflop(cfg, S)
    env = dict(os.environ, OMP_NUM_THREADS=str(THREADS))
    workers = {"engine": Worker("engine", [ENGINE, "serve", b16, str(S)], env)}
    if os.environ.get("PEERS", "pytorch,onnxruntime").find("pytorch") >= 0:
        workers["pytorch"] = Worker("pytorch", ["/usr/bin/python3", "tests/bench_engine_torch.py", b16, str(S),
                                                str(THREADS)], env)
    ort_missing = ensure_ort()
    if ort_missing is None and "onnxruntime" in os.environ.get("PEERS", "pytorch,onnxruntime"):
        workers["onnxruntime"] = Worker("onnxruntime", ["node", "tests/bench_engine_ort.js", ORT_DIR,
                                                        os.path.join(b16, "vision.onnx"), str(S), str(THREADS)], env)
    names = list(workers)
    print("vision tower ViT-B/16 @ %d px (%d tokens, %.2f GFLOP/image), %d threads, %d rounds interleaved"
          % (S, T, gflop, THREADS, ROUNDS), flush=True)
    for w in workers.values():  # warm-up: first-touch of weights and buffers, allocator growth
        w.ask("vision 1 1")
        w.ask("vision 8 1")
    reps = {1: 4, 8: 1}
    secs = {(n, B): [] for n in names for B in reps}
    sgemm = {B: [] for B in reps}
    for r in range(ROUNDS):
        order = names[r % len(names):] + names[:r % len(names)]
        for B in reps:
            sgemm[B].append(workers["engine"].ask("sgemm %d 3" % B))
            for n in order:
                secs[(n, B)].append(workers[n].ask("vision %d %d" % (B, reps[B])))
            sgemm[B].append(workers["engine"].ask("sgemm %d 3" % B))
    text_step = workers["engine"].ask("text 2 2")
    rss = {n: workers[n].ask("rss") for n in names}
    for w in workers.values():
        w.close()

    med = statistics.median
    print("\n| batch | OpenBLAS SGEMM GFLOP/s (tower shapes) | engine GFLOP/s | engine / SGEMM | engine img/s |"
          " PyTorch img/s | engine / PyTorch | ONNX Runtime img/s | engine / ORT |")
    print("|---|---|---|---|---|---|---|---|---|")
    for B in reps:
        eng = [B / s for s in secs[("engine", B)]]
        pt = [B / s for s in secs[("pytorch", B)]] if "pytorch" in workers else eng
        sg = med(sgemm[B])
        # ratios per round (the peers ran back to back), then the median over rounds
        r_pt = med([e / p for e, p in zip(eng, pt)])
        row = "| %d | %.1f | %.1f | %.2f | %.2f | %.2f | %.2f |" % (
            B, sg, med(eng) * gflop, med(eng) * gflop / sg, med(eng), med(pt), r_pt)
        if "onnxruntime" in workers:
            ort = [B / s for s in secs[("onnxruntime", B)]]
            row += " %.2f | %.2f |" % (med(ort), med([e / o for e, o in zip(eng, ort)]))
        else:
            row += " n/a | n/a |"
        print(row)
    print("\nper-round images/s at batch 8: " + "; ".join(
        "%s %s" % (n, " ".join("%.2f" % (8 / s) for s in secs[(n, 8)])) for n in names))
    print("peak RSS (MB): " + ", ".join("%s %.0f" % (n, rss[n] / 1024) for n in names))
    print("text tower (B/16 text shape) prompt-learning step, 2 prompts x 77 tokens, forward + backward to the "
          "inputs: %.3f s" % text_step)
    if ort_missing:
        print("ONNX Runtime: not measured: %s" % ort_missing)

    if os.environ.get("SKIP_MEMORY"):
        return 0
    l14 = os.path.join(BENCH, "vit_l14_336")
    out = subprocess.run([ENGINE, "memory", l14, "518"], capture_output=True, text=True, env=env, cwd=ROOT)
    if out.returncode != 0:
        print("memory check failed: %s" % out.stderr.strip())
        return 1
    f = dict(kv.split("=") for kv in out.stdout.split()[1:])
    peak, file_kb, weights = int(f["peak_rss_kb"]), int(f["rss_file_kb"]), int(f["vision_weights_kb"])
    above = peak - weights
    print("\nViT-L/14-336 shape at 518 px (1370 tokens), 1 image, V-V from layer 6, stages 6/12/18/24: %.1f s; "
          "peak RSS %.0f MB, of it file-mapped %.0f MB; vision weights %.0f MB; peak RSS above the weights %.0f MB "
          "(limit 1024 MB): %s"
          % (float(f["seconds"]), peak / 1024, file_kb / 1024, weights / 1024, above / 1024,
             "ok" if above < 1024 * 1024 else "OVER"))
    # the same through the command, end to end (decode, resize, forward, HDF5): peak RSS of the process
    h5 = os.path.join(BENCH, "embed_518.h5")
    probe = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    cmd = ["/usr/bin/python3", "-c", probe, os.path.join(ROOT, "build", "kanoclip"), "embed", "--model", l14,
           "--out", h5, "--image-size", "518", "--layers", "6,12,18,24", "--vv-from", "6", "--image",
           os.path.join(BENCH, "image_518.png")]
    t = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if out.returncode != 0:
        print("kanoclip embed at 518 px failed: %s" % out.stderr.strip())
        return 1
    kb = int(out.stdout.split()[-1])
    print("kanoclip embed --image-size 518 --layers 6,12,18,24 --vv-from 6 (ViT-L/14-336 shape, one image): %.1f s, "
          "peak RSS %.0f MB, above the vision weights %.0f MB" % (time.time() - t, kb / 1024, (kb - weights) / 1024))
    return 0


if __name__ == "__main__":
    sys.exit(main())

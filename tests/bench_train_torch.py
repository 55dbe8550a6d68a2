"""The KAnoCLIP training step of tests/bench_train.c in PyTorch: the reference model of tests/ref_kanoclip.py (its
functions, unchanged) in float32 at the real sizes (ViT-L/14-336 widths: P 768, text tower 768 wide, 12 layers,
context 77; 37 x 37 grid, 4 stages, 518 px maps, lean Bi-CMCI with DAT attention, batch 8 of 8 classes), with
the method's defaults (bounded KD, updated text for the maps, spec initialisation) and torch.optim.Adam.

Usage: bench_train_torch.py [batch=8] [classes=8] [steps=1]; prints one line per step:
  torch step S: T s
and the peak memory (max RSS). The functions are taken from ref_kanoclip.py by parsing it, so that the module's
own fixture scenarios (tiny, float64) do not run.
"""
import ast, os, resource, sys, time

import torch

B = int(sys.argv[1]) if len(sys.argv) > 1 else 8
NCLS = int(sys.argv[2]) if len(sys.argv) > 2 else 8
STEPS = int(sys.argv[3]) if len(sys.argv) > 3 else 1

src_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ref_kanoclip.py")
tree = ast.parse(open(src_path).read())
ns = {}
exec(compile(ast.Module([n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))], []), src_path, "exec"), ns)
exec(compile(ast.Module([n for n in tree.body if isinstance(n, ast.FunctionDef)], []), src_path, "exec"), ns)

torch.set_default_dtype(torch.float32)
# the threads of the C side (omp_get_max_threads: OMP_NUM_THREADS, else one per CPU)
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count()))
gen = torch.Generator().manual_seed(12345)
P, TW, TL, TH, TMLP, CTX, VOCAB = 768, 768, 12, 12, 3072, 77, 49408
H, G, K, HG, WG, S, NST = 12, 3, 5, 37, 37, 518, 4
NCTX, RATIO = 12, 4
ns.update(P=P, TW=TW, TL=TL, TH=TH, TMLP=TMLP, CTX=CTX, VOCAB=VOCAB, H=H, G=G, K=K, HG=HG, WG=WG, S=S, NST=NST,
          B=B, NCLS=NCLS, NCTX=NCTX, RATIO=RATIO, KP=4, DEEP_DEPTH=9, NDEEP=4, N=HG * WG, HD=P // H, CG=P // G,
          R=P // RATIO, TAU=0.07, gen=gen, f32=lambda t: t.float(),
          CLASS_WORDS=[[1000 + c, 2000 + c] for c in range(NCLS)], STATE_WORDS=[500, 600], DOT=269)
rnd = ns["rnd"]

# frozen text tower, random (LayerNorm weights near 1), as tests/bench_train.c binds it
tt = {"text_model.embeddings.token_embedding.weight": rnd(VOCAB, TW, s=0.03),
      "text_model.embeddings.position_embedding.weight": rnd(CTX, TW, s=0.03),
      "text_model.final_layer_norm.weight": 1 + rnd(TW, s=0.05), "text_model.final_layer_norm.bias": rnd(TW, s=0.03),
      "text_projection.weight": rnd(P, TW, s=0.03)}
for l in range(TL):
    pre = "text_model.encoder.layers.%d." % l
    for part in ("q", "k", "v", "out"):
        tt[pre + "self_attn.%s_proj.weight" % part] = rnd(TW, TW, s=0.03)
        tt[pre + "self_attn.%s_proj.bias" % part] = rnd(TW, s=0.03)
    for n in ("layer_norm1", "layer_norm2"):
        tt[pre + n + ".weight"] = 1 + rnd(TW, s=0.05)
        tt[pre + n + ".bias"] = rnd(TW, s=0.03)
    tt[pre + "mlp.fc1.weight"], tt[pre + "mlp.fc1.bias"] = rnd(TMLP, TW, s=0.03), rnd(TMLP, s=0.03)
    tt[pre + "mlp.fc2.weight"], tt[pre + "mlp.fc2.bias"] = rnd(TW, TMLP, s=0.03), rnd(TW, s=0.03)

mask = torch.zeros(B, S, S)
for b in range(B):
    if b % 2:
        mask[b, 100:220, 150 + 20 * b:260 + 20 * b] = 1.0
ns.update(tt=tt, stage=rnd(B, NST, 1 + HG * WG, P), glob=rnd(B, P), mask=mask,
          label=torch.tensor([b % 2 for b in range(B)]), class_id=torch.tensor([b % NCLS for b in range(B)]),
          kb=rnd(NCLS, P), fixed_text=rnd(NCLS, 2, P))

cfg = dict(knpl=1, adapter=1, adapter_residual=0, bicmci=1, full=0, kd="bounded", updated_text=1)
p = ns["make_params"](cfg, "spec")
params = {k: v.clone().requires_grad_() for k, v in p.items()}
opt = torch.optim.Adam(params.values(), lr=1e-3, betas=(0.5, 0.999), eps=1e-8)
print("torch %s, %d threads; trainable parameters %.2f M" % (torch.__version__, torch.get_num_threads(),
      sum(v.numel() for v in params.values()) / 1e6))
for step in range(STEPS):
    t0 = time.perf_counter()
    opt.zero_grad()
    out = ns["run"](params, cfg)
    out["total"].backward()
    opt.step()
    dt = time.perf_counter() - t0
    print("torch step %d: %.2f s; loss %.4f" % (step + 1, dt, out["total"].item()), flush=True)
print("torch peak memory (max RSS): %.0f MB" % (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0))

"""Reference for the core ops (model/ops_core.c): random inputs, PyTorch outputs and gradients, as .npy files."""
import sys, os
import numpy as np
import torch

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
g = torch.Generator().manual_seed(1234)
def rnd(*shape):
    return torch.randn(*shape, generator=g, dtype=torch.float64)
def save(name, t):
    np.save(os.path.join(out, name + ".npy"), t.detach().numpy().astype(np.float32))

# matmul: y = x W^T + b
N, C, OC = 37, 48, 29
x, W, b, dy = rnd(N, C).requires_grad_(), rnd(OC, C).requires_grad_(), rnd(OC).requires_grad_(), rnd(N, OC)
y = x @ W.T + b
y.backward(dy)
for k, v in dict(mm_x=x, mm_w=W, mm_b=b, mm_dy=dy, mm_y=y, mm_dx=x.grad, mm_dw=W.grad, mm_db=b.grad).items():
    save(k, v)

# layernorm
N, C = 23, 40
x, w, b, dy = (rnd(N, C) * 3 + 1).requires_grad_(), rnd(C).requires_grad_(), rnd(C).requires_grad_(), rnd(N, C)
y = torch.nn.functional.layer_norm(x, (C,), w, b, 1e-5)
y.backward(dy)
for k, v in dict(ln_x=x, ln_w=w, ln_b=b, ln_dy=dy, ln_y=y, ln_dx=x.grad, ln_dw=w.grad, ln_db=b.grad).items():
    save(k, v)

# attention over packed qkv (B,T,3C), H heads; causal and full; and cross-attention Tq != Tk
def attn(q, k, v, H, causal):
    B, Tq, C = q.shape
    Tk = k.shape[1]
    hd = C // H
    qh = q.view(B, Tq, H, hd).transpose(1, 2)
    kh = k.view(B, Tk, H, hd).transpose(1, 2)
    vh = v.view(B, Tk, H, hd).transpose(1, 2)
    s = qh @ kh.transpose(-1, -2) / hd ** 0.5
    if causal:
        s = s.masked_fill(torch.triu(torch.ones(Tq, Tk, dtype=torch.bool), 1), float("-inf"))
    return (s.softmax(-1) @ vh).transpose(1, 2).reshape(B, Tq, C)

B, T, C, H = 2, 11, 32, 4
for causal in (0, 1):
    qkv = rnd(B, T, 3 * C).requires_grad_()
    dy = rnd(B, T, C)
    y = attn(qkv[..., :C], qkv[..., C:2 * C], qkv[..., 2 * C:], H, causal)
    y.backward(dy)
    tag = "attc" if causal else "attf"
    for k, v in {tag + "_qkv": qkv, tag + "_dy": dy, tag + "_y": y, tag + "_dqkv": qkv.grad}.items():
        save(k, v)
q, kv = rnd(B, 2, C).requires_grad_(), rnd(B, T, 2 * C).requires_grad_()
dy = rnd(B, 2, C)
y = attn(q, kv[..., :C], kv[..., C:], H, False)
y.backward(dy)
for k, v in dict(attx_q=q, attx_kv=kv, attx_dy=dy, attx_y=y, attx_dq=q.grad, attx_dkv=kv.grad).items():
    save(k, v)

# quickgelu
x = (rnd(1000) * 3).requires_grad_()
dy = rnd(1000)
y = x * torch.sigmoid(1.702 * x)
y.backward(dy)
for k, v in dict(qg_x=x, qg_dy=dy, qg_y=y, qg_dx=x.grad).items():
    save(k, v)

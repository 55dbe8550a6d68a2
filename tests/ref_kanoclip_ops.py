"""Reference for the KAnoCLIP extra ops (model/ops_extra.c): PyTorch (float64) and scipy outputs and gradients."""
import sys, os
import numpy as np
import torch
import torch.nn.functional as F
import scipy.ndimage

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)
g = torch.Generator().manual_seed(4321)
def rnd(*shape, s=1.0):
    return (torch.randn(*shape, generator=g, dtype=torch.float64) * s)
def save(name, t):
    if isinstance(t, torch.Tensor):
        t = t.detach().numpy()
    np.save(os.path.join(out, name + ".npy"), np.ascontiguousarray(t).astype(np.float32))
def leaf(t):
    # round through float32 so the C side sees exactly the reference's inputs
    return t.float().double().requires_grad_()

# gelu (erf), relu
x, dy = leaf(rnd(999, s=3)), rnd(999)
y = F.gelu(x); y.backward(dy)
for k, v in dict(gelu_x=x, gelu_dy=dy, gelu_y=y, gelu_dx=x.grad).items(): save(k, v)
x = leaf(rnd(999, s=3)); y = F.relu(x); y.backward(dy)
for k, v in dict(relu_x=x, relu_y=y, relu_dx=x.grad).items(): save(k, v)

# softmax over rows with a scale
x, dy = leaf(rnd(17, 9, s=2)), rnd(17, 9)
y = (x * 1.7).softmax(-1); y.backward(dy)
for k, v in dict(sm_x=x, sm_dy=dy, sm_y=y, sm_dx=x.grad).items(): save(k, v)

# l2 normalisation of rows
x, dy = leaf(rnd(13, 21)), rnd(13, 21)
y = x / x.norm(dim=-1, keepdim=True); y.backward(dy)
for k, v in dict(l2_x=x, l2_dy=dy, l2_y=y, l2_dx=x.grad).items(): save(k, v)

# grid_sample: map (H, W, C) channels-last; points (Np, 2) (x, y), some outside [-1, 1]
H, W, C, Np = 5, 7, 6, 40
for ac in (0, 1):
    m = leaf(rnd(H, W, C))
    grid = torch.rand(Np, 2, generator=g, dtype=torch.float64) * 2.6 - 1.3
    # keep points 0.02 px away from integer pixel coordinates, where bilinear sampling has kinks that a
    # finite difference (on the C side) would straddle
    size = torch.tensor([W, H], dtype=torch.float64)
    for _ in range(100):
        pix = (grid + 1) / 2 * (size - 1) if ac else ((grid + 1) * size - 1) / 2
        bad = ((pix - pix.round()).abs() < 0.02).any(1)
        if not bad.any():
            break
        grid[bad] += 0.013
    grid = leaf(grid)
    dy = rnd(Np, C)
    y = F.grid_sample(m.permute(2, 0, 1)[None], grid[None, None], mode="bilinear", padding_mode="zeros",
                      align_corners=bool(ac))[0, :, 0].T  # (Np, C)
    y.backward(dy)
    t = "gs%d_" % ac
    for k, v in {t + "x": m, t + "grid": grid, t + "dy": dy, t + "y": y, t + "dx": m.grad, t + "dgrid": grid.grad}.items():
        save(k, v)

# depthwise conv k=5 with bias, channels-last (H, W, C)
H, W, C, k = 6, 8, 5, 5
x, wt, b = leaf(rnd(H, W, C)), leaf(rnd(C, k * k)), leaf(rnd(C))
dy = rnd(H, W, C)
y = F.conv2d(x.permute(2, 0, 1)[None], wt.view(C, 1, k, k), b, padding=k // 2, groups=C)[0].permute(1, 2, 0)
y.backward(dy)
for kk, v in dict(dw_x=x, dw_w=wt, dw_b=b, dw_dy=dy, dw_y=y, dw_dx=x.grad, dw_dw=wt.grad, dw_db=b.grad).items():
    save(kk, v)

# bilinear upsampling of maps (B, h, w) -> (B, Ho, Wo)
B, h, w, Ho, Wo = 2, 5, 7, 23, 19
for ac in (0, 1):
    x = leaf(rnd(B, h, w)); dy = rnd(B, Ho, Wo)
    y = F.interpolate(x[:, None], size=(Ho, Wo), mode="bilinear", align_corners=bool(ac))[:, 0]
    y.backward(dy)
    t = "up%d_" % ac
    for kk, v in {t + "x": x, t + "dy": dy, t + "y": y, t + "dx": x.grad}.items(): save(kk, v)

# gaussian smoothing, scipy semantics (sigma 4, reflect, truncate 4), on a map smaller than the radius too
for name, (hh, ww) in dict(gauss_a=(40, 50), gauss_b=(9, 12)).items():
    x = np.random.default_rng(7).standard_normal((hh, ww)).astype(np.float32)
    save(name + "_x", x)
    save(name + "_y", scipy.ndimage.gaussian_filter(x, sigma=4))

# BCE with logits
x, yv = leaf(rnd(50, s=8)), (torch.rand(50, generator=g) > 0.5).double()
l = F.binary_cross_entropy_with_logits(x, yv); l.backward()
for kk, v in dict(bce_x=x, bce_t=yv, bce_l=l.reshape(1), bce_dx=x.grad).items(): save(kk, v)

# LeakyReLU (slope 0.01, MVFA-AD's adapters) and a scaled residual mix 0.8 a + 0.1 b
x, dy = leaf(rnd(999, s=3)), rnd(999)
y = F.leaky_relu(x, 0.01); y.backward(dy)
for kk, v in dict(lrelu_x=x, lrelu_dy=dy, lrelu_y=y, lrelu_dx=x.grad).items(): save(kk, v)
a, b, dy = leaf(rnd(301)), leaf(rnd(301)), rnd(301)
y = 0.8 * a + 0.1 * b; y.backward(dy)
for kk, v in dict(mix_a=a, mix_b=b, mix_dy=dy, mix_y=y, mix_da=a.grad, mix_db=b.grad).items(): save(kk, v)

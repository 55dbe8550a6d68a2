# Float16 oracle for the feature cache: numpy's IEEE binary16 rounding (round to nearest even) of random float32
# values over the whole half range (normals, subnormals, near the top), and an h5py-written float16 dataset the
# C reader must read back. Writes OUT/f16.h5.
import sys, os
import numpy as np
import h5py

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(20260129)
T, D = 37, 24  # one "stage" image: tokens x width
x = rng.standard_normal((T, D)).astype(np.float32)
x *= (10.0 ** rng.uniform(-7, 4.5, size=(T, D))).astype(np.float32)   # 1e-7 .. 3e4: subnormal to large
x[0, :4] = [65504.0, -65504.0, 6.1035156e-05, 5.9604645e-08]           # max, -max, min normal, min subnormal
with h5py.File(os.path.join(out, "f16.h5"), "w") as f:
    f["input"] = x
    f["expect"] = x.astype(np.float16).astype(np.float32)
    f.create_dataset("h5py_f16", data=x.astype(np.float16))

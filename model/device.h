// Where the engine runs: the CPU (the reference, always there) or a CUDA device. A binary built with CUDA
// (KANOCLIP_CUDA) still runs on a machine without a GPU; asking for CUDA there fails with a clear message.
// Config key `device: cpu|cuda`, command option `--device cpu|cuda`; `precision: fp32|tf32|bf16` picks the
// GEMM mode on the GPU (the CPU always computes in fp32).
#ifndef MODEL_DEVICE_H
#define MODEL_DEVICE_H

typedef enum { DEVICE_CPU = 0, DEVICE_CUDA = 1 } DeviceKind;

// fp32: plain fp32 arithmetic; tf32: TF32 tensor cores (10-bit mantissa inputs, fp32 accumulation);
// bf16: bf16 tensor cores (8-bit mantissa inputs, fp32 accumulation). Buffers stay fp32 in every mode.
typedef enum { GEMM_FP32 = 0, GEMM_TF32 = 1, GEMM_BF16 = 2 } GemmPrecision;

// 1 when this binary was built with CUDA.
int device_cuda_built(void);
// 1 when CUDA was built in and at least one CUDA device answers.
int device_available(void);
// One line for logs: "cpu", or "cuda: NVIDIA H200 (sm_90, 140 GB, 132 SMs)".
const char *device_describe(DeviceKind kind);

// Parses "cpu" or "cuda" and checks that the device can be used. -1 with err_set:
//   "CUDA was asked for, but this binary was built without CUDA (install the CUDA toolkit and rebuild)"
//   "CUDA was asked for, but no CUDA device found (cudaGetDeviceCount: <reason>)"
//   "unknown device 'x' (expected cpu or cuda)"
int device_select(const char *name, DeviceKind *out);

// Parses "fp32", "tf32" or "bf16". -1 with err_set naming the value.
int gemm_precision_parse(const char *name, GemmPrecision *out);
const char *gemm_precision_name(GemmPrecision p);
// The precision a device computes in when `asked` is configured: the CPU always fp32, CUDA the one asked for.
GemmPrecision gemm_precision_on(DeviceKind device, GemmPrecision asked);

#endif

// Shared by the .cu files of the CUDA op table: the stream, the sticky first failure, launch helpers and the
// warp reductions. Not a public header (model/cuda/ops_cuda.h is).
#ifndef MODEL_CUDA_CUDA_INTERNAL_CUH
#define MODEL_CUDA_CUDA_INTERNAL_CUH

#include <cuda_runtime.h>

// The stream every op runs on; 0 before cuda_ops_init.
cudaStream_t cuda_stream_(void);
// 1 when ops may run (initialised and no failure pending); otherwise records why (once) and returns 0.
int cuda_live_(const char *op);
// Records the first failure (printf-style) until cuda_ops_sync reports it.
void cuda_fail_(const char *fmt, ...);
// Checks the last launch; records "op: reason" on failure.
void cuda_after_launch_(const char *op);
// A device scratch buffer of at least `floats` floats, grown (never shrunk) and shared by ops that need one
// (slot 0: attention scores; slot 1: filter temporaries). NULL after recording a failure.
float *cuda_scratch_(int slot, size_t floats);

#define CUDA_LAUNCH(op, kernel, grid, block, smem, ...)                                                     \
    do {                                                                                                     \
        kernel<<<(grid), (block), (smem), cuda_stream_()>>>(__VA_ARGS__);                                    \
        cuda_after_launch_(op);                                                                              \
    } while (0)

static inline unsigned blocks_for(size_t n, unsigned threads) {
    size_t b = (n + threads - 1) / threads;
    return (unsigned)(b > 65535u * 16u ? 65535u * 16u : (b ? b : 1));  // grid-stride loops cover the rest
}

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

#define GRID_STRIDE(i, n) for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
                               i += (size_t)gridDim.x * blockDim.x)

#endif

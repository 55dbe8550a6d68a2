// SGEMM for the trainable heads and baselines: our own AVX-512 or AVX2 kernel where the CPU has it, OpenBLAS
// otherwise. OpenBLAS is built for many cores at once (DYNAMIC_ARCH) and picks its kernels from the CPU's model
// number; a CPU newer than the build gets the oldest kernels (Debian's 0.3.21 runs SSE3 "Prescott" code on Xeons
// that report a generic model name), while the instruction-set features we test here are what the CPU really has.
//
// The kernel is chosen once, at first use: AVX-512F if __builtin_cpu_supports says so, else AVX2 + FMA, else
// OpenBLAS; the environment variable KANOCLIP_GEMM=openblas|avx2|avx512 forces one (a kernel the CPU lacks falls
// back as above). Threads: the task pool's (task_pool.h; one thread when called inside a
// pool task or an OpenMP parallel region).
#ifndef MODEL_GEMM_H
#define MODEL_GEMM_H

#include <cblas.h>

typedef enum { GEMM_OPENBLAS = 0, GEMM_AVX2 = 1, GEMM_AVX512 = 2 } GemmKernel;

// C (M,N) = alpha · op(A) · op(B) + beta · C, all row-major, with the arguments of
// cblas_sgemm(CblasRowMajor, ta, tb, ...): op(A) (M,K) is A (M,K) (row stride lda) or A (K,M) transposed;
// op(B) (K,N) is B (K,N) (stride ldb) or B (N,K) transposed. beta = 0 never reads C.
void sgemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int M, int N, int K, float alpha, const float *A, int lda,
           const float *B, int ldb, float beta, float *C, int ldc);

// The same product on a named kernel (benches and tests compare kernels; a kernel the CPU lacks is replaced by
// the best one it has).
void sgemm_with(GemmKernel kern, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int M, int N, int K, float alpha,
                const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);

// Makes sgemm use kernel k from now on (a kernel the CPU lacks: the best it has); benches interleave kernels in
// one process with it. Not to be called while another thread is in sgemm.
void gemm_set_kernel(GemmKernel k);
// Floating-point operations (2·M·N·K) of every sgemm call so far, all threads (benches: the FLOPs of a step).
double gemm_flops(void);
// The kernel sgemm uses, its name ("avx512", "avx2", "openblas"), the best kernel the CPU supports (ignoring
// KANOCLIP_GEMM), and the core OpenBLAS chose for itself (openblas_get_corename).
GemmKernel gemm_kernel(void);
const char *gemm_kernel_name(GemmKernel k);
GemmKernel gemm_kernel_for_cpu(void);
const char *gemm_openblas_core(void);
// One line for logs: "GEMM: avx512 kernel (CPU: avx512f avx2 fma; OpenBLAS core: Haswell)".
const char *gemm_describe(void);

#endif

// Tasks for the loops of the towers and heads (GEMM tiles, attention blocks, LayerNorm rows), run by OpenMP's
// threads. Tasks are claimed one at a time from a shared counter rather than split ahead between threads: a
// thread that is descheduled (other processes on the machine) delays only the task it holds.
// Threads: OMP_NUM_THREADS (omp_get_max_threads() at first use). Inside a task, OpenMP regions and OpenBLAS
// calls run on one thread.
#ifndef MODEL_TASK_POOL_H
#define MODEL_TASK_POOL_H

#include <stddef.h>

typedef void (*task_fn)(void *ctx, int task);

// Runs fn(ctx, t) for t in [0, ntasks) on the pool and the calling thread; returns when all are done.
// Not reentrant: a task must not call task_pool_run (it then runs the inner tasks inline).
void task_pool_run(int ntasks, task_fn fn, void *ctx);
// Threads that take part (the caller included).
int task_pool_threads(void);
// Scratch memory private to the calling thread, at least `floats` long, kept between calls (never freed).
float *task_scratch(size_t floats);

#endif

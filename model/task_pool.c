// Task pool: the tasks of a run are claimed one at a time from an atomic counter by the threads of one OpenMP
// region. The threads are OpenMP's own, so the towers' and heads' other loops (OpenMP regions) and the pool never
// hold more runnable threads than OMP_NUM_THREADS: a second set of threads spinning beside OpenMP's would take
// cores from the GEMM tiles (measured: a tenth of the heads' training step went to spinning threads).
#include "model/task_pool.h"

#include <omp.h>
#include <stdatomic.h>
#include <stdlib.h>

static int pool_threads;  // omp_get_max_threads() at first use
static __thread int in_pool_task;

int task_pool_threads(void) {
    if (!pool_threads) {
        int t = omp_get_max_threads();
        pool_threads = t < 1 ? 1 : t;
    }
    return pool_threads;
}

void task_pool_run(int ntasks, task_fn fn, void *ctx) {
    if (ntasks <= 0) return;
    int threads = task_pool_threads();
    if (threads > ntasks) threads = ntasks;
    // inside a task or another parallel region: inline (OpenMP would run a nested region on one thread anyway)
    if (threads == 1 || in_pool_task || omp_in_parallel()) {
        for (int t = 0; t < ntasks; t++) fn(ctx, t);
        return;
    }
    _Atomic int next = 0;
    // Claimed, not split ahead: a thread descheduled by other processes delays only the task it holds. Inside the
    // region OpenMP runs nested regions (and OpenBLAS its calls) on one thread.
    #pragma omp parallel num_threads(threads)
    {
        in_pool_task = 1;
        for (int t; (t = atomic_fetch_add_explicit(&next, 1, memory_order_relaxed)) < ntasks;) fn(ctx, t);
        in_pool_task = 0;
    }
}

float *task_scratch(size_t floats) {
    static __thread float *buf;
    static __thread size_t cap;
    if (floats > cap) {
        free(buf);
        buf = malloc(sizeof(float) * floats);
        cap = buf ? floats : 0;
    }
    return buf;
}

// The task pool: every task runs exactly once per run, runs follow each other without leaking tasks between
// jobs, a task that calls the pool runs the inner tasks inline, and thread-private scratch is private.
#include <criterion/criterion.h>
#include <stdatomic.h>

#include "model/task_pool.h"

static _Atomic int hits[4096];

static void count(void *ctx, int t) {
    (void)ctx;
    atomic_fetch_add(&hits[t], 1);
}

Test(task_pool, each_task_once_over_many_runs) {
    cr_assert_geq(task_pool_threads(), 1);
    for (int run = 0; run < 300; run++) {
        int n = 1 + (run * 37) % 4096;
        for (int i = 0; i < n; i++) atomic_store(&hits[i], 0);
        task_pool_run(n, count, NULL);
        for (int i = 0; i < n; i++) cr_assert_eq(atomic_load(&hits[i]), 1, "run %d: task %d ran %d times", run, i,
                                                 atomic_load(&hits[i]));
    }
}

static _Atomic int inner_total;

static void inner(void *ctx, int t) {
    (void)ctx;
    (void)t;
    atomic_fetch_add(&inner_total, 1);
}

static void outer(void *ctx, int t) {
    (void)ctx;
    (void)t;
    task_pool_run(5, inner, NULL);
}

Test(task_pool, nested_runs_inline) {
    atomic_store(&inner_total, 0);
    task_pool_run(64, outer, NULL);
    cr_assert_eq(atomic_load(&inner_total), 64 * 5);
}

static void scratch_fill(void *ctx, int t) {
    long *sums = ctx;
    float *s = task_scratch(1000);
    for (int i = 0; i < 1000; i++) s[i] = (float)t;
    long sum = 0;
    for (int i = 0; i < 1000; i++) sum += (long)s[i];  // another thread writing here would change the sum
    sums[t] = sum;
}

Test(task_pool, scratch_is_private) {
    long sums[512];
    task_pool_run(512, scratch_fill, sums);
    for (int t = 0; t < 512; t++) cr_assert_eq(sums[t], 1000L * t);
}

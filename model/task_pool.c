// Task pool: persistent pthreads that claim tasks through one 64-bit atomic (job generation << 32 | next task),
// so a late worker can never claim a task of a job it did not see published.
#include "model/task_pool.h"

#include <omp.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

static struct {
    pthread_once_t once;
    int threads;                    // workers + the caller
    pthread_mutex_t mu;
    pthread_cond_t wake;
    _Atomic uint64_t claim;         // generation << 32 | next task index
    _Atomic int done;               // tasks finished in the current job
    _Atomic uint32_t generation;    // the job workers should look at
    int ntasks;
    task_fn fn;
    void *ctx;
    pthread_mutex_t run_mu;         // one job at a time
} pool = {.once = PTHREAD_ONCE_INIT, .mu = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER,
          .run_mu = PTHREAD_MUTEX_INITIALIZER};

static __thread int in_pool_task;

// Claims and runs tasks of generation gen until none is left; returns how many it ran.
static void work(uint32_t gen) {
    for (;;) {
        uint64_t v = atomic_load(&pool.claim);
        for (;;) {
            if ((uint32_t)(v >> 32) != gen || (int)(uint32_t)v >= pool.ntasks) return;
            if (atomic_compare_exchange_weak(&pool.claim, &v, v + 1)) break;
        }
        // the job cannot finish (and its fields cannot change) while this claimed task is pending
        in_pool_task = 1;
        pool.fn(pool.ctx, (int)(uint32_t)v);
        in_pool_task = 0;
        atomic_fetch_add(&pool.done, 1);
    }
}

static void *worker(void *arg) {
    (void)arg;
    omp_set_num_threads(1);  // OpenBLAS inside a task: one thread
    uint32_t seen = 0;
    for (;;) {
        // spin a little for the next job (back-to-back GEMMs), then sleep on the condition variable
        uint32_t gen = atomic_load(&pool.generation);
        for (int spin = 0; gen == seen && spin < 20000; spin++) {
            sched_yield();
            gen = atomic_load(&pool.generation);
        }
        if (gen == seen) {
            pthread_mutex_lock(&pool.mu);
            while ((gen = atomic_load(&pool.generation)) == seen) pthread_cond_wait(&pool.wake, &pool.mu);
            pthread_mutex_unlock(&pool.mu);
        }
        seen = gen;
        work(gen);
    }
    return NULL;
}

static void pool_init(void) {
    pool.threads = omp_get_max_threads();
    if (pool.threads < 1) pool.threads = 1;
    for (int i = 1; i < pool.threads; i++) {
        pthread_t t;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &a, worker, NULL) != 0) pool.threads = i;
        pthread_attr_destroy(&a);
        if (pool.threads == i) break;
    }
}

int task_pool_threads(void) {
    pthread_once(&pool.once, pool_init);
    return pool.threads;
}

void task_pool_run(int ntasks, task_fn fn, void *ctx) {
    if (ntasks <= 0) return;
    pthread_once(&pool.once, pool_init);
    if (pool.threads == 1 || ntasks == 1 || in_pool_task || omp_in_parallel()) {
        int saved = omp_get_max_threads();
        if (pool.threads > 1 && !in_pool_task) omp_set_num_threads(1);
        for (int t = 0; t < ntasks; t++) fn(ctx, t);
        if (pool.threads > 1 && !in_pool_task) omp_set_num_threads(saved);
        return;
    }
    pthread_mutex_lock(&pool.run_mu);
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);  // OpenBLAS calls in the caller's tasks: one thread
    uint32_t gen = atomic_load(&pool.generation) + 1;
    pool.fn = fn;
    pool.ctx = ctx;
    pool.ntasks = ntasks;
    atomic_store(&pool.done, 0);
    atomic_store(&pool.claim, (uint64_t)gen << 32);
    pthread_mutex_lock(&pool.mu);
    atomic_store(&pool.generation, gen);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.mu);
    work(gen);
    while (atomic_load(&pool.done) < ntasks) sched_yield();
    omp_set_num_threads(saved);
    pthread_mutex_unlock(&pool.run_mu);
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

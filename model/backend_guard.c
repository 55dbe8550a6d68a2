// The guard backend: the CPU ops over memory the host cannot touch outside a backend call. Its buffers lie in one
// reserved range of pages, each buffer on pages of its own, all PROT_NONE except the buffers an op or an explicit
// copy was handed, and only while it runs; so a host read or write of a backend buffer faults (SIGSEGV) where it
// happens, and so does an op reading past the buffer it was given. Every pointer an op receives must be the
// backend's (or NULL): a host buffer handed to an op aborts with the op and the argument named. What runs through
// it would run on a device that shares no memory with the host.
// Single-threaded callers (the heads' orchestration); the ops themselves may use threads inside the call.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/error.h"
#include "model/adam.h"
#include "model/backend.h"
#include "model/kanoclip_losses.h"
#include "model/ops.h"
#include "model/ops_baseline.h"
#include "model/ops_extra.h"
#include "model/ops_heads.h"
#include "model/ops_infer.h"

#define GUARD_RESERVE ((size_t)32 << 30)  // address space only (MAP_NORESERVE): pages are backed when written

static char *base;          // the reserved range
static size_t used;         // bytes handed out (page multiples), never reused
static size_t page;
static int depth;           // > 0 inside a call: the range is readable and writable
static long calls;
static struct { char *p; size_t bytes; } *blocks;  // live allocations, in address order
static size_t n_blocks, cap_blocks;
#define MAX_OPEN 24
static size_t open_blocks[MAX_OPEN];  // the blocks the current call may touch
static int n_open;
static const char *current; // the op being entered (for the messages)

static void die(const char *what, const char *name) {
    fprintf(stderr, "guard backend: %s: %s\n", current ? current : "?", what ? what : "");
    if (name) fprintf(stderr, "guard backend: argument '%s'\n", name);
    abort();
}

static int owns(const void *p) { return base && (const char *)p >= base && (const char *)p < base + used; }

// The block holding p (binary search over the address-ordered table), or -1.
static long block_of(const void *p) {
    size_t lo = 0, hi = n_blocks;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if ((const char *)p < blocks[mid].p) hi = mid;
        else if ((const char *)p >= blocks[mid].p + blocks[mid].bytes) lo = mid + 1;
        else return (long)mid;
    }
    return -1;
}

// A call starts: nothing open yet; its arguments then name the blocks it may touch (allow), and open() makes them
// readable and writable until leave().
static void enter(const char *op) {
    calls++;
    if (depth++ == 0) { current = op; n_open = 0; }
}

static void allow(const void *p, const char *name) {
    long k = block_of(p);
    if (k < 0) die("pointer into memory this backend does not hold (released?)", name);
    for (int i = 0; i < n_open; i++)
        if (open_blocks[i] == (size_t)k) return;
    if (n_open == MAX_OPEN) die("too many buffers in one call", name);
    open_blocks[n_open++] = (size_t)k;
}

static void open_all(void) {
    if (depth != 1) return;
    for (int i = 0; i < n_open; i++)
        if (mprotect(blocks[open_blocks[i]].p, blocks[open_blocks[i]].bytes, PROT_READ | PROT_WRITE)) die("mprotect failed", NULL);
}

static void leave(void) {
    if (--depth) return;
    for (int i = 0; i < n_open; i++)
        if (mprotect(blocks[open_blocks[i]].p, blocks[open_blocks[i]].bytes, PROT_NONE)) die("mprotect failed", NULL);
    n_open = 0;
}

// Each argument of an op: a float pointer must be the backend's (or NULL); scalars pass.
static void arg_ptr(const float *p, const char *name) {
    if (!p) return;
    if (!owns(p)) die("a host pointer was handed to an op (upload it first)", name);
    allow(p, name);
}
static void arg_scalar(double v, const char *name) { (void)v; (void)name; }
#define GUARD_ARG(x) _Generic((x), float *: arg_ptr, const float *: arg_ptr, default: arg_scalar)((x), #x);

#define FE_1(m, x) m(x)
#define FE_2(m, x, ...) m(x) FE_1(m, __VA_ARGS__)
#define FE_3(m, x, ...) m(x) FE_2(m, __VA_ARGS__)
#define FE_4(m, x, ...) m(x) FE_3(m, __VA_ARGS__)
#define FE_5(m, x, ...) m(x) FE_4(m, __VA_ARGS__)
#define FE_6(m, x, ...) m(x) FE_5(m, __VA_ARGS__)
#define FE_7(m, x, ...) m(x) FE_6(m, __VA_ARGS__)
#define FE_8(m, x, ...) m(x) FE_7(m, __VA_ARGS__)
#define FE_9(m, x, ...) m(x) FE_8(m, __VA_ARGS__)
#define FE_10(m, x, ...) m(x) FE_9(m, __VA_ARGS__)
#define FE_11(m, x, ...) m(x) FE_10(m, __VA_ARGS__)
#define FE_12(m, x, ...) m(x) FE_11(m, __VA_ARGS__)
#define FE_13(m, x, ...) m(x) FE_12(m, __VA_ARGS__)
#define FE_14(m, x, ...) m(x) FE_13(m, __VA_ARGS__)
#define FE_15(m, x, ...) m(x) FE_14(m, __VA_ARGS__)
#define FE_16(m, x, ...) m(x) FE_15(m, __VA_ARGS__)
#define FE_17(m, x, ...) m(x) FE_16(m, __VA_ARGS__)
#define FE_18(m, x, ...) m(x) FE_17(m, __VA_ARGS__)
#define FE_19(m, x, ...) m(x) FE_18(m, __VA_ARGS__)
#define FE_20(m, x, ...) m(x) FE_19(m, __VA_ARGS__)
#define FE_PICK(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16, _17, _18, _19, _20, N, ...) N
#define FOR_EACH_(m, ...)                                                                                          \
    FE_PICK(__VA_ARGS__, FE_20, FE_19, FE_18, FE_17, FE_16, FE_15, FE_14, FE_13, FE_12, FE_11, FE_10, FE_9, FE_8,  \
            FE_7, FE_6, FE_5, FE_4, FE_3, FE_2, FE_1)(m, __VA_ARGS__)
#define FOR_EACH(m, ...) FOR_EACH_(m, __VA_ARGS__)
#define UNPAREN(...) __VA_ARGS__

#define OP(name, params, args)                                                                                     \
    static void guard_##name params {                                                                              \
        enter(#name);                                                                                              \
        FOR_EACH(GUARD_ARG, UNPAREN args)                                                                          \
        open_all();                                                                                                \
        name args;                                                                                                 \
        leave();                                                                                                   \
    }
#include "model/backend_ops.def"
#undef OP

static float *guard_alloc(size_t n) {
    if (!base) {
        page = (size_t)sysconf(_SC_PAGESIZE);
        void *p = mmap(NULL, GUARD_RESERVE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) { err_set("guard backend: cannot reserve %zu GB of address space", GUARD_RESERVE >> 30); return NULL; }
        base = p;
    }
    size_t bytes = ((n ? n : 1) * sizeof(float) + page - 1) / page * page;
    if (used + bytes > GUARD_RESERVE) { err_set("guard backend: out of its %zu GB range", GUARD_RESERVE >> 30); return NULL; }
    if (n_blocks == cap_blocks) {
        size_t cap = cap_blocks ? 2 * cap_blocks : 64;
        void *nb = realloc(blocks, cap * sizeof *blocks);
        if (!nb) { err_set("guard backend: out of memory"); return NULL; }
        blocks = nb;
        cap_blocks = cap;
    }
    float *p = (float *)(base + used);  // fresh anonymous pages read as zero; appended in address order
    blocks[n_blocks].p = base + used;
    blocks[n_blocks++].bytes = bytes;
    used += bytes;
    return p;
}

// Freed pages go back to the system (they read as zero if touched again); their addresses are not reused, so a
// stale pointer still points into the range but at memory nobody owns.
static void guard_release(float *p) {
    if (!p) return;
    long k = block_of(p);
    if (k >= 0 && blocks[k].p == (char *)p) {
        madvise(blocks[k].p, blocks[k].bytes, MADV_DONTNEED);
        memmove(blocks + k, blocks + k + 1, (n_blocks - k - 1) * sizeof *blocks);
        n_blocks--;
        return;
    }
    current = "release";
    die("not a buffer this backend allocated (or released twice)", NULL);
}

// p .. p+n inside one of the backend's buffers, which the call may then touch.
static void check_range(const float *p, size_t n, const char *what) {
    if (!n) return;
    long k = block_of(p);
    if (k < 0 || (n && (const char *)(p + n) > blocks[k].p + blocks[k].bytes)) die("range outside the backend's buffers", what);
    allow(p, what);
}

static void guard_upload(float *dst, const float *src, size_t n) {
    enter("upload");
    check_range(dst, n, "dst");
    if (n && owns(src)) die("source is the backend's memory (use copy)", "src");
    open_all();
    memcpy(dst, src, n * sizeof(float));
    leave();
}

static void guard_download(float *dst, const float *src, size_t n) {
    enter("download");
    check_range(src, n, "src");
    if (n && owns(dst)) die("destination is the backend's memory (use copy)", "dst");
    open_all();
    memcpy(dst, src, n * sizeof(float));
    leave();
}

static void guard_copy(float *dst, const float *src, size_t n) {
    enter("copy");
    check_range(dst, n, "dst");
    check_range(src, n, "src");
    open_all();
    memmove(dst, src, n * sizeof(float));
    leave();
}

static void guard_zero(float *p, size_t n) {
    enter("zero");
    check_range(p, n, "p");
    open_all();
    memset(p, 0, n * sizeof(float));
    leave();
}

static int guard_sync(void) { return 0; }
static void guard_set_precision(GemmPrecision p) { (void)p; }

static const Backend GUARD = {
    .name = "guard", .device = DEVICE_CPU,
    .alloc = guard_alloc, .release = guard_release, .upload = guard_upload, .download = guard_download,
    .copy = guard_copy, .zero = guard_zero, .sync = guard_sync, .set_precision = guard_set_precision,
#define OP(name, params, args) .name = guard_##name,
#include "model/backend_ops.def"
#undef OP
};

const Backend *backend_guard(void) { return &GUARD; }
int backend_guard_owns(const void *p) { return owns(p); }
long backend_guard_calls(void) { return calls; }

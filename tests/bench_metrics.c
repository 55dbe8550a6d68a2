// Benchmark of the streaming pixel metrics (run by tests/bench_metrics.sh).
//   bench_metrics stream N [SEED]        generate N maps of 518x518 with masks (seeded), feed them to one
//                                        accumulator, print timings, peak RSS and the metrics as JSON
//   bench_metrics stream-par N [SEED]    the same, over images in parallel: one accumulator per OpenMP
//                                        thread, merged at the end (generation and metrics together)
//   bench_metrics write N FILE.h5 [SEED] write the first N maps of the same stream to HDF5 (maps, masks)
// Maps are generated one at a time and never stored, so the stream shows the accumulator's own memory.
#include <cjson/cJSON.h>
#include <hdf5.h>
#include <hdf5_hl.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "common/error.h"
#include "metrics/metrics.h"

enum { H = 518, W = 518 };

static uint64_t next_u64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double next_unit(uint64_t *s) { return (next_u64(s) >> 11) * 0x1.0p-53; }

// Image i of the stream: half the images have 1-3 elliptic defects; the map is a smooth background with
// noise plus a bump over each defect (and a few false bumps), clamped to [0, 1] like a probability map.
static void generate(uint64_t seed, int i, float *map /* (H,W) */, uint8_t *mask /* (H,W) */) {
    uint64_t s = seed * 1000003ull + (uint64_t)i * 7919ull + 1;
    memset(mask, 0, (size_t)H * W);
    double cy[4], cx[4], ry[4], rx[4], amp[4];
    int n_blobs = (i % 2) ? 1 + (int)(next_unit(&s) * 3) : 0, n_bumps = n_blobs + 1;
    for (int b = 0; b < n_bumps; b++) {
        cy[b] = next_unit(&s) * H;
        cx[b] = next_unit(&s) * W;
        ry[b] = 4 + next_unit(&s) * 40;
        rx[b] = 4 + next_unit(&s) * 40;
        amp[b] = b < n_blobs ? 0.25 + 0.4 * next_unit(&s) : 0.3 * next_unit(&s); // the last bump is false
    }
    double phase = next_unit(&s) * 6.28;
    uint64_t ns = next_u64(&s);
    for (int y = 0; y < H; y++) {
        for (int x = 0; x < W; x++) {
            double v = 0.25 + 0.08 * sin(0.02 * x + phase) * cos(0.015 * y) + 0.18 * next_unit(&ns);
            for (int b = 0; b < n_bumps; b++) {
                double dy = (y - cy[b]) / ry[b], dx = (x - cx[b]) / rx[b], d2 = dy * dy + dx * dx;
                if (d2 < 9) v += amp[b] * exp(-0.5 * d2);
                if (b < n_blobs && d2 <= 1) mask[(size_t)y * W + x] = 1;
            }
            map[(size_t)y * W + x] = (float)(v < 0 ? 0 : v > 1 ? 1 : v);
        }
    }
}

static double now(void) { return omp_get_wtime(); }

static long peak_rss_kb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static int stream(int n, uint64_t seed) {
    float *map = malloc((size_t)H * W * sizeof *map);
    uint8_t *mask = malloc((size_t)H * W);
    pixel_acc *acc = pixel_acc_create(0.0, 1.0, PIXEL_BINS_DEFAULT);
    if (!acc) { fprintf(stderr, "bench: %s\n", err_msg()); return 1; }
    double t_gen = 0, t_add = 0;
    for (int i = 0; i < n; i++) {
        double t0 = now();
        generate(seed, i, map, mask);
        double t1 = now();
        char item[32];
        snprintf(item, sizeof item, "map %d", i);
        if (pixel_acc_add(acc, item, map, H, W, mask, H, W)) { fprintf(stderr, "bench: %s\n", err_msg()); return 1; }
        t_add += now() - t1;
        t_gen += t1 - t0;
    }
    double t0 = now();
    pixel_metrics m;
    pixel_acc_compute(acc, &m);
    double t_compute = now() - t0;
    cJSON *o = pixel_metrics_json(&m);
    cJSON_AddNumberToObject(o, "seconds_generate", t_gen);
    cJSON_AddNumberToObject(o, "seconds_accumulate", t_add);
    cJSON_AddNumberToObject(o, "seconds_compute", t_compute);
    cJSON_AddNumberToObject(o, "peak_rss_mb", peak_rss_kb() / 1024.0);
    cJSON_AddNumberToObject(o, "threads", omp_get_max_threads());
    char *text = cJSON_PrintUnformatted(o);
    printf("%s\n", text);
    free(text);
    cJSON_Delete(o);
    pixel_acc_free(acc);
    free(map);
    free(mask);
    return 0;
}

static int stream_parallel(int n, uint64_t seed) {
    int nt = omp_get_max_threads(), failed = 0;
    pixel_acc **accs = calloc(nt, sizeof *accs);
    double t0 = now();
#pragma omp parallel
    {
        int t = omp_get_thread_num();
        float *map = malloc((size_t)H * W * sizeof *map);
        uint8_t *mask = malloc((size_t)H * W);
        accs[t] = pixel_acc_create(0.0, 1.0, PIXEL_BINS_DEFAULT);
        if (!accs[t]) failed = 1;
#pragma omp for schedule(dynamic, 4)
        for (int i = 0; i < n; i++) {
            if (failed) continue;
            generate(seed, i, map, mask);
            if (pixel_acc_add(accs[t], "map", map, H, W, mask, H, W)) failed = 1;
        }
        free(map);
        free(mask);
    }
    if (failed) { fprintf(stderr, "bench: accumulation failed\n"); return 1; }
    for (int t = 1; t < nt; t++) pixel_acc_merge(accs[0], accs[t]);
    pixel_metrics m;
    pixel_acc_compute(accs[0], &m);
    double wall = now() - t0;
    cJSON *o = pixel_metrics_json(&m);
    cJSON_AddNumberToObject(o, "seconds_wall", wall);
    cJSON_AddNumberToObject(o, "peak_rss_mb", peak_rss_kb() / 1024.0);
    cJSON_AddNumberToObject(o, "threads", nt);
    char *text = cJSON_PrintUnformatted(o);
    printf("%s\n", text);
    free(text);
    cJSON_Delete(o);
    for (int t = 0; t < nt; t++) pixel_acc_free(accs[t]);
    free(accs);
    return 0;
}

static int write_h5(int n, const char *path, uint64_t seed) {
    float *maps = malloc((size_t)n * H * W * sizeof *maps);
    uint8_t *masks = malloc((size_t)n * H * W);
    for (int i = 0; i < n; i++) generate(seed, i, maps + (size_t)i * H * W, masks + (size_t)i * H * W);
    hsize_t dims[3] = {(hsize_t)n, H, W};
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0 || H5LTmake_dataset_float(f, "maps", 3, dims, maps) < 0 ||
        H5LTmake_dataset(f, "masks", 3, dims, H5T_NATIVE_UINT8, masks) < 0) {
        fprintf(stderr, "bench: cannot write %s\n", path);
        return 1;
    }
    H5Fclose(f);
    free(maps);
    free(masks);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 3 && !strcmp(argv[1], "stream")) return stream(atoi(argv[2]), argc > 3 ? strtoull(argv[3], NULL, 10) : 1);
    if (argc >= 3 && !strcmp(argv[1], "stream-par")) return stream_parallel(atoi(argv[2]), argc > 3 ? strtoull(argv[3], NULL, 10) : 1);
    if (argc >= 4 && !strcmp(argv[1], "write")) return write_h5(atoi(argv[2]), argv[3], argc > 4 ? strtoull(argv[4], NULL, 10) : 1);
    fprintf(stderr, "usage: bench_metrics (stream | stream-par) N [SEED] | write N FILE.h5 [SEED]\n");
    return 2;
}

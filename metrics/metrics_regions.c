// 8-connected components of a binary mask, two passes with union-find (the ground-truth regions of AUPRO;
// the same components as scipy.ndimage.label with a 3x3 structure and skimage.measure.label's default).
#include "metrics/metrics.h"

static int32_t find_root(int32_t *parent, int32_t x) {
    while (parent[x] != x) {
        parent[x] = parent[parent[x]]; // path halving
        x = parent[x];
    }
    return x;
}

// Joins the sets of a and b, the smaller root becoming the root: every label's parent stays below it,
// which the flattening pass relies on. Returns the root.
static int32_t join(int32_t *parent, int32_t a, int32_t b) {
    a = find_root(parent, a);
    b = find_root(parent, b);
    if (a < b) { parent[b] = a; return a; }
    parent[a] = b;
    return b;
}

int regions_label8(const uint8_t *mask, int h, int w, int32_t *labels, int32_t *parent, int64_t *sizes) {
    int32_t next = 0;
    parent[0] = 0;
    // Pass 1: provisional labels from the already-visited neighbours W, NW, N, NE.
    for (int y = 0; y < h; y++) {
        const uint8_t *m = mask + (size_t)y * w;
        int32_t *l = labels + (size_t)y * w;
        const int32_t *up = y > 0 ? l - w : NULL;
        for (int x = 0; x < w; x++) {
            if (!m[x]) { l[x] = 0; continue; }
            int32_t lab = 0;
            int32_t nb[4] = {x > 0 ? l[x - 1] : 0, up && x > 0 ? up[x - 1] : 0, up ? up[x] : 0,
                             up && x + 1 < w ? up[x + 1] : 0};
            for (int k = 0; k < 4; k++) {
                if (!nb[k]) continue;
                lab = lab ? join(parent, lab, nb[k]) : find_root(parent, nb[k]);
            }
            if (!lab) {
                lab = ++next;
                parent[lab] = lab;
            }
            l[x] = lab;
        }
    }
    // Flatten (parent[l] < l for non-roots, so ascending order sees roots first), then number the roots
    // 1..n in raster order of their first pixel, stored negated so roots and children stay distinguishable.
    int32_t n = 0;
    for (int32_t i = 1; i <= next; i++) {
        if (parent[i] == i) parent[i] = -(++n);
        else parent[i] = parent[parent[i]]; // parent[i] < i is already numbered
    }
    for (int32_t i = 0; i <= n; i++) sizes[i] = 0;
    size_t npix = (size_t)h * w;
    for (size_t i = 0; i < npix; i++) {
        int32_t lab = labels[i] ? -parent[labels[i]] : 0;
        labels[i] = lab;
        sizes[lab]++;
    }
    return n;
}

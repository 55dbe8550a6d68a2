// Ground-truth masks at the model's input size as AnomalyCLIP makes them (PIL: convert('L') > 0, as 0/255,
// resize bilinear, ToTensor, > 0.5), checked against PIL itself on a random blob mask; and VisA's index masks,
// whose palette may map a defect index to black, read by their stored index.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "datasets/image_write.h"
#include "harness/run/exec_dataset.h"
#include "tmpdir.h"

static char tmp[64];
static void setup(void) {
    strcpy(tmp, "/tmp/kanoclip-mask-XXXXXX");
    cr_assert_not_null(mkdtemp(tmp));
}
static void teardown(void) { tmpdir_remove(tmp); }
TestSuite(experiment_mask, .init = setup, .fini = teardown, .timeout = 60);

// A one-sample view of a mask file under the given rule.
static int mask_of(const char *path, MaskRule rule, int S, uint8_t *out) {
    Dataset ds = {0};
    ds.mask_rule = rule;
    Sample s = {0};
    s.mask_path = (char *)path;
    s.image_path = (char *)path; // an image of the mask's own size
    s.label = 1;
    const Sample *sp = &s;
    ExecDataset d = {0};
    d.ds = &ds;
    d.n = 1;
    d.s = &sp;
    return exec_dataset_mask(&d, 0, S, out);
}

Test(experiment_mask, grey_rule_matches_pil_bilinear_then_half) {
    char cmd[2048];
    // Random blobs on a 53x37 mask with grey levels 0..255 (so "> 0" matters), and PIL's expected 32x32 result.
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"import numpy as np; from PIL import Image; r=np.random.RandomState(5); "
             "m=np.zeros((37,53),np.uint8); "
             "[m.__setitem__((slice(y,y+h),slice(x,x+w)), r.randint(1,256)) for y,x,h,w in r.randint(0,30,(6,4))]; "
             "Image.fromarray(m).save('%s/m.png'); "
             "g=np.array(Image.open('%s/m.png').convert('L'))>0; "
             "e=np.array(Image.fromarray((g*255).astype(np.uint8)).resize((32,32),Image.BILINEAR))/255.0>0.5; "
             "open('%s/e.txt','w').write(''.join('1' if v else '0' for v in e.ravel()))\"",
             tmp, tmp, tmp);
    cr_assert_eq(system(cmd), 0, "python reference failed");
    char p[128], *e;
    snprintf(p, sizeof p, "%s/e.txt", tmp);
    FILE *f = fopen(p, "r");
    cr_assert_not_null(f);
    e = calloc(2000, 1);
    cr_assert_eq(fread(e, 1, 1024, f), 1024);
    fclose(f);
    snprintf(p, sizeof p, "%s/m.png", tmp);
    uint8_t got[1024];
    cr_assert_eq(mask_of(p, MASK_GREY_NONZERO, 32, got), 1, "%s", err_msg());
    int diff = 0, ones = 0;
    for (int i = 0; i < 1024; i++) {
        diff += got[i] != (e[i] == '1');
        ones += got[i];
    }
    cr_assert_eq(diff, 0, "%d of 1024 pixels differ from PIL", diff);
    cr_assert(ones > 20 && ones < 1000, "degenerate mask (%d ones)", ones);
    free(e);
}

Test(experiment_mask, index_rule_reads_palette_indices) {
    char cmd[1024];
    // Palette PNG: index 0 and 1 both black; index 1 marks the defect (VisA's masks can look like this).
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"import numpy as np; from PIL import Image; m=np.zeros((16,16),np.uint8); "
             "m[4:8,2:10]=1; im=Image.fromarray(m,'P'); im.putpalette([0,0,0, 0,0,0]+[9]*762); im.save('%s/p.png')\"",
             tmp);
    cr_assert_eq(system(cmd), 0);
    char p[128];
    snprintf(p, sizeof p, "%s/p.png", tmp);
    uint8_t idx[256], grey[256];
    cr_assert_eq(mask_of(p, MASK_INDEX_NONZERO, 16, idx), 1, "%s", err_msg());
    cr_assert_eq(mask_of(p, MASK_GREY_NONZERO, 16, grey), 1, "%s", err_msg());
    int n_idx = 0, n_grey = 0;
    for (int i = 0; i < 256; i++) {
        n_idx += idx[i];
        n_grey += grey[i];
        cr_assert_eq(idx[i], (i / 16 >= 4 && i / 16 < 8 && i % 16 >= 2 && i % 16 < 10), "pixel %d", i);
    }
    cr_assert_eq(n_idx, 32);
    cr_assert_eq(n_grey, 0, "the grey rule sees the black palette entry as background");
}

Test(experiment_mask, normal_and_maskless_samples) {
    Dataset ds = {0};
    Sample s = {0};
    const Sample *sp = &s;
    ExecDataset d = {0};
    d.ds = &ds;
    d.n = 1;
    d.s = &sp;
    uint8_t out[64];
    memset(out, 7, sizeof out);
    cr_assert_eq(exec_dataset_mask(&d, 0, 8, out), 1, "a normal image has all-zero ground truth");
    for (int i = 0; i < 64; i++) cr_assert_eq(out[i], 0);
    s.label = 1;
    cr_assert_eq(exec_dataset_mask(&d, 0, 8, out), 0, "an anomalous image without a mask has no pixel truth");
    ds.image_level_only = 1;
    s.label = 0;
    cr_assert_eq(exec_dataset_mask(&d, 0, 8, out), 0, "image-level data has no pixel truth");
    s.mask_path = "/nonexistent/mask.png";
    s.label = 1;
    ds.image_level_only = 0;
    cr_assert_eq(exec_dataset_mask(&d, 0, 8, out), -1);
    cr_assert_not_null(strstr(err_msg(), "/nonexistent/mask.png"), "%s", err_msg());
}

// A mask of another size than its image is an error naming the mask, both sizes and the switch; with
// data.resize_masks it is resized to the evaluation size as before. JPEG and BMP images are probed too.
Test(experiment_mask, mask_of_another_size_stops_unless_resizing_is_on) {
    uint8_t px[40 * 30 * 3] = {0}, m[20 * 15] = {0};
    for (int i = 0; i < 20 * 15; i += 3) m[i] = 255;
    char img[128], jpg[128], bmp[128], mask[128];
    snprintf(img, sizeof img, "%s/img.png", tmp);
    snprintf(jpg, sizeof jpg, "%s/img.jpg", tmp);
    snprintf(bmp, sizeof bmp, "%s/img.bmp", tmp);
    snprintf(mask, sizeof mask, "%s/mask.png", tmp);
    cr_assert_eq(png_write(img, px, 40, 30, 3, 6), 0, "%s", err_msg());
    cr_assert_eq(jpeg_write(jpg, px, 40, 30, 3, 90), 0, "%s", err_msg());
    cr_assert_eq(png_write(mask, m, 20, 15, 1, 6), 0, "%s", err_msg());
    char cmd[512];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 -c \"from PIL import Image; Image.new('RGB',(40,30)).save('%s')\"", bmp);
    cr_assert_eq(system(cmd), 0, "python (PIL) failed writing a BMP");

    Dataset ds = {0};
    ds.mask_rule = MASK_GREY_NONZERO;
    Sample s = {0};
    s.mask_path = mask;
    s.label = 1;
    const Sample *sp = &s;
    ExecDataset d = {0};
    d.ds = &ds;
    d.n = 1;
    d.s = &sp;
    uint8_t out[16 * 16];
    const char *images[] = {img, jpg, bmp};
    for (int k = 0; k < 3; k++) {
        s.image_path = (char *)images[k];
        cr_assert_eq(exec_dataset_mask(&d, 0, 16, out), -1, "%s: a 20x15 mask of a 40x30 image was accepted", images[k]);
        const char *e = err_msg();
        cr_assert(strstr(e, mask) && strstr(e, images[k]) && strstr(e, "20x15") && strstr(e, "40x30") &&
                      strstr(e, "data.resize_masks"),
                  "%s", e);
        cr_assert_null(strchr(e, '\n'), "one line: %s", e);
    }
    d.resize_masks = 1;
    cr_assert_eq(exec_dataset_mask(&d, 0, 16, out), 1, "%s", err_msg());
    int ones = 0;
    for (int i = 0; i < 16 * 16; i++) ones += out[i];
    cr_assert(ones > 0 && ones < 16 * 16, "the resized mask keeps its defect (%d ones)", ones);
}

// Writes a synthetic dataset in a real layout:
//   mvtec: <class>/train/good/NNN.png, <class>/test/{good,<defect>}/NNN.png, <class>/ground_truth/<defect>/NNN_mask.png
//          (masks 0/255 grey PNG)
//   visa:  <class>/Data/Images/{Normal/NNNN.JPG, Anomaly/NNN.JPG}, <class>/Data/Masks/Anomaly/NNN.png (index masks:
//          0 background, k+1 for the class's k-th defect kind), split_csv/1cls.csv
// and optionally captions.csv (datasets/synth_caption.c) and meta.json, made by reading the written tree back with the dataset reader.
#include "datasets/synth_internal.h"
#include "datasets/dataset.h"
#include "datasets/image_write.h"
#include "common/error.h"
#include "common/fsutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ROLE_TRAIN = 0, ROLE_TEST_NORMAL = 1, ROLE_DEFECT0 = 2 }; // role of an image, part of its seed

typedef struct {
    int cls;          // class table index
    int role;         // ROLE_*, ROLE_DEFECT0 + k for the class's k-th defect
    int index;        // number within its seed stream
    char image[1024];
    char mask[1024];  // "" for normal images
    char caption[256];
} SynthJob;

static int job_defect(const SynthJob *j) { return j->role >= ROLE_DEFECT0 ? j->role - ROLE_DEFECT0 : -1; }

// Lists the images of the dataset (paths, seeds) without writing anything; also makes the folders.
static int plan_jobs(const SynthOptions *o, SynthJob **out, int *n_out, FILE *csv) {
    int visa = !strcmp(o->layout, "visa");
    int per_class = o->n_train_normal + o->n_test_normal + o->n_test_anomalous;
    SynthJob *jobs = calloc((size_t)o->n_classes * per_class + 1, sizeof *jobs);
    int n = 0;
    char dir[1024];
    for (int c = o->class_offset; c < o->class_offset + o->n_classes; c++) {
        const char *name = synth_class_name(c);
        int n_normal_written = 0; // VisA numbers all normal images of a class in one sequence
        for (int role = ROLE_TRAIN; role <= ROLE_TEST_NORMAL; role++) {
            int count = role == ROLE_TRAIN ? o->n_train_normal : o->n_test_normal;
            if (count == 0) continue;
            if (visa) snprintf(dir, sizeof dir, "%s/%s/Data/Images/Normal", o->out, name);
            else snprintf(dir, sizeof dir, "%s/%s/%s/good", o->out, name, role == ROLE_TRAIN ? "train" : "test");
            if (fs_mkdirs(dir) != 0) { free(jobs); return -1; }
            for (int i = 0; i < count; i++) {
                SynthJob *j = &jobs[n++];
                j->cls = c;
                j->role = role;
                j->index = i;
                if (visa) {
                    snprintf(j->image, sizeof j->image, "%s/%04d.JPG", dir, n_normal_written);
                    fprintf(csv, "%s,%s,normal,%s/Data/Images/Normal/%04d.JPG,\n", name,
                            role == ROLE_TRAIN ? "train" : "test", name, n_normal_written);
                    n_normal_written++;
                } else {
                    snprintf(j->image, sizeof j->image, "%s/%03d.png", dir, i);
                }
            }
        }
        int nd = synth_class_n_defects(c);
        for (int a = 0; a < o->n_test_anomalous; a++) {
            int k = a % nd, i = visa ? a : a / nd; // VisA: one Anomaly folder; MVTec: numbering per defect folder
            const char *dname = synth_defect_name(synth_class_defect(c, k));
            char mdir[1024];
            if (visa) {
                snprintf(dir, sizeof dir, "%s/%s/Data/Images/Anomaly", o->out, name);
                snprintf(mdir, sizeof mdir, "%s/%s/Data/Masks/Anomaly", o->out, name);
            } else {
                snprintf(dir, sizeof dir, "%s/%s/test/%s", o->out, name, dname);
                snprintf(mdir, sizeof mdir, "%s/%s/ground_truth/%s", o->out, name, dname);
            }
            if (fs_mkdirs(dir) != 0 || fs_mkdirs(mdir) != 0) { free(jobs); return -1; }
            SynthJob *j = &jobs[n++];
            j->cls = c;
            j->role = ROLE_DEFECT0 + k;
            j->index = a / nd;
            if (visa) {
                snprintf(j->image, sizeof j->image, "%s/%03d.JPG", dir, i);
                snprintf(j->mask, sizeof j->mask, "%s/%03d.png", mdir, i);
                fprintf(csv, "%s,test,anomaly,%s/Data/Images/Anomaly/%03d.JPG,%s/Data/Masks/Anomaly/%03d.png\n", name,
                        name, i, name, i);
            } else {
                snprintf(j->image, sizeof j->image, "%s/%03d.png", dir, i);
                snprintf(j->mask, sizeof j->mask, "%s/%03d_mask.png", mdir, i);
            }
        }
    }
    *out = jobs;
    *n_out = n;
    return 0;
}

static int write_meta(const SynthOptions *o) {
    DatasetType type = !strcmp(o->layout, "visa") ? DATASET_VISA : DATASET_MVTEC;
    Dataset *test = dataset_open(type, o->out, SPLIT_TEST, NULL);
    if (!test) return -1;
    Dataset *train = o->n_train_normal > 0 ? dataset_open(type, o->out, SPLIT_TRAIN, NULL) : NULL;
    int rc = (o->n_train_normal > 0 && !train) ? -1 : 0;
    if (rc == 0) {
        char *path = fs_join(o->out, "meta.json");
        rc = dataset_write_meta(test, train, path);
        free(path);
    }
    dataset_free(test);
    dataset_free(train);
    return rc;
}

int synth_write(const SynthOptions *o) {
    if (strcmp(o->layout, "mvtec") != 0 && strcmp(o->layout, "visa") != 0)
        return err_set("synth: layout '%s' (valid: mvtec visa)", o->layout);
    if (o->size < 16 || o->size > 8192) return err_set("synth: size %d out of range 16..8192", o->size);
    if (o->n_classes < 1 || o->class_offset < 0 || o->class_offset + o->n_classes > synth_n_classes())
        return err_set("synth: classes %d..%d out of the %d built-in classes", o->class_offset,
                       o->class_offset + o->n_classes - 1, synth_n_classes());
    if (o->n_test_normal < 0 || o->n_test_anomalous < 0 || o->n_train_normal < 0)
        return err_set("synth: image counts must be >= 0");
    if (fs_mkdirs(o->out) != 0) return -1;
    int visa = !strcmp(o->layout, "visa");
    char *csv_text = NULL;
    size_t csv_len = 0;
    FILE *csv = open_memstream(&csv_text, &csv_len);
    fprintf(csv, "object,split,label,image,mask\n");
    SynthJob *jobs = NULL;
    int n_jobs = 0;
    if (plan_jobs(o, &jobs, &n_jobs, csv) != 0) { fclose(csv); free(csv_text); return -1; }
    fclose(csv);

    int failed = 0;
    char first_error[1024] = "";
    size_t npix = (size_t)o->size * o->size;
#pragma omp parallel
    {
        uint8_t *img = malloc(npix * 3), *mask = malloc(npix), *clean = malloc(npix * 3);
#pragma omp for schedule(dynamic, 1)
        for (int i = 0; i < n_jobs; i++) {
            SynthJob *j = &jobs[i];
            int defect = job_defect(j);
            int kind = defect >= 0 ? (int)synth_class_defect(j->cls, defect) : -1;
            uint64_t seed = seed_mix(o->seed, (uint64_t)j->cls, (uint64_t)j->role, (uint64_t)j->index);
            synth_render(j->cls, seed, o->size, kind, img, clean, mask);
            if (o->write_captions) {
                SynthCaptionAttrs at;
                int has = kind >= 0 && synth_caption_attrs(o->size, img, clean, mask, &at) == 0;
                synth_caption(j->cls, has ? kind : -1, has ? &at : NULL, seed_mix(seed, 1, 2, 3), j->caption,
                              sizeof j->caption);
            }
            int rc = visa ? jpeg_write(j->image, img, o->size, o->size, 3, 95)
                          : png_write(j->image, img, o->size, o->size, 3, 1);
            if (rc == 0 && defect >= 0) {
                if (visa) // index mask: the defect's number within the class, as VisA's id2class
                    for (size_t p = 0; p < npix; p++) mask[p] = mask[p] ? (uint8_t)(defect + 1) : 0;
                rc = png_write(j->mask, mask, o->size, o->size, 1, 6);
            }
            if (rc != 0) {
#pragma omp critical(synth_error)
                if (!failed) { failed = 1; snprintf(first_error, sizeof first_error, "%s", err_msg()); }
            }
        }
        free(img);
        free(mask);
        free(clean);
    }
    int rc = 0;
    if (failed) rc = err_set("%s", first_error);
    if (rc == 0 && o->write_captions) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        fprintf(f, "image,caption\n");
        size_t skip = strlen(o->out) + 1;
        for (int i = 0; i < n_jobs; i++) fprintf(f, "%s,\"%s\"\n", jobs[i].image + skip, jobs[i].caption);
        fclose(f);
        char *path = fs_join(o->out, "captions.csv");
        rc = fs_write_atomic(path, text, len);
        free(path);
        free(text);
    }
    free(jobs);
    if (rc == 0 && visa) {
        char *dir = fs_join(o->out, "split_csv");
        char *path = fs_join(dir, "1cls.csv");
        rc = fs_mkdirs(dir);
        if (rc == 0) rc = fs_write_atomic(path, csv_text, csv_len);
        free(path);
        free(dir);
    }
    free(csv_text);
    if (rc == 0 && o->write_meta) rc = write_meta(o);
    return rc;
}

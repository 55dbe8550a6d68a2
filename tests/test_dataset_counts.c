// Trees with each dataset's official test counts (datasets reference §0, empty files) read by the readers and by
// the real `build/kanoclip dataset-info` command, whose JSON must give exactly those counts.
#include "tests/datasets_tree.h"
#include "datasets/dataset.h"

#include <cjson/cJSON.h>

typedef struct {
    const char *cls;
    int normal, anomalous, masks;
} Expect;

static void check(DatasetType type, const char *root, const Expect *want, int n_want) {
    int total_n = 0, total_a = 0;
    Dataset *ds = dataset_open(type, root, SPLIT_TEST, NULL);
    cr_assert_not_null(ds, "%s: %s", dataset_type_name(type), err_msg());
    cr_assert_eq(ds->n_classes, n_want, "%s: %d classes, expected %d", dataset_type_name(type), ds->n_classes, n_want);
    for (int i = 0; i < n_want; i++) {
        const DatasetClass *c = NULL;
        for (int k = 0; k < ds->n_classes; k++)
            if (!strcmp(ds->classes[k].name, want[i].cls)) c = &ds->classes[k];
        cr_assert_not_null(c, "%s: class %s missing", dataset_type_name(type), want[i].cls);
        cr_assert_eq(c->n_normal, want[i].normal, "%s/%s normal %d", dataset_type_name(type), c->name, c->n_normal);
        cr_assert_eq(c->n_anomalous, want[i].anomalous, "%s/%s anomalous %d", dataset_type_name(type), c->name,
                     c->n_anomalous);
        cr_assert_eq(c->n_masks, want[i].masks, "%s/%s masks %d", dataset_type_name(type), c->name, c->n_masks);
        total_n += c->n_normal;
        total_a += c->n_anomalous;
    }
    cr_assert_eq(ds->n_samples, total_n + total_a);
    dataset_free(ds);

    // the command, through a shell, with the root quoted (it has a space)
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "build/kanoclip dataset-info --type %s --root '%s'", dataset_type_name(type), root);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    char out[1 << 16];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    cr_assert_eq(pclose(p), 0, "%s failed: %s", cmd, out);
    cJSON *doc = cJSON_Parse(out);
    cr_assert_not_null(doc, "not JSON: %s", out);
    cr_assert_str_eq(cJSON_GetObjectItem(doc, "type")->valuestring, dataset_type_name(type));
    const cJSON *classes = cJSON_GetObjectItem(doc, "classes");
    cr_assert_eq(cJSON_GetArraySize(classes), n_want);
    for (int i = 0; i < n_want; i++) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(classes, want[i].cls);
        cr_assert_not_null(c, "%s: class %s missing in %s", cmd, want[i].cls, out);
        cr_assert_eq(cJSON_GetObjectItem(c, "normal")->valueint, want[i].normal);
        cr_assert_eq(cJSON_GetObjectItem(c, "anomalous")->valueint, want[i].anomalous);
        cr_assert_eq(cJSON_GetObjectItem(c, "masks")->valueint, want[i].masks);
    }
    cJSON_Delete(doc);
}

// MVTec-style trees from "class:good:defect=n,defect=n" specs; mask_fmt makes the mask name from the image stem.
static void build_tree(const char *root, const char *const *specs, int n_specs, const char *normal, const char *ext,
                       const char *mask_suffix, const char *mask_ext, Expect *want) {
    for (int s = 0; s < n_specs; s++) {
        char spec[512], cls[128];
        snprintf(spec, sizeof spec, "%s", specs[s]);
        int good;
        char *save = NULL, *tok = strtok_r(spec, ":", &save);
        snprintf(cls, sizeof cls, "%s", tok);
        good = atoi(strtok_r(NULL, ":", &save));
        char *defects = strtok_r(NULL, ":", &save);
        for (int i = 0; i < good; i++) tree_touchf(root, "%s/test/%s/%03d%s", cls, normal, i, ext);
        int anomalous = 0;
        char *save2 = NULL;
        for (char *d = strtok_r(defects, ",", &save2); d; d = strtok_r(NULL, ",", &save2)) {
            char *eq = strchr(d, '=');
            *eq = '\0';
            int k = atoi(eq + 1);
            for (int i = 0; i < k; i++) {
                tree_touchf(root, "%s/test/%s/%03d%s", cls, d, i, ext);
                tree_touchf(root, "%s/ground_truth/%s/%03d%s%s", cls, d, i, mask_suffix, mask_ext);
            }
            anomalous += k;
        }
        want[s] = (Expect){strdup(cls), good, anomalous, anomalous};
    }
}

static const char *const mvtec_specs[] = {
    "bottle:20:broken_large=20,broken_small=22,contamination=21",
    "cable:58:bent_wire=13,cable_swap=12,combined=11,cut_inner_insulation=14,cut_outer_insulation=10,"
    "missing_cable=12,missing_wire=10,poke_insulation=10",
    "capsule:23:crack=23,faulty_imprint=22,poke=21,scratch=23,squeeze=20",
    "carpet:28:color=19,cut=17,hole=17,metal_contamination=17,thread=19",
    "grid:21:bent=12,broken=12,glue=11,metal_contamination=11,thread=11",
    "hazelnut:40:crack=18,cut=17,hole=18,print=17",
    "leather:32:color=19,cut=19,fold=17,glue=19,poke=18",
    "metal_nut:22:bent=25,color=22,flip=23,scratch=23",
    "pill:26:color=25,combined=17,contamination=21,crack=26,faulty_imprint=19,pill_type=9,scratch=24",
    "screw:41:manipulated_front=24,scratch_head=24,scratch_neck=25,thread_side=23,thread_top=23",
    "tile:33:crack=17,glue_strip=18,gray_stroke=16,oil=18,rough=15",
    "toothbrush:12:defective=30",
    "transistor:60:bent_lead=10,cut_lead=10,damaged_case=10,misplaced=10",
    "wood:19:color=8,combined=11,hole=10,liquid=10,scratch=21",
    "zipper:32:broken_teeth=19,combined=16,fabric_border=17,fabric_interior=16,rough=17,split_teeth=18,"
    "squeezed_teeth=16",
};

static int sum_field(const Expect *w, int n, int field) {
    int s = 0;
    for (int i = 0; i < n; i++) s += field == 0 ? w[i].normal : w[i].anomalous;
    return s;
}

Test(dataset_counts, mvtec_official_467_1258) {
    char *root = tree_tmpdir();
    Expect want[15];
    build_tree(root, mvtec_specs, 15, "good", ".png", "_mask", ".png", want);
    cr_assert_eq(sum_field(want, 15, 0), 467);
    cr_assert_eq(sum_field(want, 15, 1), 1258);
    check(DATASET_MVTEC, root, want, 15);
    tree_remove(root);
}

Test(dataset_counts, mpdd_official_176_282) {
    static const char *const specs[] = {
        "bracket_black:32:hole=12,scratches=35",
        "bracket_brown:26:bend_and_parts_mismatch=17,parts_mismatch=34",
        "bracket_white:30:defective_painting=13,scratches=17",
        "connector:30:parts_mismatch=14",
        "metal_plate:26:major_rust=14,scratches=34,total_rust=23",
        "tubes:32:anomalous=69",
    };
    char *root = tree_tmpdir();
    Expect want[6];
    build_tree(root, specs, 6, "good", ".png", "_mask", ".png", want);
    cr_assert_eq(sum_field(want, 6, 0), 176);
    cr_assert_eq(sum_field(want, 6, 1), 282);
    check(DATASET_MPDD, root, want, 6);
    tree_remove(root);
}

Test(dataset_counts, btad_official_451_290) {
    char *root = tree_tmpdir();
    char inner[4096];
    snprintf(inner, sizeof inner, "%s/BTech_Dataset_transformed", root);
    cr_assert_eq(fs_mkdirs(inner), 0);
    static const char *const s01[] = {"01:21:ko=49"}, *const s02[] = {"02:30:ko=200"}, *const s03[] = {"03:400:ko=41"};
    Expect want[3];
    build_tree(inner, s01, 1, "ok", ".bmp", "", ".png", &want[0]);
    build_tree(inner, s02, 1, "ok", ".png", "", ".png", &want[1]);
    build_tree(inner, s03, 1, "ok", ".bmp", "", ".bmp", &want[2]);
    cr_assert_eq(sum_field(want, 3, 0), 451);
    cr_assert_eq(sum_field(want, 3, 1), 290);
    check(DATASET_BTAD, root, want, 3);
    tree_remove(root);
}

Test(dataset_counts, sdd_286_54) {
    char *root = tree_tmpdir();
    static const char *const specs[] = {"SDD:286:defect=54"};
    Expect want[1];
    build_tree(root, specs, 1, "good", ".png", "_mask", ".png", want);
    check(DATASET_SDD, root, want, 1);
    tree_remove(root);
}

Test(dataset_counts, visa_official_962_1200) {
    static const struct { const char *obj; int train, normal, anomaly; } visa[] = {
        {"candle", 900, 100, 100}, {"capsules", 542, 60, 100}, {"cashew", 450, 50, 100},
        {"chewinggum", 453, 50, 100}, {"fryum", 450, 50, 100}, {"macaroni1", 900, 100, 100},
        {"macaroni2", 900, 100, 100}, {"pcb1", 904, 100, 100}, {"pcb2", 901, 100, 100},
        {"pcb3", 905, 101, 100}, {"pcb4", 904, 101, 100}, {"pipe_fryum", 450, 50, 100},
    };
    char *root = tree_tmpdir();
    size_t cap = 1 << 20, len = 0;
    char *csv = malloc(cap);
    len += snprintf(csv + len, cap - len, "object,split,label,image,mask\n");
    Expect want[12];
    int tn = 0, ta = 0;
    for (int c = 0; c < 12; c++) {
        // train rows only listed (their files are not needed for the test split), test rows backed by files
        for (int i = 0; i < visa[c].train; i++)
            len += snprintf(csv + len, cap - len, "%s,train,normal,%s/Data/Images/Normal/%04d.JPG,\n", visa[c].obj,
                            visa[c].obj, i);
        for (int i = 0; i < visa[c].normal; i++) {
            int k = visa[c].train + i;
            tree_touchf(root, "%s/Data/Images/Normal/%04d.JPG", visa[c].obj, k);
            len += snprintf(csv + len, cap - len, "%s,test,normal,%s/Data/Images/Normal/%04d.JPG,\n", visa[c].obj,
                            visa[c].obj, k);
        }
        for (int i = 0; i < visa[c].anomaly; i++) {
            tree_touchf(root, "%s/Data/Images/Anomaly/%03d.JPG", visa[c].obj, i);
            tree_touchf(root, "%s/Data/Masks/Anomaly/%03d.png", visa[c].obj, i);
            len += snprintf(csv + len, cap - len, "%s,test,anomaly,%s/Data/Images/Anomaly/%03d.JPG,%s/Data/Masks/Anomaly/%03d.png\n",
                            visa[c].obj, visa[c].obj, i, visa[c].obj, i);
        }
        want[c] = (Expect){visa[c].obj, visa[c].normal, visa[c].anomaly, visa[c].anomaly};
        tn += visa[c].normal;
        ta += visa[c].anomaly;
    }
    cr_assert_eq(tn, 962);
    cr_assert_eq(ta, 1200);
    tree_put(root, "split_csv/1cls.csv", csv);
    free(csv);
    check(DATASET_VISA, root, want, 12);
    tree_remove(root);
}

Test(dataset_counts, dagm_test_1054_defective_6996_normal) {
    static const int defective[10] = {71, 84, 84, 68, 80, 67, 150, 150, 150, 150};
    char *root = tree_tmpdir();
    Expect want[10];
    int tn = 0, ta = 0;
    static char names[10][16];
    for (int c = 0; c < 10; c++) {
        int total = c < 6 ? 575 : 1150;
        snprintf(names[c], sizeof names[c], "Class%d", c + 1);
        for (int i = 0; i < total; i++) {
            tree_touchf(root, "%s/Test/%04d.PNG", names[c], i + 1);
            if (i % (total / defective[c]) == 0 && i / (total / defective[c]) < defective[c])
                tree_touchf(root, "%s/Test/Label/%04d_label.PNG", names[c], i + 1);
        }
        tree_put(root, "Class1/Test/Label/Labels.txt", "index\n");
        want[c] = (Expect){names[c], total - defective[c], defective[c], defective[c]};
        tn += total - defective[c];
        ta += defective[c];
    }
    cr_assert_eq(ta, 1054);
    cr_assert_eq(tn, 6996);
    check(DATASET_DAGM, root, want, 10);
    tree_remove(root);
}

// MVFA medical layout: <folder>/test/{good/img, Ungood/img, Ungood/anomaly_mask}.
static void build_mvfa(const char *root, const char *folder, int normal, int anomalous) {
    for (int i = 0; i < normal; i++) tree_touchf(root, "%s/test/good/img/%d_%d.png", folder, i / 40, i % 40);
    for (int i = 0; i < anomalous; i++) {
        tree_touchf(root, "%s/test/Ungood/img/%d_%d.png", folder, i / 40, i % 40);
        tree_touchf(root, "%s/test/Ungood/anomaly_mask/%d_%d.png", folder, i / 40, i % 40);
    }
}

Test(dataset_counts, brainmri_liverct_resc_official) {
    char *root = tree_tmpdir();
    build_mvfa(root, "Brain_AD", 640, 3075);
    build_mvfa(root, "Liver_AD", 833, 660);
    build_mvfa(root, "Retina_RESC_AD", 1041, 764);
    Expect brain = {"brain", 640, 3075, 3075}, liver = {"liver", 833, 660, 660}, retina = {"retina", 1041, 764, 764};
    check(DATASET_BRAINMRI, root, &brain, 1);
    check(DATASET_LIVERCT, root, &liver, 1);
    check(DATASET_RESC, root, &retina, 1);
    tree_remove(root);
}

Test(dataset_counts, br35h_covid19_headct_image_level) {
    char *root = tree_tmpdir();
    for (int i = 0; i < 1500; i++) {
        tree_touchf(root, "Br35H/no/No%d.jpg", i);
        tree_touchf(root, "Br35H/yes/Y%d.jpg", i);
    }
    for (int i = 0; i < 60; i++) tree_touchf(root, "Br35H/pred/pred%d.jpg", i);
    // COVID-19 first release: 1341 normal, 219 COVID, 1345 viral pneumonia
    for (int i = 0; i < 1341; i++) tree_touchf(root, "COVID/NORMAL/NORMAL (%d).png", i + 1);
    for (int i = 0; i < 219; i++) tree_touchf(root, "COVID/COVID-19/COVID-19 (%d).png", i + 1);
    for (int i = 0; i < 1345; i++) tree_touchf(root, "COVID/Viral Pneumonia/Viral Pneumonia (%d).png", i + 1);
    char *csv = malloc(1 << 16);
    size_t len = snprintf(csv, 1 << 16, "id,hemorrhage\n");
    for (int i = 0; i < 200; i++) {
        tree_touchf(root, "head_ct/head_ct/%03d.png", i);
        len += snprintf(csv + len, (1 << 16) - len, "%d,%d\n", i, i < 100);
    }
    tree_put(root, "head_ct/labels.csv", csv);
    free(csv);
    char p[4096];
    Expect br35h = {"brain", 1500, 1500, 0}, covid = {"chest", 1341, 1564, 0}, headct = {"headct", 100, 100, 0};
    snprintf(p, sizeof p, "%s/Br35H", root);
    check(DATASET_BR35H, p, &br35h, 1);
    snprintf(p, sizeof p, "%s/COVID", root);
    check(DATASET_COVID19, p, &covid, 1);
    check(DATASET_HEADCT, root, &headct, 1);
    tree_remove(root);
}

Test(dataset_counts, meta_json_of_mvtec_tree_and_command_errors) {
    char *root = tree_tmpdir();
    Expect want[15];
    build_tree(root, mvtec_specs, 15, "good", ".png", "_mask", ".png", want);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "build/kanoclip dataset-info --type mvtec --root '%s' --write-meta '%s/meta.json' >/dev/null",
             root, root);
    cr_assert_eq(system(cmd), 0);
    check(DATASET_META, root, want, 15);
    // unknown type: exit 2 and one line naming the valid types
    snprintf(cmd, sizeof cmd, "build/kanoclip dataset-info --type kolektor --root '%s' 2>'%s/err.txt'", root, root);
    int st = system(cmd);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "exit status %d", st);
    char path[4096];
    snprintf(path, sizeof path, "%s/err.txt", root);
    char *err = fs_read_file(path, NULL);
    cr_assert_not_null(err);
    cr_assert(strstr(err, "mvtec visa mpdd btad sdd dagm brainmri liverct resc br35h covid19 headct meta"), "%s", err);
    cr_assert_eq(strchr(err, '\n'), err + strlen(err) - 1, "more than one line: %s", err);
    free(err);
    // a missing mask: exit 1 and the image named
    tree_touch(root, "wood/test/scratch/021.png");
    snprintf(cmd, sizeof cmd, "build/kanoclip dataset-info --type mvtec --root '%s' >/dev/null 2>'%s/err.txt'", root, root);
    st = system(cmd);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "exit status %d", st);
    err = fs_read_file(path, NULL);
    cr_assert(strstr(err, "wood/test/scratch/021.png: mask not found"), "%s", err);
    free(err);
    tree_remove(root);
}

// Dataset readers on small trees of each layout (empty files: readers look at names only), including the quirks:
// spaces in paths, `ok` vs `good`, mixed bmp/png, upper-case extensions, nested folders, missing masks.
#include "tests/datasets_tree.h"
#include "datasets/dataset.h"

#include <cjson/cJSON.h>

static Dataset *open_ok(DatasetType type, const char *root, DatasetSplit split) {
    Dataset *ds = dataset_open(type, root, split, NULL);
    cr_assert_not_null(ds, "%s on %s: %s", dataset_type_name(type), root, err_msg());
    return ds;
}

static const DatasetClass *find_class(const Dataset *ds, const char *name) {
    for (int i = 0; i < ds->n_classes; i++)
        if (!strcmp(ds->classes[i].name, name)) return &ds->classes[i];
    cr_assert_fail("class %s not found", name);
    return NULL;
}

static void assert_counts(const Dataset *ds, const char *cls, int normal, int anomalous, int masks) {
    const DatasetClass *c = find_class(ds, cls);
    cr_assert_eq(c->n_normal, normal, "%s normal %d != %d", cls, c->n_normal, normal);
    cr_assert_eq(c->n_anomalous, anomalous, "%s anomalous %d != %d", cls, c->n_anomalous, anomalous);
    cr_assert_eq(c->n_masks, masks, "%s masks %d != %d", cls, c->n_masks, masks);
}

// The sample whose image path ends with tail.
static const Sample *find_sample(const Dataset *ds, const char *tail) {
    size_t n = strlen(tail);
    for (int i = 0; i < ds->n_samples; i++) {
        const char *p = ds->samples[i].image_path;
        size_t m = strlen(p);
        if (m >= n && !strcmp(p + m - n, tail)) return &ds->samples[i];
    }
    cr_assert_fail("no sample ending in %s", tail);
    return NULL;
}

static int ends_with(const char *s, const char *tail) {
    size_t n = strlen(s), m = strlen(tail);
    return n >= m && !strcmp(s + n - m, tail);
}

static void assert_sorted(const Dataset *ds) {
    for (int i = 1; i < ds->n_samples; i++) {
        const Sample *a = &ds->samples[i - 1], *b = &ds->samples[i];
        cr_assert(a->class_index < b->class_index ||
                      (a->class_index == b->class_index && strcmp(a->image_path, b->image_path) < 0),
                  "samples out of order at %d", i);
    }
    for (int i = 1; i < ds->n_classes; i++) cr_assert(strcmp(ds->classes[i - 1].name, ds->classes[i].name) < 0);
}

static void assert_error_mentions(const char *what) {
    cr_assert(strstr(err_msg(), what) != NULL, "error '%s' does not mention '%s'", err_msg(), what);
}

Test(datasets, type_names_round_trip_and_unknown_type_lists_valid_ones) {
    DatasetType t;
    for (int i = 0; i < DATASET_N_TYPES; i++) {
        cr_assert_eq(dataset_type_from_name(dataset_type_name((DatasetType)i), &t), 0);
        cr_assert_eq(t, (DatasetType)i);
    }
    cr_assert_eq(dataset_type_from_name("kolektor", &t), -1);
    assert_error_mentions("kolektor");
    assert_error_mentions("mvtec visa mpdd btad sdd dagm brainmri liverct resc br35h covid19 headct meta");
}

Test(datasets, missing_root_is_named) {
    cr_assert_null(dataset_open(DATASET_MVTEC, "/nonexistent/mvtec root", SPLIT_TEST, NULL));
    assert_error_mentions("/nonexistent/mvtec root");
}

static void make_mvtec_tree(const char *root) {
    tree_touch(root, "bottle/train/good/000.png");
    tree_touch(root, "bottle/train/good/001.png");
    tree_touch(root, "bottle/test/good/000.png");
    tree_touch(root, "bottle/test/good/001.png");
    tree_touch(root, "bottle/test/broken_large/000.png");
    tree_touch(root, "bottle/test/broken_large/001.png");
    tree_touch(root, "bottle/ground_truth/broken_large/000_mask.png");
    tree_touch(root, "bottle/ground_truth/broken_large/001_mask.png");
    tree_touch(root, "metal_nut/train/good/000.png");
    tree_touch(root, "metal_nut/test/good/000.png");
    tree_touch(root, "metal_nut/test/color/000.png");
    tree_touch(root, "metal_nut/ground_truth/color/000.png"); // anomalib's mask naming (same stem)
    tree_touch(root, "metal_nut/test/good/.DS_Store");         // ignored: hidden, not an image
    tree_touch(root, "license.txt");
    tree_mkdir(root, "not_a_class/extra");
}

Test(datasets, mvtec_tree_counts_masks_order_and_prompts) {
    char *root = tree_tmpdir();
    make_mvtec_tree(root);
    Dataset *ds = open_ok(DATASET_MVTEC, root, SPLIT_TEST);
    cr_assert_eq(ds->n_classes, 2);
    cr_assert_str_eq(ds->classes[0].name, "bottle");
    cr_assert_str_eq(ds->classes[1].name, "metal_nut");
    cr_assert_str_eq(ds->classes[1].prompt_name, "metal nut");
    assert_counts(ds, "bottle", 2, 2, 2);
    assert_counts(ds, "metal_nut", 1, 1, 1);
    cr_assert_eq(ds->image_level_only, 0);
    cr_assert_eq(ds->mask_rule, MASK_GREY_NONZERO);
    assert_sorted(ds);
    const Sample *s = find_sample(ds, "bottle/test/broken_large/001.png");
    cr_assert_eq(s->label, 1);
    cr_assert_str_eq(s->defect, "broken_large");
    cr_assert(ends_with(s->mask_path, "bottle/ground_truth/broken_large/001_mask.png"), "%s", s->mask_path);
    s = find_sample(ds, "metal_nut/test/color/000.png");
    cr_assert(ends_with(s->mask_path, "metal_nut/ground_truth/color/000.png"));
    s = find_sample(ds, "bottle/test/good/000.png");
    cr_assert_eq(s->label, 0);
    cr_assert_null(s->mask_path);
    cr_assert_str_eq(s->defect, "good");
    dataset_free(ds);

    ds = open_ok(DATASET_MVTEC, root, SPLIT_TRAIN);
    assert_counts(ds, "bottle", 2, 0, 0);
    assert_counts(ds, "metal_nut", 1, 0, 0);
    dataset_free(ds);

    // the same tree read as MPDD (identical layout)
    ds = open_ok(DATASET_MPDD, root, SPLIT_TEST);
    assert_counts(ds, "bottle", 2, 2, 2);
    dataset_free(ds);
    tree_remove(root);
}

Test(datasets, mvtec_missing_mask_names_image_and_expected_mask) {
    char *root = tree_tmpdir();
    make_mvtec_tree(root);
    tree_touch(root, "bottle/test/broken_large/002.png");
    cr_assert_null(dataset_open(DATASET_MVTEC, root, SPLIT_TEST, NULL));
    assert_error_mentions("bottle/test/broken_large/002.png");
    assert_error_mentions("bottle/ground_truth/broken_large/002_mask.png");
    tree_remove(root);
}

Test(datasets, mvtec_root_without_classes_is_an_error) {
    char *root = tree_tmpdir();
    tree_touch(root, "readme.txt");
    cr_assert_null(dataset_open(DATASET_MVTEC, root, SPLIT_TEST, NULL));
    assert_error_mentions(root);
    tree_remove(root);
}

Test(datasets, btad_ok_ko_mixed_bmp_png_from_parent_folder) {
    char *root = tree_tmpdir();
    const char *b = "BTech_Dataset_transformed";
    tree_touchf(root, "%s/01/train/ok/0000.bmp", b);
    tree_touchf(root, "%s/01/test/ok/0000.bmp", b);
    tree_touchf(root, "%s/01/test/ko/0000.bmp", b);
    tree_touchf(root, "%s/01/test/ko/0001.bmp", b);
    tree_touchf(root, "%s/01/ground_truth/ko/0000.png", b);
    tree_touchf(root, "%s/01/ground_truth/ko/0001.png", b);
    tree_touchf(root, "%s/02/test/ok/0000.png", b);
    tree_touchf(root, "%s/02/test/ko/0000.png", b);
    tree_touchf(root, "%s/02/ground_truth/ko/0000.png", b);
    tree_touchf(root, "%s/03/test/ok/0000.bmp", b);
    tree_touchf(root, "%s/03/test/ok/0001.BMP", b);
    tree_touchf(root, "%s/03/test/ko/0005.bmp", b);
    tree_touchf(root, "%s/03/ground_truth/ko/0005.bmp", b);
    Dataset *ds = open_ok(DATASET_BTAD, root, SPLIT_TEST);
    cr_assert_eq(ds->n_classes, 3);
    assert_counts(ds, "01", 1, 2, 2);
    assert_counts(ds, "02", 1, 1, 1);
    assert_counts(ds, "03", 2, 1, 1);
    const Sample *s = find_sample(ds, "01/test/ko/0001.bmp");
    cr_assert(ends_with(s->mask_path, "01/ground_truth/ko/0001.png"));
    s = find_sample(ds, "03/test/ko/0005.bmp");
    cr_assert(ends_with(s->mask_path, "03/ground_truth/ko/0005.bmp"));
    cr_assert_str_eq(find_sample(ds, "01/test/ok/0000.bmp")->defect, "ok");
    dataset_free(ds);
    // also when the root is BTech_Dataset_transformed itself
    char inner[4096];
    snprintf(inner, sizeof inner, "%s/%s", root, b);
    ds = open_ok(DATASET_BTAD, inner, SPLIT_TEST);
    assert_counts(ds, "03", 2, 1, 1);
    dataset_free(ds);
    ds = open_ok(DATASET_BTAD, inner, SPLIT_TRAIN);
    assert_counts(ds, "01", 1, 0, 0);
    dataset_free(ds);
    tree_remove(root);
}

Test(datasets, sdd_adaclip_and_anomalyclip_layouts_with_space_in_class_name) {
    char *root = tree_tmpdir();
    tree_touch(root, "ada/SDD/train/good/kos01_Part0_0.png");
    tree_touch(root, "ada/SDD/test/good/kos01_Part0_1.png");
    tree_touch(root, "ada/SDD/test/defect/kos01_Part5_0.png");
    tree_touch(root, "ada/SDD/ground_truth/defect/kos01_Part5_0_mask.png");
    tree_touch(root, "aclip/SDD/electrical commutators/train/good/kos02_Part1_2.png");
    tree_touch(root, "aclip/SDD/electrical commutators/test/good/kos02_Part1_0.png");
    tree_touch(root, "aclip/SDD/electrical commutators/test/defect/kos02_Part3_1.png");
    tree_touch(root, "aclip/SDD/electrical commutators/ground_truth/defect/kos02_Part3_1_mask.png");
    tree_touch(root, "raw/KolektorSDD/kos01/Part0.jpg");
    tree_touch(root, "raw/KolektorSDD/kos01/Part0_label.bmp");
    char p[4096];
    snprintf(p, sizeof p, "%s/ada", root);
    Dataset *ds = open_ok(DATASET_SDD, p, SPLIT_TEST);
    assert_counts(ds, "SDD", 1, 1, 1);
    cr_assert_str_eq(ds->classes[0].prompt_name, "electrical commutators");
    dataset_free(ds);
    snprintf(p, sizeof p, "%s/ada/SDD", root); // root = the class folder itself
    ds = open_ok(DATASET_SDD, p, SPLIT_TEST);
    assert_counts(ds, "SDD", 1, 1, 1);
    dataset_free(ds);
    snprintf(p, sizeof p, "%s/aclip/SDD", root);
    ds = open_ok(DATASET_SDD, p, SPLIT_TEST);
    assert_counts(ds, "electrical commutators", 1, 1, 1);
    cr_assert(ends_with(find_sample(ds, "kos02_Part3_1.png")->mask_path,
                        "electrical commutators/ground_truth/defect/kos02_Part3_1_mask.png"));
    dataset_free(ds);
    snprintf(p, sizeof p, "%s/raw/KolektorSDD", root);
    cr_assert_null(dataset_open(DATASET_SDD, p, SPLIT_TEST, NULL));
    assert_error_mentions("raw KolektorSDD");
    tree_remove(root);
}

Test(datasets, dagm_kaggle_label_files_upper_case_and_nested_class) {
    char *root = tree_tmpdir();
    tree_touch(root, "Class1/Test/0001.PNG");
    tree_touch(root, "Class1/Test/0002.PNG");
    tree_touch(root, "Class1/Test/0003.PNG");
    tree_touch(root, "Class1/Test/Label/0002_label.PNG");
    tree_put(root, "Class1/Test/Label/Labels.txt", "1\n");
    tree_touch(root, "Class1/Train/0001.PNG");
    tree_touch(root, "Class1/Train/Label/0001_label.PNG");
    tree_touch(root, "Class2/Class2/Test/0010.PNG"); // nested copy
    tree_touch(root, "Class2/Class2/Test/0011.PNG");
    tree_touch(root, "Class2/Class2/Test/Label/0010_label.PNG");
    Dataset *ds = open_ok(DATASET_DAGM, root, SPLIT_TEST);
    cr_assert_str_eq(ds->layout, "dagm-kaggle");
    assert_counts(ds, "Class1", 2, 1, 1);
    assert_counts(ds, "Class2", 1, 1, 1);
    const Sample *s = find_sample(ds, "Class1/Test/0002.PNG");
    cr_assert_eq(s->label, 1);
    cr_assert(ends_with(s->mask_path, "Class1/Test/Label/0002_label.PNG"));
    cr_assert_eq(find_sample(ds, "Class1/Test/0003.PNG")->label, 0);
    dataset_free(ds);
    ds = open_ok(DATASET_DAGM, root, SPLIT_TRAIN);
    assert_counts(ds, "Class1", 0, 1, 1);
    dataset_free(ds);
    tree_remove(root);
}

Test(datasets, dagm_adaclip_layout) {
    char *root = tree_tmpdir();
    tree_touch(root, "Class3/train/good/0001.PNG");
    tree_touch(root, "Class3/test/good/0002.PNG");
    tree_touch(root, "Class3/test/defect/0003.PNG");
    tree_touch(root, "Class3/ground_truth/defect/0003_label.PNG");
    Dataset *ds = open_ok(DATASET_DAGM, root, SPLIT_TEST);
    cr_assert_str_eq(ds->layout, "dagm-adaclip");
    assert_counts(ds, "Class3", 1, 1, 1);
    dataset_free(ds);
    tree_remove(root);
}

Test(datasets, visa_csv_split_index_mask_rule_and_bad_rows) {
    char *root = tree_tmpdir();
    tree_touch(root, "candle/Data/Images/Normal/0000.JPG");
    tree_touch(root, "candle/Data/Images/Normal/0001.JPG");
    tree_touch(root, "candle/Data/Images/Anomaly/000.JPG");
    tree_touch(root, "candle/Data/Masks/Anomaly/000.png");
    tree_touch(root, "pipe_fryum/Data/Images/Normal/0000.JPG");
    tree_touch(root, "pipe_fryum/Data/Images/Anomaly/000.JPG");
    tree_touch(root, "pipe_fryum/Data/Masks/Anomaly/000.png");
    tree_put(root, "split_csv/1cls.csv",
             "object,split,label,image,mask\r\n"
             "candle,train,normal,candle/Data/Images/Normal/0000.JPG,\r\n"
             "candle,test,normal,candle/Data/Images/Normal/0001.JPG,\r\n"
             "candle,test,anomaly,candle/Data/Images/Anomaly/000.JPG,candle/Data/Masks/Anomaly/000.png\r\n"
             "pipe_fryum,test,normal,pipe_fryum/Data/Images/Normal/0000.JPG,\r\n"
             "pipe_fryum,test,anomaly,pipe_fryum/Data/Images/Anomaly/000.JPG,pipe_fryum/Data/Masks/Anomaly/000.png\r\n");
    Dataset *ds = open_ok(DATASET_VISA, root, SPLIT_TEST);
    cr_assert_str_eq(ds->layout, "visa-csv");
    cr_assert_eq(ds->mask_rule, MASK_INDEX_NONZERO);
    assert_counts(ds, "candle", 1, 1, 1);
    assert_counts(ds, "pipe_fryum", 1, 1, 1);
    cr_assert_str_eq(find_class(ds, "pipe_fryum")->prompt_name, "pipe fryum");
    cr_assert(ends_with(find_sample(ds, "candle/Data/Images/Anomaly/000.JPG")->mask_path,
                        "candle/Data/Masks/Anomaly/000.png"));
    cr_assert_str_eq(find_sample(ds, "candle/Data/Images/Anomaly/000.JPG")->defect, "");
    dataset_free(ds);
    ds = open_ok(DATASET_VISA, root, SPLIT_TRAIN);
    assert_counts(ds, "candle", 1, 0, 0);
    dataset_free(ds);
    // a row naming a missing image: the csv, its line and the image are named
    tree_put(root, "split_csv/1cls.csv",
             "object,split,label,image,mask\ncandle,test,normal,candle/Data/Images/Normal/0009.JPG,\n");
    cr_assert_null(dataset_open(DATASET_VISA, root, SPLIT_TEST, NULL));
    assert_error_mentions("1cls.csv: line 2");
    assert_error_mentions("candle/Data/Images/Normal/0009.JPG");
    // an anomalous row whose mask file is missing
    tree_put(root, "split_csv/1cls.csv",
             "object,split,label,image,mask\n"
             "candle,test,anomaly,candle/Data/Images/Anomaly/000.JPG,candle/Data/Masks/Anomaly/007.png\n");
    cr_assert_null(dataset_open(DATASET_VISA, root, SPLIT_TEST, NULL));
    assert_error_mentions("candle/Data/Masks/Anomaly/007.png");
    // no csv at all: the missing split file is named
    char csv[4096];
    snprintf(csv, sizeof csv, "%s/split_csv/1cls.csv", root);
    unlink(csv);
    cr_assert_null(dataset_open(DATASET_VISA, root, SPLIT_TEST, NULL));
    assert_error_mentions("split_csv/1cls.csv");
    tree_remove(root);
}

Test(datasets, visa_spot_diff_1cls_layout) {
    char *root = tree_tmpdir();
    tree_touch(root, "VisA_pytorch/1cls/pcb1/train/good/0000.JPG");
    tree_touch(root, "VisA_pytorch/1cls/pcb1/test/good/0001.JPG");
    tree_touch(root, "VisA_pytorch/1cls/pcb1/test/bad/000.JPG");
    tree_touch(root, "VisA_pytorch/1cls/pcb1/ground_truth/bad/000.png");
    char p[4096];
    snprintf(p, sizeof p, "%s/VisA_pytorch", root);
    Dataset *ds = open_ok(DATASET_VISA, p, SPLIT_TEST);
    cr_assert_str_eq(ds->layout, "visa-1cls");
    assert_counts(ds, "pcb1", 1, 1, 1);
    dataset_free(ds);
    tree_remove(root);
}

Test(datasets, brainmri_mvfa_anomaly_mask_and_bmad_label_folders) {
    char *root = tree_tmpdir();
    // MVFA: data/Brain_AD/test/{good,Ungood}/img + Ungood/anomaly_mask, root = data/
    tree_touch(root, "mvfa/data/Brain_AD/test/good/img/00001_60.png");
    tree_touch(root, "mvfa/data/Brain_AD/test/good/img/00001_68.png");
    tree_touch(root, "mvfa/data/Brain_AD/test/Ungood/img/00002_60.png");
    tree_touch(root, "mvfa/data/Brain_AD/test/Ungood/anomaly_mask/00002_60.png");
    tree_touch(root, "mvfa/data/Liver_AD/test/good/img/1_1.png");
    // BMAD: label/ instead of anomaly_mask/, one extra nesting level
    tree_touch(root, "bmad/Brain_AD/BraTS2021_slice/test/good/img/01302_68.png");
    tree_touch(root, "bmad/Brain_AD/BraTS2021_slice/test/Ungood/img/01303_68.png");
    tree_touch(root, "bmad/Brain_AD/BraTS2021_slice/test/Ungood/label/01303_68.png");
    tree_touch(root, "bmad/Brain_AD/BraTS2021_slice/train/good/01304_60.png");
    char p[4096];
    snprintf(p, sizeof p, "%s/mvfa/data", root);
    Dataset *ds = open_ok(DATASET_BRAINMRI, p, SPLIT_TEST);
    cr_assert_str_eq(ds->layout, "mvfa");
    assert_counts(ds, "brain", 2, 1, 1);
    cr_assert_str_eq(ds->classes[0].prompt_name, "brain");
    const Sample *s = find_sample(ds, "Ungood/img/00002_60.png");
    cr_assert(ends_with(s->mask_path, "test/Ungood/anomaly_mask/00002_60.png"));
    cr_assert_str_eq(s->defect, "Ungood");
    dataset_free(ds);
    snprintf(p, sizeof p, "%s/bmad/Brain_AD", root);
    ds = open_ok(DATASET_BRAINMRI, p, SPLIT_TEST);
    assert_counts(ds, "brain", 1, 1, 1);
    cr_assert(ends_with(find_sample(ds, "01303_68.png")->mask_path, "Ungood/label/01303_68.png"));
    dataset_free(ds);
    ds = open_ok(DATASET_BRAINMRI, p, SPLIT_TRAIN);
    assert_counts(ds, "brain", 1, 0, 0);
    dataset_free(ds);
    // a missing mask is named
    tree_touch(root, "bmad/Brain_AD/BraTS2021_slice/test/Ungood/img/01309_76.png");
    cr_assert_null(dataset_open(DATASET_BRAINMRI, p, SPLIT_TEST, NULL));
    assert_error_mentions("Ungood/img/01309_76.png");
    assert_error_mentions("Ungood/label/01309_76.png");
    tree_remove(root);
}

Test(datasets, brainmri_kaggle_yes_no_is_image_level_with_spaces_in_names) {
    char *root = tree_tmpdir();
    tree_touch(root, "brain_tumor_dataset/no/1 no.jpeg");
    tree_touch(root, "brain_tumor_dataset/no/No12.jpg");
    tree_touch(root, "brain_tumor_dataset/yes/Y1.JPG");
    Dataset *ds = open_ok(DATASET_BRAINMRI, root, SPLIT_TEST);
    cr_assert_str_eq(ds->layout, "brainmri-kaggle");
    cr_assert_eq(ds->image_level_only, 1);
    assert_counts(ds, "brain", 2, 1, 0);
    cr_assert_eq(find_sample(ds, "no/1 no.jpeg")->label, 0);
    cr_assert_eq(find_sample(ds, "yes/Y1.JPG")->label, 1);
    dataset_free(ds);
    tree_remove(root);
}

Test(datasets, liverct_lower_case_ungood_without_img_folders) {
    char *root = tree_tmpdir();
    tree_touch(root, "Liver_AD/test/good/4_487.png");
    tree_touch(root, "Liver_AD/test/ungood/5_100.png");
    tree_touch(root, "Liver_AD/test/ungood/anomaly_mask/5_100.png");
    tree_touch(root, "Liver_AD/valid/good/9_1.png");
    char p[4096];
    snprintf(p, sizeof p, "%s/Liver_AD", root);
    Dataset *ds = open_ok(DATASET_LIVERCT, p, SPLIT_TEST);
    assert_counts(ds, "liver", 1, 1, 1);
    cr_assert_str_eq(ds->classes[0].prompt_name, "liver");
    dataset_free(ds);
    tree_remove(root);
}

Test(datasets, resc_mvfa_and_bmad_raw_layouts) {
    char *root = tree_tmpdir();
    tree_touch(root, "Retina_RESC_AD/test/good/img/11_49.png");
    tree_touch(root, "Retina_RESC_AD/test/Ungood/img/12_3.png");
    tree_touch(root, "Retina_RESC_AD/test/Ungood/anomaly_mask/12_3.png");
    tree_touch(root, "RESC/Train/train/good/1_1.png");
    tree_touch(root, "RESC/Test/test/good/2_1.png");
    tree_touch(root, "RESC/Test/test/good/2_2.png");
    tree_touch(root, "RESC/Test/test/Ungood/3_1.png");
    tree_touch(root, "RESC/Test/test_label/Ungood/3_1.png");
    Dataset *ds = open_ok(DATASET_RESC, root, SPLIT_TEST); // finds Retina_RESC_AD by name
    cr_assert_str_eq(ds->layout, "mvfa");
    assert_counts(ds, "retina", 1, 1, 1);
    cr_assert_str_eq(ds->classes[0].prompt_name, "retinal OCT");
    dataset_free(ds);
    char p[4096];
    snprintf(p, sizeof p, "%s/RESC", root);
    ds = open_ok(DATASET_RESC, p, SPLIT_TEST);
    cr_assert_str_eq(ds->layout, "resc-bmad");
    assert_counts(ds, "retina", 2, 1, 1);
    cr_assert(ends_with(find_sample(ds, "Ungood/3_1.png")->mask_path, "Test/test_label/Ungood/3_1.png"));
    dataset_free(ds);
    ds = open_ok(DATASET_RESC, p, SPLIT_TRAIN);
    assert_counts(ds, "retina", 1, 0, 0);
    dataset_free(ds);
    tree_remove(root);
}

Test(datasets, br35h_raw_skips_pred_and_adaclip_layout) {
    char *root = tree_tmpdir();
    tree_touch(root, "raw/no/no0.jpg");
    tree_touch(root, "raw/no/no1.jpg");
    tree_touch(root, "raw/yes/y0.jpg");
    tree_touch(root, "raw/pred/pred0.jpg");
    tree_touch(root, "ada/br35h/test/good/no0.jpg");
    tree_touch(root, "ada/br35h/test/yes/y0.jpg");
    tree_touch(root, "ada/br35h/test/yes/y1.jpg");
    char p[4096];
    snprintf(p, sizeof p, "%s/raw", root);
    Dataset *ds = open_ok(DATASET_BR35H, p, SPLIT_TEST);
    cr_assert_eq(ds->image_level_only, 1);
    assert_counts(ds, "brain", 2, 1, 0);
    cr_assert_eq(ds->n_samples, 3);
    dataset_free(ds);
    snprintf(p, sizeof p, "%s/ada", root);
    ds = open_ok(DATASET_BR35H, p, SPLIT_TEST);
    cr_assert_eq(ds->image_level_only, 1);
    assert_counts(ds, "br35h", 1, 2, 0);
    cr_assert_str_eq(ds->classes[0].prompt_name, "brain");
    dataset_free(ds);
    tree_remove(root);
}

Test(datasets, covid19_releases_lung_masks_ignored_and_folder_options) {
    char *root = tree_tmpdir();
    tree_touch(root, "new/COVID-19_Radiography_Dataset/Normal/images/Normal-1.png");
    tree_touch(root, "new/COVID-19_Radiography_Dataset/Normal/images/Normal-2.png");
    tree_touch(root, "new/COVID-19_Radiography_Dataset/Normal/masks/Normal-1.png");
    tree_touch(root, "new/COVID-19_Radiography_Dataset/COVID/images/COVID-1.png");
    tree_touch(root, "new/COVID-19_Radiography_Dataset/COVID/masks/COVID-1.png");
    tree_touch(root, "new/COVID-19_Radiography_Dataset/Viral Pneumonia/images/Viral Pneumonia-1.png");
    tree_touch(root, "new/COVID-19_Radiography_Dataset/Normal.metadata.xlsx");
    tree_touch(root, "old/NORMAL/a.png");
    tree_touch(root, "old/COVID/b.png");
    char p[4096];
    snprintf(p, sizeof p, "%s/new", root);
    Dataset *ds = open_ok(DATASET_COVID19, p, SPLIT_TEST);
    cr_assert_eq(ds->image_level_only, 1);
    assert_counts(ds, "chest", 2, 2, 0);
    cr_assert_str_eq(find_sample(ds, "Viral Pneumonia-1.png")->defect, "Viral Pneumonia");
    dataset_free(ds);
    DatasetOptions opts = {.anomalous_folders = "COVID"};
    ds = dataset_open(DATASET_COVID19, p, SPLIT_TEST, &opts);
    cr_assert_not_null(ds, "%s", err_msg());
    assert_counts(ds, "chest", 2, 1, 0);
    dataset_free(ds);
    snprintf(p, sizeof p, "%s/old", root);
    ds = open_ok(DATASET_COVID19, p, SPLIT_TEST);
    assert_counts(ds, "chest", 1, 1, 0);
    dataset_free(ds);
    opts = (DatasetOptions){.normal_folders = "Healthy"};
    cr_assert_null(dataset_open(DATASET_COVID19, p, SPLIT_TEST, &opts));
    assert_error_mentions("Healthy");
    tree_remove(root);
}

Test(datasets, headct_labels_csv_and_tree_layouts) {
    char *root = tree_tmpdir();
    tree_put(root, "head_ct/labels.csv", "id, hemorrhage\n0,1\n1,1\n2,0\n");
    tree_touch(root, "head_ct/head_ct/000.png");
    tree_touch(root, "head_ct/head_ct/001.png");
    tree_touch(root, "head_ct/head_ct/002.png");
    tree_touch(root, "tree/headct/test/good/000.png");
    tree_touch(root, "tree/headct/test/defect/001.png");
    Dataset *ds = open_ok(DATASET_HEADCT, root, SPLIT_TEST); // finds head_ct/labels.csv
    cr_assert_eq(ds->image_level_only, 1);
    assert_counts(ds, "headct", 1, 2, 0);
    cr_assert_str_eq(ds->classes[0].prompt_name, "brain");
    cr_assert_eq(find_sample(ds, "head_ct/002.png")->label, 0);
    dataset_free(ds);
    char p[4096];
    snprintf(p, sizeof p, "%s/tree", root);
    ds = open_ok(DATASET_HEADCT, p, SPLIT_TEST);
    assert_counts(ds, "headct", 1, 1, 0);
    dataset_free(ds);
    tree_put(root, "head_ct/labels.csv", "id,hemorrhage\n0,1\n7,0\n");
    cr_assert_null(dataset_open(DATASET_HEADCT, root, SPLIT_TEST, NULL));
    assert_error_mentions("head_ct/007.png");
    tree_remove(root);
}

Test(datasets, meta_json_written_then_read_back_gives_the_same_samples) {
    char *root = tree_tmpdir();
    make_mvtec_tree(root);
    Dataset *test = open_ok(DATASET_MVTEC, root, SPLIT_TEST), *train = open_ok(DATASET_MVTEC, root, SPLIT_TRAIN);
    char path[4096];
    snprintf(path, sizeof path, "%s/meta.json", root);
    cr_assert_eq(dataset_write_meta(test, train, path), 0, "%s", err_msg());
    // the five fields, relative paths, "" for no mask, int anomaly
    char *text = fs_read_file(path, NULL);
    cJSON *doc = cJSON_Parse(text);
    free(text);
    const cJSON *rec = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "test"), "bottle"), 0);
    cr_assert_eq(cJSON_GetArraySize(rec), 5);
    cr_assert_str_eq(cJSON_GetObjectItem(rec, "img_path")->valuestring, "bottle/test/broken_large/000.png");
    cr_assert_str_eq(cJSON_GetObjectItem(rec, "mask_path")->valuestring, "bottle/ground_truth/broken_large/000_mask.png");
    cr_assert_str_eq(cJSON_GetObjectItem(rec, "cls_name")->valuestring, "bottle");
    cr_assert_str_eq(cJSON_GetObjectItem(rec, "specie_name")->valuestring, "broken_large");
    cr_assert_eq(cJSON_GetObjectItem(rec, "anomaly")->valueint, 1);
    rec = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "test"), "bottle"), 2);
    cr_assert_str_eq(cJSON_GetObjectItem(rec, "mask_path")->valuestring, "");
    cJSON_Delete(doc);

    Dataset *back = open_ok(DATASET_META, root, SPLIT_TEST);
    cr_assert_eq(back->n_samples, test->n_samples);
    cr_assert_eq(back->n_classes, test->n_classes);
    for (int i = 0; i < test->n_samples; i++) {
        const Sample *a = &test->samples[i], *b = &back->samples[i];
        cr_assert_str_eq(a->image_path, b->image_path);
        cr_assert_eq(a->label, b->label);
        cr_assert_eq(!a->mask_path, !b->mask_path);
        if (a->mask_path) cr_assert_str_eq(a->mask_path, b->mask_path);
        cr_assert_str_eq(a->defect, b->defect);
        cr_assert_str_eq(test->classes[a->class_index].name, back->classes[b->class_index].name);
    }
    dataset_free(back);
    back = open_ok(DATASET_META, path, SPLIT_TRAIN); // the json file itself as root
    cr_assert_eq(back->n_samples, train->n_samples);
    dataset_free(back);
    dataset_free(test);
    dataset_free(train);
    tree_remove(root);
}

Test(datasets, meta_json_variants_and_errors) {
    char *root = tree_tmpdir();
    tree_touch(root, "Class1/Test/0001.PNG");
    tree_touch(root, "Class1/Test/0002.PNG");
    tree_touch(root, "Class1/Test/Label/0002_label.PNG");
    tree_touch(root, "brain/yes/y 1.jpg");
    char abs_img[4096];
    snprintf(abs_img, sizeof abs_img, "%s/brain/yes/y 1.jpg", root);
    // AnomalyCLIP DAGM.py: capitalised phase keys, empty specie_name; brainmri.py: absolute img_path, key order
    char json[8192];
    snprintf(json, sizeof json,
             "{\"Train\": {}, \"Test\": {\"Class1\": ["
             "{\"img_path\": \"Class1/Test/0001.PNG\", \"mask_path\": \"\", \"cls_name\": \"Class1\", "
             "\"specie_name\": \"\", \"anomaly\": 0},"
             "{\"img_path\": \"Class1/Test/0002.PNG\", \"mask_path\": \"Class1/Test/Label/0002_label.PNG\", "
             "\"cls_name\": \"Class1\", \"specie_name\": \"\", \"anomaly\": 1}],"
             "\"brain\": [{\"img_path\": \"%s\", \"cls_name\": \"brain\", \"mask_path\": \"\", "
             "\"specie_name\": \"yes\", \"anomaly\": 1}]}}",
             abs_img);
    tree_put(root, "meta.json", json);
    Dataset *ds = open_ok(DATASET_META, root, SPLIT_TEST);
    assert_counts(ds, "Class1", 1, 1, 1);
    assert_counts(ds, "brain", 0, 1, 0); // anomalous without a mask: image-level for that record
    cr_assert_eq(ds->image_level_only, 0);
    cr_assert_str_eq(find_sample(ds, "brain/yes/y 1.jpg")->image_path, abs_img);
    dataset_free(ds);
    // a missing image is named with its key path
    tree_put(root, "meta.json",
             "{\"test\": {\"bottle\": [{\"img_path\": \"bottle/x.png\", \"mask_path\": \"\", \"cls_name\": \"bottle\", "
             "\"specie_name\": \"good\", \"anomaly\": 0}]}}");
    cr_assert_null(dataset_open(DATASET_META, root, SPLIT_TEST, NULL));
    assert_error_mentions("test.bottle[0].img_path");
    assert_error_mentions("bottle/x.png");
    // a named mask that is missing
    tree_put(root, "meta.json",
             "{\"test\": {\"c\": [{\"img_path\": \"Class1/Test/0001.PNG\", \"mask_path\": \"gt/none.png\", "
             "\"cls_name\": \"c\", \"specie_name\": \"bad\", \"anomaly\": 1}]}}");
    cr_assert_null(dataset_open(DATASET_META, root, SPLIT_TEST, NULL));
    assert_error_mentions("test.c[0].mask_path");
    // anomaly must be 0/1
    tree_put(root, "meta.json",
             "{\"test\": {\"c\": [{\"img_path\": \"Class1/Test/0001.PNG\", \"anomaly\": \"yes\"}]}}");
    cr_assert_null(dataset_open(DATASET_META, root, SPLIT_TEST, NULL));
    assert_error_mentions("test.c[0].anomaly");
    // not JSON; no test key
    tree_put(root, "meta.json", "{\"test\": [");
    cr_assert_null(dataset_open(DATASET_META, root, SPLIT_TEST, NULL));
    assert_error_mentions("meta.json");
    tree_put(root, "meta.json", "{\"train\": {}}");
    cr_assert_null(dataset_open(DATASET_META, root, SPLIT_TEST, NULL));
    assert_error_mentions("\"test\"");
    tree_remove(root);
}

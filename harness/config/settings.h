// The typed settings of one experiment: the composed config (config.h) parsed once into plain structs, every value
// checked (type, range, choices, the relations between keys) by settings_load, and the inputs a run reads
// (checkpoint folder and weights, the output folder) checked by settings_check_inputs. `kanoclip experiment` calls
// both before it creates the run folder, writes a file or computes anything, and `--dry-run` calls the same two, so
// a config the dry run accepts does not stop later on a bad value. Errors name the key as the user wrote it and
// where its value came from ("exp.yaml:12:7: train.lr: -1: must be > 0").
//
// The run's loops receive these settings, never the config tree. Defaults live in experiments/defaults.yaml only:
// every field here is read from the composed config, which always holds every key.
#ifndef HARNESS_SETTINGS_H
#define HARNESS_SETTINGS_H

#include "harness/config/config.h"
#include "harness/kb/kb_settings.h"
#include "model/baselines.h"
#include "model/checkpoint.h"
#include "model/device.h"
#include "model/kanoclip_config.h"

typedef struct Method Method;  // harness/run/method.h

#define SETTINGS_MAX_LAYERS 8
#define SETTINGS_MAX_ADJ 8
#define CACHE_MAX_SHARDS 1000  // cache.shards: one Slurm array task each (MaxArraySize is 1001 by default)     // adjectives per state (method.normal_words / method.abnormal_words)

// A dataset as the config names it (strings owned by the Config); key is "data.train" or "eval.datasets".
typedef struct {
    const char *key;
    const char *name, *type, *root;
} DatasetSettings;

// The tiny random CLIP written into model.checkpoint when that folder is absent (demo, tests).
typedef struct {
    int enabled;
    long seed;
    int vision_width, vision_layers, vision_heads, patch_size, text_width, text_layers, text_heads, projection_dim;
} RandomClipSettings;

typedef struct {
    int enabled;
    const char *out, *layout;
    int classes, images_per_class, image_size, seed, train_classes;
} SyntheticSettings;

typedef struct Settings {
    const Config *cfg;  // the composed config: the run's identity (hash) and config.yaml; nothing else reads it

    struct {
        const char *name, *out_dir;
        unsigned long long seed;
        DeviceKind device;        // checked usable here (CUDA asked for where it cannot run is an error)
        GemmPrecision precision;
        int threads;              // 0: all cores
    } run;

    struct {
        const char *checkpoint;
        int image_size;
        int n_layers, layers[SETTINGS_MAX_LAYERS];  // 1-based stage layers
        int vv_from;                                // 0: CLIP-VV off
        int pos_interp;                             // positional-embedding resize (ClipPosResize order)
        int resize;                                 // model.resize: 0 square (AnomalyCLIP), 1 short-crop (OpenAI
                                                    // CLIP), as datasets/image.h ImageResizeMode
        RandomClipSettings random;
    } model;

    struct {
        DatasetSettings train;   // meaningful when train.method reads training data (settings_uses_train)
        SyntheticSettings synthetic;
        int resize_masks;        // a mask of another size than its image is resized (else an error naming both)
    } data;

    struct {
        const Method *method;    // the method table's entry for train.method
        int epochs, batch_size;
        float lr, beta1, beta2, weight_decay;
        int log_every, checkpoint_every;
    } train;

    struct {
        int n_datasets;
        DatasetSettings *datasets;  // (n_datasets)
        int image_size;
        int aupro_ac200;            // eval.aupro: 0 mvtec (exact), 1 anomalyclip (200 thresholds), 2 anomalyclip-f32
                                    // (the same, thresholds compared in float32 as cal_pro_score on float32 maps)
        const char *aupro;          // its name, as metrics.json records it
        int pixel_bins, save_maps, overlays, batch_size;
        int bootstrap;                        // resamples of the 95% intervals (0: none; metrics/metrics_boot.h)
        unsigned long long bootstrap_seed;
    } eval;

    struct {
        const char *dir;
        int features;
        int shards;               // feature extraction split into this many shard files (1: one process)
    } cache;

    struct {
        const char *label, *table;
        int order, tables, plots;
    } report;

    // KAnoCLIP: the method: switches (sizes are bound to the checkpoint by settings_bind_model) and the harness
    // side of its prompts.
    KanoclipConfig kanoclip;
    struct {
        const char *fixed[2];        // method.fixed_prompts: normal, anomalous ("{}" = the class word)
        // method.normal_words / method.abnormal_words: one prompt per adjective, n_adj of each state
        const char *state_words[2][SETTINGS_MAX_ADJ];
        int n_adj;
        int class_object;            // method.class_token: 0 name, 1 the word "object"
    } prompts;

    // The baselines: train.baseline.* over the method's published defaults (bound to the vision depth by
    // settings_bind_model; until then at a 24-layer tower, enough to check every switch).
    BaselineConfig baseline;

    KbSettings kb;
} Settings;

// Parses and checks every key of cfg (which must outlive the settings). NULL with err_set naming the key.
Settings *settings_load(const Config *cfg);
void settings_free(Settings *s);

// 1 when the run reads data.train (KAnoCLIP; April-GAN and AnomalyCLIP when train.epochs > 0).
int settings_uses_train(const Settings *s);
// 1 when model.checkpoint is the demo's tiny random CLIP, still to be generated.
int settings_checkpoint_generated(const Settings *s);

// The ClipConfig of the tiny random CLIP that model.random describes.
ClipConfig settings_random_clip(const Settings *s);

// The inputs: run.out_dir can be written, model.checkpoint holds a config.json and weights whose every tensor lies
// inside its file (a truncated or lying file is found here), and the method's layers, V-V start and input size fit
// the checkpoint's tower (settings_bind_model). -1 with err_set naming the key or file.
int settings_check_inputs(Settings *s);

// Binds the sizes that come from the checkpoint: KAnoCLIP's widths and patch grid, the baselines' layer defaults
// at the tower's depth. -1 with err_set naming the key that does not fit.
int settings_bind_model(Settings *s, const ClipConfig *clip);

#endif

// Device selection in every build: "cpu" always works; "cuda" works only with CUDA built in and a device
// present, and otherwise fails with the message that says which of the two is missing.
#include <criterion/criterion.h>
#include <string.h>

#include "common/error.h"
#include "model/device.h"

Test(device, cpu_always_selectable) {
    DeviceKind k = DEVICE_CUDA;
    cr_assert_eq(device_select("cpu", &k), 0, "%s", err_msg());
    cr_assert_eq(k, DEVICE_CPU);
    cr_assert_str_eq(device_describe(DEVICE_CPU), "cpu");
}

Test(device, cuda_selectable_or_says_why) {
    DeviceKind k = DEVICE_CPU;
    int rc = device_select("cuda", &k);
    if (!device_cuda_built()) {
        cr_assert_eq(rc, -1);
        cr_assert(strstr(err_msg(), "CUDA was asked for, but this binary was built without CUDA"), "%s", err_msg());
        cr_assert_eq(device_available(), 0);
    } else if (!device_available()) {
        cr_assert_eq(rc, -1);
        cr_assert(strstr(err_msg(), "CUDA was asked for, but no CUDA device found (cudaGetDeviceCount: "), "%s",
                  err_msg());
    } else {
        cr_assert_eq(rc, 0, "%s", err_msg());
        cr_assert_eq(k, DEVICE_CUDA);
        cr_assert(strncmp(device_describe(DEVICE_CUDA), "cuda: ", 6) == 0, "%s", device_describe(DEVICE_CUDA));
    }
}

Test(device, unknown_names_rejected) {
    DeviceKind k;
    cr_assert_eq(device_select("tpu", &k), -1);
    cr_assert_str_eq(err_msg(), "unknown device 'tpu' (expected cpu or cuda)");
    GemmPrecision p;
    cr_assert_eq(gemm_precision_parse("fp16", &p), -1);
    cr_assert(strstr(err_msg(), "'fp16'"), "%s", err_msg());
    const char *names[] = {"fp32", "tf32", "bf16"};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(gemm_precision_parse(names[i], &p), 0);
        cr_assert_str_eq(gemm_precision_name(p), names[i]);
    }
}

// run.device / run.precision of a config, as the experiment reads them: the defaults are cpu / fp32; CUDA where
// it cannot run is an error naming run.device with device_select's reason; a bad precision names run.precision.
#include "harness/config/config.h"
#include "harness/config/settings.h"

// run.device and run.precision as the settings read them (the rest of the config is valid).
static int run_device_from(const Config *c, DeviceKind *d, GemmPrecision *p) {
    Settings *s = settings_load(c);
    if (!s) return -1;
    *d = s->run.device;
    *p = s->run.precision;
    settings_free(s);
    return 0;
}

static Config *load_with(char *o1, char *o2) {
    char *ov[3] = {"model.checkpoint=models/any", o1, o2};  // the one key without a usable default
    Config *c = config_load("experiments/defaults.yaml", "experiments/defaults.yaml", 1 + (o1 != NULL) + (o2 != NULL), ov);
    cr_assert_not_null(c, "%s", err_msg());
    return c;
}

Test(device, run_device_from_config) {
    DeviceKind d = DEVICE_CUDA;
    GemmPrecision p = GEMM_BF16;
    Config *c = load_with(NULL, NULL);
    cr_assert_eq(run_device_from(c, &d, &p), 0, "%s", err_msg());
    cr_assert_eq(d, DEVICE_CPU);
    cr_assert_eq(p, GEMM_FP32);
    config_free(c);

    c = load_with("run.precision=tf32", NULL);
    cr_assert_eq(run_device_from(c, &d, &p), 0, "%s", err_msg());
    cr_assert_eq(p, GEMM_TF32);
    config_free(c);

    c = load_with("run.precision=fp16", NULL);
    cr_assert_eq(run_device_from(c, &d, &p), -1);
    cr_assert(strstr(err_msg(), "override run.precision=fp16: run.precision: ") && strstr(err_msg(), "'fp16'"), "%s",
              err_msg());
    config_free(c);

    c = load_with("run.device=tpu", NULL);
    cr_assert_eq(run_device_from(c, &d, &p), -1);
    cr_assert_str_eq(err_msg(), "override run.device=tpu: run.device: unknown device 'tpu' (expected cpu or cuda)");
    config_free(c);

    c = load_with("run.device=cuda", "run.precision=bf16");
    int rc = run_device_from(c, &d, &p);
    if (device_available()) {
        cr_assert_eq(rc, 0, "%s", err_msg());
        cr_assert_eq(d, DEVICE_CUDA);
        cr_assert_eq(p, GEMM_BF16);
    } else {
        cr_assert_eq(rc, -1);
        const char *why = device_cuda_built() ? "run.device: CUDA was asked for, but no CUDA device found ("
                                              : "run.device: CUDA was asked for, but this binary was built without CUDA";
        cr_assert(strstr(err_msg(), why), "%s", err_msg());
    }
    config_free(c);
}

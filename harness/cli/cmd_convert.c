// kanoclip convert-openclip --in FILE --out DIR --vocab PATH [--act gelu|quick_gelu] [--vision-heads N]
//                           [--text-heads N]
// Writes a Hugging Face CLIP folder from an open_clip checkpoint (model/convert_openclip.h), e.g. WinCLIP's
// ViT-B-16-plus-240 (LAION-400M, GELU) for experiments/baselines/winclip.yaml.
#include "harness/cli/commands.h"
#include "harness/cli/cli_args.h"
#include "model/convert_openclip.h"
#include "common/error.h"

#include <stdio.h>
#include <string.h>

static const char usage_line[] =
    "usage: kanoclip convert-openclip --in FILE --out DIR --vocab PATH [--act gelu|quick_gelu] "
    "[--vision-heads N] [--text-heads N]";

static int usage_error(const char *what, const char *arg) {
    fprintf(stderr, "kanoclip convert-openclip: %s%s (see 'kanoclip convert-openclip --help')\n", what, arg);
    return 2;
}

int cmd_convert_openclip(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *vocab = NULL, *act = NULL;
    OpenclipOptions opt = {ACT_GELU, 64, 0, 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("%s\n\nConverts an open_clip ViT checkpoint (a torch.save state dict with open_clip's names) into a\n"
                   "Hugging Face CLIP folder: config.json, model.safetensors, preprocessor_config.json, tokenizer.\n"
                   "  --in FILE          the open_clip weights (.pt / .bin; a {\"state_dict\": ...} wrapper and a\n"
                   "                     \"module.\" prefix are accepted)\n"
                   "  --out DIR          the folder to write (model.checkpoint in a config)\n"
                   "  --vocab PATH       bpe_simple_vocab_16e6.txt.gz (in open_clip's sources) or a folder with\n"
                   "                     vocab.json + merges.txt\n"
                   "  --act A            the MLP activation: gelu (open_clip's default, LAION models; default) or\n"
                   "                     quick_gelu (OpenAI-trained weights, open_clip's -quickgelu models)\n"
                   "  --vision-heads N   attention heads (default: width / 64, open_clip's head width)\n"
                   "  --text-heads N\n", usage_line);
            return 0;
        }
        const char *keys[] = {"--in", "--out", "--vocab", "--act", "--vision-heads", "--text-heads"};
        int k = 0;
        while (k < 6 && strcmp(a, keys[k])) k++;
        if (k == 6) return usage_error("unknown option ", a);
        if (i + 1 >= argc) return usage_error("a value is missing after ", a);
        const char *v = argv[++i];
        switch (k) {
        case 0: in = v; break;
        case 1: out = v; break;
        case 2: vocab = v; break;
        case 3: act = v; break;
        case 4:
            if (cli_parse_int(v, 1, 4096, &opt.vision_heads)) return usage_error("--vision-heads: expected a count, got ", v);
            break;
        default:
            if (cli_parse_int(v, 1, 4096, &opt.text_heads)) return usage_error("--text-heads: expected a count, got ", v);
        }
    }
    if (!in || !out) return usage_error("--in and --out are required", "");
    if (act && !strcmp(act, "quick_gelu")) opt.act = ACT_QUICK_GELU;
    else if (act && strcmp(act, "gelu")) return usage_error("--act: expected gelu or quick_gelu, got ", act);
    ClipConfig cfg;
    if (openclip_convert(in, out, vocab, &opt, &cfg)) return fail_with_error();
    printf("%s: ViT %d px, patch %d, vision %d x %d (%d heads), text %d x %d (%d heads), projection %d, %s\n", out,
           cfg.image_size, cfg.patch_size, cfg.vision.layers, cfg.vision.width, cfg.vision.heads, cfg.text.layers,
           cfg.text.width, cfg.text.heads, cfg.projection_dim, opt.act == ACT_GELU ? "gelu" : "quick_gelu");
    return 0;
}

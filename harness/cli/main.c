// kanoclip: the command-line entry point; dispatches to one subcommand.
#include "harness/cli/commands.h"
#include "common/error.h"

#include <stdio.h>
#include <string.h>

// Weak references: while a subcommand is still being built on another branch the binary links and
// says so, instead of failing to build.
#pragma weak cmd_tokenize
#pragma weak cmd_embed
#pragma weak cmd_metrics
#pragma weak cmd_dataset_info
#pragma weak cmd_synth
#pragma weak cmd_kb
#pragma weak cmd_experiment
#pragma weak cmd_features
#pragma weak cmd_tables
#pragma weak cmd_plots
#pragma weak cmd_grid
#pragma weak cmd_convert_openclip
#pragma weak cmd_pretrain

typedef int (*command_fn)(int argc, char **argv);

static const struct {
    const char *name;
    command_fn fn;
    const char *summary;
} commands[] = {
    {"experiment", cmd_experiment, "train and evaluate as a YAML config says (key=value overrides)"},
    {"features", cmd_features, "extract a config's vision features ahead of its runs (--shard I/N: one shard)"},
    {"grid", cmd_grid, "expand a grid of experiments; run it locally or write a Slurm array"},
    {"tables", cmd_tables, "Markdown, CSV and LaTeX tables from run folders"},
    {"plots", cmd_plots, "ROC curves, per-class bars, ablation chart, loss curves (gnuplot)"},
    {"embed", cmd_embed, "CLIP image/text embeddings and hidden states to HDF5"},
    {"tokenize", cmd_tokenize, "CLIP BPE token ids of texts"},
    {"metrics", cmd_metrics, "AUROC, AP, F1-max from a label,score CSV or HDF5 maps and masks"},
    {"dataset-info", cmd_dataset_info, "the test split of a dataset as its reader sees it"},
    {"synth", cmd_synth, "write a synthetic anomaly dataset in a real layout"},
    {"kb", cmd_kb, "knowledge base: build (LLM/VQA descriptions), show (what each class contributes), embed"},
    {"convert-openclip", cmd_convert_openclip, "an open_clip checkpoint as a Hugging Face CLIP folder"},
    {"pretrain", cmd_pretrain, "train a small CLIP from scratch on synthetic image-caption pairs"},
};
enum { n_commands = sizeof commands / sizeof commands[0] };

static void usage(FILE *out) {
    fprintf(out, "usage: kanoclip COMMAND [options]\n\ncommands:\n");
    for (int i = 0; i < n_commands; i++) fprintf(out, "  %-16s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'kanoclip COMMAND --help' describes a command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) { usage(stderr); return 2; }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) { usage(stdout); return 0; }
    for (int i = 0; i < n_commands; i++) {
        if (strcmp(argv[1], commands[i].name) != 0) continue;
        if (!commands[i].fn) {
            fprintf(stderr, "kanoclip: command '%s' is not in this build\n", argv[1]);
            return 2;
        }
        return commands[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "kanoclip: unknown command '%s' (see 'kanoclip --help')\n", argv[1]);
    return 2;
}

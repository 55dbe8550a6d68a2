// The kanoclip subcommands. Each lives in its own file (harness/cmd_*.c) and returns the exit status.
// Usage errors print one line on stderr and return 2; other failures print err_msg() and return 1.
#ifndef HARNESS_COMMANDS_H
#define HARNESS_COMMANDS_H

int cmd_tokenize(int argc, char **argv);     // harness/cli/cmd_tokenize.c
int cmd_embed(int argc, char **argv);        // harness/cli/cmd_embed.c
int cmd_metrics(int argc, char **argv);      // harness/cli/cmd_metrics.c
int cmd_dataset_info(int argc, char **argv); // harness/cli/cmd_dataset_info.c
int cmd_synth(int argc, char **argv);        // harness/cli/cmd_synth.c
int cmd_kb(int argc, char **argv);           // harness/cli/cmd_kb.c
int cmd_experiment(int argc, char **argv);   // harness/cli/cmd_experiment.c
int cmd_features(int argc, char **argv);     // harness/cli/cmd_features.c
int cmd_tables(int argc, char **argv);       // harness/cli/cmd_tables.c
int cmd_plots(int argc, char **argv);        // harness/cli/cmd_plots.c
int cmd_grid(int argc, char **argv);         // harness/cli/cmd_grid.c
int cmd_convert_openclip(int argc, char **argv); // harness/cli/cmd_convert.c
int cmd_pretrain(int argc, char **argv);     // harness/cli/cmd_pretrain.c

// Prints "kanoclip: <message>" on stderr and returns 1, for `return fail_with_error();`.
int fail_with_error(void);

#endif

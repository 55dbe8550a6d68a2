// kanoclip tokenize --model DIR|VOCAB.txt.gz [--context N] [--] TEXT...
// Prints, per text, one line of CLIP token ids separated by single spaces, SOT and EOT included, no padding
// (design §5). Texts longer than the context (77 by default) are truncated with EOT kept last; --context 0
// prints every id.
#include "harness/cli/commands.h"
#include "harness/cli/cli_args.h"
#include "model/tokenizer.h"
#include "common/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static const char usage_line[] = "usage: kanoclip tokenize --model DIR|VOCAB.txt.gz [--context N] [--] TEXT...";

static int usage_error(const char *what, const char *arg) {
    fprintf(stderr, "kanoclip tokenize: %s%s (see 'kanoclip tokenize --help')\n", what, arg);
    return 2;
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL;
    int context = TOKENIZER_CONTEXT, i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) { i++; break; }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("%s\n\nPrints one line of token ids per TEXT (SOT 49406 and EOT 49407 included, no padding).\n"
                   "  --model PATH   a model folder (vocab.json + merges.txt, or bpe_simple_vocab_16e6.txt.gz)\n"
                   "                 or OpenAI's bpe_simple_vocab_16e6.txt.gz itself\n"
                   "  --context N    at most N ids per text, EOT kept last (default 77; 0: no limit)\n", usage_line);
            return 0;
        }
        if (!strcmp(a, "--model") || !strcmp(a, "--context")) {
            if (i + 1 >= argc) return usage_error("a value is missing after ", a);
            const char *v = argv[++i];
            if (a[2] == 'm') { model = v; continue; }
            if (cli_parse_int(v, 0, 1000000, &context) || context == 1)
                return usage_error("--context: expected 0 or an integer >= 2, got ", v);
            continue;
        }
        if (a[0] == '-' && a[1] == '-') return usage_error("unknown option ", a);
        break;
    }
    if (!model) return usage_error("--model is required", "");
    if (i >= argc) return usage_error("no TEXT given", "");
    int first_text = i;
    Tokenizer *t = tokenizer_load(model);
    if (!t) return fail_with_error();
    for (; i < argc; i++) {
        int n = 0;
        int *ids = tokenizer_encode_all(t, argv[i], &n);
        if (!ids) { err_wrap("text %d: ", i - first_text + 1); tokenizer_free(t); return fail_with_error(); }
        if (context && n > context) { n = context; ids[n - 1] = TOKENIZER_EOT; }
        for (int k = 0; k < n; k++) printf(k ? " %d" : "%d", ids[k]);
        putchar('\n');
        free(ids);
    }
    tokenizer_free(t);
    if (fflush(stdout) != 0) { err_set("writing the ids to stdout failed"); return fail_with_error(); }
    return 0;
}

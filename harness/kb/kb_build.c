#include "harness/kb/kb_build.h"
#include "harness/kb/kb_cache.h"
#include "harness/kb/kb_client.h"
#include "harness/kb/kb_plan.h"
#include "harness/kb/kb_text.h"
#include "common/error.h"
#include "common/strbuf.h"

#include <stdlib.h>
#include <string.h>

// Offline errors name this many missing answers, then count the rest.
#define KB_MISSING_NAMED 20

typedef struct {
    const KbSettings *s;
    KbPlan *plan;
    int *todo;       // plan indices to ask
    int n_todo;
    int n_done;
    FILE *progress;
    KbBuildStats *stats;
    char *first_error;
    StrBuf short_answers;  // "llm a (1 of 5)" of answers with fewer descriptions than asked
} BuildRun;

static int wanted(const KbSettings *s, const KbQuestion *q) { return q->kind == KB_LLM ? s->llm_n : s->vqa_m; }

// Notes an answer that holds fewer descriptions than asked for the closing summary (KB_MISSING_NAMED named).
static void note_short(StrBuf *b, KbBuildStats *st, const KbQuestion *q, int n, int want) {
    if (st->n_short++ >= KB_MISSING_NAMED) return;
    char *label = kb_question_label(q);
    strbuf_printf(b, "%s%s (%d of %d)", b->len ? ", " : "", label, n, want);
    free(label);
}

static int prepare(void *ctx, int i, char **body, size_t *len) {
    BuildRun *run = ctx;
    return kb_question_body(run->s, &run->plan->q[run->todo[i]], body, len);
}

static void finished(void *ctx, int i, const KbCallResult *r) {
    BuildRun *run = ctx;
    const KbQuestion *q = &run->plan->q[run->todo[i]];
    char *label = kb_question_label(q);
    char *error = NULL;
    char **items = NULL;
    int n = 0;
    int want = wanted(run->s, q);
    if (r->ok) {
        n = kb_split_answer(r->content, want, &items);
        if (n == 0) {
            // the server's text, escaped: it is printed on the terminal
            char *c = str_escaped(r->content, strlen(r->content), 80);
            error = malloc(strlen(label) + strlen(c) + 64);
            sprintf(error, "%s: the answer holds no description (\"%s\")", label, c);
            free(c);
        } else if (kb_cache_write(run->s, q, r, items, n) != 0) {
            error = strdup(err_msg());
        } else if (n < want) {
            note_short(&run->short_answers, run->stats, q, n, want);
        }
    } else {
        error = malloc(strlen(label) + strlen(r->error) + 4);
        sprintf(error, "%s: %s", label, r->error);
    }
    run->n_done++;
    if (error) {
        run->stats->n_failed++;
        if (!run->first_error) run->first_error = strdup(error);
        if (run->progress) fprintf(run->progress, "[%d/%d] FAILED %s\n", run->n_done, run->n_todo, error);
    } else {
        run->stats->n_fetched++;
        if (run->progress && n < want)
            fprintf(run->progress, "[%d/%d] %s: only %d of %d descriptions (%s), %.1f s%s\n", run->n_done, run->n_todo,
                    label, n, want, q->kind == KB_LLM ? "kb.llm_n" : "kb.vqa_m", r->seconds,
                    r->attempts > 1 ? " (retried)" : "");
        else if (run->progress)
            fprintf(run->progress, "[%d/%d] %s: %d description%s, %.1f s%s\n", run->n_done, run->n_todo, label, n,
                    n == 1 ? "" : "s", r->seconds, r->attempts > 1 ? " (retried)" : "");
    }
    if (run->progress) fflush(run->progress);
    kb_free_strings(items, n);
    free(error);
    free(label);
}

int kb_build(const KbSettings *s, const KbDataset *d, FILE *progress, KbBuildStats *stats) {
    memset(stats, 0, sizeof *stats);
    if (kb_settings_check(s) != 0) return -1;
    KbPlan plan;
    if (kb_plan_make(s, d, NULL, &plan) != 0) return -1;
    stats->n_questions = plan.n;
    int *todo = malloc((plan.n ? plan.n : 1) * sizeof *todo);
    int n_todo = 0;
    StrBuf short_answers = {0}, damaged = {0};
    // A cached answer counts only when it reads as `kb show` and training read it: a truncated or edited file that
    // does not is asked again (offline: named), never counted as present.
    for (int i = 0; i < plan.n; i++) {
        if (plan.q[i].kind == KB_LLM) stats->n_llm++;
        else stats->n_vqa++;
        KbAnswer a;
        int got = kb_cache_read(s->cache_dir, plan.q[i].key, &a);
        if (got == 1) {
            stats->n_cached++;
            if (a.n_descriptions < wanted(s, &plan.q[i]))
                note_short(&short_answers, stats, &plan.q[i], a.n_descriptions, wanted(s, &plan.q[i]));
            kb_answer_free(&a);
            continue;
        }
        if (got < 0) {
            if (stats->n_damaged++ < KB_MISSING_NAMED) strbuf_printf(&damaged, "%s%s", damaged.len ? "; " : "", err_msg());
            if (progress && !s->offline) fprintf(progress, "kb build: %s; asking again\n", err_msg());
        }
        todo[n_todo++] = i;
    }
    char *url = malloc(strlen(s->base_url) + 32);
    size_t ub = strlen(s->base_url);
    while (ub > 0 && s->base_url[ub - 1] == '/') ub--;
    sprintf(url, "%.*s/chat/completions", (int)ub, s->base_url);
    char *public_url = kb_url_public(url);
    if (progress) {
        fprintf(progress, "kb build: %d questions (%d llm, %d vqa) for %d classes; %d cached in %s/answers, %d to ask",
                plan.n, stats->n_llm, stats->n_vqa, d->n_classes, stats->n_cached, s->cache_dir, n_todo);
        if (n_todo > 0 && !s->offline)
            fprintf(progress, " %s (model %s, %d in flight)", public_url, s->model, s->concurrency);
        fprintf(progress, "\n");
        fflush(progress);
    }
    int rc = 0;
    if (n_todo > 0 && s->offline) {
        // Name the missing answers, so that a reviewer knows which questions an online run would ask.
        char msg[8192];
        int k = snprintf(msg, sizeof msg, "offline: %d of %d answers missing from %s/answers:", n_todo, plan.n,
                         s->cache_dir);
        for (int t = 0; t < n_todo && t < KB_MISSING_NAMED; t++) {
            char *label = kb_question_label(&plan.q[todo[t]]);
            if (k < (int)sizeof msg)
                k += snprintf(msg + k, sizeof msg - k, "%s %s (key %.12s)", t ? "," : "", label, plan.q[todo[t]].key);
            free(label);
        }
        if (n_todo > KB_MISSING_NAMED && k < (int)sizeof msg)
            k += snprintf(msg + k, sizeof msg - k, ", and %d more", n_todo - KB_MISSING_NAMED);
        if (stats->n_damaged > 0 && k < (int)sizeof msg)
            snprintf(msg + k, sizeof msg - k, "; %d of them cached but unreadable: %s", stats->n_damaged, damaged.s);
        rc = err_set("%s", msg);
    } else if (n_todo > 0) {
        const char *key = NULL;
        if (s->api_key_env[0]) key = getenv(s->api_key_env);
        // Only the variable's name is ever printed, never its value.
        if (progress && s->api_key_env[0]) {
            if (key && key[0]) fprintf(progress, "kb build: API key from $%s\n", s->api_key_env);
            else fprintf(progress, "kb build: no API key ($%s is not set)\n", s->api_key_env);
        }
        KbClientOptions o = {
            .url = url, .api_key = key, .concurrency = s->concurrency, .connect_timeout_s = s->connect_timeout_s,
            .low_speed_limit_bps = s->low_speed_limit_bps, .low_speed_time_s = s->low_speed_time_s,
            .timeout_s = s->timeout_s, .max_retries = s->max_retries, .backoff_initial_s = s->backoff_initial_s,
            .backoff_max_s = s->backoff_max_s,
        };
        BuildRun run = {.s = s, .plan = &plan, .todo = todo, .n_todo = n_todo, .progress = progress, .stats = stats,
                        .short_answers = short_answers};
        int failed = kb_client_run(&o, n_todo, prepare, finished, &run);
        short_answers = run.short_answers;
        if (failed < 0) rc = -1;
        else if (stats->n_failed > 0)
            rc = err_set("kb build: %d of %d questions failed (answers that arrived are cached; run again to "
                         "retry the rest); first: %s", stats->n_failed, n_todo, run.first_error);
        free(run.first_error);
    }
    if (progress && rc == 0)
        fprintf(progress, "kb build: done; %d answers fetched, %d were cached\n", stats->n_fetched, stats->n_cached);
    if (progress && stats->n_short > 0)
        fprintf(progress, "kb build: %d answer%s fewer descriptions than asked (kb.llm_n %d, kb.vqa_m %d): %s%s\n",
                stats->n_short, stats->n_short == 1 ? " holds" : "s hold", s->llm_n, s->vqa_m, short_answers.s,
                stats->n_short > KB_MISSING_NAMED ? ", ..." : "");
    free(short_answers.s);
    free(damaged.s);
    free(public_url);
    free(url);
    free(todo);
    kb_plan_free(&plan);
    return rc;
}

/* tests/eval_mc/test_eval_prompts.c — the prompt builders of core/eval_tasks
 * against hand-written expected strings (each format as its SOURCE.md states
 * it), the loaders against the staged files (counts, first records), the
 * HellaSwag preprocess, and core/mcq's context/continuation split with the
 * real LLaMA-2 tokenizer.
 * usage: test_eval_prompts DATA_DIR TOKENIZER_MODEL */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/eval/eval_tasks.h"
#include "core/eval/mcq.h"

static int failures = 0, checks = 0;

static void show(const char *s) {
    for (; *s; s++) {
        if (*s == '\n') fputs("\\n", stderr);
        else fputc(*s, stderr);
    }
}

static void expect_str(const char *what, const char *got, const char *want) {
    checks++;
    if (got && !strcmp(got, want)) return;
    failures++;
    fprintf(stderr, "FAIL %s\n  got:  ", what);
    show(got ? got : "(null)");
    fputs("\n  want: ", stderr);
    show(want);
    fputc('\n', stderr);
}

static void expect_int(const char *what, long got, long want) {
    checks++;
    if (got == want) return;
    failures++;
    fprintf(stderr, "FAIL %s: got %ld, want %ld\n", what, got, want);
}

static mp_mc_doc mkdoc(const char *query, const char *context, int n, const char *const *choices, int gold) {
    mp_mc_doc d;
    memset(&d, 0, sizeof d);
    d.id = strdup("t");
    d.query = strdup(query);
    d.context = context ? strdup(context) : NULL;
    for (int i = 0; i < n; i++) d.choices[i] = strdup(choices[i]);
    d.n_choices = n;
    d.gold = gold;
    return d;
}

static void freedoc(mp_mc_doc *d) {
    mp_mc_set s = {d, 1};
    mp_mc_doc *copy = malloc(sizeof *copy);
    *copy = *d;
    s.docs = copy;
    mp_mc_set_free(&s);
}

static void test_mmlu_hand(void) {
    const char *c1[] = {"a", "b", "c", "d"}, *c2[] = {"w", "x", "y", "z"};
    mp_mc_doc d = mkdoc("  What is X?\n", NULL, 4, c1, 2), s = mkdoc("Q1", NULL, 4, c2, 1);
    mp_mc_request r;
    mp_error err;
    if (mp_mc_format(MP_TASK_MMLU, &d, "high_school_biology", NULL, 0, &r, &err)) {
        fprintf(stderr, "FAIL mmlu format: %s\n", err.msg);
        failures++;
        return;
    }
    expect_str("mmlu 0-shot ctx", r.ctx[0],
               "The following are multiple choice questions (with answers) about high school biology.\n\n"
               "What is X?\nA. a\nB. b\nC. c\nD. d\nAnswer:");
    expect_str("mmlu cont A", r.cont[0], " A");
    expect_str("mmlu cont D", r.cont[3], " D");
    expect_int("mmlu gold", r.gold, 2);
    expect_int("mmlu n_ctx", r.n_ctx, 1);
    expect_int("mmlu 0-shot prefix", (long)r.prefix_len,
               (long)strlen("The following are multiple choice questions (with answers) about high school biology.\n\n"));
    mp_mc_request_free(&r);
    mp_mc_format(MP_TASK_MMLU, &d, "high_school_biology", &s, 1, &r, &err);
    const char *pre = "The following are multiple choice questions (with answers) about high school biology.\n\n"
                      "Q1\nA. w\nB. x\nC. y\nD. z\nAnswer: B\n\n";
    char want[1024];
    snprintf(want, sizeof want, "%sWhat is X?\nA. a\nB. b\nC. c\nD. d\nAnswer:", pre);
    expect_str("mmlu 1-shot ctx", r.ctx[0], want);
    expect_int("mmlu 1-shot prefix", (long)r.prefix_len, (long)strlen(pre));
    mp_mc_request_free(&r);
    freedoc(&d);
    freedoc(&s);
}

static void test_hand_tasks(void) {
    mp_error err;
    mp_mc_request r;
    /* SIQA: "Q: {context} {question}\nA:" */
    const char *sc[] = {"make a new plan", "Go home and see Riley", "Find somewhere to go"};
    mp_mc_doc d = mkdoc("What does Tracy need to do before this?", "Tracy didn't go home that evening.", 3, sc, 2);
    mp_mc_format(MP_TASK_SIQA, &d, NULL, NULL, 0, &r, &err);
    expect_str("siqa ctx", r.ctx[0], "Q: Tracy didn't go home that evening. What does Tracy need to do before this?\nA:");
    expect_str("siqa cont", r.cont[1], " Go home and see Riley");
    mp_mc_request_free(&r);
    freedoc(&d);
    /* WinoGrande: two contexts, one continuation */
    const char *wc[] = {"Sarah", "Maria"};
    d = mkdoc("Sarah was a better surgeon than Maria so _ always got the   easier cases. ", NULL, 2, wc, 1);
    mp_mc_format(MP_TASK_WINOGRANDE, &d, NULL, NULL, 0, &r, &err);
    expect_int("winogrande n_ctx", r.n_ctx, 2);
    expect_str("winogrande ctx1", r.ctx[0], "Sarah was a better surgeon than Maria so Sarah");
    expect_str("winogrande ctx2", r.ctx[1], "Sarah was a better surgeon than Maria so Maria");
    expect_str("winogrande cont", r.cont[0], " always got the   easier cases.");
    expect_str("winogrande cont2", r.cont[1], " always got the   easier cases.");
    mp_mc_request_free(&r);
    /* 1-shot WinoGrande: the shot is its gold context + continuation */
    mp_mc_doc s = mkdoc("The cup beat the _ in the race.", NULL, 2, wc, 0);
    mp_mc_format(MP_TASK_WINOGRANDE, &d, NULL, &s, 1, &r, &err);
    expect_str("winogrande 1-shot", r.ctx[1],
               "The cup beat the Sarah in the race.\n\nSarah was a better surgeon than Maria so Maria");
    mp_mc_request_free(&r);
    freedoc(&d);
    freedoc(&s);
    /* CommonsenseQA: letters, stem stripped */
    const char *cc[] = {"bank", "library", "department store", "mall", "new york"};
    d = mkdoc(" Where? ", NULL, 5, cc, 0);
    mp_mc_format(MP_TASK_COMMONSENSEQA, &d, NULL, NULL, 0, &r, &err);
    expect_str("csqa ctx", r.ctx[0], "Question: Where?\nA. bank\nB. library\nC. department store\nD. mall\nE. new york\nAnswer:");
    expect_str("csqa cont E", r.cont[4], " E");
    mp_mc_request_free(&r);
    freedoc(&d);
    /* ARC / PIQA: "Question: ...\nAnswer:", OpenBookQA: the bare stem; acc_norm length in characters */
    const char *ac[] = {"caf\xc3\xa9 au lait", "tea"};
    d = mkdoc("Which drink?", NULL, 2, ac, 1);
    mp_mc_format(MP_TASK_ARC_EASY, &d, NULL, NULL, 0, &r, &err);
    expect_str("arc ctx", r.ctx[0], "Question: Which drink?\nAnswer:");
    expect_str("arc cont", r.cont[0], " caf\xc3\xa9 au lait");
    expect_int("arc norm_len chars (not bytes)", (long)r.norm_len[0], 12);
    mp_mc_request_free(&r);
    mp_mc_format(MP_TASK_PIQA, &d, NULL, NULL, 0, &r, &err);
    expect_str("piqa ctx", r.ctx[0], "Question: Which drink?\nAnswer:");
    mp_mc_request_free(&r);
    mp_mc_format(MP_TASK_OPENBOOKQA, &d, NULL, NULL, 0, &r, &err);
    expect_str("obqa ctx", r.ctx[0], "Which drink?");
    expect_str("obqa cont", r.cont[1], " tea");
    mp_mc_request_free(&r);
    /* 2-shot ARC from other docs */
    const char *bc[] = {"x", "y"};
    mp_mc_doc sh[2] = {mkdoc("Q1?", NULL, 2, bc, 0), mkdoc("Q2?", NULL, 2, bc, 1)};
    mp_mc_format(MP_TASK_ARC_CHALLENGE, &d, NULL, sh, 2, &r, &err);
    expect_str("arc 2-shot", r.ctx[0],
               "Question: Q1?\nAnswer: x\n\nQuestion: Q2?\nAnswer: y\n\nQuestion: Which drink?\nAnswer:");
    expect_int("arc 2-shot prefix", (long)r.prefix_len, (long)strlen("Question: Q1?\nAnswer: x\n\nQuestion: Q2?\nAnswer: y\n\n"));
    mp_mc_request_free(&r);
    freedoc(&sh[0]);
    freedoc(&sh[1]);
    freedoc(&d);
    /* HellaSwag: lm-eval preprocess on context and endings */
    const char *hc[] = {"is [step] ripping  tiles", "b", "c", "d"};
    d = mkdoc(" Roof [title] shingle removal: A man [header] sits.  he", NULL, 4, hc, 0);
    mp_mc_format(MP_TASK_HELLASWAG, &d, NULL, NULL, 0, &r, &err);
    expect_str("hellaswag ctx", r.ctx[0], "Roof. shingle removal: A man sits. he");
    expect_str("hellaswag cont", r.cont[0], " is ripping tiles");
    expect_int("hellaswag norm_len", (long)r.norm_len[0], 16);
    mp_mc_request_free(&r);
    freedoc(&d);
    /* ctx_b recovery on the staged text form: real items 1 (ActivityNet, ctx_b "the lady") and
     * 5000 (WikiHow, ctx_b empty: unchanged), and capitalize() lower-casing the rest */
    {
        char a[] = "Clean and jerk: A lady walks to a barbell. She bends down and grabs the pole. the lady";
        char w[] = "Health: How to use aromatherapy for depression. Know what oils help with which symptoms. Clary sage "
                   "essential oil can help with anxiety, depression and insomnia. Basil works against depression, "
                   "fatigue and anxiety.";
        char c[] = "Snow: A man skis down a hill. the man in the USA";
        char e[] = "Label: a man";
        char *w0 = strdup(w);
        mp_hellaswag_capitalize_tail(a);
        mp_hellaswag_capitalize_tail(w);
        mp_hellaswag_capitalize_tail(c);
        mp_hellaswag_capitalize_tail(e);
        expect_str("hellaswag ctx_b capitalised", a,
                   "Clean and jerk: A lady walks to a barbell. She bends down and grabs the pole. The lady");
        expect_str("hellaswag wikihow unchanged", w, w0);
        expect_str("hellaswag capitalize lowers the rest", c, "Snow: A man skis down a hill. The man in the usa");
        expect_str("hellaswag no sentence end: unchanged", e, "Label: a man");
        free(w0);
    }
    char *p = mp_hellaswag_preprocess("  A [title] B [step] C  D    E [x ");
    expect_str("hellaswag preprocess", p, "A. B C D  E [x");
    free(p);
}

/* The staged files: counts and the first record's prompt. */
static void test_real(const char *data) {
    static const struct {
        mp_mc_task t;
        size_t n;
        const char *ctx0, *cont0;
        int gold;
    } want[] = {
        {MP_TASK_ARC_CHALLENGE, 1172,
         "Question: An astronomer observes that a planet rotates faster after a meteorite impact. Which is the most "
         "likely effect of this increase in rotation?\nAnswer:",
         " Planetary density will decrease.", 2},
        {MP_TASK_ARC_EASY, 2376, NULL, NULL, -1},
        {MP_TASK_WINOGRANDE, 1267, "Sarah was a much better surgeon than Maria so Sarah", " always got the easier cases.", 1},
        {MP_TASK_PIQA, 1838, "Question: How do I ready a guinea pig cage for it's new occupants?\nAnswer:", NULL, 0},
        {MP_TASK_SIQA, 1954,
         "Q: Tracy didn't go home that evening and resisted Riley's attacks. What does Tracy need to do before "
         "this?\nA:", " make a new plan", 2},
        {MP_TASK_OPENBOOKQA, 500,
         "A person wants to start saving money so that they can afford a nice vacation at the end of the year. After "
         "looking over their budget and expenses, they decide the best way to save money is to",
         " make more phone calls", 1},
        /* ctx_b "he" capitalised as lm-eval's ctx_b.capitalize() (boundary recovered from the text form) */
        {MP_TASK_HELLASWAG, 10042, "Roof shingle removal: A man is sitting on a roof. He",
         " is using wrap to wrap a pair of skis.", 3},
        {MP_TASK_COMMONSENSEQA, 1221,
         "Question: A revolving door is convenient for two direction travel, but it also serves as a security "
         "measure at a what?\nA. bank\nB. library\nC. department store\nD. mall\nE. new york\nAnswer:", " A", 0},
    };
    mp_error err;
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        mp_mc_set s;
        const char *name = mp_mc_task_get(want[k].t)->name;
        if (mp_mc_load(want[k].t, data, NULL, NULL, &s, &err)) {
            fprintf(stderr, "FAIL load %s: %s\n", name, err.msg);
            failures++;
            continue;
        }
        expect_int(name, (long)s.n, (long)want[k].n);
        mp_mc_request r;
        mp_mc_format(want[k].t, &s.docs[0], NULL, NULL, 0, &r, &err);
        if (want[k].ctx0) expect_str(name, r.ctx[0], want[k].ctx0);
        if (want[k].cont0) expect_str(name, r.cont[0], want[k].cont0);
        if (want[k].gold >= 0) expect_int(name, r.gold, want[k].gold);
        mp_mc_request_free(&r);
        mp_mc_set_free(&s);
    }
    /* MMLU: subjects.tsv, categories, first test record */
    mp_mmlu_subject *subj;
    size_t ns;
    if (mp_mmlu_subjects_load(data, &subj, &ns, &err)) {
        fprintf(stderr, "FAIL subjects: %s\n", err.msg);
        failures++;
        return;
    }
    expect_int("mmlu subjects", (long)ns, 57);
    size_t other = 0, eng = 0, total = 0, ncat = 0;
    const char *cats[64];
    for (size_t i = 0; i < ns; i++) {
        total += subj[i].n_test;
        if (!strcmp(subj[i].category, "other")) other += subj[i].n_test;
        if (!strcmp(subj[i].category, "engineering")) eng += subj[i].n_test;
        size_t j = 0;
        while (j < ncat && strcmp(cats[j], subj[i].category)) j++;
        if (j == ncat) cats[ncat++] = subj[i].category;
    }
    expect_int("mmlu questions", (long)total, 14042);
    expect_int("paper categories", (long)ncat, 14);
    expect_int("category other (paper: 2,343)", (long)other, 2343);
    expect_int("category engineering (paper: 145)", (long)eng, 145);
    mp_mmlu_subjects_free(subj, ns);
    mp_mc_set t, dv;
    if (mp_mc_load(MP_TASK_MMLU, data, "abstract_algebra", "test", &t, &err) ||
        mp_mc_load(MP_TASK_MMLU, data, "abstract_algebra", "dev", &dv, &err)) {
        fprintf(stderr, "FAIL mmlu load: %s\n", err.msg);
        failures++;
        return;
    }
    expect_int("abstract_algebra test", (long)t.n, 100);
    expect_int("abstract_algebra dev", (long)dv.n, 5);
    mp_mc_request r;
    mp_mc_format(MP_TASK_MMLU, &t.docs[0], "abstract_algebra", NULL, 0, &r, &err);
    expect_str("mmlu real 0-shot", r.ctx[0],
               "The following are multiple choice questions (with answers) about abstract algebra.\n\n"
               "Find the degree for the given field extension Q(sqrt(2), sqrt(3), sqrt(18)) over Q.\n"
               "A. 0\nB. 4\nC. 2\nD. 6\nAnswer:");
    expect_int("mmlu real gold", r.gold, 1);
    mp_mc_request_free(&r);
    mp_mc_set_free(&t);
    mp_mc_set_free(&dv);
    /* sociology test #69 ends in U+0085 (NEL): the harness's question.strip() removes it */
    if (mp_mc_load(MP_TASK_MMLU, data, "sociology", "test", &t, &err) || t.n < 70) {
        fprintf(stderr, "FAIL mmlu sociology load\n");
        failures++;
        return;
    }
    expect_str("mmlu sociology #69 raw ends in U+0085", t.docs[69].query + strlen(t.docs[69].query) - 2, "\xc2\x85");
    mp_mc_format(MP_TASK_MMLU, &t.docs[69], "sociology", NULL, 0, &r, &err);
    expect_str("mmlu sociology #69 (Python strip)", r.ctx[0],
               "The following are multiple choice questions (with answers) about sociology.\n\n"
               "Role-learning theory suggests that\n"
               "A. we internalise and take on social roles from a pre-existing framework\n"
               "B. we create and negotiate our roles through interaction with others\n"
               "C. social roles are not fixed or stable but fluid and pluralistic\n"
               "D. roles have to be learned to suppress unconscious motivations\nAnswer:");
    mp_mc_request_free(&r);
    mp_mc_set_free(&t);
    checks++;
    if (mp_mc_load(MP_TASK_MMLU, data, "no_such_subject", "test", &t, &err) != MP_EIO) {
        fprintf(stderr, "FAIL missing subject file should be MP_EIO\n");
        failures++;
    }
}

static void pieces(const mp_tokenizer *tok, const int32_t *ids, size_t n, char *out, size_t cap) {
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        strncat(out, mp_tokenizer_piece(tok, ids[i]), cap - strlen(out) - 2);
        strncat(out, "|", cap - strlen(out) - 1);
    }
}

static void test_split(const char *tok_path) {
    mp_tokenizer *tok;
    mp_error err;
    if (mp_tokenizer_load(tok_path, &tok, &err)) {
        fprintf(stderr, "FAIL tokenizer: %s\n", err.msg);
        failures++;
        return;
    }
    int32_t *c, *k;
    size_t nc, nk;
    char buf[512];
    /* " A" after "Answer:" is the single piece "▁A" */
    mp_mcq_encode_pair(tok, 1, "Answer:", 7, " A", 2, &c, &nc, &k, &nk, &err);
    pieces(tok, k, nk, buf, sizeof buf);
    expect_str("split cont ' A'", buf, "\xe2\x96\x81" "A|");
    pieces(tok, c, nc, buf, sizeof buf);
    expect_str("split ctx 'Answer:'", buf, "<s>|\xe2\x96\x81" "Answer|:|");
    free(c);
    free(k);
    /* trailing context space moves to the continuation: same ids */
    mp_mcq_encode_pair(tok, 1, "Answer: ", 8, "A", 1, &c, &nc, &k, &nk, &err);
    pieces(tok, k, nk, buf, sizeof buf);
    expect_str("split trailing space", buf, "\xe2\x96\x81" "A|");
    free(c);
    free(k);
    /* multi-token continuation, no BOS */
    mp_mcq_encode_pair(tok, 0, "Question: Which?\nAnswer:", 24, " Planetary density", 18, &c, &nc, &k, &nk, &err);
    pieces(tok, k, nk, buf, sizeof buf);
    expect_str("split multi-token", buf, "\xe2\x96\x81" "Planet|ary|\xe2\x96\x81" "density|");
    checks++;
    if (mp_tokenizer_bos_id(tok) == c[0]) {
        fprintf(stderr, "FAIL --no-bos still has BOS\n");
        failures++;
    }
    free(c);
    free(k);
    /* encoding " A" alone would give the dummy prefix twice: that is why we split the whole string */
    int32_t *alone;
    size_t na;
    mp_tokenizer_encode(tok, " A", 2, 0, &alone, &na, &err);
    pieces(tok, alone, na, buf, sizeof buf);
    checks++;
    if (!strcmp(buf, "\xe2\x96\x81" "A|")) {
        fprintf(stderr, "FAIL expected ' A' alone to differ from the split\n");
        failures++;
    }
    free(alone);
    mp_tokenizer_free(tok);
}

/* Python's whitespace set (str.isspace) at both ends, every code point of it. */
static void test_py_strip(void) {
    static const char *const ws[] = {"\t", "\n", "\v", "\f", "\r", "\x1c", "\x1f", " ", "\xc2\x85", "\xc2\xa0",
                                     "\xe1\x9a\x80", "\xe2\x80\x80", "\xe2\x80\x8a", "\xe2\x80\xa8",
                                     "\xe2\x80\xa9", "\xe2\x80\xaf", "\xe2\x81\x9f", "\xe3\x80\x80"};
    static const char *const not_ws[] = {"\xe2\x80\x8b" /* U+200B ZWSP: not isspace */, "\xc2\x84", "\xef\xbb\xbf",
                                         "\xe2\x80\x8c", "x"};
    char buf[64];
    for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++) {
        snprintf(buf, sizeof buf, "%s%sa b%s%s", ws[i], ws[i], ws[i], ws[i]);
        size_t off, len;
        mp_py_strip(buf, strlen(buf), &off, &len);
        char got[64];
        snprintf(got, sizeof got, "%.*s", (int)len, buf + off);
        expect_str("py strip", got, "a b");
    }
    for (size_t i = 0; i < sizeof not_ws / sizeof not_ws[0]; i++) {
        snprintf(buf, sizeof buf, "%sa%s", not_ws[i], not_ws[i]);
        size_t off, len;
        mp_py_strip(buf, strlen(buf), &off, &len);
        expect_int("py strip keeps non-space", (long)len, (long)strlen(buf));
    }
}

/* The official hellaswag_val.jsonl, when present, is read instead (real ctx_a / ctx_b):
 * the first record of rowanz/hellaswag's file, in a temporary data dir. */
static void test_hellaswag_jsonl(void) {
    char dir[] = "/tmp/mp-hsXXXXXX", sub[64], path[128];
    if (!mkdtemp(dir)) {
        failures++;
        return;
    }
    snprintf(sub, sizeof sub, "%s/hellaswag", dir);
    snprintf(path, sizeof path, "%s/hellaswag_val.jsonl", sub);
    mkdir(sub, 0700);
    FILE *f = fopen(path, "w");
    fputs("{\"ind\": 24, \"activity_label\": \"Roof shingle removal\", \"ctx_a\": \"A man is sitting on a roof.\", "
          "\"ctx_b\": \"he\", \"ctx\": \"A man is sitting on a roof. he\", \"split\": \"val\", "
          "\"split_type\": \"indomain\", \"label\": 3, \"endings\": [\"is using wrap to wrap a pair of skis.\", "
          "\"is ripping level tiles off.\", \"is holding a rubik's cube.\", \"starts pulling up roofing on a roof.\"], "
          "\"source_id\": \"activitynet~v_-JhWjGDPHMY\"}\n", f);
    fclose(f);
    mp_mc_set s;
    mp_error err;
    mp_mc_request r;
    if (mp_mc_load(MP_TASK_HELLASWAG, dir, NULL, NULL, &s, &err) || s.n != 1) {
        fprintf(stderr, "FAIL hellaswag jsonl load: %s\n", err.msg);
        failures++;
    } else {
        mp_mc_format(MP_TASK_HELLASWAG, &s.docs[0], NULL, NULL, 0, &r, &err);
        expect_str("hellaswag jsonl ctx", r.ctx[0], "Roof shingle removal: A man is sitting on a roof. He");
        expect_str("hellaswag jsonl cont", r.cont[3], " starts pulling up roofing on a roof.");
        expect_int("hellaswag jsonl gold", r.gold, 3);
        mp_mc_request_free(&r);
        mp_mc_set_free(&s);
    }
    remove(path);
    rmdir(sub);
    rmdir(dir);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: test_eval_prompts DATA_DIR TOKENIZER_MODEL\n");
        return 2;
    }
    test_mmlu_hand();
    test_hand_tasks();
    test_py_strip();
    test_hellaswag_jsonl();
    test_real(argv[1]);
    test_split(argv[2]);
    printf("%d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}

/* core/eval/eval_tasks.c — loaders for the staged multiple-choice benchmarks and
 * the lm-evaluation-harness prompt builders (see eval_tasks.h; every format is
 * quoted from shared/data/<task>/SOURCE.md in docs/eval.md). */
#include "core/eval/eval_tasks.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/text/corpus.h"

static const mp_mc_task_info TASKS[MP_TASK_COUNT] = {
    {"mmlu", "mmlu", "", 0, NULL, NULL, 0, "test"},
    {"arc_easy", "arc_easy", "arc/ARC-Easy-Test.jsonl", 1, "arc/ARC-Easy-Train.jsonl", NULL, 0, "test"},
    {"arc_challenge", "arc_challenge", "arc/ARC-Challenge-Test.jsonl", 1, "arc/ARC-Challenge-Train.jsonl", NULL, 0,
     "test"},
    {"winogrande", "winogrande", "winogrande/dev.jsonl", 0, NULL, NULL, 1, "validation"},
    {"piqa", "piqa", "piqa/valid.jsonl", 1, NULL, NULL, 1, "validation"},
    {"siqa", "social_iqa", "siqa/dev.jsonl", 0, "siqa/train.jsonl", "siqa/train-labels.lst", 1, "validation"},
    {"openbookqa", "openbookqa", "openbookqa/test.jsonl", 1, "openbookqa/train.jsonl", NULL, 0, "test"},
    {"hellaswag", "hellaswag", "hellaswag/hellaswag_val_full.txt", 1, NULL, NULL, 1, "validation"},
    {"commonsenseqa", "commonsense_qa", "commonsenseqa/dev_rand_split.jsonl", 0, NULL, NULL, 1, "validation"},
};

const mp_mc_task_info *mp_mc_task_get(mp_mc_task t) { return t >= 0 && t < MP_TASK_COUNT ? &TASKS[t] : NULL; }

int mp_mc_task_find(const char *name) {
    for (int t = 0; t < MP_TASK_COUNT; t++)
        if (!strcmp(TASKS[t].name, name)) return t;
    return -1;
}

size_t mp_utf8_chars(const char *s) {
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) n++;
    return n;
}

/* ---- growable string ------------------------------------------------------ */

typedef struct {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_addn(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_add(sbuf *b, const char *s) { sb_addn(b, s, strlen(s)); }

/* Take the string out of b ("" when empty); NULL on allocation failure. */
static char *sb_take(sbuf *b) {
    if (!b->oom && !b->p) sb_addn(b, "", 0);
    if (b->oom) {
        free(b->p);
        b->p = NULL;
        return NULL;
    }
    char *p = b->p;
    memset(b, 0, sizeof *b);
    return p;
}

static int is_py_space_cp(unsigned long c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Decode one well-formed 1-3 byte UTF-8 code point at s (n bytes); 0 when not one. */
static size_t utf8_cp(const unsigned char *s, size_t n, unsigned long *cp) {
    if (n >= 1 && s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (n >= 2 && (s[0] & 0xE0) == 0xC0 && (s[1] & 0xC0) == 0x80) {
        *cp = ((unsigned long)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
        return 2;
    }
    if (n >= 3 && (s[0] & 0xF0) == 0xE0 && (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80) {
        *cp = ((unsigned long)(s[0] & 0x0F) << 12) | ((unsigned long)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        return 3;
    }
    return 0;
}

size_t mp_py_space_at(const char *s, size_t n) {
    unsigned long cp;
    size_t k = utf8_cp((const unsigned char *)s, n, &cp);
    return k && is_py_space_cp(cp) ? k : 0;
}

size_t mp_py_space_before(const char *s, size_t n) {
    for (size_t k = 1; k <= 3 && k <= n; k++) {
        unsigned long cp;
        if (utf8_cp((const unsigned char *)s + n - k, k, &cp) == k) return is_py_space_cp(cp) ? k : 0;
    }
    return 0;
}

void mp_py_strip(const char *s, size_t n, size_t *off, size_t *len) {
    size_t a = 0, k;
    while (a < n && (k = mp_py_space_at(s + a, n - a))) a += k;
    while (n > a && (k = mp_py_space_before(s + a, n - a))) n -= k;
    *off = a;
    *len = n - a;
}

/* Python str.strip() (Unicode whitespace, e.g. U+0085 in MMLU sociology test #69). */
static void sb_add_stripped(sbuf *b, const char *s) {
    size_t off, len;
    mp_py_strip(s, strlen(s), &off, &len);
    sb_addn(b, s + off, len);
}

char *mp_hellaswag_preprocess(const char *text) {
    sbuf a = {0}, c = {0}, d = {0};
    sb_add_stripped(&a, text);                /* text.strip() */
    const char *s = a.p ? a.p : "";
    for (size_t i = 0; s[i];) {                /* .replace(" [title]", ". ") */
        if (!strncmp(s + i, " [title]", 8)) {
            sb_add(&c, ". ");
            i += 8;
        } else {
            sb_addn(&c, s + i, 1);
            i++;
        }
    }
    sbuf e = {0};
    s = c.p ? c.p : "";
    for (size_t i = 0; s[i];) {                /* re.sub("\\[.*?\\]", "", text) */
        const char *close = s[i] == '[' ? strchr(s + i + 1, ']') : NULL;
        if (close) {
            i = (size_t)(close - s) + 1;
        } else {
            sb_addn(&e, s + i, 1);
            i++;
        }
    }
    s = e.p ? e.p : "";
    for (size_t i = 0; s[i];) {                /* .replace("  ", " ") */
        if (s[i] == ' ' && s[i + 1] == ' ') {
            sb_addn(&d, " ", 1);
            i += 2;
        } else {
            sb_addn(&d, s + i, 1);
            i++;
        }
    }
    int oom = a.oom || c.oom || e.oom;
    free(a.p);
    free(c.p);
    free(e.p);
    char *r = sb_take(&d);
    if (oom) {
        free(r);
        return NULL;
    }
    return r;
}

/* ---- sets ------------------------------------------------------------------ */

static void doc_free(mp_mc_doc *d) {
    free(d->id);
    free(d->query);
    free(d->context);
    for (int i = 0; i < d->n_choices; i++) free(d->choices[i]);
    memset(d, 0, sizeof *d);
}

void mp_mc_set_free(mp_mc_set *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) doc_free(&s->docs[i]);
    free(s->docs);
    s->docs = NULL;
    s->n = 0;
}

static mp_mc_doc *set_push(mp_mc_set *s, size_t *cap) {
    if (s->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 256;
        mp_mc_doc *nd = realloc(s->docs, nc * sizeof *nd);
        if (!nd) return NULL;
        s->docs = nd;
        *cap = nc;
    }
    mp_mc_doc *d = &s->docs[s->n++];
    memset(d, 0, sizeof *d);
    return d;
}

static char *dupn(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static char *dup(const char *s) { return dupn(s, strlen(s)); }

static char *join_path(const char *dir, const char *rel) {
    size_t n = strlen(dir) + strlen(rel) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, rel);
    return p;
}

static int load_mmlu(const char *data_dir, const char *subject, const char *split, mp_mc_set *out, mp_error *err) {
    char rel[512];
    snprintf(rel, sizeof rel, "mmlu/%s/%s_%s.csv", split, subject, split);
    char *path = join_path(data_dir, rel);
    if (!path) return mp_fail(err, MP_ENOMEM, "out of memory");
    mp_corpus_opts o;
    memset(&o, 0, sizeof o);
    o.text_field = "question";
    o.label_fields[0] = "choice0";
    o.label_fields[1] = "choice1";
    o.label_fields[2] = "choice2";
    o.label_fields[3] = "choice3";
    o.label_fields[4] = "answer";
    o.n_label_fields = 5;
    o.strict = 1;
    mp_corpus *c = NULL;
    size_t cap = 0;
    int rc = mp_corpus_open(path, &o, &c, err);
    while (rc >= 0) {
        mp_doc doc;
        rc = mp_corpus_next(c, &doc, err);
        if (rc <= 0) break;
        for (int i = 0; i < 5; i++)
            if (!doc.label_values[i]) {
                rc = mp_fail(err, MP_EINPUT, "%s:%zu: missing column %s", path, doc.line, o.label_fields[i]);
                goto cleanup;
            }
        char *end;
        long ans = strtol(doc.label_values[4], &end, 10);
        if (end == doc.label_values[4] || *end || ans < 0 || ans > 3) {
            rc = mp_fail(err, MP_EINPUT, "%s:%zu: answer '%s' is not 0..3", path, doc.line, doc.label_values[4]);
            goto cleanup;
        }
        mp_mc_doc *d = set_push(out, &cap);
        if (!d) {
            rc = mp_fail(err, MP_ENOMEM, "out of memory");
            goto cleanup;
        }
        char idb[32];
        snprintf(idb, sizeof idb, "%zu", out->n - 1);
        d->id = dup(idb);
        d->query = dupn(doc.text, doc.len);
        d->n_choices = 4;
        d->gold = (int)ans;
        int bad = !d->id || !d->query;
        for (int i = 0; i < 4; i++) bad |= !(d->choices[i] = dup(doc.label_values[i]));
        if (bad) {
            rc = mp_fail(err, MP_ENOMEM, "out of memory");
            goto cleanup;
        }
    }
    if (rc == 0 && out->n == 0) rc = mp_fail(err, MP_EINPUT, "%s: no questions", path);
cleanup:
    mp_corpus_close(c);
    free(path);
    return rc < 0 ? rc : 0;
}

/* Read the labels file that goes with a JSONL file (PIQA, SIQA, WinoGrande). */
static int read_labels(const char *path, int **labels, size_t *n, mp_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return mp_fail(err, MP_EIO, "%s: cannot open: %s", path, strerror(errno));
    char line[64];
    size_t cap = 0;
    *labels = NULL;
    *n = 0;
    while (fgets(line, sizeof line, f)) {
        char *end;
        long v = strtol(line, &end, 10);
        while (*end == '\r' || *end == '\n' || *end == ' ') end++;
        if (end == line || *end) {
            fclose(f);
            return mp_fail(err, MP_EINPUT, "%s:%zu: not an integer label", path, *n + 1);
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 1024;
            int *nl = realloc(*labels, cap * sizeof *nl);
            if (!nl) {
                fclose(f);
                return mp_fail(err, MP_ENOMEM, "out of memory");
            }
            *labels = nl;
        }
        (*labels)[(*n)++] = (int)v;
    }
    fclose(f);
    return 0;
}

static const char *jstr(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const char *parse_hellaswag_json(const cJSON *o, mp_mc_doc *d);

/* One JSONL record into d; returns a reason on malformed input (d partly filled). */
static const char *parse_record(mp_mc_task task, const cJSON *o, mp_mc_doc *d, int label) {
    const char *s;
    switch (task) {
    case MP_TASK_ARC_EASY:
    case MP_TASK_ARC_CHALLENGE:
    case MP_TASK_OPENBOOKQA:
    case MP_TASK_COMMONSENSEQA: {
        const cJSON *q = cJSON_GetObjectItemCaseSensitive(o, "question");
        const cJSON *ch = cJSON_GetObjectItemCaseSensitive(q, "choices");
        const char *key = jstr(o, "answerKey"), *stem = jstr(q, "stem"), *id = jstr(o, "id");
        if (!stem || !cJSON_IsArray(ch) || !key) return "missing question.stem, question.choices or answerKey";
        int n = cJSON_GetArraySize(ch);
        if (n < 2 || n > MP_MC_MAX_CHOICES) return "unsupported number of choices";
        d->id = dup(id ? id : "");
        d->query = dup(stem);
        d->gold = -1;
        for (int i = 0; i < n; i++) {
            const cJSON *c = cJSON_GetArrayItem(ch, i);
            const char *t = jstr(c, "text"), *l = jstr(c, "label");
            if (!t || !l) return "choice without text or label";
            d->choices[d->n_choices++] = dup(t);
            if (!strcmp(l, key)) d->gold = i;
        }
        if (d->gold < 0) return "answerKey is not one of the choice labels";
        return NULL;
    }
    case MP_TASK_PIQA:
        if (!jstr(o, "goal") || !jstr(o, "sol1") || !jstr(o, "sol2")) return "missing goal, sol1 or sol2";
        if (label < 0 || label > 1) return "label is not 0 or 1";
        d->id = dup("");
        d->query = dup(jstr(o, "goal"));
        d->choices[0] = dup(jstr(o, "sol1"));
        d->choices[1] = dup(jstr(o, "sol2"));
        d->n_choices = 2;
        d->gold = label;
        return NULL;
    case MP_TASK_SIQA:
        if (!jstr(o, "context") || !jstr(o, "question") || !jstr(o, "answerA") || !jstr(o, "answerB") ||
            !jstr(o, "answerC"))
            return "missing context, question or answerA..C";
        if (label < 1 || label > 3) return "label is not 1..3";
        d->id = dup("");
        d->context = dup(jstr(o, "context"));
        d->query = dup(jstr(o, "question"));
        d->choices[0] = dup(jstr(o, "answerA"));
        d->choices[1] = dup(jstr(o, "answerB"));
        d->choices[2] = dup(jstr(o, "answerC"));
        d->n_choices = 3;
        d->gold = label - 1;
        return NULL;
    case MP_TASK_WINOGRANDE:
        if (!(s = jstr(o, "sentence")) || !jstr(o, "option1") || !jstr(o, "option2") || !jstr(o, "answer"))
            return "missing sentence, option1, option2 or answer";
        if (!strchr(s, '_')) return "sentence has no '_' blank";
        if (strcmp(jstr(o, "answer"), "1") && strcmp(jstr(o, "answer"), "2")) return "answer is not \"1\" or \"2\"";
        d->id = dup(jstr(o, "qID") ? jstr(o, "qID") : "");
        d->query = dup(s);
        d->choices[0] = dup(jstr(o, "option1"));
        d->choices[1] = dup(jstr(o, "option2"));
        d->n_choices = 2;
        d->gold = jstr(o, "answer")[0] - '1';
        if (label >= 1 && label - 1 != d->gold) return "answer disagrees with dev-labels.lst";
        return NULL;
    case MP_TASK_HELLASWAG:
        return parse_hellaswag_json(o, d);
    default:
        return "not a JSONL task";
    }
}

static int load_jsonl(mp_mc_task task, const char *path, const char *labels_path, mp_mc_set *out, mp_error *err) {
    int *labels = NULL;
    size_t n_labels = 0, cap = 0, lineno = 0, len_cap = 0;
    char *line = NULL;
    int rc = 0;
    FILE *f = NULL;
    if (labels_path && (rc = read_labels(labels_path, &labels, &n_labels, err)) < 0) goto cleanup;
    if (!(f = fopen(path, "rb"))) {
        rc = mp_fail(err, MP_EIO, "%s: cannot open: %s (pass --data DIR, the shared/data folder)", path,
                     strerror(errno));
        goto cleanup;
    }
    ssize_t len;
    while ((len = getline(&line, &len_cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (len == 0) continue;
        if (labels_path && lineno > n_labels) {
            rc = mp_fail(err, MP_EINPUT, "%s: more records than labels in %s", path, labels_path);
            goto cleanup;
        }
        cJSON *o = cJSON_ParseWithLength(line, (size_t)len);
        mp_mc_doc *d = o ? set_push(out, &cap) : NULL;
        const char *why = !o ? "not valid JSON" : !d ? "out of memory"
                                                     : parse_record(task, o, d, labels_path ? labels[lineno - 1] : -1);
        int oom = d && !why && (!d->id || !d->query || (task == MP_TASK_SIQA && !d->context));
        for (int i = 0; d && i < d->n_choices; i++) oom |= !d->choices[i];
        cJSON_Delete(o);
        if (why || oom) {
            rc = mp_fail(err, oom ? MP_ENOMEM : MP_EINPUT, "%s:%zu: %s", path, lineno, oom ? "out of memory" : why);
            goto cleanup;
        }
    }
    if (labels_path && lineno != n_labels)
        rc = mp_fail(err, MP_EINPUT, "%s: %zu records but %zu labels in %s", path, lineno, n_labels, labels_path);
    else if (out->n == 0)
        rc = mp_fail(err, MP_EINPUT, "%s: no records", path);
cleanup:
    if (f) fclose(f);
    free(line);
    free(labels);
    return rc;
}

void mp_hellaswag_capitalize_tail(char *q) {
    const char *colon = strstr(q, ": ");
    char *start = colon ? (char *)colon + 2 : q, *frag = NULL;
    for (char *p = start; p[0] && p[1]; p++)
        if ((p[0] == '.' || p[0] == '!' || p[0] == '?') && p[1] == ' ') frag = p + 2;
    if (!frag || !(*frag >= 'a' && *frag <= 'z')) return;
    for (const char *p = frag; *p; p++) /* a fragment that ends a sentence is not a ctx_b */
        if ((*p == '.' || *p == '!' || *p == '?') && (p[1] == '\0' || p[1] == ' ')) return;
    /* Python str.capitalize(): first character upper, the rest lower */
    frag[0] = (char)(frag[0] - 'a' + 'A');
    for (char *p = frag + 1; *p; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
}

/* The official hellaswag_val.jsonl: query = activity_label + ": " + ctx_a + " " +
 * ctx_b.capitalize() (lm-eval's process_docs; preprocess runs in the prompt builder). */
static const char *parse_hellaswag_json(const cJSON *o, mp_mc_doc *d) {
    const char *al = jstr(o, "activity_label"), *ca = jstr(o, "ctx_a"), *cb = jstr(o, "ctx_b");
    const cJSON *en = cJSON_GetObjectItemCaseSensitive(o, "endings"), *lb = cJSON_GetObjectItemCaseSensitive(o, "label");
    if (!al || !ca || !cb || !cJSON_IsArray(en) || cJSON_GetArraySize(en) != 4)
        return "missing activity_label, ctx_a, ctx_b or 4 endings";
    int label = cJSON_IsNumber(lb) ? lb->valueint : cJSON_IsString(lb) ? atoi(lb->valuestring) : -1;
    if (label < 0 || label > 3) return "label is not 0..3";
    sbuf b = {0};
    sb_add(&b, al);
    sb_add(&b, ": ");
    sb_add(&b, ca);
    sb_add(&b, " ");
    size_t at = b.n;
    sb_add(&b, cb);
    if (!b.oom && b.p[at]) {
        if (b.p[at] >= 'a' && b.p[at] <= 'z') b.p[at] = (char)(b.p[at] - 'a' + 'A');
        for (size_t i = at + 1; i < b.n; i++)
            if (b.p[i] >= 'A' && b.p[i] <= 'Z') b.p[i] = (char)(b.p[i] - 'A' + 'a');
    }
    d->query = sb_take(&b);
    d->id = dup(jstr(o, "ind") ? jstr(o, "ind") : "");
    for (int i = 0; i < 4; i++) {
        const cJSON *e = cJSON_GetArrayItem(en, i);
        if (!cJSON_IsString(e)) return "an ending is not a string";
        d->choices[d->n_choices++] = dup(e->valuestring);
    }
    d->gold = label;
    return NULL;
}

static int load_hellaswag(const char *path, mp_mc_set *out, mp_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return mp_fail(err, MP_EIO, "%s: cannot open: %s (pass --data DIR, the shared/data folder)", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0, len_cap = 0, lineno = 0;
    int rc = 0;
    mp_mc_doc *d = NULL;
    ssize_t len;
    while ((len = getline(&line, &len_cap, f)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        int k = (int)(lineno++ % 6);
        if (k == 0) {
            if (!(d = set_push(out, &cap)) || !(d->query = dup(line))) goto oom;
            mp_hellaswag_capitalize_tail(d->query); /* ctx_b.capitalize(), boundary recovered heuristically */
            char idb[32];
            snprintf(idb, sizeof idb, "%zu", out->n - 1);
            if (!(d->id = dup(idb))) goto oom;
        } else if (k == 1) {
            if (line[0] < '0' || line[0] > '3' || line[1]) {
                rc = mp_fail(err, MP_EINPUT, "%s:%zu: gold ending index is not 0..3", path, lineno);
                goto cleanup;
            }
            d->gold = line[0] - '0';
        } else {
            if (!(d->choices[d->n_choices++] = dup(line))) goto oom;
        }
    }
    if (lineno % 6 || out->n == 0) rc = mp_fail(err, MP_EINPUT, "%s: %zu lines, not a multiple of 6 items", path, lineno);
    goto cleanup;
oom:
    rc = mp_fail(err, MP_ENOMEM, "out of memory");
cleanup:
    free(line);
    fclose(f);
    return rc;
}

int mp_mc_load(mp_mc_task task, const char *data_dir, const char *subject, const char *split, mp_mc_set *out,
               mp_error *err) {
    memset(out, 0, sizeof *out);
    MP_FAIL_IF(!mp_mc_task_get(task), err, MP_EINTERNAL, "unknown task %d", (int)task);
    int rc;
    if (task == MP_TASK_MMLU) {
        MP_FAIL_IF(!subject || !split, err, MP_EINTERNAL, "MMLU needs a subject and a split");
        rc = load_mmlu(data_dir, subject, split, out, err);
    } else {
        int train = split && !strcmp(split, "train");
        MP_FAIL_IF(train && !TASKS[task].train, err, MP_EUNSUPPORTED, "%s: no train split is staged in %s",
                   TASKS[task].name, data_dir);
        char *path = join_path(data_dir, train ? TASKS[task].train : TASKS[task].file), *lab = NULL;
        if (!path) return mp_fail(err, MP_ENOMEM, "out of memory");
        char *official = task == MP_TASK_HELLASWAG && !train ? join_path(data_dir, "hellaswag/hellaswag_val.jsonl") : NULL;
        FILE *probe = official ? fopen(official, "rb") : NULL;
        if (probe) fclose(probe);
        if (probe) { /* the official JSONL, when supplied: real ctx_a / ctx_b */
            rc = load_jsonl(task, official, NULL, out, err);
            free(official);
        } else if (task == MP_TASK_HELLASWAG) {
            free(official);
            rc = load_hellaswag(path, out, err);
        } else {
            const char *lf = train ? TASKS[task].train_labels
                             : task == MP_TASK_PIQA ? "piqa/valid-labels.lst"
                             : task == MP_TASK_SIQA ? "siqa/dev-labels.lst"
                             : task == MP_TASK_WINOGRANDE ? "winogrande/dev-labels.lst" : NULL;
            if (lf && !(lab = join_path(data_dir, lf))) rc = mp_fail(err, MP_ENOMEM, "out of memory");
            else rc = load_jsonl(task, path, lab, out, err);
        }
        free(path);
        free(lab);
    }
    if (rc < 0) mp_mc_set_free(out);
    return rc;
}

/* ---- MMLU subjects ---------------------------------------------------------- */

const char *mp_mmlu_category(const char *sub) {
    if (!strcmp(sub, "geography") || !strcmp(sub, "politics") || !strcmp(sub, "culture")) return "other";
    return sub;
}

void mp_mmlu_subjects_free(mp_mmlu_subject *s, size_t n) {
    if (!s) return;
    for (size_t i = 0; i < n; i++) {
        free(s[i].name);
        free(s[i].subcategory);
        free(s[i].category);
        free(s[i].supercategory);
    }
    free(s);
}

int mp_mmlu_subjects_load(const char *data_dir, mp_mmlu_subject **out, size_t *n, mp_error *err) {
    char *path = join_path(data_dir, "mmlu/subjects.tsv");
    if (!path) return mp_fail(err, MP_ENOMEM, "out of memory");
    FILE *f = fopen(path, "rb");
    int rc = 0;
    char *line = NULL;
    size_t len_cap = 0, lineno = 0, cap = 0;
    mp_mmlu_subject *v = NULL;
    *n = 0;
    if (!f) {
        rc = mp_fail(err, MP_EIO, "%s: cannot open: %s (pass --data DIR, the shared/data folder)", path,
                     strerror(errno));
        goto cleanup;
    }
    ssize_t len;
    while ((len = getline(&line, &len_cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (lineno == 1 || len == 0) continue; /* header */
        char *cols[4], *save = NULL;
        cols[0] = strtok_r(line, "\t", &save);
        cols[1] = cols[0] ? strtok_r(NULL, "\t", &save) : NULL;
        cols[2] = cols[1] ? strtok_r(NULL, "\t", &save) : NULL;
        cols[3] = cols[2] ? strtok_r(NULL, "\t", &save) : NULL;
        if (!cols[2]) {
            rc = mp_fail(err, MP_EINPUT, "%s:%zu: expected subject, subcategory, category", path, lineno);
            goto cleanup;
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            mp_mmlu_subject *nv = realloc(v, cap * sizeof *nv);
            if (!nv) goto oom;
            v = nv;
        }
        mp_mmlu_subject *s = &v[(*n)++];
        const char *super = !strncmp(cols[2], "other", 5) ? "other" : cols[2];
        s->name = dup(cols[0]);
        s->subcategory = dup(cols[1]);
        s->category = dup(mp_mmlu_category(cols[1]));
        s->supercategory = dup(super);
        s->n_test = cols[3] ? (size_t)strtoul(cols[3], NULL, 10) : 0;
        if (!s->name || !s->subcategory || !s->category || !s->supercategory) goto oom;
    }
    if (*n == 0) rc = mp_fail(err, MP_EINPUT, "%s: no subjects", path);
    goto cleanup;
oom:
    rc = mp_fail(err, MP_ENOMEM, "out of memory");
cleanup:
    if (f) fclose(f);
    free(line);
    free(path);
    if (rc < 0) {
        mp_mmlu_subjects_free(v, *n);
        *n = 0;
        v = NULL;
    }
    *out = v;
    return rc;
}

/* ---- prompts ------------------------------------------------------------------ */

void mp_mc_request_free(mp_mc_request *r) {
    if (!r) return;
    for (int i = 0; i < MP_MC_MAX_CHOICES; i++) {
        free(r->ctx[i]);
        free(r->cont[i]);
    }
    memset(r, 0, sizeof *r);
}

static const char LETTERS[] = "ABCDEFGH";

/* The item's own text (no few-shot block): appends the context of choice c
 * (shared tasks ignore c) to b, and sets the continuations when conts != NULL. */
static void item_context(mp_mc_task task, const mp_mc_doc *d, int c, sbuf *b) {
    switch (task) {
    case MP_TASK_MMLU:
    case MP_TASK_COMMONSENSEQA:
        if (task == MP_TASK_COMMONSENSEQA) sb_add(b, "Question: ");
        sb_add_stripped(b, d->query);
        for (int i = 0; i < d->n_choices; i++) {
            char lab[4] = {'\n', LETTERS[i], '.', '\0'};
            sb_add(b, lab);
            sb_add(b, " ");
            sb_add(b, d->choices[i]);
        }
        sb_add(b, "\nAnswer:");
        break;
    case MP_TASK_ARC_EASY:
    case MP_TASK_ARC_CHALLENGE:
    case MP_TASK_PIQA:
        sb_add(b, "Question: ");
        sb_add(b, d->query);
        sb_add(b, "\nAnswer:");
        break;
    case MP_TASK_SIQA:
        sb_add(b, "Q: ");
        sb_add(b, d->context);
        sb_add(b, " ");
        sb_add(b, d->query);
        sb_add(b, "\nA:");
        break;
    case MP_TASK_OPENBOOKQA:
        sb_add(b, d->query);
        break;
    case MP_TASK_HELLASWAG: {
        char *p = mp_hellaswag_preprocess(d->query);
        if (!p) b->oom = 1;
        else sb_add(b, p);
        free(p);
        break;
    }
    case MP_TASK_WINOGRANDE: {
        const char *u = strchr(d->query, '_');
        sb_addn(b, d->query, (size_t)(u - d->query));
        sb_add(b, d->choices[c]);
        break;
    }
    default:
        break;
    }
}

/* Continuation of choice c (target delimiter " " included) and its acc_norm length. */
static char *item_cont(mp_mc_task task, const mp_mc_doc *d, int c, size_t *norm_len) {
    sbuf b = {0};
    sb_add(&b, " ");
    if (task == MP_TASK_MMLU || task == MP_TASK_COMMONSENSEQA) {
        sb_addn(&b, &LETTERS[c], 1);
    } else if (task == MP_TASK_WINOGRANDE) {
        sb_add_stripped(&b, strchr(d->query, '_') + 1);
    } else if (task == MP_TASK_HELLASWAG) {
        char *p = mp_hellaswag_preprocess(d->choices[c]);
        if (!p) b.oom = 1;
        else sb_add(&b, p);
        free(p);
    } else {
        sb_add(&b, d->choices[c]);
    }
    char *s = sb_take(&b);
    if (s && norm_len) *norm_len = mp_utf8_chars(s + 1);
    return s;
}

static int check_doc(mp_mc_task task, const mp_mc_doc *d, mp_error *err) {
    MP_FAIL_IF(d->n_choices < 2 || d->n_choices > MP_MC_MAX_CHOICES || d->gold < 0 || d->gold >= d->n_choices, err,
               MP_EINPUT, "item '%s': %d choices, gold %d", d->id ? d->id : "", d->n_choices, d->gold);
    MP_FAIL_IF(task == MP_TASK_WINOGRANDE && (d->n_choices != 2 || !strchr(d->query, '_')), err, MP_EINPUT,
               "item '%s': WinoGrande needs two options and a '_' blank", d->id ? d->id : "");
    MP_FAIL_IF(task == MP_TASK_SIQA && !d->context, err, MP_EINPUT, "item '%s': SIQA needs a context",
               d->id ? d->id : "");
    MP_FAIL_IF(task == MP_TASK_MMLU && d->n_choices != 4, err, MP_EINPUT, "item '%s': MMLU needs 4 choices",
               d->id ? d->id : "");
    return 0;
}

int mp_mc_format(mp_mc_task task, const mp_mc_doc *doc, const char *subject, const mp_mc_doc *shots,
                 size_t n_shots, mp_mc_request *out, mp_error *err) {
    memset(out, 0, sizeof *out);
    MP_FAIL_IF(!mp_mc_task_get(task), err, MP_EINTERNAL, "unknown task %d", (int)task);
    MP_TRY(check_doc(task, doc, err));
    for (size_t s = 0; s < n_shots; s++) MP_TRY(check_doc(task, &shots[s], err));
    sbuf pre = {0};
    if (task == MP_TASK_MMLU) {
        sb_add(&pre, "The following are multiple choice questions (with answers) about ");
        for (const char *p = subject ? subject : ""; *p; p++) sb_addn(&pre, *p == '_' ? " " : p, 1);
        sb_add(&pre, ".\n\n");
    }
    for (size_t s = 0; s < n_shots; s++) {
        const mp_mc_doc *x = &shots[s];
        item_context(task, x, x->gold, &pre);
        char *c = item_cont(task, x, x->gold, NULL);
        if (!c) pre.oom = 1;
        else sb_add(&pre, c);
        free(c);
        sb_add(&pre, "\n\n");
    }
    char *prefix = sb_take(&pre);
    if (!prefix) return mp_fail(err, MP_ENOMEM, "out of memory");
    out->n_choices = doc->n_choices;
    out->gold = doc->gold;
    out->n_ctx = task == MP_TASK_WINOGRANDE ? doc->n_choices : 1;
    out->prefix_len = strlen(prefix);
    int oom = 0;
    for (int c = 0; c < out->n_ctx; c++) {
        sbuf b = {0};
        sb_add(&b, prefix);
        item_context(task, doc, c, &b);
        oom |= !(out->ctx[c] = sb_take(&b));
    }
    for (int c = 0; c < doc->n_choices; c++) {
        oom |= !(out->cont[c] = item_cont(task, doc, task == MP_TASK_WINOGRANDE ? 0 : c, &out->norm_len[c]));
        if (task == MP_TASK_WINOGRANDE && out->cont[c]) out->norm_len[c] = mp_utf8_chars(out->cont[c] + 1);
    }
    free(prefix);
    if (oom) {
        mp_mc_request_free(out);
        return mp_fail(err, MP_ENOMEM, "out of memory");
    }
    return 0;
}

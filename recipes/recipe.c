/* recipes/recipe.c — recipe YAML → node tree (libyaml document API, every node
 * keeps its line and column) → --model/--out/--limit/--set overrides grafted
 * into the tree → typed schema check (docs/recipes.md). Every complaint is one
 * line "FILE:LINE:COL: problem" with MP_EINPUT. Aliases are expanded by libyaml;
 * depth and node count are capped so that alias bombs and recursive aliases
 * fail cleanly (fuzz/fuzz_recipe.c); the nesting depth is checked on the event
 * stream first, because libyaml's scanner is quadratic in the flow depth (a
 * 60,000-deep "[[[..." took seconds before the document existed). */
#include "recipes/recipe.h"
#include "core/util/data_dir.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#define MAX_DEPTH 32
#define MAX_NODES 20000

/* ---- tree ----------------------------------------------------------------- */

void mp_ynode_free(mp_ynode *n) {
    if (!n) return;
    free(n->scalar);
    for (size_t i = 0; i < n->n; i++) {
        if (n->keys) free(n->keys[i]);
        mp_ynode_free(n->items[i]);
    }
    free(n->keys);
    free(n->key_line);
    free(n->key_col);
    free(n->items);
    free(n);
}

typedef struct conv {
    yaml_document_t *doc;
    const char *file;
    size_t count;
    mp_error *err;
} conv;

static char *dupn(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

static mp_ynode *convert(conv *c, yaml_node_t *yn, int depth, int *rc) {
    if (!yn) {
        *rc = mp_fail(c->err, MP_EINPUT, "%s: empty document", c->file);
        return NULL;
    }
    int line = (int)yn->start_mark.line + 1, col = (int)yn->start_mark.column + 1;
    if (depth > MAX_DEPTH || ++c->count > MAX_NODES) {
        *rc = mp_fail(c->err, MP_EINPUT, "%s:%d:%d: document too deep or too large (recursive alias?)", c->file,
                      line, col);
        return NULL;
    }
    mp_ynode *n = calloc(1, sizeof *n);
    if (!n) goto nomem;
    n->line = line;
    n->col = col;
    n->file = c->file;
    if (yn->type == YAML_SCALAR_NODE) {
        n->type = MP_YNODE_SCALAR;
        if (!(n->scalar = dupn((const char *)yn->data.scalar.value, yn->data.scalar.length))) goto nomem;
        if (strlen(n->scalar) != yn->data.scalar.length) {
            mp_ynode_free(n);
            *rc = mp_fail(c->err, MP_EINPUT, "%s:%d:%d: NUL byte in a value", c->file, line, col);
            return NULL;
        }
        return n;
    }
    if (yn->type == YAML_SEQUENCE_NODE) {
        n->type = MP_YNODE_SEQ;
        size_t cnt = (size_t)(yn->data.sequence.items.top - yn->data.sequence.items.start);
        if (cnt && !(n->items = calloc(cnt, sizeof *n->items))) goto nomem;
        for (size_t i = 0; i < cnt; i++) {
            yaml_node_t *ch = yaml_document_get_node(c->doc, yn->data.sequence.items.start[i]);
            if (!(n->items[i] = convert(c, ch, depth + 1, rc))) {
                mp_ynode_free(n);
                return NULL;
            }
            n->n = i + 1;
        }
        return n;
    }
    n->type = MP_YNODE_MAP;
    size_t cnt = (size_t)(yn->data.mapping.pairs.top - yn->data.mapping.pairs.start);
    if (cnt && (!(n->items = calloc(cnt, sizeof *n->items)) || !(n->keys = calloc(cnt, sizeof *n->keys)) ||
                !(n->key_line = calloc(cnt, sizeof(int))) || !(n->key_col = calloc(cnt, sizeof(int)))))
        goto nomem;
    for (size_t i = 0; i < cnt; i++) {
        yaml_node_pair_t *p = &yn->data.mapping.pairs.start[i];
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        int kl = k ? (int)k->start_mark.line + 1 : line, kc = k ? (int)k->start_mark.column + 1 : col;
        if (!k || k->type != YAML_SCALAR_NODE) {
            mp_ynode_free(n);
            *rc = mp_fail(c->err, MP_EINPUT, "%s:%d:%d: mapping keys must be plain words", c->file, kl, kc);
            return NULL;
        }
        char *key = dupn((const char *)k->data.scalar.value, k->data.scalar.length);
        if (!key) goto nomem;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(n->keys[j], key)) {
                *rc = mp_fail(c->err, MP_EINPUT, "%s:%d:%d: duplicate key '%.64s'", c->file, kl, kc, key);
                free(key);
                mp_ynode_free(n);
                return NULL;
            }
        n->keys[i] = key;
        n->key_line[i] = kl;
        n->key_col[i] = kc;
        if (!(n->items[i] = convert(c, yaml_document_get_node(c->doc, p->value), depth + 1, rc))) {
            n->n = i;
            free(key);
            n->keys[i] = NULL;
            mp_ynode_free(n);
            return NULL;
        }
        n->n = i + 1;
    }
    return n;
nomem:
    mp_ynode_free(n);
    *rc = mp_fail(c->err, MP_ENOMEM, "out of memory reading %s", c->file);
    return NULL;
}

/* Fail fast on nesting deeper than MAX_DEPTH: walk the event stream and stop
 * at the first level too deep, before libyaml has scanned the rest. Syntax
 * errors are left to yaml_parser_load, which reports them. */
static int check_depth(const char *file, const char *text, size_t len, mp_error *err) {
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) return mp_fail(err, MP_ENOMEM, "out of memory (yaml)");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    int depth = 0, rc = 0;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) break;
        yaml_event_type_t t = ev.type;
        int line = (int)ev.start_mark.line + 1, col = (int)ev.start_mark.column + 1;
        yaml_event_delete(&ev);
        if (t == YAML_STREAM_END_EVENT) break;
        if (t == YAML_SEQUENCE_START_EVENT || t == YAML_MAPPING_START_EVENT) depth++;
        if (t == YAML_SEQUENCE_END_EVENT || t == YAML_MAPPING_END_EVENT) depth--;
        if (depth > MAX_DEPTH) {
            rc = mp_fail(err, MP_EINPUT, "%s:%d:%d: nesting deeper than %d levels", file, line, col, MAX_DEPTH);
            break;
        }
    }
    yaml_parser_delete(&parser);
    return rc;
}

/* Parse YAML text into a tree. An empty document is an empty map. */
static int parse_tree(const char *file, const char *text, size_t len, mp_ynode **out, mp_error *err) {
    yaml_parser_t parser;
    yaml_document_t doc;
    int rc = 0;
    *out = NULL;
    MP_TRY(check_depth(file, text, len, err));
    if (!yaml_parser_initialize(&parser)) return mp_fail(err, MP_ENOMEM, "out of memory (yaml)");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        rc = mp_fail(err, MP_EINPUT, "%s:%d:%d: YAML error: %s%s%s", file, (int)parser.problem_mark.line + 1,
                     (int)parser.problem_mark.column + 1, parser.problem ? parser.problem : "syntax error",
                     parser.context ? " " : "", parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        return rc;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root) {
        *out = calloc(1, sizeof **out);
        if (!*out) rc = mp_fail(err, MP_ENOMEM, "out of memory");
        else {
            (*out)->type = MP_YNODE_MAP;
            (*out)->line = (*out)->col = 1;
            (*out)->file = file;
        }
    } else {
        conv c = {&doc, file, 0, err};
        *out = convert(&c, root, 0, &rc);
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rc;
}

/* ---- overrides ------------------------------------------------------------------- */

static int map_set(mp_ynode *map, const char *key, mp_ynode *val, mp_error *err) {
    for (size_t i = 0; i < map->n; i++)
        if (!strcmp(map->keys[i], key)) {
            mp_ynode_free(map->items[i]);
            map->items[i] = val;
            return 0;
        }
    size_t n = map->n + 1;
    char **k = realloc(map->keys, n * sizeof *k);
    if (k) map->keys = k;
    mp_ynode **it = realloc(map->items, n * sizeof *it);
    if (it) map->items = it;
    int *kl = realloc(map->key_line, n * sizeof *kl);
    if (kl) map->key_line = kl;
    int *kc = realloc(map->key_col, n * sizeof *kc);
    if (kc) map->key_col = kc;
    char *kd = strdup(key);
    if (!k || !it || !kl || !kc || !kd) {
        free(kd);
        return mp_fail(err, MP_ENOMEM, "out of memory");
    }
    map->keys[map->n] = kd;
    map->items[map->n] = val;
    map->key_line[map->n] = val->line;
    map->key_col[map->n] = val->col;
    map->n = n;
    return 0;
}

static mp_ynode *scalar_node(const char *file, const char *text) {
    mp_ynode *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->type = MP_YNODE_SCALAR;
    n->line = n->col = 1;
    n->file = file;
    if (!(n->scalar = strdup(text))) {
        free(n);
        return NULL;
    }
    return n;
}

/* --set a.b.0.c=VALUE: VALUE is YAML (a scalar, [a, b], {k: v}). */
static int apply_set(mp_ynode *root, const char *set, mp_error *err) {
    const char *eq = strchr(set, '=');
    if (!eq || eq == set) return mp_fail(err, MP_EINPUT, "--set %.128s: expected KEY=VALUE", set);
    mp_ynode *val = NULL;
    MP_TRY(parse_tree("--set", eq + 1, strlen(eq + 1), &val, err));
    char path[256];
    size_t plen = (size_t)(eq - set);
    if (plen >= sizeof path) {
        mp_ynode_free(val);
        return mp_fail(err, MP_EINPUT, "--set: key too long");
    }
    memcpy(path, set, plen);
    path[plen] = 0;
    mp_ynode *cur = root;
    char *save = NULL, *tok = strtok_r(path, ".", &save);
    while (tok) {
        char *next = strtok_r(NULL, ".", &save);
        if (cur->type == MP_YNODE_SEQ) {
            char *end;
            long i = strtol(tok, &end, 10);
            if (*end || i < 0 || (size_t)i >= cur->n) {
                mp_ynode_free(val);
                return mp_fail(err, MP_EINPUT, "--set %.128s: no item '%s' in the list", set, tok);
            }
            if (!next) {
                mp_ynode_free(cur->items[i]);
                cur->items[i] = val;
                return 0;
            }
            cur = cur->items[i];
        } else if (cur->type == MP_YNODE_MAP) {
            if (!next) return map_set(cur, tok, val, err) < 0 ? (mp_ynode_free(val), err->code) : 0;
            mp_ynode *child = NULL;
            for (size_t i = 0; i < cur->n; i++)
                if (!strcmp(cur->keys[i], tok)) child = cur->items[i];
            if (!child) {
                mp_ynode *m = calloc(1, sizeof *m);
                if (!m || map_set(cur, tok, m, err) < 0) {
                    free(m);
                    mp_ynode_free(val);
                    return mp_fail(err, MP_ENOMEM, "out of memory");
                }
                m->type = MP_YNODE_MAP;
                m->line = m->col = 1;
                m->file = "--set";
                child = m;
            }
            cur = child;
        } else {
            mp_ynode_free(val);
            return mp_fail(err, MP_EINPUT, "--set %.128s: '%s' is inside a plain value", set, tok);
        }
        tok = next;
    }
    mp_ynode_free(val);
    return mp_fail(err, MP_EINPUT, "--set %.128s: empty key", set);
}

static mp_ynode *map_get(const mp_ynode *m, const char *key) {
    if (!m || m->type != MP_YNODE_MAP) return NULL;
    for (size_t i = 0; i < m->n; i++)
        if (!strcmp(m->keys[i], key)) return m->items[i];
    return NULL;
}

static int apply_overrides(mp_ynode *root, const mp_recipe_overrides *ov, mp_error *err) {
    if (!ov) return 0;
    if (root->type != MP_YNODE_MAP) return 0; /* the schema check reports it */
    const char *names[3] = {"model", "out", "data"}, *vals[3] = {ov->model, ov->out, ov->data},
               *files[3] = {"--model", "--out", "--data"};
    for (int i = 0; i < 3; i++) {
        if (!vals[i]) continue;
        mp_ynode *n = scalar_node(files[i], vals[i]);
        if (!n) return mp_fail(err, MP_ENOMEM, "out of memory");
        if (map_set(root, names[i], n, err) < 0) return mp_ynode_free(n), err->code;
    }
    for (size_t i = 0; i < ov->n_sets; i++) MP_TRY(apply_set(root, ov->sets[i], err));
    mp_ynode *evals = map_get(root, "evals");
    if (ov->limit > 0 && evals && evals->type == MP_YNODE_SEQ) {
        char buf[32];
        snprintf(buf, sizeof buf, "%ld", ov->limit);
        for (size_t i = 0; i < evals->n; i++) {
            mp_ynode *e = evals->items[i], *kind = map_get(e, "eval");
            if (!kind || kind->type != MP_YNODE_SCALAR) continue;
            mp_ynode *n = scalar_node("--limit", buf);
            if (!n) return mp_fail(err, MP_ENOMEM, "out of memory");
            if (map_set(e, strcmp(kind->scalar, "ppl") ? "limit" : "max_docs", n, err) < 0)
                return mp_ynode_free(n), err->code;
        }
    }
    return 0;
}

/* ---- schema ------------------------------------------------------------------------ */

typedef struct key_spec {
    const char *key, *flag;
    mp_rtype type;
} key_spec;

static const key_spec TOP_KEYS[] = {{"version", NULL, MP_RT_INT}, {"name", NULL, MP_RT_STR},
                                    {"model", NULL, MP_RT_PATH},  {"data", NULL, MP_RT_PATH},
                                    {"out", NULL, MP_RT_STR},     {"collect", NULL, MP_RT_ANY},
                                    {"criterion", NULL, MP_RT_ANY}, {"evals", NULL, MP_RT_ANY},
                                    {"report", NULL, MP_RT_ANY},  {NULL, NULL, 0}};
static const key_spec COLLECT_KEYS[] = {
    {"corpus", NULL, MP_RT_STR},       {"text_field", "--text-field", MP_RT_STR}, {"labels", NULL, MP_RT_LIST},
    {"scores", NULL, MP_RT_LIST},      {"top_k", "--top-k", MP_RT_INT},           {"max_tokens", "--max-tokens", MP_RT_INT},
    {"context_window", "--context-window", MP_RT_INT}, {"batch", "--commit-every", MP_RT_INT},
    {"engine_batch", "--batch", MP_RT_INT}, {"shards", NULL, MP_RT_INT}, {NULL, NULL, 0}};
static const key_spec CRITERION_KEYS[] = {
    {"kind", NULL, MP_RT_STR},          {"field", NULL, MP_RT_STR},           {"measure", "--measure", MP_RT_STR},
    {"min_count", "--min-count", MP_RT_INT}, {"per", "--per", MP_RT_STR},     {"targets", NULL, MP_RT_LIST},
    {"thresholds", NULL, MP_RT_NUMLIST}, {NULL, NULL, 0}};
static const key_spec PPL_KEYS[] = {{"eval", NULL, MP_RT_STR},           {"corpus", "--corpus", MP_RT_PATH},
                                    {"label_field", "--label-field", MP_RT_STR}, {"text_field", "--text-field", MP_RT_STR},
                                    {"max_docs", "--max-docs", MP_RT_INT}, {"context", "--context", MP_RT_INT},
                                    {NULL, NULL, 0}};
static const key_spec MULTIPLE_KEYS[] = {
    {"eval", NULL, MP_RT_STR},          {"langs", NULL, MP_RT_LIST},            {"limit", "--limit", MP_RT_INT},
    {"n", "--n", MP_RT_INT},            {"temperature", "--temperature", MP_RT_NUM}, {"top_p", "--top-p", MP_RT_NUM},
    {"seed", "--seed", MP_RT_INT},      {"max_tokens", "--max-tokens", MP_RT_INT}, {"timeout", "--timeout", MP_RT_INT},
    {"jobs", "--jobs", MP_RT_INT},      {NULL, NULL, 0}};
static const key_spec MMLU_KEYS[] = {{"eval", NULL, MP_RT_STR},       {"limit", "--limit", MP_RT_INT},
                                     {"shots", "--shots", MP_RT_INT},  {"subjects", "--subjects", MP_RT_LIST},
                                     {"context", "--context", MP_RT_INT}, {NULL, NULL, 0}};
static const key_spec GENERAL_KEYS[] = {{"eval", NULL, MP_RT_STR},       {"limit", "--limit", MP_RT_INT},
                                        {"shots", "--shots", MP_RT_INT},  {"tasks", "--tasks", MP_RT_LIST},
                                        {"metric", "--metric", MP_RT_STR}, {"context", "--context", MP_RT_INT},
                                        {NULL, NULL, 0}};
static const key_spec TOX_KEYS[] = {
    {"eval", NULL, MP_RT_STR},          {"prompts", "--prompts", MP_RT_STR},   {"scorer", NULL, MP_RT_STR},
    {"protocol", "--protocol", MP_RT_STR}, {"limit", "--limit", MP_RT_INT},    {"per_group", "--per-group", MP_RT_INT},
    {"n", "--n", MP_RT_INT},            {"max_tokens", "--max-tokens", MP_RT_INT}, {"temperature", "--temperature", MP_RT_NUM},
    {"top_p", "--top-p", MP_RT_NUM},    {"seed", "--seed", MP_RT_INT},         {"positive_label", "--positive-label", MP_RT_STR},
    {NULL, NULL, 0}};
static const key_spec REPORT_KEYS[] = {{"experts", NULL, MP_RT_INT}, {"contexts", NULL, MP_RT_INT},
                                       {"context_tokens", NULL, MP_RT_INT}, {NULL, NULL, 0}};

static const char *EVAL_NAMES[MP_REVAL_COUNT] = {"ppl", "multipl-e", "mmlu", "general", "toxicity"};
static const key_spec *EVAL_KEYS[MP_REVAL_COUNT] = {PPL_KEYS, MULTIPLE_KEYS, MMLU_KEYS, GENERAL_KEYS, TOX_KEYS};

const char *mp_reval_name(mp_reval_kind k) { return (unsigned)k < MP_REVAL_COUNT ? EVAL_NAMES[k] : "?"; }

static int at(mp_error *err, const mp_ynode *n, const char *fmt, const char *a, const char *b) {
    return mp_fail(err, MP_EINPUT, "%s:%d:%d: %s%s%s", n->file, n->line, n->col, fmt, a ? a : "", b ? b : "");
}

static int unknown_key(mp_error *err, const mp_ynode *m, size_t i, const key_spec *spec, const char *where) {
    char list[400];
    size_t o = 0;
    list[0] = 0;
    for (const key_spec *k = spec; k->key && o < sizeof list - 40; k++)
        o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", o ? ", " : "", k->key);
    return mp_fail(err, MP_EINPUT, "%s:%d:%d: unknown key '%.64s' in %s (expected one of %s)", m->file,
                   m->key_line[i], m->key_col[i], m->keys[i], where, list);
}

static int parse_long(const char *s, long *v) {
    char *end;
    errno = 0;
    *v = strtol(s, &end, 10);
    return *s && !*end && !errno;
}

static int parse_num(const char *s, double *v) {
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return *s && !*end && !errno && isfinite(*v);
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int check_type(mp_error *err, const mp_ynode *v, const char *key, mp_rtype t, int check_files) {
    long l;
    double d;
    switch (t) {
    case MP_RT_ANY: return 0;
    case MP_RT_STR:
    case MP_RT_PATH:
        if (v->type != MP_YNODE_SCALAR) return at(err, v, "'", key, "' must be a plain value");
        if (t == MP_RT_PATH && check_files && !is_file(v->scalar) && !is_dir(v->scalar))
            return mp_fail(err, MP_EINPUT, "%s:%d:%d: %s: no such file or directory '%.200s' (paths are relative to "
                           "the current directory)", v->file, v->line, v->col, key, v->scalar);
        return 0;
    case MP_RT_INT:
        if (v->type != MP_YNODE_SCALAR || !parse_long(v->scalar, &l))
            return at(err, v, "'", key, "' must be an integer");
        if (l < 0) return at(err, v, "'", key, "' must be >= 0");
        return 0;
    case MP_RT_NUM:
        if (v->type != MP_YNODE_SCALAR || !parse_num(v->scalar, &d)) return at(err, v, "'", key, "' must be a number");
        return 0;
    case MP_RT_LIST:
    case MP_RT_NUMLIST:
        if (v->type != MP_YNODE_SEQ) return at(err, v, "'", key, "' must be a list, e.g. [a, b]");
        for (size_t i = 0; i < v->n; i++) {
            const mp_ynode *it = v->items[i];
            if (it->type != MP_YNODE_SCALAR || !*it->scalar || (t == MP_RT_NUMLIST && !parse_num(it->scalar, &d)))
                return at(err, it, "items of '", key, t == MP_RT_NUMLIST ? "' must be numbers" : "' must be plain words");
            if (t == MP_RT_LIST && strchr(it->scalar, ','))
                return at(err, it, "items of '", key, "' cannot contain ','");
        }
        return 0;
    }
    return 0;
}

/* Check a map against spec; fill sec with the options found. */
static int check_section(mp_error *err, const mp_ynode *m, const key_spec *spec, const char *where, int check_files,
                         mp_rsection *sec) {
    if (m->type != MP_YNODE_MAP) return at(err, m, where, " must be a mapping (key: value lines)", NULL);
    sec->line = m->line;
    sec->col = m->col;
    if (m->n && !(sec->opts = calloc(m->n, sizeof *sec->opts))) return mp_fail(err, MP_ENOMEM, "out of memory");
    for (size_t i = 0; i < m->n; i++) {
        const key_spec *k = spec;
        while (k->key && strcmp(k->key, m->keys[i])) k++;
        if (!k->key) return unknown_key(err, m, i, spec, where);
        MP_TRY(check_type(err, m->items[i], k->key, k->type, check_files));
        sec->opts[sec->n++] = (mp_ropt){k->key, k->flag, k->type, m->items[i]};
    }
    return 0;
}

const mp_ropt *mp_rsection_get(const mp_rsection *s, const char *key) {
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->opts[i].key, key)) return &s->opts[i];
    return NULL;
}

static int one_of(mp_error *err, const mp_ropt *o, const char *const *allowed) {
    if (!o) return 0;
    for (const char *const *a = allowed; *a; a++)
        if (!strcmp(*a, o->node->scalar)) return 0;
    char list[200];
    size_t n = 0;
    list[0] = 0;
    for (const char *const *a = allowed; *a; a++) n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", n ? ", " : "", *a);
    return mp_fail(err, MP_EINPUT, "%s:%d:%d: %s: '%.64s' is not one of %s", o->node->file, o->node->line,
                   o->node->col, o->key, o->node->scalar, list);
}

static int check_eval(mp_recipe *r, const mp_ynode *e, size_t idx, int check_files, mp_error *err) {
    if (e->type != MP_YNODE_MAP) return at(err, e, "an evaluation must be a mapping with 'eval: NAME'", NULL, NULL);
    const mp_ynode *kind = map_get(e, "eval");
    if (!kind || kind->type != MP_YNODE_SCALAR)
        return at(err, e, "evaluation without 'eval:' (ppl, multipl-e, mmlu, general, toxicity)", NULL, NULL);
    int k = 0;
    while (k < MP_REVAL_COUNT && strcmp(EVAL_NAMES[k], kind->scalar)) k++;
    if (k == MP_REVAL_COUNT)
        return at(err, kind, "unknown evaluation '", kind->scalar, "' (expected ppl, multipl-e, mmlu, general, toxicity)");
    r->eval_kind[idx] = (mp_reval_kind)k;
    char where[40];
    snprintf(where, sizeof where, "eval %s", EVAL_NAMES[k]);
    MP_TRY(check_section(err, e, EVAL_KEYS[k], where, check_files, &r->evals[idx]));
    mp_rsection *s = &r->evals[idx];
    if (k == MP_REVAL_PPL && !mp_rsection_get(s, "corpus")) return at(err, e, "eval ppl needs 'corpus'", NULL, NULL);
    if (k == MP_REVAL_MULTIPLE) {
        const mp_ropt *l = mp_rsection_get(s, "langs");
        static const char *const LANGS[] = {"py", "cpp", "java", "js", "lua", "php", NULL};
        for (size_t i = 0; l && i < l->node->n; i++) {
            mp_ropt one = {"langs", NULL, MP_RT_STR, l->node->items[i]};
            MP_TRY(one_of(err, &one, LANGS));
        }
    }
    if (k == MP_REVAL_TOXICITY) {
        static const char *const PROMPTS[] = {"toxigen", "rtp", "toxigen-annotated", NULL};
        static const char *const PROTOCOLS[] = {"paper", "reproduction", NULL};
        const mp_ropt *p = mp_rsection_get(s, "prompts");
        if (!p) return at(err, e, "eval toxicity needs 'prompts' (toxigen, rtp, toxigen-annotated)", NULL, NULL);
        MP_TRY(one_of(err, p, PROMPTS));
        MP_TRY(one_of(err, mp_rsection_get(s, "protocol"), PROTOCOLS));
        const mp_ropt *sc = mp_rsection_get(s, "scorer");
        if (sc && strcmp(sc->node->scalar, "builtin")) {
            const char *v = sc->node->scalar;
            if (strncmp(v, "builtin:", 8) && strncmp(v, "roberta:", 8) && strncmp(v, "cmd:", 4))
                return at(err, sc->node, "scorer: '", v, "' is not builtin, builtin:PATH, roberta:DIR or cmd:COMMAND");
            if (!strncmp(v, "cmd:", 4) && !r->allow_commands)
                return at(err, sc->node, "scorer: '", v,
                          "' runs a shell command (/bin/sh -c, outside the program sandbox): pass sweep "
                          "--allow-commands to allow it");
            if (check_files && strncmp(v, "cmd:", 4) && !is_file(v + 8) && !is_dir(v + 8))
                return at(err, sc->node, "scorer: no such file or directory '", v + 8, "'");
        }
    }
    if (k == MP_REVAL_GENERAL) {
        static const char *const METRICS[] = {"headline", "acc", NULL};
        MP_TRY(one_of(err, mp_rsection_get(s, "metric"), METRICS));
    }
    return 0;
}

static int dup_list(const mp_ynode *seq, char ***out, size_t *n) {
    *n = 0;
    if (!seq->n) return 0;
    if (!(*out = calloc(seq->n, sizeof **out))) return MP_ENOMEM;
    for (size_t i = 0; i < seq->n; i++) {
        if (!((*out)[i] = strdup(seq->items[i]->scalar))) return MP_ENOMEM;
        *n = i + 1;
    }
    return 0;
}

static int check_recipe(mp_recipe *r, int check_files, mp_error *err) {
    const mp_ynode *root = r->root;
    if (root->type != MP_YNODE_MAP) return at(err, root, "a recipe is a mapping (key: value lines)", NULL, NULL);
    mp_rsection top = {0};
    int rc = check_section(err, root, TOP_KEYS, "the recipe", 0, &top);
    free(top.opts);
    MP_TRY(rc);
    const mp_ynode *v;
    if ((v = map_get(root, "version"))) {
        long ver = 0;
        parse_long(v->scalar, &ver);
        if (ver != 1) return at(err, v, "version must be 1 (this monet-probe reads recipe version 1)", NULL, NULL);
    }
    static const char *const REQUIRED[] = {"model", "collect", "criterion", "evals", NULL};
    for (const char *const *k = REQUIRED; *k; k++)
        if (!map_get(root, *k)) return at(err, root, "missing required key '", *k, "'");
    const char *name = (v = map_get(root, "name")) ? v->scalar : "sweep";
    /* runs/NAME must stay inside runs/: one plain path component */
    if (!*name || strchr(name, '/') || strchr(name, '\\') || !strcmp(name, ".") || !strcmp(name, "..") ||
        strlen(name) > 200)
        return at(err, v, "name: '", name, "' must be one folder name (no '/', not '.' or '..', at most 200 bytes)");
    v = map_get(root, "model");
    if (check_files) {
        char cfg[4096];
        snprintf(cfg, sizeof cfg, "%s/config.json", v->scalar);
        if (!is_file(cfg))
            return mp_fail(err, MP_EINPUT, "%s:%d:%d: model: '%.200s' is not a checkpoint directory (no config.json; "
                           "paths are relative to the current directory)", v->file, v->line, v->col, v->scalar);
    }
    const mp_ynode *data = map_get(root, "data");
    char data_buf[4096] = "../shared/data";
    if (data && check_files && !is_dir(data->scalar)) {
        return at(err, data, "data: no such directory '", data->scalar,
                  "' (remove the key to use $MONET_PROBE_DATA or ../shared/data, or pass --data DIR)");
    } else if (!data) {
        mp_error derr; /* no folder: keep the default; the steps that need data say so */
        if (mp_data_dir(NULL, data_buf, sizeof data_buf, &derr) < 0) snprintf(data_buf, sizeof data_buf, "../shared/data");
    }
    char outbuf[300];
    const mp_ynode *o = map_get(root, "out");
    snprintf(outbuf, sizeof outbuf, "runs/%s", name);
    if (!(r->name = strdup(name)) || !(r->model = strdup(v->scalar)) ||
        !(r->data = strdup(data ? data->scalar : data_buf)) || !(r->out = strdup(o ? o->scalar : outbuf)))
        return mp_fail(err, MP_ENOMEM, "out of memory");

    /* collect */
    const mp_ynode *c = map_get(root, "collect");
    MP_TRY(check_section(err, c, COLLECT_KEYS, "collect", check_files, &r->collect));
    const mp_ropt *corpus = mp_rsection_get(&r->collect, "corpus");
    if (!corpus) return at(err, c, "collect needs 'corpus' (a file, or mmlu:dev / mmlu:test)", NULL, NULL);
    const char *cs = corpus->node->scalar;
    if (!strncmp(cs, "mmlu:", 5)) {
        if (strcmp(cs + 5, "dev") && strcmp(cs + 5, "test"))
            return at(err, corpus->node, "corpus: '", cs, "': the MMLU corpus is mmlu:dev or mmlu:test");
    } else if (check_files && !is_file(cs) && !is_dir(cs)) {
        return mp_fail(err, MP_EINPUT, "%s:%d:%d: corpus: no such file or directory '%.200s' (paths are relative to "
                       "the current directory)", corpus->node->file, corpus->node->line, corpus->node->col, cs);
    }

    /* shards: how the collect step runs (shard jobs + an exact merge), not what it writes */
    r->shards = 1;
    const mp_ropt *sh = mp_rsection_get(&r->collect, "shards");
    if (sh && (!parse_long(sh->node->scalar, &r->shards) || r->shards < 1 || r->shards > MP_RECIPE_MAX_SHARDS))
        return at(err, sh->node, "shards: '", sh->node->scalar, "': an integer from 1 to " MP_STR(MP_RECIPE_MAX_SHARDS));

    /* criterion */
    const mp_ynode *cr = map_get(root, "criterion");
    MP_TRY(check_section(err, cr, CRITERION_KEYS, "criterion", 0, &r->criterion));
    const mp_ropt *kind = mp_rsection_get(&r->criterion, "kind");
    static const char *const KINDS[] = {"specialize", "correlate", NULL};
    static const char *const MEASURES[] = {"mean", "freq", NULL};
    static const char *const PER[] = {"token", "doc", NULL};
    if (!kind) return at(err, cr, "criterion needs 'kind' (specialize or correlate)", NULL, NULL);
    MP_TRY(one_of(err, kind, KINDS));
    MP_TRY(one_of(err, mp_rsection_get(&r->criterion, "measure"), MEASURES));
    MP_TRY(one_of(err, mp_rsection_get(&r->criterion, "per"), PER));
    r->correlate = !strcmp(kind->node->scalar, "correlate");
    const mp_ropt *field = mp_rsection_get(&r->criterion, "field");
    if (!field && !r->correlate) return at(err, cr, "criterion specialize needs 'field' (the label field)", NULL, NULL);
    if (!(r->field = strdup(field ? field->node->scalar : "toxicity"))) return mp_fail(err, MP_ENOMEM, "out of memory");
    const mp_ropt *targets = mp_rsection_get(&r->criterion, "targets");
    if (r->correlate && targets) return at(err, targets->node, "targets: only for kind specialize", NULL, NULL);
    if (!r->correlate && (!targets || !targets->node->n))
        return at(err, targets ? targets->node : cr, "criterion specialize needs 'targets' (label values)", NULL, NULL);
    if (targets && dup_list(targets->node, &r->targets, &r->n_targets) < 0) return mp_fail(err, MP_ENOMEM, "out of memory");
    const mp_ropt *th = mp_rsection_get(&r->criterion, "thresholds");
    size_t nth = th ? th->node->n : 1;
    if (!nth) return at(err, th->node, "thresholds: empty list", NULL, NULL);
    if (!(r->thresholds = calloc(nth, sizeof *r->thresholds))) return mp_fail(err, MP_ENOMEM, "out of memory");
    r->n_thresholds = nth;
    r->thresholds[0] = r->correlate ? 0.2 : 2.0;
    for (size_t i = 0; th && i < nth; i++) {
        parse_num(th->node->items[i]->scalar, &r->thresholds[i]);
        for (size_t j = 0; j < i; j++)
            if (r->thresholds[j] == r->thresholds[i])
                return at(err, th->node->items[i], "thresholds: duplicate value", NULL, NULL);
    }
    for (size_t i = 0; i < r->n_targets; i++)
        for (size_t j = 0; j < i; j++)
            if (!strcmp(r->targets[i], r->targets[j]))
                return at(err, targets->node->items[i], "targets: duplicate '", r->targets[i], "'");

    /* evals */
    const mp_ynode *ev = map_get(root, "evals");
    if (ev->type != MP_YNODE_SEQ) return at(err, ev, "evals must be a list of '- eval: NAME' entries", NULL, NULL);
    if (ev->n) {
        if (!(r->evals = calloc(ev->n, sizeof *r->evals)) || !(r->eval_kind = calloc(ev->n, sizeof *r->eval_kind)))
            return mp_fail(err, MP_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < ev->n; i++) {
        r->n_evals = i + 1;
        MP_TRY(check_eval(r, ev->items[i], i, check_files, err));
    }

    /* report */
    r->report_experts = 4;
    r->report_contexts = 3;
    r->report_context_tokens = 8;
    const mp_ynode *rep = map_get(root, "report");
    if (rep) {
        mp_rsection s = {0};
        rc = check_section(err, rep, REPORT_KEYS, "report", 0, &s);
        for (size_t i = 0; rc == 0 && i < s.n; i++) {
            long *dst = !strcmp(s.opts[i].key, "experts") ? &r->report_experts
                        : !strcmp(s.opts[i].key, "contexts") ? &r->report_contexts : &r->report_context_tokens;
            parse_long(s.opts[i].node->scalar, dst);
        }
        free(s.opts);
        MP_TRY(rc);
    }
    return 0;
}

int mp_recipe_parse(const char *name, const char *text, size_t len, const mp_recipe_overrides *ov, int check_files,
                    mp_recipe **out, mp_error *err) {
    *out = NULL;
    mp_recipe *r = calloc(1, sizeof *r);
    if (!r || !(r->path = strdup(name))) {
        free(r);
        return mp_fail(err, MP_ENOMEM, "out of memory");
    }
    r->allow_commands = ov && ov->allow_commands;
    int rc = parse_tree(r->path, text, len, &r->root, err);
    if (rc == 0) rc = apply_overrides(r->root, ov, err);
    if (rc == 0) rc = check_recipe(r, check_files, err);
    if (rc == 0 && ov && ov->shards > 0) r->shards = ov->shards;
    if (rc < 0) {
        mp_recipe_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

int mp_recipe_load(const char *path, const mp_recipe_overrides *ov, mp_recipe **out, mp_error *err) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return mp_fail(err, MP_EIO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 > cap) {
            cap = cap ? 2 * cap : 65536;
            char *nb = cap > (16u << 20) ? NULL : realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return mp_fail(err, MP_EINPUT, "%s: too large for a recipe (or out of memory)", path);
            }
            buf = nb;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (!got) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return mp_fail(err, MP_EIO, "%s: read error", path);
    }
    int rc = mp_recipe_parse(path, buf, len, ov, 1, out, err);
    free(buf);
    return rc;
}

void mp_recipe_free(mp_recipe *r) {
    if (!r) return;
    free(r->path);
    mp_ynode_free(r->root);
    free(r->name);
    free(r->model);
    free(r->data);
    free(r->out);
    free(r->collect.opts);
    free(r->criterion.opts);
    free(r->field);
    for (size_t i = 0; i < r->n_targets; i++) free(r->targets[i]);
    free(r->targets);
    free(r->thresholds);
    for (size_t i = 0; i < r->n_evals; i++) free(r->evals[i].opts);
    free(r->evals);
    free(r->eval_kind);
    free(r);
}

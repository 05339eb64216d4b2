/* cmd/opt.c — the declarative option parser and help printer (see opt.h). */
#include "opt.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static int usage_error(const cli_spec *s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static int usage_error(const cli_spec *s, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "monet-probe: %s: ", s->cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see: monet-probe %s --help)\n", s->cmd);
    return 2;
}

/* Index of value in "a|b|c", or -1. */
static int choice_index(const char *choices, const char *value) {
    size_t vl = strlen(value);
    int idx = 0;
    for (const char *p = choices; *p; idx++) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == vl && !strncmp(p, value, len)) return idx;
        if (!bar) break;
        p = bar + 1;
    }
    return -1;
}

static const char *choice_at(const char *choices, int idx, size_t *len) {
    const char *p = choices;
    for (int i = 0; i < idx; i++) p = strchr(p, '|') + 1;
    const char *bar = strchr(p, '|');
    *len = bar ? (size_t)(bar - p) : strlen(p);
    return p;
}

/* "choose one of a, b or c" into buf. */
static void choice_list(const char *choices, char *buf, size_t cap) {
    size_t n = 0;
    int count = 1;
    for (const char *p = choices; *p; p++) count += *p == '|';
    buf[0] = '\0';
    for (int i = 0; i < count && n < cap; i++) {
        size_t len;
        const char *c = choice_at(choices, i, &len);
        n += (size_t)snprintf(buf + n, cap - n, "%s%.*s", i == 0 ? "" : i == count - 1 ? " or " : ", ", (int)len, c);
    }
}

static int parse_long(const char *v, double lo, double hi, long *out) {
    char *end = NULL;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!*v || errno || *end || (double)x < lo || (double)x > hi) return -1;
    *out = x;
    return 0;
}

static void range_text(const cli_opt *o, char *buf, size_t cap) {
    if (o->type == CLI_DOUBLE) snprintf(buf, cap, "a number in %g..%g", o->lo, o->hi);
    else if (o->hi >= 9.2e18 || o->hi >= 4.6e18) snprintf(buf, cap, "an integer >= %.0f", o->lo);
    else snprintf(buf, cap, "an integer in %.0f..%.0f", o->lo, o->hi);
}

static int set_value(const cli_spec *s, const cli_opt *o, const char *shown, const char *v) {
    char buf[256];
    switch (o->type) {
    case CLI_STR:
        *(const char **)o->dest = v;
        return 0;
    case CLI_LONG:
    case CLI_INT: {
        long x;
        if (parse_long(v, o->lo, o->hi, &x) < 0) {
            range_text(o, buf, sizeof buf);
            return usage_error(s, "%s needs %s, not '%s'", shown, buf, v);
        }
        if (o->type == CLI_LONG) *(long *)o->dest = x;
        else *(int *)o->dest = (int)x;
        return 0;
    }
    case CLI_DOUBLE: {
        char *end = NULL;
        errno = 0;
        double x = strtod(v, &end);
        if (!*v || errno || *end || !isfinite(x) || x < o->lo || x > o->hi) {
            range_text(o, buf, sizeof buf);
            return usage_error(s, "%s needs %s, not '%s'", shown, buf, v);
        }
        *(double *)o->dest = x;
        return 0;
    }
    case CLI_CHOICE:
    case CLI_CHOICE_STR: {
        int idx = choice_index(o->choices, v);
        if (idx < 0) {
            choice_list(o->choices, buf, sizeof buf);
            return usage_error(s, "%s must be %s, not '%s'", shown, buf, v);
        }
        if (o->type == CLI_CHOICE) *(int *)o->dest = idx;
        else *(const char **)o->dest = v;
        return 0;
    }
    case CLI_LIST: {
        cli_list *l = o->dest;
        if (l->n >= CLI_LIST_MAX) return usage_error(s, "%s given more than %d times", shown, CLI_LIST_MAX);
        l->v[l->n++] = v;
        return 0;
    }
    case CLI_CUSTOM: {
        char msg[512] = "";
        if (o->parse(v, o->dest, msg, sizeof msg) < 0)
            return usage_error(s, "%s: %s", shown, msg[0] ? msg : "bad value");
        return 0;
    }
    default:
        return usage_error(s, "internal: option %s has no value type", o->name);
    }
}

static const cli_opt *find(const cli_spec *s, const char *name, size_t len, int *by_alias) {
    for (const cli_opt *o = s->opts; o->type != CLI_END; o++) {
        if (strlen(o->name) == len && !strncmp(o->name, name, len)) {
            *by_alias = 0;
            return o;
        }
        if (o->alias && strlen(o->alias) == len && !strncmp(o->alias, name, len)) {
            *by_alias = 1;
            return o;
        }
    }
    return NULL;
}

int cli_parse(const cli_spec *s, int argc, char **argv) {
    unsigned char given[256] = {0};
    int npos = 0, only_pos = 0;
    size_t nopts = 0;
    while (s->opts[nopts].type != CLI_END) nopts++;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!only_pos && (!strcmp(a, "-h") || !strcmp(a, "--help"))) {
            cli_print_help(s, stdout);
            return 1;
        }
        if (!only_pos && !strcmp(a, "--")) {
            only_pos = 1;
            continue;
        }
        if (only_pos || a[0] != '-' || !a[1]) {
            if (npos >= s->pos_max) {
                if (s->pos_max == 0) return usage_error(s, "unexpected argument '%s'", a);
                return usage_error(s, "too many arguments: '%s' (at most %d %s)", a, s->pos_max,
                                   s->pos_name ? s->pos_name : "arguments");
            }
            s->pos[npos++] = a;
            continue;
        }
        const char *eq = strncmp(a, "--", 2) ? NULL : strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        int by_alias = 0;
        const cli_opt *o = find(s, a, len, &by_alias);
        if (!o) return usage_error(s, "unknown option '%.*s'", (int)len, a);
        char shown[128];
        snprintf(shown, sizeof shown, "%.*s", (int)len, a);
        if (by_alias && (o->flags & CLI_DEPRECATED))
            fprintf(stderr, "monet-probe: %s: %s is an old spelling of %s (still accepted; use %s)\n", s->cmd, shown,
                    o->name, o->name);
        size_t k = (size_t)(o - s->opts);
        if (k < sizeof given) given[k] = 1;
        if (o->type == CLI_FLAG) {
            if (eq) return usage_error(s, "%s takes no value", shown);
            *(int *)o->dest = o->value ? o->value : 1;
            continue;
        }
        const char *v;
        if (eq) {
            v = eq + 1;
        } else {
            if (i + 1 >= argc) return usage_error(s, "option %s needs a value", shown);
            v = argv[++i];
        }
        int rc = set_value(s, o, shown, v);
        if (rc) return rc;
    }
    for (size_t k = 0; k < nopts && k < sizeof given; k++)
        if ((s->opts[k].flags & CLI_REQUIRED) && !given[k]) {
            const cli_opt *o = &s->opts[k];
            return usage_error(s, "%s%s%s is required", o->name, o->metavar ? " " : "", o->metavar ? o->metavar : "");
        }
    if (npos < s->pos_min)
        return usage_error(s, "missing %s", s->pos_name ? s->pos_name : "argument");
    if (s->pos_n) *s->pos_n = npos;
    return 0;
}

void cli_print_help(const cli_spec *s, FILE *out) {
    fprintf(out, "usage: monet-probe %s ", s->cmd);
    if (s->synopsis) {
        fprintf(out, "%s\n", s->synopsis);
    } else {
        for (const cli_opt *o = s->opts; o->type != CLI_END; o++)
            if (o->flags & CLI_REQUIRED) fprintf(out, "%s %s ", o->name, o->metavar ? o->metavar : "");
        if (s->pos_name) fprintf(out, s->pos_min ? "%s%s " : "[%s]%s ", s->pos_name, s->pos_max > 1 ? "..." : "");
        fprintf(out, "[options]\n");
    }
    if (s->about) fprintf(out, "%s\n", s->about);
    int any = 0;
    for (const cli_opt *o = s->opts; o->type != CLI_END; o++) {
        if (o->flags & CLI_HIDDEN) continue;
        if (!any++) fprintf(out, "options:\n");
        const char *mv = o->metavar;
        if (!mv && (o->type == CLI_CHOICE || o->type == CLI_CHOICE_STR)) mv = o->choices;
        if (!mv) mv = "X";
        int w = o->type == CLI_FLAG ? fprintf(out, "  %s", o->name) : fprintf(out, "  %s %s", o->name, mv);
        if (w > 24) fprintf(out, "\n%24s", "");
        else fprintf(out, "%*s", 24 - w, "");
        fputc(' ', out);
        for (const char *h = o->help ? o->help : ""; *h; h++) {
            fputc(*h, out);
            if (*h == '\n') fprintf(out, "  %-22s ", ""); /* continuation lines align with the help column */
        }
        if (o->flags & CLI_REQUIRED) fprintf(out, " (required)");
        if (o->type == CLI_LIST) fprintf(out, " (repeatable)");
        if (o->alias) fprintf(out, " (also %s%s)", o->alias, o->flags & CLI_DEPRECATED ? ", old spelling" : "");
        fputc('\n', out);
    }
    fprintf(out, "  %-22s this help\n", "-h, --help");
    if (s->footer) fprintf(out, "%s", s->footer);
}

int cli_parse_label_select(const char *value, void *dest, char *msg, size_t cap) {
    const char *eq = strchr(value, '=');
    if (!eq || eq == value) {
        snprintf(msg, cap, "needs FIELD=VALUE (e.g. lang=Python), not '%s'", value);
        return -1;
    }
    *(const char **)dest = value;
    return 0;
}

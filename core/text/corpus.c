/* core/text/corpus.c — streaming corpus readers (see corpus.h): plain text, JSONL,
 * RFC 4180 CSV, zstd-compressed versions of each, and directory trees.
 *
 * Layers, bottom up:
 *   src_*     a byte source: a FILE, or a FILE behind ZSTD_decompressStream
 *             (constant memory, multi-frame); src_getline returns one raw line
 *             of any length (the line buffer grows; 1 GiB cap).
 *   read_*    one reader per format turning lines into one record at a time
 *             (text lines, whole file, JSONL object, CSV record that may span
 *             lines); malformed records go through skip_record().
 *   dir_*     the sorted list of regular files below a directory and the
 *             per-file "label" (ext / parent / stem).
 *   mp_corpus_next walks files and formats and fills an mp_doc.
 *
 * Choices the header leaves open, made here:
 *   - dir_label NULL means no "label" label; "ext" is what the CLI passes by
 *     default. A file without an extension gets a NULL "ext" label. The
 *     "label" label comes after the label_fields. dir_label is ignored when the
 *     spec is a single file.
 *   - In a directory every file that is not .jsonl/.csv (after removing .zst)
 *     is ONE document (whole file, 64 MiB cap); a top-level spec file is one
 *     document per line unless opts.whole_file. Empty whole files and empty
 *     lines of plain text yield no document; blank JSONL lines and empty CSV
 *     lines are skipped silently too.
 *   - A CSV header lacking the requested text column is an MP_EINPUT error
 *     for the whole file (not a skip), raised by mp_corpus_open for a single
 *     file; a missing label column gives NULLs.
 *   - A UTF-8 byte-order mark at the start of a file is dropped.
 *   - After mp_corpus_next has failed once, it keeps returning that error.
 *
 * Ownership: everything hangs off struct mp_corpus; documents borrow from it.
 */
#include "core/text/corpus.h"
#include "core/text/utf8.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zstd.h>

#define WHOLE_FILE_MAX ((size_t)64 << 20) /* one whole-file document */
#define RECORD_MAX ((size_t)1 << 30)      /* one line / CSV record */
#define CHUNK_SIZE ((size_t)1 << 16)

typedef enum { FMT_TEXT, FMT_JSONL, FMT_CSV } corpus_fmt;

/* A growable byte buffer, always NUL-terminated once allocated. */
typedef struct {
    char *p;
    size_t len, cap;
} cbuf;

typedef struct {
    FILE *fp;
    const char *path;      /* borrowed from the corpus */
    ZSTD_DCtx *zd;         /* NULL: plain file */
    char *zin;             /* compressed input, ZSTD_DStreamInSize() bytes */
    size_t zin_cap;
    ZSTD_inBuffer in;
    size_t zret;           /* last ZSTD_decompressStream result: 0 = frame boundary */
    int zin_eof, zflush;   /* input exhausted; output was full (more may be pending) */
    char *chunk;           /* decoded bytes [pos, end) */
    size_t pos, end;
    int eof;
    size_t lineno;         /* lines returned so far */
} csrc;

struct mp_corpus {
    mp_corpus_opts opts;   /* string pointers below are our own copies */
    char *text_field;      /* NULL: format default */
    char *label_fields[MP_CORPUS_MAX_LABELS];
    int dir_label;         /* 0 none, 1 ext, 2 parent, 3 stem */
    char *spec;
    char *root_name;       /* directory: basename of the resolved root */
    char **files;          /* directory: sorted paths; single file: NULL */
    size_t n_files, files_cap, file_i;
    int is_dir, single_done;

    /* current file */
    int open;
    const char *path;
    corpus_fmt fmt;
    int whole, whole_done;
    csrc src;
    char *file_label;      /* owned; NULL when none */
    /* CSV state of the current file */
    int csv_have_header, csv_ncols, csv_text_col;
    int csv_label_col[MP_CORPUS_MAX_LABELS];
    size_t *foff, *flen;   /* fields of the current record in fbuf */
    int nfields, fields_cap;
    cbuf fbuf;

    cbuf line;
    cbuf whole_buf;
    cJSON *json;           /* current JSONL record (texts borrow from it) */
    cbuf labbuf[MP_CORPUS_MAX_LABELS];
    const char *lab[MP_CORPUS_MAX_LABELS + 1];

    uint64_t index;
    size_t skipped;
    size_t no_text;        /* JSON object records without the text field */
    unsigned char label_seen[MP_CORPUS_MAX_LABELS]; /* some document had a value for label field i */
    char first_fields[200];/* keys of the first JSON object record, for the error */
    uint64_t bytes_total;  /* sum of the files' sizes (0: unknown, e.g. a pipe) */
    uint64_t bytes_closed; /* sizes of the files finished */
    uint64_t cur_size;     /* size of the open file */
    int failed;            /* sticky error code */
    char failed_msg[MP_ERRMSG_MAX];
};

/* ---- small helpers -------------------------------------------------------- */

static int cbuf_reserve(cbuf *b, size_t need, mp_error *err) {
    if (need + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need + 1) {
        if (cap > SIZE_MAX / 2) return mp_fail(err, MP_ENOMEM, "buffer of %zu bytes too large", need);
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p) return mp_fail(err, MP_ENOMEM, "out of memory (%zu bytes)", cap);
    b->p = p;
    b->cap = cap;
    return 0;
}

static int cbuf_append(cbuf *b, const char *s, size_t n, mp_error *err) {
    MP_TRY(cbuf_reserve(b, b->len + n, err));
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static void cbuf_free(cbuf *b) {
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

static char *dup_str(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static int ends_with_ci(const char *s, size_t n, const char *suffix) {
    size_t m = strlen(suffix);
    if (n < m) return 0;
    for (size_t i = 0; i < m; i++) {
        char a = s[n - m + i], b = suffix[i];
        if (a >= 'A' && a <= 'Z') a = (char)(a - 'A' + 'a');
        if (a != b) return 0;
    }
    return 1;
}

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Format of a file from its name; *zst set when it ends in .zst. */
static corpus_fmt format_of(const char *path, int *zst) {
    const char *b = base_name(path);
    size_t n = strlen(b);
    *zst = n > 4 && ends_with_ci(b, n, ".zst");
    if (*zst) n -= 4;
    if (ends_with_ci(b, n, ".jsonl")) return FMT_JSONL;
    if (ends_with_ci(b, n, ".csv")) return FMT_CSV;
    return FMT_TEXT;
}

/* Drop a trailing "\n" and "\r" from a raw line; drop a BOM on line 1. */
static const char *trim_line(const char *p, size_t *len, size_t lineno) {
    size_t n = *len;
    if (n && p[n - 1] == '\n') n--;
    if (n && p[n - 1] == '\r') n--;
    if (lineno == 1 && n >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3)) {
        p += 3;
        n -= 3;
    }
    *len = n;
    return p;
}

/* ---- byte source: plain or zstd ------------------------------------------- */

static void src_close(csrc *s) {
    if (s->fp) fclose(s->fp);
    ZSTD_freeDCtx(s->zd);
    free(s->zin);
    free(s->chunk);
    memset(s, 0, sizeof *s);
}

static int zstd_corrupt(const csrc *s, const char *why, mp_error *err) {
    return mp_fail(err, MP_EINPUT, "%s: corrupt zstd data (%s)", s->path, why);
}

static int src_open(csrc *s, const char *path, int zst, mp_error *err) {
    memset(s, 0, sizeof *s);
    s->path = path;
    s->fp = fopen(path, "rb");
    if (!s->fp) return mp_fail(err, MP_EIO, "%s: cannot open: %s", path, strerror(errno));
    s->chunk = malloc(CHUNK_SIZE);
    if (!s->chunk) return mp_fail(err, MP_ENOMEM, "%s: out of memory", path);
    if (!zst) return 0;
    s->zd = ZSTD_createDCtx();
    s->zin_cap = ZSTD_DStreamInSize();
    s->zin = malloc(s->zin_cap);
    if (!s->zd || !s->zin) return mp_fail(err, MP_ENOMEM, "%s: out of memory", path);
    /* Read the first block now so that a file that is not zstd at all fails early. */
    size_t n = fread(s->zin, 1, s->zin_cap, s->fp);
    if (n < s->zin_cap && ferror(s->fp)) return mp_fail(err, MP_EIO, "%s: read error: %s", path, strerror(errno));
    if (n < s->zin_cap) s->zin_eof = 1;
    s->in.src = s->zin;
    s->in.size = n;
    s->in.pos = 0;
    if (n > 0 && n < 4) return zstd_corrupt(s, "truncated frame", err);
    if (n >= 4) {
        const unsigned char *m = (const unsigned char *)s->zin;
        uint32_t magic = (uint32_t)m[0] | (uint32_t)m[1] << 8 | (uint32_t)m[2] << 16 | (uint32_t)m[3] << 24;
        if (magic != ZSTD_MAGICNUMBER && (magic & ZSTD_MAGIC_SKIPPABLE_MASK) != ZSTD_MAGIC_SKIPPABLE_START)
            return zstd_corrupt(s, "not a zstd frame: bad magic number", err);
    }
    return 0;
}

/* Refill the chunk. @return 1 bytes available, 0 end of data, <0 error. */
static int src_fill(csrc *s, mp_error *err) {
    s->pos = s->end = 0;
    if (!s->zd) {
        size_t n = fread(s->chunk, 1, CHUNK_SIZE, s->fp);
        if (n == 0) {
            if (ferror(s->fp)) return mp_fail(err, MP_EIO, "%s: read error: %s", s->path, strerror(errno));
            return 0;
        }
        s->end = n;
        return 1;
    }
    for (;;) {
        if (s->in.pos == s->in.size && !s->zin_eof) {
            size_t n = fread(s->zin, 1, s->zin_cap, s->fp);
            if (n == 0) {
                if (ferror(s->fp)) return mp_fail(err, MP_EIO, "%s: read error: %s", s->path, strerror(errno));
                s->zin_eof = 1;
            }
            s->in.src = s->zin;
            s->in.size = n;
            s->in.pos = 0;
        }
        if (s->in.pos < s->in.size || s->zflush) {
            ZSTD_outBuffer out = {s->chunk, CHUNK_SIZE, 0};
            size_t in0 = s->in.pos;
            size_t r = ZSTD_decompressStream(s->zd, &out, &s->in);
            if (ZSTD_isError(r)) return zstd_corrupt(s, ZSTD_getErrorName(r), err);
            /* A flush call that made no progress must not overwrite the frame
             * state: after a frame that ended exactly at a full chunk (content
             * a multiple of 64 KiB) it returns the next frame's header hint,
             * which is not "truncated". */
            if (out.pos > 0 || s->in.pos > in0) s->zret = r;
            s->zflush = out.pos == out.size && r != 0;
            if (out.pos > 0) {
                s->end = out.pos;
                return 1;
            }
            continue;
        }
        if (s->zin_eof) {
            if (s->zret != 0) return zstd_corrupt(s, "truncated frame", err);
            return 0;
        }
    }
}

/* Next raw line (with its '\n' unless it is the last one) into *line.
 * @return 1 line read, 0 end of data, <0 error. */
static int src_getline(csrc *s, cbuf *line, mp_error *err) {
    line->len = 0;
    if (line->p) line->p[0] = '\0';
    for (;;) {
        if (s->pos == s->end) {
            if (s->eof) break;
            int rc = src_fill(s, err);
            if (rc < 0) return rc;
            if (rc == 0) {
                s->eof = 1;
                break;
            }
        }
        const char *start = s->chunk + s->pos;
        size_t avail = s->end - s->pos;
        const char *nl = memchr(start, '\n', avail);
        size_t take = nl ? (size_t)(nl - start) + 1 : avail;
        if (line->len + take > RECORD_MAX)
            return mp_fail(err, MP_EINPUT, "%s:%zu: line longer than 1 GiB", s->path, s->lineno + 1);
        MP_TRY(cbuf_append(line, start, take, err));
        s->pos += take;
        if (nl) break;
    }
    if (line->len == 0) return 0;
    s->lineno++;
    return 1;
}

/* ---- malformed records ---------------------------------------------------- */

/* A malformed record at line (0: whole file). @return 0 (skipped: keep going)
 * or MP_EINPUT under strict. */
static int skip_record(mp_corpus *c, size_t line, const char *reason, mp_error *err) {
    if (c->opts.strict) {
        if (line) return mp_fail(err, MP_EINPUT, "%s:%zu: %s", c->path, line, reason);
        return mp_fail(err, MP_EINPUT, "%s: %s", c->path, reason);
    }
    c->skipped++;
    if (c->opts.on_skip) c->opts.on_skip(c->opts.on_skip_ctx, c->path, line, reason);
    return 0;
}

/* 0 when text is valid UTF-8, else fills reason. */
static int bad_utf8(const char *text, size_t len, char *reason, size_t cap) {
    size_t at = mp_utf8_check(text, len);
    if (at == len) return 0;
    snprintf(reason, cap, "invalid UTF-8 in text at byte %zu", at);
    return 1;
}

/* ---- plain text ----------------------------------------------------------- */

static int read_text_line(mp_corpus *c, mp_doc *doc, mp_error *err) {
    char reason[96];
    for (;;) {
        int rc = src_getline(&c->src, &c->line, err);
        if (rc <= 0) return rc;
        size_t len = c->line.len, ln = c->src.lineno;
        const char *p = trim_line(c->line.p, &len, ln);
        if (len == 0) continue;
        if (bad_utf8(p, len, reason, sizeof reason)) {
            MP_TRY(skip_record(c, ln, reason, err));
            continue;
        }
        doc->text = p;
        doc->len = len;
        doc->line = ln;
        return 1;
    }
}

static int read_whole(mp_corpus *c, mp_doc *doc, mp_error *err) {
    char reason[96];
    if (c->whole_done) return 0;
    c->whole_done = 1;
    cbuf *b = &c->whole_buf;
    b->len = 0;
    for (;;) {
        if (c->src.pos == c->src.end) {
            int rc = src_fill(&c->src, err);
            if (rc < 0) return rc;
            if (rc == 0) break;
        }
        size_t n = c->src.end - c->src.pos;
        if (b->len + n > WHOLE_FILE_MAX)
            return mp_fail(err, MP_EINPUT, "%s: larger than 64 MiB, the limit for a whole-file document "
                           "(split it, or read it one document per line)", c->path);
        MP_TRY(cbuf_append(b, c->src.chunk + c->src.pos, n, err));
        c->src.pos = c->src.end;
    }
    if (b->len == 0) return 0;
    const char *p = b->p;
    size_t len = b->len;
    if (len >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3)) {
        p += 3;
        len -= 3;
    }
    if (bad_utf8(p, len, reason, sizeof reason)) return skip_record(c, 0, reason, err);
    doc->text = p;
    doc->len = len;
    doc->line = 0;
    return 1;
}

/* ---- JSONL ---------------------------------------------------------------- */

/* Field at a dotted path; a key containing dots is matched literally first. */
static const cJSON *json_path(const cJSON *obj, const char *path, size_t n) {
    if (!cJSON_IsObject(obj)) return NULL;
    for (const cJSON *ch = obj->child; ch; ch = ch->next)
        if (ch->string && strlen(ch->string) == n && !memcmp(ch->string, path, n)) return ch;
    for (size_t i = 0; i < n; i++) {
        if (path[i] != '.') continue;
        for (const cJSON *ch = obj->child; ch; ch = ch->next) {
            if (!ch->string || strlen(ch->string) != i || memcmp(ch->string, path, i)) continue;
            const cJSON *r = json_path(ch, path + i + 1, n - i - 1);
            if (r) return r;
        }
    }
    return NULL;
}

/* Shortest decimal text that reads back as v. */
static void format_number(char *out, size_t cap, double v) {
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, cap, "%.*g", prec, v);
        if (strtod(out, NULL) == v) return;
    }
}

/* Label value of a JSON node: borrowed string, rendered number/bool/compound,
 * or NULL (missing or null). */
static int json_label(mp_corpus *c, int i, const cJSON *v, const char **out, mp_error *err) {
    *out = NULL;
    if (!v || cJSON_IsNull(v)) return 0;
    if (cJSON_IsString(v)) {
        *out = v->valuestring;
        return 0;
    }
    if (cJSON_IsTrue(v)) {
        *out = "true";
        return 0;
    }
    if (cJSON_IsFalse(v)) {
        *out = "false";
        return 0;
    }
    cbuf *b = &c->labbuf[i];
    b->len = 0;
    if (cJSON_IsNumber(v)) {
        MP_TRY(cbuf_reserve(b, 40, err));
        format_number(b->p, b->cap, v->valuedouble);
        *out = b->p;
        return 0;
    }
    char *s = cJSON_PrintUnformatted(v); /* arrays and objects: compact JSON */
    if (!s) return mp_fail(err, MP_ENOMEM, "%s: out of memory", c->path);
    int rc = cbuf_append(b, s, strlen(s), err);
    cJSON_free(s);
    if (rc < 0) return rc;
    *out = b->p;
    return 0;
}

/* Documents read before a label field no document has is an error. */
#define LABEL_CHECK_DOCS 100

/* 0, or MP_EINPUT when a requested label field had no value in any document so far. */
static int check_labels_seen(mp_corpus *c, mp_error *err) {
    for (int i = 0; i < c->opts.n_label_fields; i++)
        if (!c->label_seen[i]) {
            snprintf(c->failed_msg, sizeof c->failed_msg,
                     "%s: no document of the first %llu has the label field \"%.100s\"%s%s%s", c->spec,
                     (unsigned long long)c->index, c->label_fields[i], c->first_fields[0] ? " (fields of the first record: " : "",
                     c->first_fields, c->first_fields[0] ? ")" : "");
            c->failed = MP_EINPUT;
            return mp_fail(err, MP_EINPUT, "%s", c->failed_msg);
        }
    return 0;
}

/* Records in a row without the text field, before any document, after which
 * the field name is taken to be wrong rather than the records malformed. */
#define NO_TEXT_FAIL_FAST 100

static int read_jsonl(mp_corpus *c, mp_doc *doc, mp_error *err) {
    char reason[160];
    const char *tf = c->text_field ? c->text_field : "text";
    for (;;) {
        int rc = src_getline(&c->src, &c->line, err);
        if (rc <= 0) return rc;
        size_t len = c->line.len, ln = c->src.lineno;
        const char *p = trim_line(c->line.p, &len, ln);
        size_t k = 0;
        while (k < len && (p[k] == ' ' || p[k] == '\t' || p[k] == '\r')) k++;
        if (k == len) continue; /* blank line */
        cJSON_Delete(c->json);
        const char *end = NULL;
        c->json = cJSON_ParseWithLengthOpts(p, len, &end, 0);
        if (!c->json) {
            size_t at = end && end >= p && end <= p + len ? (size_t)(end - p) : 0;
            snprintf(reason, sizeof reason, "invalid JSON at byte %zu", at);
            MP_TRY(skip_record(c, ln, reason, err));
            continue;
        }
        while (end < p + len && (*end == ' ' || *end == '\t' || *end == '\r')) end++;
        if (end != p + len) {
            snprintf(reason, sizeof reason, "invalid JSON: trailing data at byte %zu", (size_t)(end - p));
            MP_TRY(skip_record(c, ln, reason, err));
            continue;
        }
        if (!cJSON_IsObject(c->json)) {
            MP_TRY(skip_record(c, ln, "not a JSON object", err));
            continue;
        }
        const cJSON *t = json_path(c->json, tf, strlen(tf));
        if (!c->first_fields[0]) {
            size_t n = 0;
            const cJSON *it;
            cJSON_ArrayForEach(it, c->json) {
                if (n + 8 >= sizeof c->first_fields) break;
                n += (size_t)snprintf(c->first_fields + n, sizeof c->first_fields - n, "%s%.40s", n ? ", " : "",
                                      it->string);
            }
            if (!n) snprintf(c->first_fields, sizeof c->first_fields, "none");
        }
        if (!t && ++c->no_text >= NO_TEXT_FAIL_FAST && c->index == 0)
            return mp_fail(err, MP_EINPUT, "%s: none of the first %d records has the text field \"%.100s\" (fields of the "
                           "first record: %s); choose one with --text-field", c->path, NO_TEXT_FAIL_FAST, tf,
                           c->first_fields);
        if (!t || !cJSON_IsString(t)) {
            snprintf(reason, sizeof reason, t ? "text field \"%.100s\" is not a string" : "missing text field \"%.100s\"", tf);
            MP_TRY(skip_record(c, ln, reason, err));
            continue;
        }
        size_t tlen = strlen(t->valuestring);
        if (bad_utf8(t->valuestring, tlen, reason, sizeof reason)) {
            MP_TRY(skip_record(c, ln, reason, err));
            continue;
        }
        for (int i = 0; i < c->opts.n_label_fields; i++) {
            const char *f = c->label_fields[i];
            MP_TRY(json_label(c, i, json_path(c->json, f, strlen(f)), &c->lab[i], err));
        }
        doc->text = t->valuestring;
        doc->len = tlen;
        doc->line = ln;
        return 1;
    }
}

/* ---- CSV ------------------------------------------------------------------ */

enum { CSV_START, CSV_PLAIN, CSV_QUOTED, CSV_QUOTE_SEEN };

static int csv_end_field(mp_corpus *c, size_t start, mp_error *err) {
    if (c->nfields == c->fields_cap) {
        if (c->fields_cap > INT_MAX / 2) return mp_fail(err, MP_EINPUT, "%s: too many CSV fields", c->path);
        int cap = c->fields_cap ? c->fields_cap * 2 : 16;
        size_t *o = realloc(c->foff, (size_t)cap * sizeof *o);
        if (!o) return mp_fail(err, MP_ENOMEM, "%s: out of memory", c->path);
        c->foff = o;
        size_t *l = realloc(c->flen, (size_t)cap * sizeof *l);
        if (!l) return mp_fail(err, MP_ENOMEM, "%s: out of memory", c->path);
        c->flen = l;
        c->fields_cap = cap;
    }
    c->foff[c->nfields] = start;
    c->flen[c->nfields] = c->fbuf.len - start;
    c->nfields++;
    return cbuf_append(&c->fbuf, "", 1, err); /* NUL between fields */
}

/* One CSV record (possibly several lines) into fbuf/foff/flen.
 * @return 1 record (*first_line set; *empty when it was an empty line),
 *         0 end of data, 2 unterminated quote at end of data, <0 error. */
static int csv_record(mp_corpus *c, size_t *first_line, int *empty, mp_error *err) {
    int state = CSV_START, started = 0, quoted_any = 0;
    size_t field = 0;
    c->nfields = 0;
    c->fbuf.len = 0;
    *empty = 0;
    for (;;) {
        int rc = src_getline(&c->src, &c->line, err);
        if (rc < 0) return rc;
        if (rc == 0) return started ? 2 : 0;
        const char *p = c->line.p;
        size_t n = c->line.len;
        if (!started) {
            started = 1;
            *first_line = c->src.lineno;
            if (c->src.lineno == 1 && n >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3)) {
                p += 3;
                n -= 3;
            }
        }
        size_t i = 0;
        while (i < n) {
            char ch = p[i];
            if (state == CSV_QUOTED) {
                /* copy a run up to the next quote at once */
                const char *q = memchr(p + i, '"', n - i);
                size_t run = q ? (size_t)(q - (p + i)) : n - i;
                MP_TRY(cbuf_append(&c->fbuf, p + i, run, err));
                i += run;
                if (q) {
                    state = CSV_QUOTE_SEEN;
                    i++;
                }
                continue;
            }
            int eol = ch == '\n' || (ch == '\r' && (i + 1 == n || p[i + 1] == '\n'));
            if (eol) {
                i = n;
                break;
            }
            if (ch == ',') {
                MP_TRY(csv_end_field(c, field, err));
                field = c->fbuf.len;
                state = CSV_START;
            } else if (ch == '"' && state == CSV_START) {
                state = CSV_QUOTED;
                quoted_any = 1;
            } else if (ch == '"' && state == CSV_QUOTE_SEEN) {
                MP_TRY(cbuf_append(&c->fbuf, "\"", 1, err));
                state = CSV_QUOTED;
            } else {
                /* a stray quote inside an unquoted field, or text after a
                 * closing quote, is kept literally (Python's csv does the same) */
                MP_TRY(cbuf_append(&c->fbuf, &ch, 1, err));
                state = CSV_PLAIN;
            }
            i++;
        }
        if (c->fbuf.len > RECORD_MAX)
            return mp_fail(err, MP_EINPUT, "%s:%zu: CSV record longer than 1 GiB", c->path, *first_line);
        if (state == CSV_QUOTED) continue; /* newline inside quotes: record goes on */
        MP_TRY(csv_end_field(c, field, err));
        *empty = c->nfields == 1 && c->flen[0] == 0 && !quoted_any;
        return 1;
    }
}

static int csv_find(const mp_corpus *c, const char *name) {
    for (int i = 0; i < c->nfields; i++)
        if (!strcmp(c->fbuf.p + c->foff[i], name)) return i;
    return -1;
}

static int csv_header(mp_corpus *c, mp_error *err) {
    size_t ln = 0;
    int empty = 0, rc;
    do {
        rc = csv_record(c, &ln, &empty, err);
        if (rc < 0) return rc;
        if (rc == 0) return 0;
        if (rc == 2) return mp_fail(err, MP_EINPUT, "%s:%zu: CSV header: unterminated quoted field", c->path, ln);
    } while (empty);
    c->csv_have_header = 1;
    c->csv_ncols = c->nfields;
    if (c->text_field) {
        c->csv_text_col = csv_find(c, c->text_field);
        if (c->csv_text_col < 0)
            return mp_fail(err, MP_EINPUT, "%s:%zu: CSV header has no column \"%s\" (first column: \"%.80s\")",
                           c->path, ln, c->text_field, c->fbuf.p + c->foff[0]);
    } else {
        c->csv_text_col = csv_find(c, "text");
        if (c->csv_text_col < 0) c->csv_text_col = 0;
    }
    for (int i = 0; i < c->opts.n_label_fields; i++) c->csv_label_col[i] = csv_find(c, c->label_fields[i]);
    return 1;
}

static int read_csv(mp_corpus *c, mp_doc *doc, mp_error *err) {
    char reason[96];
    if (!c->csv_have_header) {
        int rc = csv_header(c, err);
        if (rc <= 0) return rc;
    }
    for (;;) {
        size_t ln = 0;
        int empty = 0;
        int rc = csv_record(c, &ln, &empty, err);
        if (rc < 0) return rc;
        if (rc == 0) return 0;
        if (rc == 2) {
            MP_TRY(skip_record(c, ln, "unterminated quoted field", err));
            return 0;
        }
        if (empty) continue;
        if (c->nfields != c->csv_ncols) {
            snprintf(reason, sizeof reason, "expected %d CSV fields, found %d", c->csv_ncols, c->nfields);
            MP_TRY(skip_record(c, ln, reason, err));
            continue;
        }
        const char *t = c->fbuf.p + c->foff[c->csv_text_col];
        size_t tlen = c->flen[c->csv_text_col];
        if (bad_utf8(t, tlen, reason, sizeof reason)) {
            MP_TRY(skip_record(c, ln, reason, err));
            continue;
        }
        for (int i = 0; i < c->opts.n_label_fields; i++)
            c->lab[i] = c->csv_label_col[i] < 0 ? NULL : c->fbuf.p + c->foff[c->csv_label_col[i]];
        doc->text = t;
        doc->len = tlen;
        doc->line = ln;
        return 1;
    }
}

/* ---- directories ---------------------------------------------------------- */

static int dir_add(mp_corpus *c, const char *path, mp_error *err) {
    if (c->n_files == c->files_cap) {
        size_t cap = c->files_cap ? c->files_cap * 2 : 64;
        char **f = realloc(c->files, cap * sizeof *f);
        if (!f) return mp_fail(err, MP_ENOMEM, "%s: out of memory listing files", c->spec);
        c->files = f;
        c->files_cap = cap;
    }
    char *d = dup_str(path);
    if (!d) return mp_fail(err, MP_ENOMEM, "%s: out of memory listing files", c->spec);
    c->files[c->n_files++] = d;
    return 0;
}

/* Every regular file below dir (hidden names and symlinked directories skipped). */
static int dir_walk(mp_corpus *c, const char *dir, int depth, mp_error *err) {
    if (depth > 256) return mp_fail(err, MP_EINPUT, "%s: directories nested too deeply", dir);
    DIR *d = opendir(dir);
    if (!d) return mp_fail(err, MP_EIO, "%s: cannot open directory: %s", dir, strerror(errno));
    int rc = 0;
    char *path = NULL;
    struct dirent *e;
    size_t dl = strlen(dir);
    for (;;) {
        errno = 0;
        e = readdir(d);
        if (!e) {
            if (errno) rc = mp_fail(err, MP_EIO, "%s: cannot read directory: %s", dir, strerror(errno));
            break;
        }
        if (e->d_name[0] == '.') continue;
        size_t nl = strlen(e->d_name);
        free(path);
        path = malloc(dl + nl + 2);
        if (!path) {
            rc = mp_fail(err, MP_ENOMEM, "%s: out of memory", dir);
            break;
        }
        memcpy(path, dir, dl);
        path[dl] = '/';
        memcpy(path + dl + 1, e->d_name, nl + 1);
        struct stat st;
        if (lstat(path, &st) != 0) {
            rc = mp_fail(err, MP_EIO, "%s: cannot stat: %s", path, strerror(errno));
            break;
        }
        if (S_ISDIR(st.st_mode)) {
            rc = dir_walk(c, path, depth + 1, err);
        } else if (S_ISREG(st.st_mode) || (S_ISLNK(st.st_mode) && stat(path, &st) == 0 && S_ISREG(st.st_mode))) {
            c->bytes_total += (uint64_t)st.st_size;
            rc = dir_add(c, path, err);
        }
        if (rc < 0) break;
    }
    free(path);
    closedir(d);
    return rc;
}

static int cmp_path(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The "label" label of one file of a directory tree (NULL: none). */
static int dir_file_label(mp_corpus *c, const char *path, mp_error *err) {
    free(c->file_label);
    c->file_label = NULL;
    if (!c->dir_label) return 0;
    const char *b = base_name(path), *start = b;
    size_t n = strlen(b);
    if (n > 4 && ends_with_ci(b, n, ".zst")) n -= 4;
    const char *dot = NULL;
    for (size_t i = 1; i < n; i++)
        if (b[i] == '.') dot = b + i;
    size_t len = 0;
    if (c->dir_label == 1) { /* ext */
        if (!dot) return 0;
        start = dot + 1;
        len = (size_t)(b + n - start);
    } else if (c->dir_label == 3) { /* stem */
        len = dot ? (size_t)(dot - b) : n;
    } else { /* parent */
        size_t rl = strlen(c->spec);
        if (b - path <= (ptrdiff_t)rl + 1) {
            start = c->root_name;
            len = strlen(start);
        } else {
            const char *e = b - 1; /* the '/' before the base name */
            start = e;
            while (start > path && start[-1] != '/') start--;
            len = (size_t)(e - start);
        }
    }
    c->file_label = malloc(len + 1);
    if (!c->file_label) return mp_fail(err, MP_ENOMEM, "%s: out of memory", path);
    memcpy(c->file_label, start, len);
    c->file_label[len] = '\0';
    return 0;
}

/* ---- the reader ------------------------------------------------------------ */

static void close_file(mp_corpus *c) {
    if (c->open) c->bytes_closed += c->cur_size;
    c->cur_size = 0;
    src_close(&c->src);
    cJSON_Delete(c->json);
    c->json = NULL;
    c->open = 0;
    c->csv_have_header = 0;
}

static int open_file(mp_corpus *c, const char *path, mp_error *err) {
    int zst = 0;
    c->path = path;
    c->fmt = format_of(path, &zst);
    c->whole = c->fmt == FMT_TEXT && (c->is_dir || c->opts.whole_file);
    c->whole_done = 0;
    c->csv_have_header = 0;
    c->open = 1; /* src_close is safe on a half-opened source */
    MP_TRY(src_open(&c->src, path, zst, err));
    struct stat st;
    c->cur_size = c->src.fp && fstat(fileno(c->src.fp), &st) == 0 && S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
    if (c->is_dir) MP_TRY(dir_file_label(c, path, err));
    return 0;
}

int mp_corpus_open(const char *spec, const mp_corpus_opts *opts, mp_corpus **out, mp_error *err) {
    static const mp_corpus_opts defaults;
    *out = NULL;
    if (!opts) opts = &defaults;
    if (!spec || !*spec) return mp_fail(err, MP_EINPUT, "corpus: empty path");
    if (opts->n_label_fields < 0 || opts->n_label_fields > MP_CORPUS_MAX_LABELS)
        return mp_fail(err, MP_EINPUT, "%s: %d label fields (at most %d)", spec, opts->n_label_fields, MP_CORPUS_MAX_LABELS);
    for (int i = 0; i < opts->n_label_fields; i++)
        if (!opts->label_fields[i] || !*opts->label_fields[i])
            return mp_fail(err, MP_EINPUT, "%s: label field %d is empty", spec, i);
    if (opts->text_field && !*opts->text_field) return mp_fail(err, MP_EINPUT, "%s: empty text field name", spec);
    int dl = 0;
    if (opts->dir_label) {
        if (!strcmp(opts->dir_label, "ext")) dl = 1;
        else if (!strcmp(opts->dir_label, "parent")) dl = 2;
        else if (!strcmp(opts->dir_label, "stem")) dl = 3;
        else if (strcmp(opts->dir_label, "none"))
            return mp_fail(err, MP_EINPUT, "%s: unknown directory label \"%s\" (ext, parent, stem or none)", spec, opts->dir_label);
    }

    struct stat st;
    if (stat(spec, &st) != 0) return mp_fail(err, MP_EIO, "%s: cannot open: %s", spec, strerror(errno));
    if (S_ISDIR(st.st_mode) && dl && opts->n_label_fields == MP_CORPUS_MAX_LABELS)
        return mp_fail(err, MP_EINPUT, "%s: %d label fields plus the directory label exceed %d",
                       spec, opts->n_label_fields, MP_CORPUS_MAX_LABELS);

    int rc = 0;
    mp_corpus *c = calloc(1, sizeof *c);
    if (!c) return mp_fail(err, MP_ENOMEM, "%s: out of memory", spec);
    c->opts = *opts;
    c->spec = dup_str(spec);
    c->text_field = dup_str(opts->text_field);
    if (!c->spec || (opts->text_field && !c->text_field)) goto oom;
    for (int i = 0; i < opts->n_label_fields; i++) {
        c->label_fields[i] = dup_str(opts->label_fields[i]);
        if (!c->label_fields[i]) goto oom;
        c->opts.label_fields[i] = c->label_fields[i];
    }
    c->opts.text_field = c->text_field;
    c->opts.dir_label = NULL; /* decoded into c->dir_label; the caller's string is not kept */
    c->is_dir = S_ISDIR(st.st_mode);
    if (c->is_dir) {
        c->dir_label = dl;
        size_t n = strlen(c->spec);
        while (n > 1 && c->spec[n - 1] == '/') c->spec[--n] = '\0';
        rc = dir_walk(c, c->spec, 0, err);
        if (rc < 0) goto fail;
        qsort(c->files, c->n_files, sizeof *c->files, cmp_path);
        if (dl == 2) {
            char *real = realpath(c->spec, NULL);
            c->root_name = dup_str(real ? base_name(real) : base_name(c->spec));
            free(real);
            if (!c->root_name) goto oom;
        }
    } else {
        rc = open_file(c, c->spec, err);
        c->bytes_total = c->cur_size;
        if (rc >= 0 && c->fmt == FMT_CSV) rc = csv_header(c, err); /* a bad header fails here */
        if (rc < 0) goto fail;
    }
    *out = c;
    return 0;
oom:
    rc = mp_fail(err, MP_ENOMEM, "%s: out of memory", spec);
fail:
    mp_corpus_close(c);
    return rc;
}

static int next_record(mp_corpus *c, mp_doc *doc, mp_error *err) {
    for (;;) {
        if (!c->open) {
            if (c->is_dir) {
                if (c->file_i >= c->n_files) return 0;
                MP_TRY(open_file(c, c->files[c->file_i++], err));
            } else {
                if (c->single_done) return 0;
                MP_TRY(open_file(c, c->spec, err));
            }
        }
        for (int i = 0; i < c->opts.n_label_fields; i++) c->lab[i] = NULL;
        int rc;
        if (c->fmt == FMT_JSONL) rc = read_jsonl(c, doc, err);
        else if (c->fmt == FMT_CSV) rc = read_csv(c, doc, err);
        else if (c->whole) rc = read_whole(c, doc, err);
        else rc = read_text_line(c, doc, err);
        if (rc != 0) return rc;
        close_file(c);
        if (!c->is_dir) c->single_done = 1;
    }
}

int mp_corpus_next(mp_corpus *c, mp_doc *doc, mp_error *err) {
    if (c->failed) return mp_fail(err, c->failed, "%s", c->failed_msg);
    int rc = next_record(c, doc, err);
    if (rc < 0) {
        c->failed = rc;
        if (err) memcpy(c->failed_msg, err->msg, sizeof c->failed_msg);
        else snprintf(c->failed_msg, sizeof c->failed_msg, "%s: reading failed", c->spec);
        return rc;
    }
    if (rc == 0 && c->index == 0) { /* nothing to measure: say why instead of an empty result */
        if (c->no_text)
            snprintf(c->failed_msg, sizeof c->failed_msg,
                     "%s: no documents: %zu records have no text field \"%.100s\" (fields of the first record: %s); "
                     "choose one with --text-field",
                     c->spec, c->no_text, c->text_field ? c->text_field : "text", c->first_fields);
        else
            snprintf(c->failed_msg, sizeof c->failed_msg, "%s: no documents (%zu malformed records skipped)", c->spec,
                     c->skipped);
        c->failed = MP_EINPUT;
        return mp_fail(err, MP_EINPUT, "%s", c->failed_msg);
    }
    if (rc == 0) return c->index < LABEL_CHECK_DOCS ? check_labels_seen(c, err) : 0;
    for (int i = 0; i < c->opts.n_label_fields; i++)
        if (c->lab[i]) c->label_seen[i] = 1;
    doc->index = c->index++;
    if (c->index == LABEL_CHECK_DOCS) MP_TRY(check_labels_seen(c, err));
    doc->source = c->path;
    int n = c->opts.n_label_fields;
    for (int i = 0; i < n; i++) {
        doc->label_names[i] = c->label_fields[i];
        doc->label_values[i] = c->lab[i];
    }
    if (c->is_dir && c->dir_label) {
        doc->label_names[n] = "label";
        doc->label_values[n] = c->file_label;
        n++;
    }
    doc->n_labels = n;
    for (int i = n; i < MP_CORPUS_MAX_LABELS; i++) {
        doc->label_names[i] = NULL;
        doc->label_values[i] = NULL;
    }
    return 1;
}

double mp_corpus_fraction(const mp_corpus *c) {
    if (!c || !c->bytes_total) return -1;
    uint64_t done = c->bytes_closed;
    if (c->open && c->src.fp) {
        off_t at = ftello(c->src.fp);
        if (at > 0) done += (uint64_t)at < c->cur_size ? (uint64_t)at : c->cur_size;
    }
    double f = (double)done / (double)c->bytes_total;
    return f > 1 ? 1 : f;
}

size_t mp_corpus_skipped(const mp_corpus *c) {
    return c ? c->skipped : 0;
}

void mp_corpus_close(mp_corpus *c) {
    if (!c) return;
    close_file(c);
    for (size_t i = 0; i < c->n_files; i++) free(c->files[i]);
    free(c->files);
    free(c->spec);
    free(c->root_name);
    free(c->text_field);
    for (int i = 0; i < MP_CORPUS_MAX_LABELS; i++) {
        free(c->label_fields[i]);
        cbuf_free(&c->labbuf[i]);
    }
    free(c->file_label);
    free(c->foff);
    free(c->flen);
    cbuf_free(&c->fbuf);
    cbuf_free(&c->line);
    cbuf_free(&c->whole_buf);
    free(c);
}

/* sanrep.c - sanitizer reports as data (see sanrep.h).
 *
 * The text is read one line at a time into a bounded, NUL-terminated copy (a longer line is cut;
 * carriage returns and terminal colour sequences are dropped, NUL bytes become spaces), so every
 * parsing step below works on a C string and nothing ever reads past len.
 *
 * A report starts at a header line (WARNING/ERROR/FATAL: <Tool>Sanitizer: ..., or UBSan's
 * "<loc>: runtime error: ..."). Its first stack is the first run of frame lines "#0", "#1", ...
 * after the header; other lines between frames (output of other processes) are skipped, a blank
 * line or a "#0" ends the stack. The report ends at its "SUMMARY:" line, or, when there is none,
 * after its first stack; the next header always ends it. */
#include "sanrep.h"

#include <stdio.h>
#include <string.h>

#define LINE_MAX_COPY 1024

/* ---- small string helpers -------------------------------------------------------------------- */

/* Copies n bytes of src into dst[cap] as a C string, cutting what does not fit. */
static void copy_n(char *dst, size_t cap, const char *src, size_t n)
{
    if (cap == 0) return;
    if (n >= cap) n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* strlen() that stops at max (strnlen is POSIX, not C11). */
static size_t bounded_len(const char *s, size_t max)
{
    const char *z = memchr(s, '\0', max);
    return z != NULL ? (size_t)(z - s) : max;
}

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* Length of s without trailing blanks. */
static size_t trimmed_len(const char *s, size_t n)
{
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    return n;
}

/* Skips leading blanks, the quoting marks of a display that shows the output indented ("  | "),
 * and a "==123==" pid prefix. */
static const char *skip_prefix(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '|' || *p == '>')
        p++;
    if (p[0] == '=' && p[1] == '=' && is_digit(p[2])) {
        const char *q = p + 2;
        while (is_digit(*q))
            q++;
        if (q[0] == '=' && q[1] == '=') p = skip_ws(q + 2);
    }
    return p;
}

/* The last path component of s[0, n). */
static const char *base_name(const char *s, size_t n, size_t *out_n)
{
    size_t i = n;
    while (i > 0 && s[i - 1] != '/')
        i--;
    *out_n = n - i;
    return s + i;
}

/* ---- lines ----------------------------------------------------------------------------------- */

struct cursor {
    const char *text;
    size_t len, off;
};

/* Reads the line at c->off into buf (see the top of the file); returns 0 at the end of the text.
 * *start and *end (past the newline) give the line's place in the text. */
static int next_line(struct cursor *c, char *buf, size_t cap, size_t *start, size_t *end)
{
    if (c->off >= c->len) return 0;
    size_t i = c->off, n = 0;
    *start = i;
    while (i < c->len && c->text[i] != '\n') {
        char ch = c->text[i++];
        if (ch == '\x1b') { /* CSI sequence: ESC [ params final-byte */
            if (i < c->len && c->text[i] == '[') {
                i++;
                while (i < c->len && c->text[i] != '\n' &&
                       !(c->text[i] >= '@' && c->text[i] <= '~'))
                    i++;
                if (i < c->len && c->text[i] != '\n') i++;
            }
            continue;
        }
        if (ch == '\r') continue;
        if (ch == '\0') ch = ' ';
        if (n + 1 < cap) buf[n++] = ch;
    }
    buf[n] = '\0';
    if (i < c->len) i++; /* the newline */
    c->off = i;
    *end = i;
    return 1;
}

/* ---- headers --------------------------------------------------------------------------------- */

/* Cuts the addresses, pids and registers off a header's text: "heap-buffer-overflow on address
 * 0x... at pc ..." -> "heap-buffer-overflow", "data race (pid=12)" -> "data race",
 * "SEGV on unknown address 0x10 (pc ...)" -> "SEGV on unknown address",
 * "attempting double-free on 0x... in thread T0:" -> "attempting double-free". */
static void clean_title(char *dst, size_t cap, const char *s)
{
    size_t n = strlen(s);
    const char *cut;
    if ((cut = strstr(s, " (pid=")) != NULL && (size_t)(cut - s) < n) n = (size_t)(cut - s);
    if ((cut = strstr(s, " on address 0x")) != NULL && (size_t)(cut - s) < n) n = (size_t)(cut - s);
    if ((cut = strstr(s, " (pc 0x")) != NULL && (size_t)(cut - s) < n) n = (size_t)(cut - s);
    /* the first word that is an address */
    for (size_t i = 0; i + 2 < n; i++) {
        if (s[i] != ' ') continue;
        const char *w = s + i + 1;
        if (*w == '[') w++;
        if (w[0] == '0' && w[1] == 'x' && is_hex(w[2])) {
            n = i;
            break;
        }
    }
    n = trimmed_len(s, n);
    /* a dangling preposition or colon left before the cut address */
    for (;;) {
        if (n > 0 && s[n - 1] == ':') {
            n = trimmed_len(s, n - 1);
            continue;
        }
        static const char *const tails[] = {" on", " at", " of", " in"};
        int cut_tail = 0;
        for (size_t k = 0; k < sizeof(tails) / sizeof(tails[0]); k++) {
            size_t tl = strlen(tails[k]);
            if (n > tl && memcmp(s + n - tl, tails[k], tl) == 0) {
                n = trimmed_len(s, n - tl);
                cut_tail = 1;
                break;
            }
        }
        if (!cut_tail) break;
    }
    copy_n(dst, cap, s, n);
}

/* "path/x.c:12:5" (or "x.c:12", "x.c") -> file basename and line. Returns 0 if s is no location. */
static int parse_loc(const char *s, size_t n, struct st_sanframe *f)
{
    if (n == 0) return 0;
    if ((n == 6 && memcmp(s, "<null>", 6) == 0) || (n == 2 && memcmp(s, "??", 2) == 0)) return 1;
    /* up to two trailing ":digits" groups: line, or line:column */
    size_t end = n, nums[2] = {0, 0}, numn = 0, numstart[2] = {0, 0};
    while (numn < 2) {
        size_t j = end;
        while (j > 0 && is_digit(s[j - 1]))
            j--;
        if (j == end || j == 0 || s[j - 1] != ':') break;
        numstart[numn] = j;
        nums[numn++] = end;
        end = j - 1;
    }
    if (end == 0) return 0;
    unsigned line = 0;
    if (numn > 0 && nums[numn - 1] - numstart[numn - 1] <= 9) /* longer: not a line number */
        for (size_t k = numstart[numn - 1]; k < nums[numn - 1]; k++)
            line = line * 10 + (unsigned)(s[k] - '0');
    size_t bn;
    const char *b = base_name(s, end, &bn);
    if (bn == 2 && memcmp(b, "??", 2) == 0) return 1;
    /* Frames inside the sanitizer runtime (gcc prints its sources' paths): the module says it. */
    int internal = 0;
    for (size_t k = 0; k + 13 <= end && !internal; k++)
        if (memcmp(s + k, "libsanitizer/", 13) == 0 || memcmp(s + k, "compiler-rt/", 12) == 0)
            internal = 1;
    if (internal) return 1;
    copy_n(f->file, sizeof(f->file), b, bn);
    f->line = line;
    return 1;
}

/* Does the word s[0, n) look like a source location rather than part of a function name? */
static int looks_like_loc(const char *s, size_t n)
{
    if ((n == 6 && memcmp(s, "<null>", 6) == 0) || (n == 2 && memcmp(s, "??", 2) == 0)) return 1;
    if (memchr(s, '/', n) != NULL) return 1;
    for (size_t i = 0; i + 1 < n; i++)
        if (s[i] == ':' && is_digit(s[i + 1]) && i > 0 && s[i - 1] != ':') return 1;
    return 0;
}

enum { HDR_NONE, HDR_REPORT, HDR_UBSAN };

/* Is line a report header? Fills tool, title and, for UBSan, frames[0] from its location. */
static int header(const char *line, struct st_sanrep *r)
{
    static const char *const marks[] = {"WARNING: ", "ERROR: ", "FATAL: "};
    for (size_t m = 0; m < sizeof(marks) / sizeof(marks[0]); m++) {
        size_t ml = strlen(marks[m]);
        for (const char *p = strstr(line, marks[m]); p != NULL; p = strstr(p + 1, marks[m])) {
            const char *t = p + ml, *q = t;
            while (is_alpha(*q))
                q++;
            size_t tl = (size_t)(q - t);
            if (tl < 10 || memcmp(q - 9, "Sanitizer", 9) != 0 || q[0] != ':' || q[1] != ' ')
                continue;
            /* ASan and LSan warnings are not reports; WARNING is TSan's and MSan's header */
            if (m == 0 && !(tl == 15 && (memcmp(t, "ThreadSanitizer", 15) == 0 ||
                                         memcmp(t, "MemorySanitizer", 15) == 0)))
                continue;
            if (m == 2 && !(tl == 15 && memcmp(t, "ThreadSanitizer", 15) == 0)) continue;
            copy_n(r->tool, sizeof(r->tool), t, tl);
            clean_title(r->title, sizeof(r->title), skip_ws(q + 2));
            return HDR_REPORT;
        }
    }
    const char *p = skip_prefix(line);
    const char *re = strstr(p, ": runtime error: ");
    if (re != NULL && re > p && memchr(p, ' ', (size_t)(re - p)) == NULL) {
        copy_n(r->tool, sizeof(r->tool), "UndefinedBehaviorSanitizer", 26);
        const char *msg = re + 17;
        copy_n(r->title, sizeof(r->title), msg, trimmed_len(msg, strlen(msg)));
        memset(&r->frames[0], 0, sizeof(r->frames[0]));
        parse_loc(p, (size_t)(re - p), &r->frames[0]);
        return HDR_UBSAN;
    }
    return HDR_NONE;
}

/* ---- frames ---------------------------------------------------------------------------------- */

/* Is line a stack frame "#N ..."? Returns N and fills *f, or -1. */
static long frame(const char *line, struct st_sanframe *f)
{
    const char *p = skip_prefix(line);
    if (*p != '#' || !is_digit(p[1])) return -1;
    long idx = 0;
    p++;
    while (is_digit(*p)) {
        if (idx < 100000) idx = idx * 10 + (*p - '0');
        p++;
    }
    if (*p != ' ' && *p != '\t') return -1;
    memset(f, 0, sizeof(*f));
    p = skip_ws(p);
    int asan_style = 0;
    if (p[0] == '0' && p[1] == 'x') { /* ASan/UBSan: "0xPC in func loc" or "0xPC (module+off)" */
        p += 2;
        while (is_hex(*p))
            p++;
        p = skip_ws(p);
        if (p[0] == 'i' && p[1] == 'n' && p[2] == ' ') p = skip_ws(p + 3);
        asan_style = 1;
    }
    size_t n = trimmed_len(p, strlen(p));
    /* trailing groups: "(BuildId: ...)" then "(module+0x...)" */
    for (int round = 0; round < 2 && n > 0 && p[n - 1] == ')'; round++) {
        size_t depth = 0, i = n;
        while (i > 0) {
            char ch = p[--i];
            if (ch == ')') depth++;
            if (ch == '(' && --depth == 0) break;
        }
        if (depth != 0 || p[i] != '(' || (i > 0 && p[i - 1] != ' ' && p[i - 1] != '\t')) break;
        const char *g = p + i + 1;
        size_t gn = n - i - 2;
        if (gn >= 8 && memcmp(g, "BuildId:", 8) == 0) {
            n = trimmed_len(p, i);
            continue;
        }
        size_t mn = gn;
        for (size_t k = gn; k >= 3; k--) {
            if (g[k - 3] == '+' && g[k - 2] == '0' && g[k - 1] == 'x') {
                mn = k - 3;
                break;
            }
        }
        size_t bn;
        const char *b = base_name(g, mn, &bn);
        copy_n(f->module, sizeof(f->module), b, bn);
        n = trimmed_len(p, i);
        break;
    }
    /* what is left: "func loc", "func" or "" */
    size_t sp = n;
    while (sp > 0 && p[sp - 1] != ' ' && p[sp - 1] != '\t')
        sp--;
    size_t fn = n;
    if (sp > 0 && looks_like_loc(p + sp, n - sp)) {
        parse_loc(p + sp, n - sp, f);
        fn = trimmed_len(p, sp);
    } else if (sp == 0 && !asan_style && n > 0 && looks_like_loc(p, n) &&
               memchr(p, '/', n) != NULL) {
        parse_loc(p, n, f); /* a bare location */
        fn = 0;
    }
    if (asan_style) { /* a partly symbolized "func+0x1f" */
        for (size_t k = 0; k + 2 < fn; k++) {
            if (p[k] == '+' && p[k + 1] == '0' && p[k + 2] == 'x') {
                fn = k;
                break;
            }
        }
    }
    if (!(fn == 6 && memcmp(p, "<null>", 6) == 0)) copy_n(f->func, sizeof(f->func), p, fn);
    return idx;
}

static int is_summary(const char *line, const char **s)
{
    const char *p = skip_prefix(line);
    if (strncmp(p, "SUMMARY: ", 9) != 0) return 0;
    *s = p;
    return 1;
}

static int is_blank(const char *line)
{
    return *skip_prefix(line) == '\0';
}

/* ---- the parser ------------------------------------------------------------------------------ */

int st_sanrep_next(const char *text, size_t len, size_t *pos, struct st_sanrep *out)
{
    struct st_sanrep scratch;
    if (out == NULL) out = &scratch;
    memset(out, 0, sizeof(*out));
    size_t from = pos != NULL ? *pos : 0;
    if (text == NULL || from >= len) {
        if (pos != NULL) *pos = len;
        return 0;
    }
    struct cursor c = {text, len, from};
    char line[LINE_MAX_COPY];
    size_t start, end;
    int kind = HDR_NONE;
    while (kind == HDR_NONE && next_line(&c, line, sizeof(line), &start, &end))
        kind = header(line, out);
    if (kind == HDR_NONE) {
        if (pos != NULL) *pos = len;
        return 0;
    }
    size_t report_end = end;
    /* the first stack, then the SUMMARY line, both before the next header */
    struct st_sanrep probe;
    struct st_sanframe f;
    long next_idx = 0; /* the frame number expected next; 0 = stack not started */
    int stack_done = 0, have_ubsan_loc = (kind == HDR_UBSAN && out->frames[0].file[0] != '\0');
    int lines_after = 0;
    while (next_line(&c, line, sizeof(line), &start, &end)) {
        lines_after++;
        if (header(line, &probe) != HDR_NONE) break;
        const char *s;
        if (is_summary(line, &s)) {
            copy_n(out->summary, sizeof(out->summary), s, trimmed_len(s, strlen(s)));
            report_end = end;
            break;
        }
        if (stack_done) continue;
        long idx = frame(line, &f);
        if (next_idx == 0) {
            if (idx == 0) {
                /* UBSan's stack, when printed, follows its line at once */
                if (kind == HDR_UBSAN && lines_after > 1) {
                    stack_done = 1;
                    continue;
                }
                out->nframes = 0;
                out->frames[out->nframes++] = f;
                next_idx = 1;
                report_end = end;
            }
            continue;
        }
        if (idx == next_idx) {
            if (out->nframes < ST_SANREP_FRAMES) out->frames[out->nframes++] = f;
            next_idx++;
            report_end = end;
        } else if (idx == 0 || is_blank(line)) {
            stack_done = 1;
        }
    }
    if (out->nframes == 0 && have_ubsan_loc) out->nframes = 1;
    if (kind == HDR_UBSAN && out->nframes == 0) memset(&out->frames[0], 0, sizeof(out->frames[0]));
    if (pos != NULL) *pos = report_end;
    return 1;
}

/* ---- one line -------------------------------------------------------------------------------- */

struct out {
    char *buf;
    size_t cap, n;
    int full;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->full) return;
    if (o->n + n + 1 > o->cap) {
        /* cut, ending with "..." when there is room for it */
        size_t room = o->cap - 1 - o->n;
        memcpy(o->buf + o->n, s, room);
        o->n += room;
        if (o->cap > 4) memcpy(o->buf + o->cap - 4, "...", 3);
        o->buf[o->cap - 1] = '\0';
        o->full = 1;
        return;
    }
    memcpy(o->buf + o->n, s, n);
    o->n += n;
    o->buf[o->n] = '\0';
}

void st_sanrep_format(const struct st_sanrep *r, char *buf, size_t cap)
{
    if (buf == NULL || cap == 0) return;
    struct out o = {buf, cap, 0, 0};
    buf[0] = '\0';
    if (r == NULL) return;
    size_t tn = bounded_len(r->tool, sizeof(r->tool)),
           ttn = bounded_len(r->title, sizeof(r->title));
    put(&o, tn ? r->tool : "sanitizer", tn ? tn : 9);
    put(&o, ": ", 2);
    put(&o, ttn ? r->title : "report", ttn ? ttn : 6);
    int nf = r->nframes < 0 ? 0 : r->nframes > ST_SANREP_FRAMES ? ST_SANREP_FRAMES : r->nframes;
    for (int i = 0; i < nf; i++) {
        const struct st_sanframe *f = &r->frames[i];
        size_t fn = bounded_len(f->func, sizeof(f->func)),
               fl = bounded_len(f->file, sizeof(f->file));
        size_t mn = bounded_len(f->module, sizeof(f->module));
        char num[16];
        put(&o, i == 0 ? " at " : " <- ", 4);
        if (fn == 0 && fl == 0 && mn == 0) {
            put(&o, "?", 1);
            continue;
        }
        put(&o, f->func, fn);
        if (fn != 0 && (fl != 0 || mn != 0)) put(&o, " (", 2);
        if (fl != 0) {
            put(&o, f->file, fl);
            if (f->line != 0) {
                int k = snprintf(num, sizeof(num), ":%u", f->line);
                put(&o, num, (size_t)k);
            }
        } else if (mn != 0) {
            put(&o, f->module, mn);
        }
        if (fn != 0 && (fl != 0 || mn != 0)) put(&o, ")", 1);
    }
}

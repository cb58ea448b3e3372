/* plugbuild.c - building the plain and the TSan variant of a plugin; see plugbuild.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "elfinfo.h"
#include "plugbuild.h"
#include "spawn.h"

#define BUILD_TIMEOUT_S 300 /* one compiler run */
#define MAX_WORDS       256 /* in --cflags or $CC */
#define HEAD_LINES      8   /* compiler output shown on failure: the first lines ... */
#define TAIL_LINES      32  /* ... and the last ones */
#define LINE_MAX_SHOWN  200

/* ---- small string helpers -------------------------------------------------------------------- */

struct sbuf {
    char *p;
    size_t cap, len;
};

static void sb_add(struct sbuf *s, const char *fmt, ...)
{
    if (s->cap == 0 || s->len + 1 >= s->cap) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(s->p + s->len, s->cap - s->len, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    s->len += (size_t)n;
    if (s->len >= s->cap) s->len = s->cap - 1;
}

static void sb_init(struct sbuf *s, char *p, size_t cap)
{
    s->p = p;
    s->cap = p != NULL ? cap : 0;
    s->len = 0;
    if (s->cap) p[0] = '\0';
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s != NULL ? s + 1 : p;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* ---- words: --cflags and $CC split like a shell ---------------------------------------------- */

struct words {
    char *buf; /* the words, NUL-separated */
    char *v[MAX_WORDS + 1];
    int n;
};

/* Splits s at blanks outside quotes; '...' is literal, "..." lets a backslash escape only
 * $ ` " \ and newline, a backslash outside quotes escapes any character (backslash-newline
 * disappears). Nothing is expanded. Returns 0, or -1 with the reason in why. */
static int split_words(const char *s, struct words *w, const char *what, struct sbuf *why)
{
    memset(w, 0, sizeof(*w));
    if (s == NULL) s = "";
    w->buf = malloc(2 * strlen(s) + 2);
    if (w->buf == NULL) {
        sb_add(why, "out of memory");
        return -1;
    }
    char *o = w->buf;
    int in_word = 0;
    char quote = 0;
    for (const char *c = s;; c++) {
        if (*c == '\0') {
            if (quote) {
                sb_add(why, "%s: a %c quote is not closed: %s", what, quote, s);
                goto fail;
            }
            break;
        }
        if (quote == '\'') {
            if (*c == '\'')
                quote = 0;
            else
                *o++ = *c;
            continue;
        }
        if (quote == '"') {
            if (*c == '"') {
                quote = 0;
            } else if (*c == '\\' && c[1] != '\0' && strchr("$`\"\\\n", c[1]) != NULL) {
                c++;
                if (*c != '\n') *o++ = *c;
            } else {
                *o++ = *c;
            }
            continue;
        }
        if (*c == '\\' && c[1] == '\n') { /* a line continuation: nothing */
            c++;
            continue;
        }
        if (*c == ' ' || *c == '\t' || *c == '\n') {
            if (in_word) {
                *o++ = '\0';
                in_word = 0;
            }
            continue;
        }
        if (!in_word) {
            if (w->n == MAX_WORDS) {
                sb_add(why, "%s: more than %d words", what, MAX_WORDS);
                goto fail;
            }
            w->v[w->n++] = o;
            in_word = 1;
        }
        if (*c == '\'' || *c == '"') {
            quote = *c;
        } else if (*c == '\\') {
            if (c[1] == '\0') {
                sb_add(why, "%s: ends with a backslash: %s", what, s);
                goto fail;
            }
            *o++ = *++c;
        } else {
            *o++ = *c;
        }
    }
    if (in_word) *o++ = '\0';
    w->v[w->n] = NULL;
    return 0;
fail:
    free(w->buf);
    memset(w, 0, sizeof(*w));
    return -1;
}

static void words_free(struct words *w)
{
    free(w->buf);
    memset(w, 0, sizeof(*w));
}

/* A word as a shell would need it quoted, for the command lines shown to the user. */
static void sb_quoted(struct sbuf *s, const char *word)
{
    int plain = *word != '\0';
    for (const char *c = word; *c && plain; c++)
        plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./=+:,@%^-",
                       *c) != NULL;
    if (plain) {
        sb_add(s, "%s", word);
        return;
    }
    sb_add(s, "'");
    for (const char *c = word; *c; c++) {
        if (*c == '\'')
            sb_add(s, "'\\''");
        else
            sb_add(s, "%c", *c);
    }
    sb_add(s, "'");
}

/* ---- languages and drivers ------------------------------------------------------------------- */

int st_plugbuild_is_cxx(const char *src)
{
    static const char *const cxx[] = {".cc", ".cpp", ".cxx", ".cp", ".CPP", ".C", ".c++"};
    const char *b = base_name(src);
    const char *dot = strrchr(b, '.');
    if (dot == NULL || dot == b) return -1;
    if (strcmp(dot, ".c") == 0) return 0;
    for (size_t i = 0; i < sizeof(cxx) / sizeof(cxx[0]); i++)
        if (strcmp(dot, cxx[i]) == 0) return 1;
    return -1;
}

/* The last occurrence of tok in b that starts at b or after a '-'. */
static const char *find_token(const char *b, const char *tok)
{
    const char *best = NULL;
    for (const char *p = strstr(b, tok); p != NULL; p = strstr(p + 1, tok))
        if (p == b || p[-1] == '-') best = p;
    return best;
}

/* "" or "-" followed by digits and dots: a version suffix. */
static int is_version(const char *s)
{
    if (*s == '\0') return 1;
    if (*s != '-' || s[1] == '\0') return 0;
    for (s++; *s; s++)
        if ((*s < '0' || *s > '9') && *s != '.') return 0;
    return 1;
}

int st_cxx_driver(const char *cc, char *out, size_t cap)
{
    if (cap == 0) return 0;
    const char *b = base_name(cc);
    int dir = (int)(b - cc);
    const char *t;
    int n = -1;
    if (strstr(b, "++") != NULL) {
        n = snprintf(out, cap, "%s", cc);
    } else if ((t = find_token(b, "clang")) != NULL) {
        const char *rest = t + 5;
        if (is_version(rest)) /* clang-14 -> clang++-14 */
            n = snprintf(out, cap, "%.*s++%s", (int)(rest - cc), cc, rest);
        else /* afl-clang-fast -> afl-clang-fast++ */
            n = snprintf(out, cap, "%s++", cc);
    } else if ((t = find_token(b, "gcc")) != NULL && (t[3] == '\0' || t[3] == '-')) {
        n = snprintf(out, cap, "%.*sg++%s", (int)(t - cc), cc, t + 3);
    } else if (strcmp(b, "cc") == 0 || ends_with(b, "-cc")) {
        n = snprintf(out, cap, "%.*s++", (int)strlen(cc) - 1, cc); /* cc -> c++ */
    } else if (strcmp(b, "icx") == 0) {
        n = snprintf(out, cap, "%.*sicpx", dir, cc);
    } else if (strcmp(b, "icc") == 0) {
        n = snprintf(out, cap, "%.*sicpc", dir, cc);
    }
    if (n < 0 || (size_t)n >= cap) {
        snprintf(out, cap, "%s", cc);
        return 0;
    }
    return 1;
}

/* Whether name can be executed: a path as it is, a plain name through $PATH. */
static int can_exec(const char *name)
{
    struct stat st;
    if (strchr(name, '/') != NULL)
        return stat(name, &st) == 0 && S_ISREG(st.st_mode) && access(name, X_OK) == 0;
    const char *path = getenv("PATH");
    if (path == NULL || *path == '\0') path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        size_t len = strcspn(path, ":");
        char full[PATH_MAX];
        int n = len ? snprintf(full, sizeof(full), "%.*s/%s", (int)len, path, name)
                    : snprintf(full, sizeof(full), "./%s", name); /* an empty entry: "." */
        if (n > 0 && (size_t)n < sizeof(full) && stat(full, &st) == 0 && S_ISREG(st.st_mode) &&
            access(full, X_OK) == 0)
            return 1;
        path += len;
        if (*path == ':') path++;
    }
    return 0;
}

struct driver {
    struct words w;
    int prog;              /* index of the compiler in w.v (after ccache and the like) */
    char mapped[PATH_MAX]; /* the C++ driver, when w.v[prog] points here */
    int add_stdcxx;        /* a C driver compiling C++: link libstdc++ explicitly */
};

/* The compiler command of one variant: cmd split into words; for a C++ source and a C compiler
 * (map set), its C++ driver, or the C driver with -lstdc++ and a note when there is none. */
static int driver_get(struct driver *d, const char *cmd, const char *what, int map, const char *src,
                      struct sbuf *notes, struct sbuf *err)
{
    memset(d, 0, sizeof(*d));
    if (split_words(cmd, &d->w, what, err) != 0) return -1;
    if (d->w.n == 0) {
        sb_add(err, "%s is empty", what);
        words_free(&d->w);
        return -1;
    }
    while (d->prog + 1 < d->w.n) {
        const char *b = base_name(d->w.v[d->prog]);
        if (strcmp(b, "ccache") != 0 && strcmp(b, "sccache") != 0 && strcmp(b, "distcc") != 0)
            break;
        d->prog++;
    }
    if (!map) return 0;
    const char *cc = d->w.v[d->prog];
    char note[3 * PATH_MAX];
    struct sbuf n;
    sb_init(&n, note, sizeof(note));
    if (!st_cxx_driver(cc, d->mapped, sizeof(d->mapped)))
        sb_add(&n, "no C++ driver is known for %s: compiling %s with it and -lstdc++\n", cc, src);
    else if (!can_exec(d->mapped))
        sb_add(&n, "%s (the C++ driver of %s) was not found: compiling %s with %s and -lstdc++\n",
               d->mapped, cc, src, cc);
    else
        d->w.v[d->prog] = d->mapped;
    if (note[0] != '\0') {
        d->add_stdcxx = 1;
        if (strstr(notes->p, note) == NULL) sb_add(notes, "%s", note); /* once for both variants */
    }
    return 0;
}

/* ---- running one compiler -------------------------------------------------------------------- */

struct line {
    const char *p;
    size_t len;
};

/* Up to max lines of buf[0..len), from the start (tail = 0) or the end (tail = 1). Returns the
 * number of lines found in all (a last line without newline counts). */
static size_t cut_lines(const char *buf, size_t len, struct line *out, size_t max, int tail,
                        size_t *got)
{
    size_t total = 0, n = 0;
    const char *p = buf, *end = buf + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl != NULL ? nl : end;
        struct line l = {p, (size_t)(e - p)};
        total++;
        if (!tail) {
            if (n < max) out[n++] = l;
        } else if (max > 0) {
            if (n == max) {
                memmove(out, out + 1, (max - 1) * sizeof(*out));
                n--;
            }
            out[n++] = l;
        }
        p = nl != NULL ? nl + 1 : end;
    }
    *got = n;
    return total;
}

static void sb_lines(struct sbuf *s, const struct line *l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (l[i].len > LINE_MAX_SHOWN)
            sb_add(s, "  | %.*s...\n", LINE_MAX_SHOWN, l[i].p);
        else
            sb_add(s, "  | %.*s\n", (int)l[i].len, l[i].p);
    }
}

static ssize_t pread_all(int fd, char *buf, size_t len, off_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, buf + done, len - done, off + (off_t)done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        done += (size_t)n;
    }
    return (ssize_t)done;
}

/* The compiler's output, log bytes [start, end): its first and last lines. */
static void sb_output(struct sbuf *s, int fd, off_t start, off_t end)
{
    enum { HEAD = 32 * 1024, TAIL = 64 * 1024 };
    if (end <= start) {
        sb_add(s, "  (no output)\n");
        return;
    }
    size_t len = (size_t)(end - start);
    char *buf = malloc(HEAD + TAIL);
    if (buf == NULL) return;
    struct line head[HEAD_LINES + TAIL_LINES], tail[TAIL_LINES];
    size_t nh, nt;
    if (len <= HEAD + TAIL) {
        size_t got = (size_t)pread_all(fd, buf, len, start);
        size_t total = cut_lines(buf, got, head, HEAD_LINES + TAIL_LINES, 0, &nh);
        if (total <= HEAD_LINES + TAIL_LINES) {
            sb_lines(s, head, nh);
        } else {
            (void)cut_lines(buf, got, tail, TAIL_LINES, 1, &nt);
            sb_lines(s, head, HEAD_LINES);
            sb_add(s, "  | ... (%zu lines)\n", total - HEAD_LINES - TAIL_LINES);
            sb_lines(s, tail, nt);
        }
    } else {
        size_t got = (size_t)pread_all(fd, buf, HEAD, start);
        (void)cut_lines(buf, got, head, HEAD_LINES, 0, &nh);
        sb_lines(s, head, nh);
        sb_add(s, "  | ... (%zu bytes)\n", len - HEAD - TAIL);
        got = (size_t)pread_all(fd, buf, TAIL, end - TAIL);
        char *nl = memchr(buf, '\n', got); /* the first line is cut: start after it */
        size_t skip = nl != NULL ? (size_t)(nl + 1 - buf) : 0;
        (void)cut_lines(buf + skip, got - skip, tail, TAIL_LINES, 1, &nt);
        sb_lines(s, tail, nt);
    }
    free(buf);
}

static void write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        p += n;
        len -= (size_t)n;
    }
}

struct job {
    const struct st_plugbuild *b;
    const struct words *cflags;
    int tsan;
    const char *out;
    const char *log_path;
    int log_fd;
};

static int compile(const struct job *j, struct driver *d, struct sbuf *err)
{
    char *argv[2 * MAX_WORDS + 24];
    char inc[PATH_MAX + 3];
    int n = 0;
    for (int i = 0; i < d->w.n; i++)
        argv[n++] = d->w.v[i];
    argv[n++] = "-shared";
    argv[n++] = "-fPIC";
    argv[n++] = "-g";
    argv[n++] = j->tsan ? "-O1" : "-O2";
    if (j->tsan) argv[n++] = "-fsanitize=thread";
    snprintf(inc, sizeof(inc), "-I%s", j->b->include_dir);
    argv[n++] = inc;
    for (int i = 0; i < j->cflags->n; i++)
        argv[n++] = j->cflags->v[i];
    argv[n++] = (char *)j->b->src;
    argv[n++] = "-o";
    argv[n++] = (char *)j->out;
    argv[n++] = "-lpthread";
    if (d->add_stdcxx) argv[n++] = "-lstdc++";
    argv[n] = NULL;

    char cmd[2048];
    struct sbuf c;
    sb_init(&c, cmd, sizeof(cmd));
    for (int i = 0; i < n; i++) {
        if (i) sb_add(&c, " ");
        sb_quoted(&c, argv[i]);
    }
    if (c.len + 4 >= sizeof(cmd)) memcpy(cmd + sizeof(cmd) - 4, "...", 4);

    const char *variant = j->tsan ? "the ThreadSanitizer variant" : "the plain variant";
    const char *compiler = d->w.v[d->prog];
    char hdr[2200];
    struct sbuf h;
    sb_init(&h, hdr, sizeof(hdr));
    sb_add(&h, "%s$ %s\n", lseek(j->log_fd, 0, SEEK_END) > 0 ? "\n" : "", cmd);
    write_all(j->log_fd, hdr, h.len);
    off_t start = lseek(j->log_fd, 0, SEEK_END);

    (void)unlink(j->out); /* a failed build must not leave an older .so behind */
    struct st_child_opts o = {
        .out_fd = j->log_fd, .in_null = 1, .new_pgrp = 1, .die_with_parent = 1};
    pid_t pid = st_spawn_exec(&o, argv, NULL);
    if (pid < 0) {
        sb_add(err, "building %s of %s: cannot start %s: %s\n", variant, j->b->src, compiler,
               strerror((int)-pid));
        return -1;
    }
    int st = 0;
    int r = st_wait_until(pid, &st, st_now_ns() + (int64_t)BUILD_TIMEOUT_S * 1000000000, NULL);
    if (r == 0) {
        /* not reaped yet, so the group still exists: the driver's cc1, as and ld are in it */
        kill(-pid, SIGKILL);
        st_kill_reap(pid);
    }
    off_t end = lseek(j->log_fd, 0, SEEK_END);
    struct stat sst;
    if (r == 1 && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        if (stat(j->out, &sst) == 0 && S_ISREG(sst.st_mode)) return 0;
        sb_add(err, "building %s of %s: %s succeeded but wrote no %s\n", variant, j->b->src,
               compiler, j->out);
    } else if (r == 1 && WIFEXITED(st) && WEXITSTATUS(st) == 127) {
        sb_add(err, "building %s of %s: %s could not be run (exit status 127)\n", variant,
               j->b->src, compiler);
    } else if (r == 1 && WIFEXITED(st)) {
        sb_add(err, "building %s of %s with %s failed (exit status %d)\n", variant, j->b->src,
               compiler, WEXITSTATUS(st));
    } else if (r == 1 && WIFSIGNALED(st)) {
        sb_add(err, "building %s of %s with %s failed: killed by signal %d (%s)\n", variant,
               j->b->src, compiler, WTERMSIG(st), strsignal(WTERMSIG(st)));
    } else if (r == 0) {
        sb_add(err, "building %s of %s with %s: no result after %d s, killed\n", variant, j->b->src,
               compiler, BUILD_TIMEOUT_S);
    } else {
        sb_add(err, "building %s of %s with %s: cannot wait for it: %s\n", variant, j->b->src,
               compiler, strerror(-r));
    }
    sb_add(err, "  $ %s\n", cmd);
    sb_output(err, j->log_fd, start, end);
    sb_add(err, "the whole output is in %s\n", j->log_path);
    return -1;
}

/* ---- the two variants ------------------------------------------------------------------------ */

static void trim_newline(struct sbuf *s)
{
    while (s->len > 0 && s->p[s->len - 1] == '\n')
        s->p[--s->len] = '\0';
}

int st_plugbuild(const struct st_plugbuild *b, char *plain, char *tsan, size_t pathcap, char *err,
                 size_t errcap)
{
    struct sbuf e, notes;
    char notebuf[1024];
    sb_init(&e, err, errcap);
    sb_init(&notes, notebuf, sizeof(notebuf));
    if (plain != NULL && pathcap) plain[0] = '\0';
    if (tsan != NULL && pathcap) tsan[0] = '\0';
    int want_tsan = b->tsan_cc != NULL && b->tsan_cc[0] != '\0';
    if (b->src == NULL || b->outdir == NULL || b->include_dir == NULL || plain == NULL ||
        (want_tsan && tsan == NULL)) {
        sb_add(&e, "st_plugbuild: src, outdir, include_dir and the output buffers are needed");
        return -1;
    }
    int cxx = st_plugbuild_is_cxx(b->src);
    if (cxx < 0) {
        sb_add(&e, "%s: not a C or C++ source by its name: call it .c, or .cc .cpp .cxx .C .c++",
               b->src);
        return -1;
    }
    if (access(b->src, R_OK) != 0) {
        sb_add(&e, "cannot read %s: %s", b->src, strerror(errno));
        return -1;
    }

    /* <outdir>/<stem>.so and <outdir>/<stem>-tsan.so */
    const char *base = base_name(b->src);
    int stem = (int)(strrchr(base, '.') - base);
    if (stem > 200) stem = 200;
    int n1 = snprintf(plain, pathcap, "%s/%.*s.so", b->outdir, stem, base);
    int n2 = want_tsan ? snprintf(tsan, pathcap, "%s/%.*s-tsan.so", b->outdir, stem, base) : 0;
    char log_path[PATH_MAX];
    int n3 = snprintf(log_path, sizeof(log_path), "%s/build.log", b->outdir);
    if (n1 < 0 || (size_t)n1 >= pathcap || n2 < 0 || (size_t)n2 >= pathcap || n3 < 0 ||
        (size_t)n3 >= sizeof(log_path)) {
        sb_add(&e, "st_plugbuild: the output directory's name is too long");
        plain[0] = '\0';
        if (tsan) tsan[0] = '\0';
        return -1;
    }

    struct words cflags;
    if (split_words(b->cflags, &cflags, "--cflags", &e) != 0) {
        plain[0] = '\0';
        if (tsan) tsan[0] = '\0';
        return -1;
    }
    int rc = -1;
    int fd = open(log_path, O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        sb_add(&e, "cannot create %s: %s", log_path, strerror(errno));
        words_free(&cflags);
        plain[0] = '\0';
        if (tsan) tsan[0] = '\0';
        return -1;
    }
    struct job j = {.b = b, .cflags = &cflags, .log_path = log_path, .log_fd = fd};
    struct driver *d = malloc(sizeof(*d));
    if (d == NULL) {
        sb_add(&e, "out of memory");
        goto out;
    }

    /* plain: $CXX as it is, else the C++ driver of $CC, or of cc - and when that is c++ and
     * there is none (g++ is not installed), the C++ driver of the TSan compiler */
    const char *cmd = b->cc != NULL && b->cc[0] ? b->cc : "cc", *what = "the C compiler";
    int map = cxx;
    if (cxx && b->cxx != NULL && b->cxx[0]) {
        cmd = b->cxx;
        what = "the C++ compiler";
        map = 0;
    } else if (cxx && cmd != b->cc && want_tsan && !can_exec("c++")) {
        sb_add(&notes,
               "c++ was not found (is g++ installed?): building the plain variant of %s with the "
               "C++ driver of %s; $CXX chooses another\n",
               b->src, b->tsan_cc);
        cmd = b->tsan_cc;
        what = "the TSan compiler";
    }
    if (driver_get(d, cmd, what, map, b->src, &notes, &e) != 0) goto out;
    j.out = plain;
    j.tsan = 0;
    int bad = compile(&j, d, &e);
    words_free(&d->w);
    if (bad) goto out;

    if (want_tsan) {
        if (driver_get(d, b->tsan_cc, "the TSan compiler", cxx, b->src, &notes, &e) != 0) goto out;
        j.out = tsan;
        j.tsan = 1;
        bad = compile(&j, d, &e);
        words_free(&d->w);
        if (bad) goto out;
        char why[256];
        int k = st_elf_tsan_kind(tsan, why, sizeof(why));
        if (k == ST_TSAN_NONE)
            sb_add(&notes,
                   "%s has no ThreadSanitizer instrumentation (do the --cflags turn it off?): "
                   "races inside the plugin cannot be seen\n",
                   tsan);
        else if (k < 0)
            sb_add(&notes, "%s: %s\n", tsan, why);
    }
    rc = 0;
out:
    free(d);
    words_free(&cflags);
    close(fd);
    if (rc == 0) {
        trim_newline(&notes);
        sb_add(&e, "%s", notebuf);
    } else {
        trim_newline(&e);
        plain[0] = '\0';
        if (tsan) tsan[0] = '\0';
    }
    return rc;
}

/* sanrep_test.c - the sanitizer report parser (stress/sanrep.c) on real reports.
 *
 *     sanrep_test <dir of the samples: stress/tests/unit/data/sanrep>
 *
 * The samples are what clang-14 and gcc-12 printed for small racy, overflowing, leaking and
 * undefined programs (data/sanrep/programs/, remade by data/sanrep/regen.sh), plus reports of the
 * ipcproof harness itself in thread mode (broken_ring_relaxed.so; good_asm_spinlock.so without its
 * annotations), raw and as ipcproof displays them. Checked: the
 * fields of every sample; the prefixes and suffixes of every sample (text cut at the end or the
 * start, as the supervisor's bounded capture cuts it; at every offset, see try_cut()) parsed from
 * an exactly sized heap copy,
 * so that a read past len is caught when this runs under AddressSanitizer; several reports in one
 * text, interleaved with other output; frame forms the samples lack; random bytes; the one-line
 * format and its truncation. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "splitmix.h"
#include "sanrep.h"

static const char *g_dir;

/* ---- helpers --------------------------------------------------------------------------------- */

static char *load(const char *name, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", g_dir, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL) fail_msg("cannot open %s", path);
    char *buf = malloc(1 << 17);
    assert_non_null(buf);
    *len = fread(buf, 1, 1 << 17, f);
    fclose(f);
    assert_true(*len > 0 && *len < (1 << 17));
    return buf;
}

/* An exactly sized heap copy: no terminator, so any read past len is a heap overflow (ASan). */
static char *exact_copy(const char *s, size_t n)
{
    char *c = malloc(n ? n : 1);
    assert_non_null(c);
    if (n) memcpy(c, s, n);
    return c;
}

static size_t field_len(const char *s, size_t cap)
{
    const char *z = memchr(s, '\0', cap);
    assert_non_null(z); /* every field is terminated inside its array */
    return (size_t)(z - s);
}

static void check_well_formed(const struct st_sanrep *r)
{
    field_len(r->tool, sizeof(r->tool));
    field_len(r->title, sizeof(r->title));
    field_len(r->summary, sizeof(r->summary));
    assert_true(r->tool[0] != '\0');
    assert_in_range(r->nframes, 0, ST_SANREP_FRAMES);
    for (int i = 0; i < ST_SANREP_FRAMES; i++) {
        field_len(r->frames[i].func, sizeof(r->frames[i].func));
        field_len(r->frames[i].file, sizeof(r->frames[i].file));
        field_len(r->frames[i].module, sizeof(r->frames[i].module));
    }
}

static int same_report(const struct st_sanrep *a, const struct st_sanrep *b)
{
    if (strcmp(a->tool, b->tool) || strcmp(a->title, b->title) || strcmp(a->summary, b->summary))
        return 0;
    if (a->nframes != b->nframes) return 0;
    for (int i = 0; i < a->nframes; i++) {
        const struct st_sanframe *x = &a->frames[i], *y = &b->frames[i];
        if (strcmp(x->func, y->func) || strcmp(x->file, y->file) || x->line != y->line ||
            strcmp(x->module, y->module))
            return 0;
    }
    return 1;
}

#define MAX_REPS 16

/* The offsets the cut tests try: all of them in a small sample; in a large one (the harness
 * sample has 15 KB: all of them would be 15 K parses of 15 KB) those near a line boundary, where
 * the interesting cuts are, and every 17th byte. */
static int try_cut(const char *text, size_t len, size_t k)
{
    if (len <= 4096 || k % 17 == 0 || k >= len) return 1;
    for (size_t d = 0; d <= 3; d++)
        if ((k >= d && text[k - d] == '\n') || (k + d < len && text[k + d] == '\n')) return 1;
    return 0;
}

/* Every report of text[0, len): their count; ends[i] = *pos after report i. Checks that the
 * parser always moves forward, stays within len and fills well-formed reports. */
static int parse_all(const char *text, size_t len, struct st_sanrep *reps, size_t *ends)
{
    size_t pos = 0;
    int n = 0;
    struct st_sanrep r;
    for (;;) {
        size_t before = pos;
        int got = st_sanrep_next(text, len, &pos, &r);
        assert_true(got == 0 || got == 1);
        assert_true(pos <= len);
        if (!got) {
            assert_int_equal(pos, len);
            break;
        }
        assert_true(pos > before);
        check_well_formed(&r);
        assert_true(n < 4 * MAX_REPS);
        if (n < MAX_REPS) {
            if (reps) reps[n] = r;
            if (ends) ends[n] = pos;
        }
        n++;
    }
    return n;
}

/* ---- the samples ----------------------------------------------------------------------------- */

struct xframe {
    const char *func, *file;
    unsigned line;
    const char *module;
};

struct expect {
    const char *name;
    int nreports;
    const char *tool, *title;
    int nframes;
    struct xframe f[2];
    const char *summary; /* a prefix of the SUMMARY line; "" = none */
    const char *line;    /* st_sanrep_format() of the first report, or NULL */
};

#define TSAN   "ThreadSanitizer"
#define ASAN   "AddressSanitizer"
#define UBSAN  "UndefinedBehaviorSanitizer"
#define OVF    "signed integer overflow: 2147483647 + 1 cannot be represented in type 'int'"
#define UNLOCK "unlock of an unlocked mutex (or by a wrong thread)"
#define LOI    "lock-order-inversion (potential deadlock)"

static const struct expect samples[] = {
    {"tsan-clang-race.txt",
     1,
     TSAN,
     "data race",
     2,
     {{"bump", "race.c", 9, "race-clang"}, {"worker", "race.c", 16, "race-clang"}},
     "SUMMARY: ThreadSanitizer: data race /src/demo/race.c:9:12 in bump",
     "ThreadSanitizer: data race at bump (race.c:9) <- worker (race.c:16)"},
    {"tsan-gcc-race.txt",
     1,
     TSAN,
     "data race",
     2,
     {{"bump", "race.c", 9, "race-gcc"}, {"worker", "race.c", 16, "race-gcc"}},
     "SUMMARY: ThreadSanitizer: data race /src/demo/race.c:9 in bump",
     "ThreadSanitizer: data race at bump (race.c:9) <- worker (race.c:16)"},
    {"tsan-gcc-race-color.txt",
     1,
     TSAN,
     "data race",
     2,
     {{"bump", "race.c", 9, "race-gcc"}, {"worker", "race.c", 16, "race-gcc"}},
     "SUMMARY: ThreadSanitizer: data race /src/demo/race.c:9 in bump",
     "ThreadSanitizer: data race at bump (race.c:9) <- worker (race.c:16)"},
    {"tsan-clang-race-lib.txt",
     1,
     TSAN,
     "data race",
     2,
     {{"lib_bump", "lib.c", 6, "libr-clang.so"}, {"worker", "racelib.c", 10, "racelib-clang"}},
     "SUMMARY: ThreadSanitizer: data race /src/demo/lib.c:6:19 in lib_bump",
     NULL},
    {"tsan-gcc-race-lib.txt",
     1,
     TSAN,
     "data race",
     2,
     {{"lib_bump", "lib.c", 6, "libr-gcc.so"}, {"worker", "racelib.c", 10, "racelib-gcc"}},
     "SUMMARY: ThreadSanitizer: data race /src/demo/lib.c:6 in lib_bump",
     NULL},
    {"tsan-clang-unlock.txt",
     1,
     TSAN,
     UNLOCK,
     3,
     {{"pthread_mutex_unlock", "", 0, "unlock-clang"}, {"release", "unlock.c", 8, "unlock-clang"}},
     "SUMMARY: ThreadSanitizer: " UNLOCK " (/src/demo/unlock-clang+0x",
     "ThreadSanitizer: " UNLOCK " at pthread_mutex_unlock (unlock-clang) <- release (unlock.c:8) "
     "<- main (unlock.c:13)"},
    /* gcc prints the runtime's own source path for the interceptor: dropped, the module stays */
    {"tsan-gcc-unlock.txt",
     1,
     TSAN,
     UNLOCK,
     3,
     {{"pthread_mutex_unlock", "", 0, "libtsan.so.2"}, {"release", "unlock.c", 8, "unlock-gcc"}},
     "SUMMARY: ThreadSanitizer: " UNLOCK " /src/demo/unlock.c:8 in release",
     "ThreadSanitizer: " UNLOCK " at pthread_mutex_unlock (libtsan.so.2) <- release (unlock.c:8) "
     "<- main (unlock.c:13)"},
    {"tsan-clang-lockorder.txt",
     1,
     TSAN,
     LOI,
     2,
     {{"pthread_mutex_lock", "", 0, "lockorder-clang"},
      {"main", "lockorder.c", 9, "lockorder-clang"}},
     "SUMMARY: ThreadSanitizer: " LOI,
     NULL},
    {"tsan-gcc-lockorder.txt",
     1,
     TSAN,
     LOI,
     2,
     {{"pthread_mutex_lock", "", 0, "libtsan.so.2"}, {"main", "lockorder.c", 9, "lockorder-gcc"}},
     "SUMMARY: ThreadSanitizer: " LOI " /src/demo/lockorder.c:9 in main",
     NULL},
    {"tsan-clang-heap-use-after-free.txt",
     1,
     TSAN,
     "heap-use-after-free",
     1,
     {{"reader", "tuaf.c", 12, "tuaf-clang"}, {0}},
     "SUMMARY: ThreadSanitizer: heap-use-after-free /src/demo/tuaf.c:12:26 in reader",
     "ThreadSanitizer: heap-use-after-free at reader (tuaf.c:12)"},
    {"tsan-gcc-heap-use-after-free.txt",
     1,
     TSAN,
     "heap-use-after-free",
     1,
     {{"reader", "tuaf.c", 12, "tuaf-gcc"}, {0}},
     "SUMMARY: ThreadSanitizer: heap-use-after-free /src/demo/tuaf.c:12 in reader",
     NULL},
    {"tsan-clang-segv.txt",
     1,
     TSAN,
     "SEGV on unknown address",
     5,
     {{"poke", "segv.c", 4, "tsegv-clang"}, {"main", "segv.c", 10, "tsegv-clang"}},
     "SUMMARY: ThreadSanitizer: SEGV /src/demo/segv.c:4:8 in poke",
     NULL},
    {"tsan-gcc-segv.txt",
     1,
     TSAN,
     "SEGV on unknown address",
     5,
     {{"poke", "segv.c", 4, "tsegv-gcc"}, {"main", "segv.c", 10, "tsegv-gcc"}},
     "SUMMARY: ThreadSanitizer: SEGV /src/demo/segv.c:4 in poke",
     NULL},
    /* ipcproof's thread-mode child, as it printed it (an earlier ipcproof let it through) */
    {"tsan-clang-ipcproof-ring-raw.txt",
     3,
     TSAN,
     "data race",
     6,
     {{"memcpy", "", 0, "ipcproof"},
      {"copy_out", "broken_ring_relaxed.c", 66, "broken_ring_relaxed.so"}},
     "SUMMARY: ThreadSanitizer: data race (/src/ipcproof/build/tsan/stress/ipcproof+0x5eb3e)",
     "ThreadSanitizer: data race at memcpy (ipcproof) <- copy_out (broken_ring_relaxed.c:66) <- "
     "recv_msg (broken_ring_relaxed.c:127) <- run_consumer (worker.c:287) <- st_worker_main "
     "(worker.c:483) <- thread_main (worker.c:554)"},
    /* the same, as ipcproof shows it now: indented with "  | " after its own summary */
    {"tsan-clang-ipcproof-ring.txt",
     3,
     TSAN,
     "data race",
     6,
     {{"memcpy", "", 0, "ipcproof"},
      {"copy_out", "broken_ring_relaxed.c", 66, "broken_ring_relaxed.so"}},
     "SUMMARY: ThreadSanitizer: data race (/src/ipcproof/build/tsan/stress/ipcproof+0x5fc0e)",
     NULL},
    /* good_asm_spinlock.so --opt annotate=0: the harness's counter, unordered by the lock */
    {"tsan-clang-ipcproof-asm-spinlock.txt",
     1,
     TSAN,
     "data race",
     3,
     {{"run_locker", "worker.c", 488, "ipcproof"}, {"st_worker_main", "worker.c", 580, "ipcproof"}},
     "SUMMARY: ThreadSanitizer: data race /src/ipcproof/stress/worker.c:488:26 in run_locker",
     "ThreadSanitizer: data race at run_locker (worker.c:488) <- st_worker_main (worker.c:580) <- "
     "thread_main (worker.c:649)"},
    {"asan-clang-heap-overflow.txt",
     1,
     ASAN,
     "heap-buffer-overflow",
     5,
     {{"peek", "heap.c", 7, ""}, {"main", "heap.c", 15, ""}},
     "SUMMARY: AddressSanitizer: heap-buffer-overflow /src/demo/heap.c:7:12 in peek",
     "AddressSanitizer: heap-buffer-overflow at peek (heap.c:7) <- main (heap.c:15) <- "
     "__libc_start_call_main (libc_start_call_main.h:58) <- __libc_start_main (libc-start.c:360) "
     "<- _start (heap-clang)"},
    {"asan-clang-heap-overflow-color.txt",
     1,
     ASAN,
     "heap-buffer-overflow",
     5,
     {{"peek", "heap.c", 7, ""}, {"main", "heap.c", 15, ""}},
     "SUMMARY: AddressSanitizer: heap-buffer-overflow /src/demo/heap.c:7:12 in peek",
     NULL},
    {"asan-gcc-heap-overflow.txt",
     1,
     ASAN,
     "heap-buffer-overflow",
     5,
     {{"peek", "heap.c", 7, ""}, {"main", "heap.c", 15, ""}},
     "SUMMARY: AddressSanitizer: heap-buffer-overflow /src/demo/heap.c:7 in peek",
     NULL},
    {"asan-clang-segv.txt",
     1,
     ASAN,
     "SEGV on unknown address",
     5,
     {{"poke", "segv.c", 4, ""}, {"main", "segv.c", 10, ""}},
     "SUMMARY: AddressSanitizer: SEGV /src/demo/segv.c:4:8 in poke",
     NULL},
    {"asan-gcc-segv.txt",
     1,
     ASAN,
     "SEGV on unknown address",
     5,
     {{"poke", "segv.c", 4, ""}, {"main", "segv.c", 10, ""}},
     "SUMMARY: AddressSanitizer: SEGV /src/demo/segv.c:4 in poke",
     NULL},
    {"asan-clang-double-free.txt",
     1,
     ASAN,
     "attempting double-free",
     6,
     {{"free", "", 0, "dfree-clang"}, {"drop", "dfree.c", 6, ""}},
     "SUMMARY: AddressSanitizer: double-free (/src/demo/dfree-clang+0x",
     NULL},
    {"asan-gcc-double-free.txt",
     1,
     ASAN,
     "attempting double-free",
     6,
     {{"__interceptor_free", "", 0, ""}, {"drop", "dfree.c", 6, ""}},
     "SUMMARY: AddressSanitizer: double-free ../../../../src/libsanitizer/",
     NULL},
    {"lsan-clang-leak.txt",
     1,
     "LeakSanitizer",
     "detected memory leaks",
     4,
     {{"__interceptor_malloc", "", 0, "leak-clang"}, {"make", "leak.c", 7, ""}},
     "SUMMARY: AddressSanitizer: 77 byte(s) leaked in 1 allocation(s).",
     NULL},
    {"lsan-gcc-leak.txt",
     1,
     "LeakSanitizer",
     "detected memory leaks",
     4,
     {{"__interceptor_malloc", "", 0, ""}, {"make", "leak.c", 7, ""}},
     "SUMMARY: AddressSanitizer: 77 byte(s) leaked in 1 allocation(s).",
     NULL},
    /* UBSan without a stack: one frame, the location of the "runtime error" line */
    {"ubsan-clang-nostack.txt",
     1,
     UBSAN,
     OVF,
     1,
     {{"", "ub.c", 7, ""}, {0}},
     "SUMMARY: UndefinedBehaviorSanitizer: undefined-behavior ub.c:7:14 in",
     "UndefinedBehaviorSanitizer: " OVF " at ub.c:7"},
    {"ubsan-gcc-nostack.txt", 1, UBSAN, OVF, 1, {{"", "ub.c", 7, ""}, {0}}, "", NULL},
    {"ubsan-clang-stack.txt",
     1,
     UBSAN,
     OVF,
     5,
     {{"add", "ub.c", 7, ""}, {"main", "ub.c", 13, ""}},
     "SUMMARY: UndefinedBehaviorSanitizer: undefined-behavior ub.c:7:14 in",
     NULL},
    {"ubsan-gcc-stack.txt",
     1,
     UBSAN,
     OVF,
     5,
     {{"add", "ub.c", 7, ""}, {"main", "ub.c", 13, ""}},
     "",
     NULL},
};

#define NSAMPLES (sizeof(samples) / sizeof(samples[0]))

static void check_frame(const struct st_sanframe *f, const struct xframe *x, const char *name)
{
    if (strcmp(f->func, x->func) || strcmp(f->file, x->file) || f->line != x->line ||
        strcmp(f->module, x->module))
        fail_msg("%s: frame {%s, %s, %u, %s}, expected {%s, %s, %u, %s}", name, f->func, f->file,
                 f->line, f->module, x->func, x->file, x->line, x->module);
}

static void test_samples(void **state)
{
    (void)state;
    for (size_t i = 0; i < NSAMPLES; i++) {
        const struct expect *x = &samples[i];
        size_t len;
        char *text = load(x->name, &len);
        struct st_sanrep reps[MAX_REPS];
        int n = parse_all(text, len, reps, NULL);
        if (n != x->nreports) fail_msg("%s: %d reports, expected %d", x->name, n, x->nreports);
        const struct st_sanrep *r = &reps[0];
        assert_string_equal(r->tool, x->tool);
        assert_string_equal(r->title, x->title);
        if (r->nframes != x->nframes)
            fail_msg("%s: %d frames, expected %d", x->name, r->nframes, x->nframes);
        for (int k = 0; k < 2 && k < x->nframes; k++)
            check_frame(&r->frames[k], &x->f[k], x->name);
        if (strncmp(r->summary, x->summary, strlen(x->summary)) != 0 ||
            (x->summary[0] == '\0' && r->summary[0] != '\0'))
            fail_msg("%s: summary \"%s\", expected \"%s...\"", x->name, r->summary, x->summary);
        if (x->line != NULL) {
            char line[1024];
            st_sanrep_format(r, line, sizeof(line));
            assert_string_equal(line, x->line);
        }
        /* pos = NULL and out = NULL are allowed */
        assert_int_equal(st_sanrep_next(text, len, NULL, NULL), 1);
        free(text);
    }
}

/* The ipcproof ring samples: three reports, the second one with its own frames. */
static void test_harness_reports(void **state)
{
    (void)state;
    static const char *const names[] = {"tsan-clang-ipcproof-ring-raw.txt",
                                        "tsan-clang-ipcproof-ring.txt"};
    for (int f = 0; f < 2; f++) {
        size_t len;
        char *text = load(names[f], &len);
        struct st_sanrep reps[MAX_REPS];
        size_t ends[MAX_REPS];
        assert_int_equal(parse_all(text, len, reps, ends), 3);
        assert_true(ends[0] < ends[1] && ends[1] < ends[2] && ends[2] < len);
        assert_string_equal(reps[1].frames[2].func, "recv_msg");
        assert_int_equal(reps[1].frames[2].line, 130);
        assert_string_equal(reps[2].frames[2].func, "recv_msg");
        assert_int_equal(reps[2].frames[2].line, 127);
        for (int i = 0; i < 3; i++) {
            assert_int_equal(reps[i].nframes, ST_SANREP_FRAMES);
            assert_string_equal(reps[i].frames[5].func, "thread_main");
            assert_string_equal(reps[i].frames[5].file, "worker.c");
        }
        free(text);
    }
}

/* ---- cut texts ------------------------------------------------------------------------------- */

/* Text cut at the end, at every offset: never a read past the cut; a cut after a report's end
 * leaves that report (and those before it) exactly as in the whole text. */
static void test_every_prefix(void **state)
{
    (void)state;
    for (size_t i = 0; i < NSAMPLES; i++) {
        size_t len;
        char *text = load(samples[i].name, &len);
        struct st_sanrep full[MAX_REPS], got[MAX_REPS];
        size_t ends[MAX_REPS];
        int nfull = parse_all(text, len, full, ends);
        for (size_t k = 0; k <= len; k++) {
            if (!try_cut(text, len, k)) continue;
            char *cut = exact_copy(text, k);
            int n = parse_all(cut, k, got, NULL);
            assert_true(n <= nfull);
            for (int j = 0; j < nfull && j < MAX_REPS; j++) {
                if (ends[j] > k) break;
                assert_true(j < n);
                if (!same_report(&got[j], &full[j]))
                    fail_msg("%s cut at %zu: report %d differs", samples[i].name, k, j);
            }
            free(cut);
        }
        free(text);
    }
}

/* Text cut at the start, at every offset (the capture keeps the last 64 KiB): a report whose
 * header is still there, i.e. that starts at or after the cut, comes out as in the whole text. */
static void test_every_suffix(void **state)
{
    (void)state;
    for (size_t i = 0; i < NSAMPLES; i++) {
        size_t len;
        char *text = load(samples[i].name, &len);
        struct st_sanrep full[MAX_REPS], got[MAX_REPS];
        size_t ends[MAX_REPS];
        int nfull = parse_all(text, len, full, ends);
        for (size_t k = 0; k <= len; k++) {
            if (!try_cut(text, len, k)) continue;
            char *cut = exact_copy(text + k, len - k);
            int n = parse_all(cut, len - k, got, NULL);
            assert_true(n <= nfull);
            /* reports j with (j == 0 ? 0 : ends[j - 1]) >= k are whole: the last ones found */
            int intact = 0;
            for (int j = 0; j < nfull; j++)
                if ((j == 0 ? 0 : ends[j - 1]) >= k) intact++;
            assert_true(n >= intact);
            for (int t = 0; t < intact; t++) {
                if (!same_report(&got[n - intact + t], &full[nfull - intact + t]))
                    fail_msg("%s cut before %zu: report %d differs", samples[i].name, k,
                             nfull - intact + t);
            }
            free(cut);
        }
        free(text);
    }
}

/* ---- several reports in one text ------------------------------------------------------------- */

struct sbuf {
    char *p;
    size_t n, cap;
};

static void add(struct sbuf *b, const char *s, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void add_file(struct sbuf *b, const char *name)
{
    size_t len;
    char *t = load(name, &len);
    add(b, t, len);
    free(t);
}

static void adds(struct sbuf *b, const char *s)
{
    add(b, s, strlen(s));
}

static void test_several_reports(void **state)
{
    (void)state;
    struct sbuf b = {0};
    adds(&b, "ipcproof stress: progress 1200 msgs\n"); /* other output around and between */
    add_file(&b, "tsan-clang-race.txt");
    adds(&b, "worker 3: 4000 acquisitions\n");
    add_file(&b, "ubsan-gcc-nostack.txt"); /* no SUMMARY, no stack */
    add_file(&b, "asan-gcc-heap-overflow.txt");
    add_file(&b, "lsan-clang-leak.txt");
    adds(&b, "done\n");
    char *text = exact_copy(b.p, b.n);
    struct st_sanrep r[MAX_REPS];
    assert_int_equal(parse_all(text, b.n, r, NULL), 4);
    assert_string_equal(r[0].tool, "ThreadSanitizer");
    assert_string_equal(r[0].frames[0].func, "bump");
    assert_string_equal(r[1].tool, "UndefinedBehaviorSanitizer");
    assert_int_equal(r[1].nframes, 1);
    assert_string_equal(r[1].summary, ""); /* not the next report's */
    assert_string_equal(r[2].title, "heap-buffer-overflow");
    assert_string_equal(r[2].frames[0].func, "peek");
    assert_string_equal(r[3].tool, "LeakSanitizer");
    free(text);
    free(b.p);
}

/* Lines of other processes inside a report: the stack goes on across them; a second report that
 * starts before the first one's SUMMARY ends it. */
static void test_interleaved(void **state)
{
    (void)state;
    const char *t = "==================\n"
                    "WARNING: ThreadSanitizer: data race (pid=7)\n"
                    "  Write of size 4 at 0x7b0400000000 by thread T1:\n"
                    "    #0 put ring.c:10:3 (ring.so+0x1100)\n"
                    "progress: 100 msgs\n"
                    "    #1 send_msg ring.c:40:5 (ring.so+0x1200)\n"
                    "    #7 not_this one.c:1 (x+0x1)\n"
                    "    #2 run_producer worker.c:208:21 (ipcproof+0xfed6d)\n"
                    "\n"
                    "  Previous read of size 4 at 0x7b0400000000 by thread T2:\n"
                    "    #0 get ring.c:20:3 (ring.so+0x1300)\n"
                    "==8==ERROR: AddressSanitizer: stack-overflow on address 0x7ffc00000ff8 (pc "
                    "0x1 bp 0x2 sp 0x3 T0)\n"
                    "    #0 0x55 in recurse /src/x.c:3\n"
                    "SUMMARY: AddressSanitizer: stack-overflow /src/x.c:3 in recurse\n"
                    "SUMMARY: ThreadSanitizer: data race ring.c:10:3 in put\n";
    size_t len = strlen(t);
    char *text = exact_copy(t, len);
    struct st_sanrep r[MAX_REPS];
    assert_int_equal(parse_all(text, len, r, NULL), 2);
    assert_int_equal(r[0].nframes, 3);
    assert_string_equal(r[0].frames[1].func, "send_msg");
    assert_string_equal(r[0].frames[2].func, "run_producer");
    assert_string_equal(r[0].summary, "");
    assert_string_equal(r[1].title, "stack-overflow");
    assert_string_equal(r[1].summary,
                        "SUMMARY: AddressSanitizer: stack-overflow /src/x.c:3 in recurse");
    free(text);
}

/* ---- headers and frames the samples lack ----------------------------------------------------- */

static struct st_sanrep one(const char *t)
{
    struct st_sanrep r;
    size_t len = strlen(t);
    char *text = exact_copy(t, len);
    size_t pos = 0;
    if (st_sanrep_next(text, len, &pos, &r) != 1) fail_msg("no report in \"%s\"", t);
    check_well_formed(&r);
    free(text);
    return r;
}

static void test_headers(void **state)
{
    (void)state;
    static const struct {
        const char *text, *tool, *title;
    } h[] = {
        {"FATAL: ThreadSanitizer: unexpected memory mapping 0x7f0000000000-0x7f0000001000\n", TSAN,
         "unexpected memory mapping"},
        {"==12==WARNING: MemorySanitizer: use-of-uninitialized-value\n", "MemorySanitizer",
         "use-of-uninitialized-value"},
        {"==12==ERROR: AddressSanitizer: attempting free on address which was not malloc()-ed: "
         "0x602000000010 in thread T0\n",
         ASAN, "attempting free on address which was not malloc()-ed"},
        {"==12==ERROR: AddressSanitizer: memcpy-param-overlap: memory ranges [0x6020,0x6030) and "
         "[0x6025, 0x6035) overlap\n",
         ASAN, "memcpy-param-overlap: memory ranges"},
        {"==12==ERROR: UndefinedBehaviorSanitizer: SEGV on unknown address 0x000000000000 (pc 0x1 "
         "bp 0x2 sp 0x3 T12)\n",
         UBSAN, "SEGV on unknown address"},
        {"[worker 3] WARNING: ThreadSanitizer: signal-unsafe call inside of a signal (pid=9)\n",
         TSAN, "signal-unsafe call inside of a signal"},
        {"/a b/x.c:3:1: runtime error: load of null pointer\nx.c:4:2: runtime error: shift\n",
         UBSAN, "shift"},
        {"\x1b[1m\x1b[31mWARNING: ThreadSanitizer: data race (pid=1)\x1b[1m\x1b[0m\r\n", TSAN,
         "data race"},
        {"WARNING: ThreadSanitizer: data race (pid=1)", TSAN, "data race"}, /* no newline */
    };
    for (size_t i = 0; i < sizeof(h) / sizeof(h[0]); i++) {
        struct st_sanrep r = one(h[i].text);
        assert_string_equal(r.tool, h[i].tool);
        assert_string_equal(r.title, h[i].title);
    }
    /* not reports */
    static const char *const no[] = {
        "==12==WARNING: AddressSanitizer failed to allocate 0x1000 bytes\n",
        "WARNING: AddressSanitizer: something\n",
        "ThreadSanitizer: reported 3 warnings\n",
        "ThreadSanitizer:DEADLYSIGNAL\n",
        "ERROR: Sanitizer: x\n",
        "ERROR: ThreadSanitizer:x\n",
        ": runtime error: nothing before\n",
        "SUMMARY: ThreadSanitizer: data race x.c:1 in f\n",
        "    #0 foo x.c:1 (bin+0x1)\n",
    };
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        size_t pos = 0, len = strlen(no[i]);
        struct st_sanrep r;
        assert_int_equal(st_sanrep_next(no[i], len, &pos, &r), 0);
        assert_int_equal(pos, len);
    }
    struct st_sanrep r;
    size_t pos = 5;
    assert_int_equal(st_sanrep_next(NULL, 0, &pos, &r), 0);
    assert_int_equal(pos, 0);
    pos = 100; /* past len */
    assert_int_equal(st_sanrep_next("WARNING: ThreadSanitizer: x\n", 28, &pos, &r), 0);
    assert_int_equal(pos, 28);
}

static void test_frames(void **state)
{
    (void)state;
    static const struct {
        const char *line;
        struct xframe f;
    } fr[] = {
        {"    #0 <null> <null> (libc.so.6+0x27249)", {"", "", 0, "libc.so.6"}},
        {"    #0 <null> <null> (libc.so.6+0x27249) (BuildId: 93ac61ec5a8e)",
         {"", "", 0, "libc.so.6"}},
        {"    #0 bar x.c:40 (binary+0x4d2)", {"bar", "x.c", 40, "binary"}},
        {"    #0 foo /path/x.c:12:5 (lib.so+0x1234)", {"foo", "x.c", 12, "lib.so"}},
        {"    #0 foo /path/x.c (lib.so+0x1234)", {"foo", "x.c", 0, "lib.so"}},
        {"    #0 foo ??:0 (lib.so+0x1234)", {"foo", "", 0, "lib.so"}},
        {"    #0 0x7f3c2a (/lib/x86_64-linux-gnu/libc.so.6+0x2724a) (BuildId: 93ac)",
         {"", "", 0, "libc.so.6"}},
        {"    #0 0x4f2b1  (/path/bin+0x4f2b1)", {"", "", 0, "bin"}},
        {"    #0 0x55 in foo+0x1f (/x/lib.so+0x11)", {"foo", "", 0, "lib.so"}},
        {"    #0 0x55 in operator new(unsigned long) (/x/a.out+0x1)",
         {"operator new(unsigned long)", "", 0, "a.out"}},
        {"    #0 0x55 in ns::f(int) /s/a.cc:3:1", {"ns::f(int)", "a.cc", 3, ""}},
        {"    #0 0x7f in  (<unknown module>)", {"", "", 0, "<unknown module>"}},
        {"    #0 0x1 in f ../../../../src/libsanitizer/tsan/tsan_interceptors_posix.cpp:1001",
         {"f", "", 0, ""}},
        {"    #0 f /x/compiler-rt/lib/tsan/rtl/tsan_rtl.cpp:5 (libclang_rt.tsan.so+0x9)",
         {"f", "", 0, "libclang_rt.tsan.so"}},
        {"==5==    #0 f x.c:7 (m+0x1)", {"f", "x.c", 7, "m"}},
        {"\t#0 f x.c:99999999999999999999 (m+0x1)", {"f", "x.c", 0, "m"}},
        {"\t#0 f x.c:999999999 (m+0x1)", {"f", "x.c", 999999999, "m"}},
    };
    for (size_t i = 0; i < sizeof(fr) / sizeof(fr[0]); i++) {
        char t[512];
        snprintf(t, sizeof(t), "WARNING: ThreadSanitizer: data race (pid=1)\n%s\n", fr[i].line);
        struct st_sanrep r = one(t);
        if (r.nframes != 1) fail_msg("\"%s\": %d frames", fr[i].line, r.nframes);
        check_frame(&r.frames[0], &fr[i].f, fr[i].line);
    }
    /* UBSan: a stack must follow the runtime error line at once; otherwise its location */
    struct st_sanrep r = one("x.c:5:2: runtime error: boom\nother\n    #0 0x1 in f y.c:1\n");
    assert_int_equal(r.nframes, 1);
    check_frame(&r.frames[0], &(struct xframe){"", "x.c", 5, ""}, "ubsan");
    /* more than ST_SANREP_FRAMES frames: the top ones */
    char t[2048] = "WARNING: ThreadSanitizer: data race (pid=1)\n";
    for (int i = 0; i < 9; i++)
        snprintf(t + strlen(t), sizeof(t) - strlen(t), "    #%d f%d x.c:%d (m+0x1)\n", i, i, i + 1);
    r = one(t);
    assert_int_equal(r.nframes, ST_SANREP_FRAMES);
    assert_string_equal(r.frames[5].func, "f5");
    assert_int_equal(r.frames[5].line, 6);
}

/* ---- garbage --------------------------------------------------------------------------------- */

static void test_garbage(void **state)
{
    (void)state;
    static const char *const words[] = {
        "WARNING: ",  "ThreadSanitizer: ",
        "ERROR: ",    "AddressSanitizer",
        ": ",         "==12==",
        "\n",         "    #",
        "0",          "1",
        " ",          "0x7f",
        " in ",       "(",
        ")",          "+0x",
        "(BuildId: ", "<null>",
        "x.c:",       "12",
        ":5",         "/",
        "SUMMARY: ",  ": runtime error: ",
        "\x1b[",      "\x1b",
        "\r",         "\0",
        "data race ", " (pid=",
        "FATAL: ",    "Sanitizer",
        "#",          "??",
    };
    uint64_t seed = 42;
    static char buf[8192];
    for (int iter = 0; iter < 4000; iter++) {
        size_t n = splitmix64_next(&seed) % sizeof(buf);
        if (iter % 2) { /* random bytes */
            for (size_t i = 0; i < n; i++)
                buf[i] = (char)splitmix64_next(&seed);
        } else { /* random sequences of report fragments */
            size_t i = 0;
            while (i < n) {
                const char *w = words[splitmix64_next(&seed) % (sizeof(words) / sizeof(words[0]))];
                size_t wl = w[0] ? strlen(w) : 1;
                if (wl > n - i) wl = n - i;
                memcpy(buf + i, w, wl);
                i += wl;
            }
        }
        char *text = exact_copy(buf, n);
        parse_all(text, n, NULL, NULL);
        free(text);
    }
    /* a very long line with a header at its start and frames longer than every field */
    struct sbuf b = {0};
    adds(&b, "WARNING: ThreadSanitizer: ");
    for (int i = 0; i < 5000; i++)
        adds(&b, "long title ");
    adds(&b, "\n    #0 ");
    for (int i = 0; i < 300; i++)
        adds(&b, "f");
    adds(&b, " /");
    for (int i = 0; i < 600; i++)
        adds(&b, "d");
    adds(&b, ".c:3 (");
    for (int i = 0; i < 300; i++)
        adds(&b, "m");
    adds(&b, "+0x1)\n");
    char *text = exact_copy(b.p, b.n);
    struct st_sanrep r[MAX_REPS];
    assert_int_equal(parse_all(text, b.n, r, NULL), 1);
    assert_int_equal(strlen(r[0].title), sizeof(r[0].title) - 1);
    assert_int_equal(r[0].nframes, 1);
    free(text);
    free(b.p);
}

/* ---- the one-line format --------------------------------------------------------------------- */

static void test_format(void **state)
{
    (void)state;
    struct st_sanrep r = one("WARNING: ThreadSanitizer: data race (pid=1)\n"
                             "    #0 memcpy <null> (ipcproof+0x5eb3e)\n"
                             "    #1 copy_out /s/ring.c:66:5 (ring.so+0x1d2f)\n"
                             "    #2 <null> <null> (libc.so.6+0x1)\n"
                             "    #3 0x7f3c2a\n");
    char full[512];
    st_sanrep_format(&r, full, sizeof(full));
    assert_string_equal(full, "ThreadSanitizer: data race at memcpy (ipcproof) <- copy_out "
                              "(ring.c:66) <- libc.so.6 <- ?");
    /* every capacity: terminated, within cap, a prefix of the whole line, "..." when cut */
    size_t flen = strlen(full);
    for (size_t cap = 0; cap <= flen + 2; cap++) {
        char out[600];
        memset(out, 'Z', sizeof(out));
        st_sanrep_format(&r, out, cap);
        for (size_t k = cap; k < sizeof(out); k++)
            assert_int_equal(out[k], 'Z');
        if (cap == 0) continue;
        size_t n = field_len(out, cap);
        if (cap > flen) {
            assert_string_equal(out, full);
        } else {
            assert_int_equal(n, cap - 1);
            if (cap > 4) {
                assert_memory_equal(out, full, cap - 4);
                assert_string_equal(out + cap - 4, "...");
            } else {
                assert_memory_equal(out, full, n);
            }
        }
    }
    struct st_sanrep empty;
    memset(&empty, 0, sizeof(empty));
    st_sanrep_format(&empty, full, sizeof(full));
    assert_string_equal(full, "sanitizer: report");
    st_sanrep_format(NULL, full, sizeof(full));
    assert_string_equal(full, "");
    st_sanrep_format(&r, NULL, 10);
    /* fields without a terminator are read within their arrays only */
    struct st_sanrep junk;
    memset(&junk, 'x', sizeof(junk));
    junk.nframes = 99;
    char big[16384];
    st_sanrep_format(&junk, big, sizeof(big));
    assert_true(strlen(big) < sizeof(big));
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s <dir of the sanitizer report samples>\n", argv[0]);
        return 2;
    }
    g_dir = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_samples),         cmocka_unit_test(test_harness_reports),
        cmocka_unit_test(test_every_prefix),    cmocka_unit_test(test_every_suffix),
        cmocka_unit_test(test_several_reports), cmocka_unit_test(test_interleaved),
        cmocka_unit_test(test_headers),         cmocka_unit_test(test_frames),
        cmocka_unit_test(test_garbage),         cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* plugbuild_test.c - building plugins from source: a C and a C++ plugin (std::vector and
 * std::atomic, so it needs libstdc++), plain and ThreadSanitizer variants, each loaded with
 * dlopen() (the TSan one only into a TSan build of this test, else checked with the ELF reader),
 * the C++ driver matching each compiler and the fallback when there is none, --cflags quoting,
 * and failures that name the compiler and show the compiler's error lines. */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "elfinfo.h"
#include "plugbuild.h"
#include "unitutil.h"

#include <ipcproof/plugin.h>

#ifndef IPCP_TEST_INCLUDE_DIR
#error IPCP_TEST_INCLUDE_DIR: the directory holding ipcproof/plugin.h
#endif

/* A TSan plugin built with clang can be loaded into this test when it is a clang TSan build. */
#if UT_TSAN && defined(__clang__)
#define CAN_LOAD_TSAN 1
#else
#define CAN_LOAD_TSAN 0
#endif

#define ERRCAP 8192

static const char *const c_src =
    "#include <ipcproof/plugin.h>\n"
    "#include <stdatomic.h>\n"
    "#ifndef GREETING\n"
    "#define GREETING \"hello\"\n"
    "#endif\n"
    "#ifndef ANSWER\n"
    "#define ANSWER 42\n"
    "#endif\n"
    "static atomic_int calls;\n"
    "static const struct ipcp_channel_ops ops = {.abi_version = IPCP_PLUGIN_ABI_VERSION,\n"
    "                                            .name = \"unit-c\"};\n"
    "const struct ipcp_channel_ops *ipcp_plugin_channel(void)\n"
    "{\n"
    "    atomic_fetch_add(&calls, 1);\n"
    "    return &ops;\n"
    "}\n"
    "const char *unit_greeting(void) { return GREETING; }\n"
    "int unit_answer(void) { return ANSWER; }\n";

static const char *const cxx_src =
    "#include <ipcproof/plugin.h>\n"
    "#include <atomic>\n"
    "#include <string>\n"
    "#include <vector>\n"
    "static std::atomic<int> total{0};\n"
    "static ipcp_channel_ops make_ops()\n"
    "{\n"
    "    ipcp_channel_ops o{};\n"
    "    o.abi_version = IPCP_PLUGIN_ABI_VERSION;\n"
    "    o.name = \"unit-cxx\";\n"
    "    return o;\n"
    "}\n"
    "static const ipcp_channel_ops ops = make_ops();\n"
    "extern \"C\" const struct ipcp_channel_ops *ipcp_plugin_channel(void) { return &ops; }\n"
    "extern \"C\" int unit_sum(int n)\n"
    "{\n"
    "    std::vector<int> v;\n"
    "    for (int i = 0; i < n; i++)\n"
    "        v.push_back(i);\n"
    "    int s = 0;\n"
    "    for (int x : v)\n"
    "        s += x;\n"
    "    total.fetch_add(s);\n"
    "    return s + (int)std::to_string(n).size() - (int)std::to_string(n).length();\n"
    "}\n";

/* ---- helpers --------------------------------------------------------------------------------- */

static int have(const char *prog)
{
    char buf[PATH_MAX];
    return ut_which(prog, buf, sizeof(buf)) != NULL;
}

static void need(const char *prog)
{
    if (!have(prog)) {
        print_message("%s is not installed: skipped\n", prog);
        skip();
    }
}

static void *load(const char *so)
{
    void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) print_error("dlopen(%s): %s\n", so, dlerror());
    assert_non_null(h);
    return h;
}

static void *sym(void *h, const char *name)
{
    void *p = dlsym(h, name);
    if (p == NULL) print_error("dlsym(%s): %s\n", name, dlerror());
    assert_non_null(p);
    return p;
}

static const char *plugin_name(void *h)
{
    const struct ipcp_channel_ops *(*get)(void);
    *(void **)&get = sym(h, "ipcp_plugin_channel");
    const struct ipcp_channel_ops *ops = get();
    assert_non_null(ops);
    assert_int_equal(ops->abi_version, IPCP_PLUGIN_ABI_VERSION);
    return ops->name;
}

/* Loads a C plugin and checks what it says. */
static void check_c(const char *so, const char *greeting, int answer)
{
    void *h = load(so);
    assert_string_equal(plugin_name(h), "unit-c");
    const char *(*greet)(void);
    int (*ans)(void);
    *(void **)&greet = sym(h, "unit_greeting");
    *(void **)&ans = sym(h, "unit_answer");
    assert_string_equal(greet(), greeting);
    assert_int_equal(ans(), answer);
    dlclose(h);
}

static void check_cxx(const char *so)
{
    assert_int_equal(st_elf_needs(so, "libstdc++"), 1);
    void *h = load(so);
    assert_string_equal(plugin_name(h), "unit-cxx");
    int (*sum)(int);
    *(void **)&sum = sym(h, "unit_sum");
    assert_int_equal(sum(10), 45);
    dlclose(h);
}

/* The TSan variant: instrumented for clang's runtime; loaded when this test can. */
static void check_tsan(const char *so, int cxx)
{
    char why[256];
    assert_int_equal(st_elf_tsan_kind(so, why, sizeof(why)), ST_TSAN_CLANG);
    assert_int_equal(st_elf_needs(so, "libtsan"), 0);
    if (cxx) assert_int_equal(st_elf_needs(so, "libstdc++"), 1);
    if (CAN_LOAD_TSAN) {
        printf("loading the TSan variant %s into this TSan build\n", so);
        if (cxx)
            check_cxx(so);
        else
            check_c(so, "hello", 42);
    }
}

struct built {
    int rc;
    char plain[PATH_MAX], tsan[PATH_MAX], err[ERRCAP];
};

static void build(struct built *r, const char *dir, const char *name, const char *text,
                  struct st_plugbuild b)
{
    char src[PATH_MAX];
    ut_path(src, sizeof(src), dir, name);
    if (text != NULL) ut_write(src, text);
    b.src = src;
    b.outdir = dir;
    b.include_dir = IPCP_TEST_INCLUDE_DIR;
    memset(r->err, 'x', sizeof(r->err)); /* must come back terminated */
    r->rc = st_plugbuild(&b, r->plain, r->tsan, sizeof(r->plain), r->err, sizeof(r->err));
    assert_true(strlen(r->err) < sizeof(r->err));
    printf("st_plugbuild(%s) = %d%s%s\n", name, r->rc, r->err[0] ? ":\n" : "", r->err);
}

static char *log_of(const char *dir)
{
    char p[PATH_MAX];
    size_t n;
    unsigned char *t = ut_read(ut_path(p, sizeof(p), dir, "build.log"), &n);
    char *s = realloc(t, n + 1);
    assert_non_null(s);
    s[n] = '\0';
    return s;
}

/* ---- tests ----------------------------------------------------------------------------------- */

static void test_cxx_driver_names(void **state)
{
    (void)state;
    static const struct {
        const char *cc, *cxx;
        int ok;
    } t[] = {
        {"clang-14", "clang++-14", 1},
        {"clang", "clang++", 1},
        {"gcc-12", "g++-12", 1},
        {"gcc", "g++", 1},
        {"cc", "c++", 1},
        {"/usr/bin/clang-14", "/usr/bin/clang++-14", 1},
        {"/opt/x/bin/gcc", "/opt/x/bin/g++", 1},
        {"/opt/x/bin/cc", "/opt/x/bin/c++", 1},
        {"x86_64-linux-gnu-gcc-12", "x86_64-linux-gnu-g++-12", 1},
        {"clang-14.0", "clang++-14.0", 1},
        {"afl-clang-fast", "afl-clang-fast++", 1},
        {"afl-cc", "afl-c++", 1},
        {"g++-12", "g++-12", 1},
        {"clang++", "clang++", 1},
        {"icx", "icpx", 1},
        {"tcc", "tcc", 0},
        {"/opt/gcc-12/bin/tcc", "/opt/gcc-12/bin/tcc", 0},
        {"mygcc", "mygcc", 0},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char out[PATH_MAX];
        int ok = st_cxx_driver(t[i].cc, out, sizeof(out));
        if (ok != t[i].ok || strcmp(out, t[i].cxx) != 0)
            print_error("%s -> %s (%d), expected %s (%d)\n", t[i].cc, out, ok, t[i].cxx, t[i].ok);
        assert_int_equal(ok, t[i].ok);
        assert_string_equal(out, t[i].cxx);
    }
    char small[6];
    assert_int_equal(st_cxx_driver("clang-14", small, sizeof(small)), 0); /* does not fit */
    assert_true(strlen(small) < sizeof(small));
}

static void test_language_by_name(void **state)
{
    (void)state;
    assert_int_equal(st_plugbuild_is_cxx("a.c"), 0);
    assert_int_equal(st_plugbuild_is_cxx("dir.cpp/a.c"), 0);
    assert_int_equal(st_plugbuild_is_cxx("a.cc"), 1);
    assert_int_equal(st_plugbuild_is_cxx("a.cpp"), 1);
    assert_int_equal(st_plugbuild_is_cxx("a.cxx"), 1);
    assert_int_equal(st_plugbuild_is_cxx("a.C"), 1);
    assert_int_equal(st_plugbuild_is_cxx("x/a.b.c++"), 1);
    assert_int_equal(st_plugbuild_is_cxx("a.h"), -1);
    assert_int_equal(st_plugbuild_is_cxx("a"), -1);
    assert_int_equal(st_plugbuild_is_cxx(".c"), -1);
    assert_int_equal(st_plugbuild_is_cxx("dir.c/a"), -1);
}

static void test_c_plugin(void **state)
{
    const char *dir = *state;
    struct built r;
    int tsan = have("clang-14");
    build(&r, dir, "my.proto.c", c_src, (struct st_plugbuild){.tsan_cc = tsan ? "clang-14" : NULL});
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.err, "");
    char want[PATH_MAX];
    assert_string_equal(r.plain, ut_path(want, sizeof(want), dir, "my.proto.so"));
    check_c(r.plain, "hello", 42);
    assert_int_equal(st_elf_tsan_kind(r.plain, NULL, 0), ST_TSAN_NONE);
    char *log = log_of(dir);
    assert_true(strncmp(log, "$ cc -shared -fPIC -g -O2 ", 26) == 0);
    if (tsan) {
        assert_string_equal(r.tsan, ut_path(want, sizeof(want), dir, "my.proto-tsan.so"));
        check_tsan(r.tsan, 0);
        assert_non_null(strstr(log, "\n$ clang-14 -shared -fPIC -g -O1 -fsanitize=thread "));
    } else {
        print_message("clang-14 is not installed: no TSan variant\n");
        assert_string_equal(r.tsan, "");
    }
    free(log);
}

static void test_cxx_plugin(void **state)
{
    const char *dir = *state;
    need("clang-14");
    struct built r;
    build(&r, dir, "cxx.cpp", cxx_src, (struct st_plugbuild){.tsan_cc = "clang-14"});
    assert_int_equal(r.rc, 0);
    if (have("c++"))
        assert_string_equal(r.err, "");
    else /* no g++ here: the note says how it was built instead */
        assert_non_null(strstr(r.err, "c++ was not found (is g++ installed?): building the plain "
                                      "variant of "));
    check_cxx(r.plain);
    check_tsan(r.tsan, 1);
    char *log = log_of(dir);
    assert_non_null(strstr(log, "$ clang++-14 -shared -fPIC -g -O1 -fsanitize=thread "));
    free(log);
}

/* $CC=clang-14 given as a path: its C++ driver is the path's clang++-14; $CXX is taken as is. */
static void test_cxx_plugin_compiler_paths(void **state)
{
    const char *dir = *state;
    need("clang-14");
    need("clang++-14");
    char cc[PATH_MAX], cxx[PATH_MAX];
    ut_which("clang-14", cc, sizeof(cc));
    snprintf(cxx, sizeof(cxx), "%.*s/clang++-14", (int)(strrchr(cc, '/') - cc), cc);
    struct built r;
    build(&r, dir, "paths.cc", cxx_src, (struct st_plugbuild){.cc = cc, .tsan_cc = cc});
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.err, "");
    check_cxx(r.plain);
    check_tsan(r.tsan, 1);
    char *log = log_of(dir), line[PATH_MAX + 64];
    snprintf(line, sizeof(line), "$ %s -shared -fPIC -g -O2 ", cxx);
    assert_non_null(strstr(log, line));
    snprintf(line, sizeof(line), "$ %s -shared -fPIC -g -O1 -fsanitize=thread ", cxx);
    assert_non_null(strstr(log, line));
    free(log);

    build(&r, dir, "paths.cc", NULL,
          (struct st_plugbuild){.cc = "no-such-cc", .cxx = "clang++-14 -DANSWER=1"});
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.err, "");
    assert_string_equal(r.tsan, "");
    check_cxx(r.plain);
    log = log_of(dir);
    assert_true(strncmp(log, "$ clang++-14 -DANSWER=1 -shared", 31) == 0);
    free(log);
}

/* A compiler whose C++ driver does not exist: its C driver with -lstdc++, and a note. */
static void test_cxx_without_cxx_driver(void **state)
{
    const char *dir = *state;
    need("clang-14");
    char real[PATH_MAX], cc[PATH_MAX];
    ut_which("clang-14", real, sizeof(real));
    assert_int_equal(symlink(real, ut_path(cc, sizeof(cc), dir, "clang-99")), 0);
    struct built r;
    build(&r, dir, "fallback.cpp", cxx_src, (struct st_plugbuild){.cc = cc, .tsan_cc = cc});
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.err, "clang++-99 (the C++ driver of "));
    assert_non_null(strstr(r.err, "was not found: compiling "));
    assert_non_null(strstr(r.err, "-lstdc++"));
    check_cxx(r.plain);
    check_tsan(r.tsan, 1);
}

static void test_syntax_error(void **state)
{
    const char *dir = *state;
    struct built r;
    build(&r, dir, "broken.c", "int ok(void) { return 0; }\n\nint broken(void) { return 1 }\n",
          (struct st_plugbuild){.cc = "cc"});
    assert_int_equal(r.rc, -1);
    assert_string_equal(r.plain, "");
    assert_non_null(strstr(r.err, "building the plain variant of "));
    assert_non_null(strstr(r.err, "broken.c with cc failed (exit status 1)"));
    assert_non_null(strstr(r.err, "\n  $ cc -shared -fPIC -g -O2 "));
    assert_non_null(strstr(r.err, "broken.c:3:")); /* the compiler's own error line */
    assert_non_null(strstr(r.err, "error"));
    assert_non_null(strstr(r.err, "build.log"));
    char so[PATH_MAX];
    assert_int_equal(access(ut_path(so, sizeof(so), dir, "broken.so"), F_OK), -1);
}

static void test_tsan_variant_error(void **state)
{
    const char *dir = *state;
    need("clang-14");
    struct built r;
    build(&r, dir, "tsanonly.c",
          "#if defined(__has_feature)\n"
          "#if __has_feature(thread_sanitizer)\n"
          "#error only the TSan build fails here\n"
          "#endif\n"
          "#endif\n"
          "int x;\n",
          (struct st_plugbuild){.tsan_cc = "clang-14"});
    assert_int_equal(r.rc, -1);
    assert_string_equal(r.plain, "");
    assert_string_equal(r.tsan, "");
    assert_non_null(strstr(r.err, "building the ThreadSanitizer variant of "));
    assert_non_null(strstr(r.err, "with clang-14 failed (exit status 1)"));
    assert_non_null(strstr(r.err, "-fsanitize=thread"));
    assert_non_null(strstr(r.err, "only the TSan build fails here"));
}

static void test_long_error_output(void **state)
{
    const char *dir = *state;
    char text[16384];
    size_t n = 0;
    for (int i = 0; i < 19; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "int f%d(void) { return undefined%d; }\n",
                              i, i);
    struct built r;
    build(&r, dir, "many.c", text, (struct st_plugbuild){.cc = "cc"});
    assert_int_equal(r.rc, -1);
    assert_non_null(strstr(r.err, "undefined0")); /* the first error */
    assert_non_null(strstr(r.err, "lines)\n"));   /* some skipped */
    assert_non_null(strstr(r.err, "undefined18"));
    assert_non_null(strstr(r.err, "the whole output is in "));
    assert_true(strlen(r.err) < ERRCAP - 1);
}

static void test_cflags(void **state)
{
    const char *dir = *state;
    int tsan = have("clang-14");
    const char *tcc = tsan ? "clang-14" : NULL;
    struct built r;
    build(
        &r, dir, "flags.c", c_src,
        (struct st_plugbuild){.cflags = "-DGREETING=\"\\\"a b\\\"\"  -DANSWER=7", .tsan_cc = tcc});
    assert_int_equal(r.rc, 0);
    check_c(r.plain, "a b", 7);
    char *log = log_of(dir);
    /* the word the compiler got, shown quoted for a shell, in both variants */
    const char *word = " '-DGREETING=\"a b\"' -DANSWER=7 ";
    char *first = strstr(log, word);
    assert_non_null(first);
    if (tsan) assert_non_null(strstr(first + 1, word));
    free(log);

    build(&r, dir, "flags.c", NULL,
          (struct st_plugbuild){.cflags = "'-DGREETING=\"c d\"'\t-DANSWER=\\ 8 \\\n", .cc = "cc"});
    assert_int_equal(r.rc, 0);
    check_c(r.plain, "c d", 8);

    build(&r, dir, "flags.c", NULL, (struct st_plugbuild){.cflags = "-DGREETING=\"x"});
    assert_int_equal(r.rc, -1);
    assert_non_null(strstr(r.err, "--cflags: a \" quote is not closed"));
    build(&r, dir, "flags.c", NULL, (struct st_plugbuild){.cflags = "-DX=1 \\"});
    assert_int_equal(r.rc, -1);
    assert_non_null(strstr(r.err, "--cflags: ends with a backslash"));
    build(&r, dir, "flags.c", NULL, (struct st_plugbuild){.cflags = "-DX='y"});
    assert_int_equal(r.rc, -1);
    assert_non_null(strstr(r.err, "--cflags: a ' quote is not closed"));
}

static void test_bad_inputs(void **state)
{
    const char *dir = *state;
    struct built r;
    build(&r, dir, "proto.txt", "int x;\n", (struct st_plugbuild){0});
    assert_int_equal(r.rc, -1);
    assert_non_null(strstr(r.err, "not a C or C++ source"));

    build(&r, dir, "missing.c", NULL, (struct st_plugbuild){0});
    assert_int_equal(r.rc, -1);
    assert_non_null(strstr(r.err, "cannot read "));

    build(&r, dir, "nocc.c", "int x;\n", (struct st_plugbuild){.cc = "no-such-compiler-here"});
    assert_int_equal(r.rc, -1);
    assert_non_null(strstr(r.err, "no-such-compiler-here could not be run (exit status 127)"));
    assert_non_null(strstr(r.err, "cannot run no-such-compiler-here"));

    build(&r, dir, "nocc.c", NULL, (struct st_plugbuild){.cc = "  "});
    assert_int_equal(r.rc, -1);
    assert_non_null(strstr(r.err, "the C compiler is empty"));

    char small[8], src[PATH_MAX];
    ut_path(src, sizeof(src), dir, "missing.c");
    r.rc = st_plugbuild(
        &(struct st_plugbuild){.src = src, .outdir = dir, .include_dir = IPCP_TEST_INCLUDE_DIR},
        r.plain, NULL, sizeof(r.plain), small, sizeof(small));
    assert_int_equal(r.rc, -1);
    assert_true(strlen(small) == sizeof(small) - 1); /* cut, terminated */
}

#define T(f) cmocka_unit_test_setup_teardown(f, ut_dir_setup, ut_dir_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cxx_driver_names),
        cmocka_unit_test(test_language_by_name),
        T(test_c_plugin),
        T(test_cxx_plugin),
        T(test_cxx_plugin_compiler_paths),
        T(test_cxx_without_cxx_driver),
        T(test_syntax_error),
        T(test_tsan_variant_error),
        T(test_long_error_output),
        T(test_cflags),
        T(test_bad_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

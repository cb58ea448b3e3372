/* elfinfo_test.c - the ThreadSanitizer flavour of real objects (a plain .so, clang and gcc TSan
 * builds, a clang-TSan executable), files that are no ELF, and every truncation plus many
 * corruptions of real images, which must give -1 or a kind, never a crash or a read out of
 * bounds (the sanitizer builds check the latter). */
#include <elf.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "elfinfo.h"
#include "splitmix.h"
#include "unitutil.h"

static const char *const lib_src = "#include <pthread.h>\n"
                                   "static int counter;\n"
                                   "static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;\n"
                                   "int bump(int by)\n"
                                   "{\n"
                                   "    pthread_mutex_lock(&m);\n"
                                   "    counter += by;\n"
                                   "    int v = counter;\n"
                                   "    pthread_mutex_unlock(&m);\n"
                                   "    return v;\n"
                                   "}\n";

static const char *const exe_src = "static volatile int x;\n"
                                   "int main(void) { x = 1; return x - 1; }\n";

static const char *const so_flags[] = {"-shared", "-fPIC", "-lpthread", NULL};
static const char *const tsan_so_flags[] = {"-shared", "-fPIC", "-fsanitize=thread", "-lpthread",
                                            NULL};
static const char *const tsan_exe_flags[] = {"-fsanitize=thread", NULL};

/* Compiles src (written to dir/<out>.c) with cc -g -O1 and flags into dir/out, and returns the
 * path of that; skips the test when cc is not installed. */
static const char *build(const char *dir, const char *cc, const char *const *flags, const char *src,
                         const char *out, char *path, size_t cap)
{
    char exe[PATH_MAX], c[PATH_MAX], log[PATH_MAX], file[256];
    if (ut_which(cc, exe, sizeof(exe)) == NULL) {
        print_message("%s is not installed: skipped\n", cc);
        skip();
    }
    snprintf(file, sizeof(file), "%s.c", out);
    ut_write(ut_path(c, sizeof(c), dir, file), src);
    ut_path(path, cap, dir, out);
    ut_path(log, sizeof(log), dir, "build.log");
    char *argv[24];
    int n = 0;
    argv[n++] = (char *)cc;
    argv[n++] = "-g";
    argv[n++] = "-O1";
    argv[n++] = c;
    argv[n++] = "-o";
    argv[n++] = path;
    for (int i = 0; flags[i] != NULL && n < 23; i++)
        argv[n++] = (char *)flags[i];
    argv[n] = NULL;
    int rc = ut_run(argv, log);
    if (rc != 0) {
        size_t len;
        unsigned char *text = ut_read(log, &len);
        print_error("%s failed (%d):\n%.*s\n", cc, rc, (int)len, (const char *)text);
        free(text);
    }
    assert_int_equal(rc, 0);
    return path;
}

static void test_plain_so(void **state)
{
    char so[PATH_MAX], why[256] = "";
    build(*state, "cc", so_flags, lib_src, "plain.so", so, sizeof(so));
    assert_int_equal(st_elf_tsan_kind(so, why, sizeof(why)), ST_TSAN_NONE);
    assert_non_null(strstr(why, "no ThreadSanitizer"));
    assert_int_equal(st_elf_needs(so, "libc.so"), 1);
    assert_int_equal(st_elf_needs(so, "libstdc++"), 0);
    assert_int_equal(st_elf_needs(so, "libtsan"), 0);
    assert_string_equal(st_tsan_kind_name(ST_TSAN_NONE), "none");
}

static void test_clang_tsan_so(void **state)
{
    char so[PATH_MAX], why[256] = "";
    build(*state, "clang-14", tsan_so_flags, lib_src, "clang-tsan.so", so, sizeof(so));
    assert_int_equal(st_elf_tsan_kind(so, why, sizeof(why)), ST_TSAN_CLANG);
    assert_non_null(strstr(why, "__tsan_"));
    assert_int_equal(st_elf_needs(so, "libtsan"), 0);
    assert_string_equal(st_tsan_kind_name(ST_TSAN_CLANG), "clang");
}

static void test_gcc_tsan_so(void **state)
{
    char so[PATH_MAX], why[256] = "";
    build(*state, "gcc", tsan_so_flags, lib_src, "gcc-tsan.so", so, sizeof(so));
    assert_int_equal(st_elf_tsan_kind(so, why, sizeof(why)), ST_TSAN_GCC);
    assert_non_null(strstr(why, "libtsan.so"));
    assert_int_equal(st_elf_needs(so, "libtsan.so"), 1);
    assert_string_equal(st_tsan_kind_name(ST_TSAN_GCC), "gcc");
}

/* clang links its runtime into the executable: the __tsan_* symbols are defined there. */
static void test_clang_tsan_executable(void **state)
{
    char exe[PATH_MAX], why[256] = "";
    build(*state, "clang-14", tsan_exe_flags, exe_src, "clang-tsan-exe", exe, sizeof(exe));
    assert_int_equal(st_elf_tsan_kind(exe, why, sizeof(why)), ST_TSAN_CLANG);
    assert_non_null(strstr(why, "runtime"));
}

static void test_not_elf(void **state)
{
    const char *dir = *state;
    char p[PATH_MAX], why[256];
    ut_write(ut_path(p, sizeof(p), dir, "text.so"), "this is not an ELF file\n");
    why[0] = '\0';
    assert_int_equal(st_elf_tsan_kind(p, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "not an ELF"));
    assert_int_equal(st_elf_needs(p, "libc"), -1);

    ut_write(ut_path(p, sizeof(p), dir, "empty.so"), "");
    assert_int_equal(st_elf_tsan_kind(p, why, sizeof(why)), -1);

    ut_write(ut_path(p, sizeof(p), dir, "magic.so"), "\177ELF");
    assert_int_equal(st_elf_tsan_kind(p, why, sizeof(why)), -1);

    why[0] = '\0';
    assert_int_equal(st_elf_tsan_kind(dir, why, sizeof(why)), -1); /* a directory */
    assert_non_null(strstr(why, "not a regular file"));

    ut_path(p, sizeof(p), dir, "missing.so");
    why[0] = '\0';
    assert_int_equal(st_elf_tsan_kind(p, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "cannot open"));
    assert_int_equal(st_elf_tsan_kind(p, NULL, 0), -1); /* why is optional */

    assert_int_equal(st_elf_tsan_kind_mem(NULL, 0, why, sizeof(why)), -1);
}

/* A 32-bit ELF header and one of the other byte order are refused by name. */
static void test_other_elf_classes(void **state)
{
    (void)state;
    unsigned char img[sizeof(Elf64_Ehdr)] = {0x7f, 'E', 'L', 'F', ELFCLASS32, ELFDATA2LSB, 1};
    char why[256] = "";
    assert_int_equal(st_elf_tsan_kind_mem(img, sizeof(img), why, sizeof(why)), -1);
    assert_non_null(strstr(why, "64-bit"));
    img[EI_CLASS] = ELFCLASS64;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    img[EI_DATA] = ELFDATA2MSB;
#else
    img[EI_DATA] = ELFDATA2LSB;
#endif
    assert_int_equal(st_elf_tsan_kind_mem(img, sizeof(img), why, sizeof(why)), -1);
    assert_non_null(strstr(why, "byte order"));
}

/* Calls the parser on an exact-size heap copy of img[0..len), so that the sanitizers see any
 * read past it. */
static int kind_copy(const unsigned char *img, size_t len)
{
    unsigned char *p = malloc(len ? len : 1);
    assert_non_null(p);
    if (len) memcpy(p, img, len);
    char why[256];
    int k = st_elf_tsan_kind_mem(p, len, why, sizeof(why));
    free(p);
    assert_true(k >= -1 && k <= ST_TSAN_GCC);
    return k;
}

/* The same on a buffer that already is exactly len bytes of the heap. */
static void kind_exact(const unsigned char *p, size_t len)
{
    char why[256];
    int k = st_elf_tsan_kind_mem(p, len, why, sizeof(why));
    assert_true(k >= -1 && k <= ST_TSAN_GCC);
}

/* Every truncation of a real image is refused (its section headers are at its end), in memory;
 * a sample of them as files too. */
static void truncations(const char *dir, const char *so, int expect)
{
    size_t size;
    unsigned char *img = ut_read(so, &size);
    assert_int_equal(kind_copy(img, size), expect);
    for (size_t len = 0; len < size; len++)
        assert_int_equal(kind_copy(img, len), -1);
    char p[PATH_MAX];
    ut_path(p, sizeof(p), dir, "truncated.so");
    for (size_t len = 0; len < size; len += size / 37 + 1) {
        FILE *f = fopen(p, "we");
        assert_non_null(f);
        assert_int_equal(fwrite(img, 1, len, f), len);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(st_elf_tsan_kind(p, NULL, 0), -1);
        assert_int_equal(st_elf_needs(p, "libc"), -1);
    }
    free(img);
}

static void test_truncated(void **state)
{
    char so[PATH_MAX];
    truncations(*state, build(*state, "cc", so_flags, lib_src, "t.so", so, sizeof(so)),
                ST_TSAN_NONE);
}

static void test_truncated_tsan(void **state)
{
    char so[PATH_MAX];
    truncations(*state, build(*state, "clang-14", tsan_so_flags, lib_src, "tt.so", so, sizeof(so)),
                ST_TSAN_CLANG);
}

static const uint64_t extremes[] = {0,
                                    1,
                                    7,
                                    8,
                                    63,
                                    64,
                                    0x7fffffffull,
                                    0xffffffffull,
                                    0x7fffffffffffffffull,
                                    0x8000000000000000ull,
                                    0xffffffffffffffffull,
                                    0xfffffffffffffff0ull};

static void put(unsigned char *p, size_t width, uint64_t v)
{
    if (width == 8) {
        memcpy(p, &v, 8);
    } else if (width == 4) {
        uint32_t w = (uint32_t)v;
        memcpy(p, &w, 4);
    } else {
        uint16_t w = (uint16_t)v;
        memcpy(p, &w, 2);
    }
}

/* Every field of the ELF header and of every section header set to extreme values and to
 * values near the file size, then random byte and word corruptions all over the image. */
static void corruptions(const unsigned char *img, size_t size)
{
    Elf64_Ehdr h;
    memcpy(&h, img, sizeof(h));
    assert_true(h.e_shoff + (uint64_t)h.e_shnum * sizeof(Elf64_Shdr) <= size);
    unsigned char *m = malloc(size);
    assert_non_null(m);
    size_t nvals = sizeof(extremes) / sizeof(extremes[0]);
    uint64_t vals[sizeof(extremes) / sizeof(extremes[0]) + 4];
    memcpy(vals, extremes, sizeof(extremes));
    vals[nvals++] = size;
    vals[nvals++] = size - 1;
    vals[nvals++] = size + 1;
    vals[nvals++] = size / 2;

    /* the ELF header, 2-byte steps with 2, 4 and 8-byte values */
    for (size_t off = 0; off + 2 <= sizeof(Elf64_Ehdr); off += 2)
        for (size_t w = 2; w <= 8; w *= 2)
            for (size_t v = 0; v < nvals && off + w <= sizeof(Elf64_Ehdr); v++) {
                memcpy(m, img, size);
                put(m + off, w, vals[v]);
                kind_exact(m, size);
            }
    /* every section header field */
    static const struct {
        size_t off, width;
    } fields[] = {
        {offsetof(Elf64_Shdr, sh_name), 4},      {offsetof(Elf64_Shdr, sh_type), 4},
        {offsetof(Elf64_Shdr, sh_flags), 8},     {offsetof(Elf64_Shdr, sh_addr), 8},
        {offsetof(Elf64_Shdr, sh_offset), 8},    {offsetof(Elf64_Shdr, sh_size), 8},
        {offsetof(Elf64_Shdr, sh_link), 4},      {offsetof(Elf64_Shdr, sh_info), 4},
        {offsetof(Elf64_Shdr, sh_addralign), 8}, {offsetof(Elf64_Shdr, sh_entsize), 8},
    };
    for (size_t s = 0; s < h.e_shnum; s++)
        for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++)
            for (size_t v = 0; v < nvals; v++) {
                memcpy(m, img, size);
                put(m + h.e_shoff + s * sizeof(Elf64_Shdr) + fields[f].off, fields[f].width,
                    vals[v]);
                kind_exact(m, size);
            }
    /* section types swapped around: a string table where symbols are expected and so on */
    static const uint32_t types[] = {SHT_NULL,   SHT_STRTAB, SHT_DYNAMIC,
                                     SHT_DYNSYM, SHT_NOBITS, SHT_SYMTAB};
    for (size_t s = 0; s < h.e_shnum; s++)
        for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
            memcpy(m, img, size);
            put(m + h.e_shoff + s * sizeof(Elf64_Shdr) + offsetof(Elf64_Shdr, sh_type), 4,
                types[t]);
            kind_exact(m, size);
        }
    /* random corruption: a few bytes or words anywhere, or in the section headers */
    uint64_t rs = 0x1234567;
    for (int iter = 0; iter < 20000; iter++) {
        memcpy(m, img, size);
        int edits = 1 + (int)(splitmix64_next(&rs) % 8);
        for (int e = 0; e < edits; e++) {
            uint64_t r = splitmix64_next(&rs);
            size_t off;
            if (r % 3 == 0)
                off = h.e_shoff + (size_t)((r >> 8) % ((uint64_t)h.e_shnum * sizeof(Elf64_Shdr)));
            else
                off = (size_t)((r >> 8) % size);
            if (r % 5 == 0 && off + 8 <= size)
                put(m + off, 8, vals[(r >> 40) % nvals]);
            else
                m[off] = (unsigned char)(splitmix64_next(&rs) & 0xff);
        }
        kind_exact(m, size);
    }
    free(m);
}

static void test_corrupted(void **state)
{
    char so[PATH_MAX];
    size_t size;
    unsigned char *img =
        ut_read(build(*state, "cc", so_flags, lib_src, "c.so", so, sizeof(so)), &size);
    corruptions(img, size);
    free(img);
}

static void test_corrupted_tsan(void **state)
{
    char so[PATH_MAX];
    size_t size;
    unsigned char *img =
        ut_read(build(*state, "clang-14", tsan_so_flags, lib_src, "ct.so", so, sizeof(so)), &size);
    corruptions(img, size);
    free(img);
}

#define T(f) cmocka_unit_test_setup_teardown(f, ut_dir_setup, ut_dir_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_plain_so),    T(test_clang_tsan_so),
        T(test_gcc_tsan_so), T(test_clang_tsan_executable),
        T(test_not_elf),     T(test_other_elf_classes),
        T(test_truncated),   T(test_truncated_tsan),
        T(test_corrupted),   T(test_corrupted_tsan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

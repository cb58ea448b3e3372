/* elfinfo.c - ThreadSanitizer flavour and DT_NEEDED of an ELF file; see elfinfo.h.
 *
 * Only the pieces that are needed are read: the ELF header, the section headers, the dynamic
 * section with its string table and the dynamic symbol table with its string table. Each piece
 * is bounds-checked against the file size and against a per-piece limit before it is read, and
 * each string table gets a NUL byte past its end so that no string can run off it. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elfinfo.h"

#define MAX_FILE     (512ull << 20) /* larger files are not plugins */
#define MAX_SECTIONS 65536u
#define MAX_TABLE    (64ull << 20) /* one symbol or string table */

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HOST_DATA ELFDATA2LSB
#else
#define HOST_DATA ELFDATA2MSB
#endif

struct rd {
    int fd;                   /* >= 0: pread() from it; -1: mem */
    const unsigned char *mem; /* the image when fd < 0 */
    uint64_t size;
};

struct elf {
    Elf64_Shdr *sh;
    size_t shnum;
    Elf64_Dyn *dyn;
    size_t ndyn;
    char *dynstr; /* string table of the dynamic section, NUL past its end */
    uint64_t dynstr_size;
    Elf64_Sym *sym;
    size_t nsym;
    char *symstr;
    uint64_t symstr_size;
};

static void say(char *why, size_t cap, const char *fmt, ...)
{
    if (why == NULL || cap == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
}

/* len bytes at off into dst; -1 when they are not all inside the file. */
static int rd_get(const struct rd *r, uint64_t off, uint64_t len, void *dst)
{
    if (len > r->size || off > r->size - len) return -1;
    if (len == 0) return 0;
    if (r->fd < 0) {
        memcpy(dst, r->mem + off, (size_t)len);
        return 0;
    }
    uint64_t done = 0;
    while (done < len) {
        ssize_t n = pread(r->fd, (char *)dst + done, (size_t)(len - done), (off_t)(off + done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1; /* error, or the file shrank under us */
        done += (uint64_t)n;
    }
    return 0;
}

/* A fresh copy of len bytes at off, with a NUL byte after them. */
static void *rd_dup(const struct rd *r, uint64_t off, uint64_t len)
{
    if (len > MAX_TABLE) return NULL;
    unsigned char *p = malloc((size_t)len + 1);
    if (p == NULL) return NULL;
    if (rd_get(r, off, len, p) != 0) {
        free(p);
        return NULL;
    }
    p[len] = '\0';
    return p;
}

static void elf_free(struct elf *e)
{
    free(e->sh);
    free(e->dyn);
    free(e->dynstr);
    free(e->sym);
    free(e->symstr);
    memset(e, 0, sizeof(*e));
}

static const char *piece_problem(const struct rd *r, const Elf64_Shdr *s)
{
    if (s->sh_type == SHT_NOBITS) return "has no bytes in the file";
    if (s->sh_size > MAX_TABLE) return "is larger than 64 MiB";
    if (s->sh_size > r->size || s->sh_offset > r->size - s->sh_size)
        return "ends past the end of the file (truncated?)";
    return NULL;
}

/* Loads the string table of section index link into *str / *size. */
static int load_strtab(const struct rd *r, const struct elf *e, uint64_t link, const char *what,
                       char **str, uint64_t *size, char *why, size_t cap)
{
    if (link == 0 || link >= e->shnum) {
        say(why, cap, "the %s section links to no valid string table (section %llu of %zu)", what,
            (unsigned long long)link, e->shnum);
        return -1;
    }
    const Elf64_Shdr *s = &e->sh[link];
    if (s->sh_type != SHT_STRTAB) {
        say(why, cap, "the string table of the %s section is not a string table (type %u)", what,
            (unsigned)s->sh_type);
        return -1;
    }
    const char *p = piece_problem(r, s);
    if (p != NULL) {
        say(why, cap, "the string table of the %s section %s", what, p);
        return -1;
    }
    *str = rd_dup(r, s->sh_offset, s->sh_size);
    if (*str == NULL) {
        say(why, cap, "cannot read the string table of the %s section", what);
        return -1;
    }
    *size = s->sh_size;
    return 0;
}

static int elf_load(const struct rd *r, struct elf *e, char *why, size_t cap)
{
    memset(e, 0, sizeof(*e));
    Elf64_Ehdr h;
    if (r->size < EI_NIDENT) {
        say(why, cap, "not an ELF file (%llu bytes)", (unsigned long long)r->size);
        return -1;
    }
    unsigned char ident[EI_NIDENT];
    if (rd_get(r, 0, EI_NIDENT, ident) != 0 || memcmp(ident, ELFMAG, SELFMAG) != 0) {
        say(why, cap, "not an ELF file");
        return -1;
    }
    if (ident[EI_CLASS] != ELFCLASS64) {
        say(why, cap, "not a 64-bit ELF file (class %u)", ident[EI_CLASS]);
        return -1;
    }
    if (ident[EI_DATA] != HOST_DATA) {
        say(why, cap, "an ELF file of the other byte order");
        return -1;
    }
    if (rd_get(r, 0, sizeof(h), &h) != 0) {
        say(why, cap, "truncated: %llu bytes, shorter than an ELF header",
            (unsigned long long)r->size);
        return -1;
    }
    if (h.e_type != ET_DYN && h.e_type != ET_EXEC) {
        say(why, cap, "not a shared object or executable (ELF type %u)", (unsigned)h.e_type);
        return -1;
    }
    if (h.e_shoff == 0) {
        say(why, cap, "no section headers");
        return -1;
    }
    if (h.e_shentsize != sizeof(Elf64_Shdr)) {
        say(why, cap, "section headers of %u bytes instead of %zu", (unsigned)h.e_shentsize,
            sizeof(Elf64_Shdr));
        return -1;
    }
    uint64_t shnum = h.e_shnum;
    if (shnum == 0) { /* extended numbering: the count is in section 0 */
        Elf64_Shdr s0;
        if (rd_get(r, h.e_shoff, sizeof(s0), &s0) != 0) {
            say(why, cap, "truncated: section header 0 is past the end of the file");
            return -1;
        }
        shnum = s0.sh_size;
    }
    if (shnum == 0 || shnum > MAX_SECTIONS) {
        say(why, cap, "%llu section headers", (unsigned long long)shnum);
        return -1;
    }
    uint64_t shbytes = shnum * sizeof(Elf64_Shdr);
    e->sh = malloc((size_t)shbytes);
    if (e->sh == NULL) {
        say(why, cap, "out of memory");
        return -1;
    }
    e->shnum = (size_t)shnum;
    if (rd_get(r, h.e_shoff, shbytes, e->sh) != 0) {
        say(why, cap, "truncated: the section headers end past the end of the file (%llu bytes)",
            (unsigned long long)r->size);
        goto fail;
    }

    const Elf64_Shdr *dyn = NULL, *sym = NULL;
    for (size_t i = 1; i < e->shnum; i++) {
        if (e->sh[i].sh_type == SHT_DYNAMIC && dyn == NULL) dyn = &e->sh[i];
        if (e->sh[i].sh_type == SHT_DYNSYM && sym == NULL) sym = &e->sh[i];
    }
    if (dyn == NULL) {
        say(why, cap, "no dynamic section (a static executable or an object file?)");
        goto fail;
    }
    const char *p = piece_problem(r, dyn);
    if (p != NULL) {
        say(why, cap, "the dynamic section %s", p);
        goto fail;
    }
    if (dyn->sh_entsize != 0 && dyn->sh_entsize != sizeof(Elf64_Dyn)) {
        say(why, cap, "dynamic entries of %llu bytes", (unsigned long long)dyn->sh_entsize);
        goto fail;
    }
    e->ndyn = (size_t)(dyn->sh_size / sizeof(Elf64_Dyn));
    e->dyn = rd_dup(r, dyn->sh_offset, (uint64_t)e->ndyn * sizeof(Elf64_Dyn));
    if (e->dyn == NULL) {
        say(why, cap, "cannot read the dynamic section");
        goto fail;
    }
    if (load_strtab(r, e, dyn->sh_link, "dynamic", &e->dynstr, &e->dynstr_size, why, cap) != 0)
        goto fail;

    if (sym != NULL) {
        p = piece_problem(r, sym);
        if (p != NULL) {
            say(why, cap, "the dynamic symbol table %s", p);
            goto fail;
        }
        if (sym->sh_entsize != sizeof(Elf64_Sym)) {
            say(why, cap, "dynamic symbols of %llu bytes", (unsigned long long)sym->sh_entsize);
            goto fail;
        }
        e->nsym = (size_t)(sym->sh_size / sizeof(Elf64_Sym));
        e->sym = rd_dup(r, sym->sh_offset, (uint64_t)e->nsym * sizeof(Elf64_Sym));
        if (e->sym == NULL) {
            say(why, cap, "cannot read the dynamic symbol table");
            goto fail;
        }
        if (load_strtab(r, e, sym->sh_link, "dynamic symbol", &e->symstr, &e->symstr_size, why,
                        cap) != 0)
            goto fail;
    }
    return 0;
fail:
    elf_free(e);
    return -1;
}

/* The next DT_NEEDED name from dynamic entry *it on, or NULL at the end (DT_NULL or the last
 * entry). */
static const char *next_needed(const struct elf *e, size_t *it)
{
    while (*it < e->ndyn) {
        const Elf64_Dyn *d = &e->dyn[(*it)++];
        if (d->d_tag == DT_NULL) {
            *it = e->ndyn;
            break;
        }
        if (d->d_tag == DT_NEEDED && d->d_un.d_val < e->dynstr_size)
            return e->dynstr + d->d_un.d_val; /* terminated: rd_dup put a NUL past the table */
    }
    return NULL;
}

static int classify(const struct elf *e, char *why, size_t cap)
{
    size_t it = 0;
    const char *lib;
    while ((lib = next_needed(e, &it)) != NULL) {
        if (strncmp(lib, "libtsan.so", 10) == 0) {
            say(why, cap, "needs %.64s (gcc's ThreadSanitizer runtime)", lib);
            return ST_TSAN_GCC;
        }
    }
    size_t refs = 0, defs = 0;
    const char *first = NULL;
    for (size_t i = 0; i < e->nsym; i++) {
        uint64_t n = e->sym[i].st_name;
        if (n == 0 || n >= e->symstr_size) continue;
        const char *name = e->symstr + n;
        if (strncmp(name, "__tsan_", 7) != 0) continue;
        if (first == NULL || strcmp(name, "__tsan_init") == 0) first = name;
        if (e->sym[i].st_shndx == SHN_UNDEF)
            refs++;
        else
            defs++;
    }
    if (refs + defs == 0) {
        say(why, cap, "no ThreadSanitizer symbols: not built with -fsanitize=thread");
        return ST_TSAN_NONE;
    }
    if (defs > 0)
        say(why, cap, "contains clang's ThreadSanitizer runtime (%zu __tsan_* symbols, %.64s...)",
            defs, first);
    else
        say(why, cap,
            "references %zu __tsan_* symbols (%.64s...) and does not need libtsan: built with "
            "clang's ThreadSanitizer",
            refs, first);
    return ST_TSAN_CLANG;
}

/* Opens path for reading and fills r; -1 with a reason. */
static int rd_open(const char *path, struct rd *r, char *why, size_t cap)
{
    r->mem = NULL;
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) {
        say(why, cap, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(r->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        say(why, cap, "%s is not a regular file", path);
        close(r->fd);
        return -1;
    }
    if ((uint64_t)st.st_size > MAX_FILE) {
        say(why, cap, "%s is larger than 512 MiB: not a plugin", path);
        close(r->fd);
        return -1;
    }
    r->size = (uint64_t)st.st_size;
    return 0;
}

static int kind_of(const struct rd *r, char *why, size_t cap)
{
    struct elf e;
    if (elf_load(r, &e, why, cap) != 0) return -1;
    int k = classify(&e, why, cap);
    elf_free(&e);
    return k;
}

int st_elf_tsan_kind(const char *path, char *why, size_t cap)
{
    struct rd r;
    if (rd_open(path, &r, why, cap) != 0) return -1;
    int k = kind_of(&r, why, cap);
    close(r.fd);
    return k;
}

int st_elf_tsan_kind_mem(const void *data, size_t size, char *why, size_t cap)
{
    if (data == NULL && size > 0) return -1;
    struct rd r = {.fd = -1, .mem = data, .size = size};
    return kind_of(&r, why, cap);
}

int st_elf_needs(const char *path, const char *lib_prefix)
{
    struct rd r;
    if (rd_open(path, &r, NULL, 0) != 0) return -1;
    struct elf e;
    int rc = elf_load(&r, &e, NULL, 0);
    close(r.fd);
    if (rc != 0) return -1;
    size_t it = 0, plen = strlen(lib_prefix);
    const char *lib;
    int found = 0;
    while (!found && (lib = next_needed(&e, &it)) != NULL)
        found = strncmp(lib, lib_prefix, plen) == 0;
    elf_free(&e);
    return found;
}

const char *st_tsan_kind_name(int kind)
{
    switch (kind) {
    case ST_TSAN_NONE:
        return "none";
    case ST_TSAN_CLANG:
        return "clang";
    case ST_TSAN_GCC:
        return "gcc";
    default:
        return "unknown";
    }
}

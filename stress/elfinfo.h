/* elfinfo.h - what a plugin (or an ipcproof binary) was built with, read from its ELF file
 * without loading it.
 *
 * ThreadSanitizer comes in two runtimes that cannot share a process: clang links its runtime
 * statically into the executable and an instrumented shared object only references __tsan_*
 * symbols, while gcc's instrumented code needs libtsan.so.* (DT_NEEDED), which cannot be loaded
 * into a clang-TSan process ("cannot allocate memory in static TLS block"). These functions tell
 * them apart so that a mismatch can be refused with an explanation instead of a dlopen() error.
 *
 * Every offset and size in the file is untrusted: a truncated or garbage file gives -1, never a
 * crash. The file is read with pread() (no mapping that a concurrent truncation could turn into
 * SIGBUS); 64-bit ELF of the host's byte order only. */
#ifndef IPCP_STRESS_ELFINFO_H
#define IPCP_STRESS_ELFINFO_H

#include <stddef.h>

enum st_tsan_kind { ST_TSAN_NONE = 0, ST_TSAN_CLANG = 1, ST_TSAN_GCC = 2 };

/* Reads the ELF shared object (or executable) at path. Returns an enum st_tsan_kind, or -1 when
 * it is not a readable 64-bit ELF file of this machine's byte order with a dynamic section. why
 * (may be NULL) gets the reason in both cases, e.g. "needs libtsan.so.2 (gcc's ThreadSanitizer
 * runtime)" or "truncated: section headers end past the end of the file (4096 bytes)".
 * GCC: a DT_NEEDED entry starts with "libtsan.so". CLANG: no libtsan, and its dynamic symbols
 * reference (a plugin) or define (a clang-TSan executable) __tsan_* symbols. */
int st_elf_tsan_kind(const char *path, char *why, size_t cap);

/* The same on an ELF image in memory (size bytes at data). */
int st_elf_tsan_kind_mem(const void *data, size_t size, char *why, size_t cap);

/* 1 when a DT_NEEDED entry of the file starts with lib_prefix (e.g. "libstdc++"), 0 when none
 * does, -1 when the file cannot be read as above. */
int st_elf_needs(const char *path, const char *lib_prefix);

/* "none", "clang", "gcc", or "unknown". */
const char *st_tsan_kind_name(int kind);

#endif

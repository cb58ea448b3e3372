/* plugbuild.h - building a plugin from its source for `ipcproof validate --plugin-src`.
 *
 * Two variants: a plain one with the user's compiler, and a ThreadSanitizer one with the
 * compiler that built the TSan ipcproof (a TSan plugin must use the runtime of the binary that
 * loads it). C++ sources are compiled and linked with the C++ driver that matches each compiler
 * (clang-14 -> clang++-14, gcc-12 -> g++-12, cc -> c++, /usr/bin/clang-14 -> /usr/bin/clang++-14),
 * so libstdc++ is linked in. Compilers run through st_spawn_exec() with a deadline; their output
 * goes to <outdir>/build.log, each command line written before its output. */
#ifndef IPCP_STRESS_PLUGBUILD_H
#define IPCP_STRESS_PLUGBUILD_H

#include <stddef.h>

struct st_plugbuild {
    const char *src;     /* FILE.c, or C++: FILE.cc .cpp .cxx .cp .CPP .C .c++ */
    const char *cflags;  /* extra flags (--cflags), split like a shell does: blanks separate words,
                            '...' and "..." quote, backslash escapes; no expansion. NULL = none */
    const char *outdir;  /* an existing directory: <stem>.so, <stem>-tsan.so and build.log */
    const char *cc;      /* C compiler of the plain build ($CC; may carry words such as "ccache gcc"
                            or "gcc -m64"); NULL or "" = "cc" */
    const char *cxx;     /* C++ compiler of the plain build of a C++ source ($CXX); NULL or "" =
                            the C++ driver matching cc (with cc not given either and no c++
                            installed: the C++ driver of tsan_cc, with a note) */
    const char *tsan_cc; /* C compiler of the TSan ipcproof ("clang-14" or a path);
                            NULL or "" = no TSan variant */
    const char *include_dir; /* the directory holding ipcproof/plugin.h */
};

/* Builds the plain variant into plain and, when b->tsan_cc is set, the TSan variant into tsan
 * (tsan may be NULL otherwise; it is "" when no TSan variant was built). Returns 0, with notes
 * worth showing the user in err ("" when none: e.g. that a C++ driver was not found and the C
 * driver was used with -lstdc++). Returns -1 with the failure in err: the source or --cflags
 * that could not be used, or which variant failed with which compiler, how (exit status,
 * signal, timeout), the command line, and the compiler's output (the first lines and the last
 * ones, about 40 in all), then where the whole log is. An errcap of 8 KiB is enough. */
int st_plugbuild(const struct st_plugbuild *b, char *plain, char *tsan, size_t pathcap, char *err,
                 size_t errcap);

/* 1 when src names a C++ source, 0 a C one, -1 neither (by its extension). */
int st_plugbuild_is_cxx(const char *src);

/* The C++ driver matching the C compiler cc (a name or a path): clang[-N] -> clang++[-N],
 * [prefix-]gcc[-N] -> [prefix-]g++[-N], cc -> c++, afl-clang-fast -> afl-clang-fast++, a driver
 * that already is a C++ one -> itself. The directory part of a path is kept. Returns 1 with the
 * name in out, or 0 (out = cc) when no rule applies. Does not look whether it exists. */
int st_cxx_driver(const char *cc, char *out, size_t cap);

#endif

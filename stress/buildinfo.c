/* buildinfo.c - what this ipcproof binary is: its compiler, sanitizers, path, and where its
 * companions (the short-io interposer) are. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stress.h"

#ifndef IPCP_BUILD_SANITIZERS
#define IPCP_BUILD_SANITIZERS ""
#endif
#ifndef IPCP_BUILD_CC
#define IPCP_BUILD_CC "cc"
#endif

const char *st_build_sanitizers(void)
{
    return IPCP_BUILD_SANITIZERS;
}

const char *st_build_cc(void)
{
    return IPCP_BUILD_CC;
}

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define BUILT_WITH_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__) && !defined(BUILT_WITH_TSAN)
#define BUILT_WITH_TSAN 1
#endif

int st_is_tsan_build(void)
{
#ifdef BUILT_WITH_TSAN
    return 1;
#else
    return 0;
#endif
}

const char *st_self_exe(void)
{
    static char path[PATH_MAX];
    if (path[0] == '\0') {
        ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
        if (n <= 0) return "ipcproof";
        path[n] = '\0';
    }
    return path;
}

static int exists(const char *p)
{
    return access(p, R_OK) == 0;
}

/* A library of ipcproof's: $ENV when set (and readable), else next to the binary (a build tree)
 * or in the libdir (an install); NULL when none is there. */
static const char *find_lib(const char *env_name, const char *file, char *path, size_t cap)
{
    const char *env = getenv(env_name);
    if (env && *env) return exists(env) ? env : NULL;
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", st_self_exe());
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    snprintf(path, cap, "%s/%s", dir, file);
    if (exists(path)) return path;
#ifdef IPCP_BIN_TO_LIBDIR
    snprintf(path, cap, "%s/%s/%s", dir, IPCP_BIN_TO_LIBDIR, file);
    if (exists(path)) return path;
#endif
    return NULL;
}

const char *st_faults_lib(void)
{
    static char path[PATH_MAX * 2];
    return find_lib("IPCPROOF_FAULTS_LIB", "libipcproof-faults.so", path, sizeof(path));
}

const char *st_sched_lib(void)
{
    static char path[PATH_MAX * 2];
    return find_lib("IPCPROOF_SCHED_LIB", "libipcproof-sched.so", path, sizeof(path));
}

const char *st_protos_sched_lib(void)
{
    static char path[PATH_MAX * 2];
    return find_lib("IPCPROOF_PROTOS_SCHED_LIB", "libipcproof-protos-sched.so", path, sizeof(path));
}

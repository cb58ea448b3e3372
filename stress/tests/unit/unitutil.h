/* unitutil.h - helpers of the stress/ unit tests (cmocka): a scratch directory per test, files,
 * and compilers run as child processes through spawn.h. */
#ifndef IPCP_STRESS_UNITUTIL_H
#define IPCP_STRESS_UNITUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

/* Whether this test binary is built with ThreadSanitizer (a clang-TSan plugin can be loaded). */
#if defined(__SANITIZE_THREAD__)
#define UT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UT_TSAN 1
#endif
#endif
#ifndef UT_TSAN
#define UT_TSAN 0
#endif

/* cmocka setup / teardown: *state becomes a fresh directory (char *), removed afterwards. */
int ut_dir_setup(void **state);
int ut_dir_teardown(void **state);

/* dir/name into buf; returns buf. */
char *ut_path(char *buf, size_t cap, const char *dir, const char *name);

/* Writes text to path (asserts). */
void ut_write(const char *path, const char *text);

/* The whole file in a malloc'd buffer (asserts); *size gets its length. */
unsigned char *ut_read(const char *path, size_t *size);

/* The full path of a program found through $PATH into buf, or NULL when there is none. */
const char *ut_which(const char *prog, char *buf, size_t cap);

/* Runs argv (NULL-terminated) with its output to log (NULL: to /dev/null); returns its exit
 * status, 128 + signal, or -1 (it did not finish within 300 s). */
int ut_run(char *const argv[], const char *log);

#endif

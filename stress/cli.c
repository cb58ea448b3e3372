/* cli.c - command-line helpers; see cli.h. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

_Noreturn void st_cli_die(const char *cmd, const char *fmt, ...)
{
    fflush(stdout);
    fprintf(stderr, "ipcproof %s: ", cmd);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(`ipcproof help` lists the commands and their options)\n");
    exit(2);
}

uint64_t st_cli_u64(const char *cmd, const char *opt, const char *s, uint64_t min, uint64_t max)
{
    const char *p = s;
    while (*p == ' ')
        p++;
    int ok = isdigit((unsigned char)*p);
    char *end = (char *)p;
    unsigned long long v = 0;
    if (ok) {
        errno = 0;
        v = strtoull(p, &end, 10);
        ok = errno == 0 && *end == '\0' && v >= min && v <= max;
    }
    if (!ok)
        st_cli_die(cmd, "%s: '%s' is not a whole number in %" PRIu64 "..%" PRIu64, opt, s, min,
                   max);
    return v;
}

double st_cli_double(const char *cmd, const char *opt, const char *s, double min, double max)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    /* decimal only: no hex floats, no inf/nan */
    int ok = errno == 0 && end != s && *end == '\0' && isfinite(v) && v >= min && v <= max;
    for (const char *p = s; ok && *p; p++)
        if (!isdigit((unsigned char)*p) && *p != '.' && *p != 'e' && *p != 'E' && *p != '-' &&
            *p != '+')
            ok = 0;
    if (!ok) st_cli_die(cmd, "%s: '%s' is not a number in %g..%g", opt, s, min, max);
    return v;
}

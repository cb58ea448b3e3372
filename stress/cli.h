/* cli.h - command-line helpers shared by the ipcproof commands: every bad value is refused on
 * stderr with the option it came with and exit status 2, before anything runs. */
#ifndef IPCP_STRESS_CLI_H
#define IPCP_STRESS_CLI_H

#include <stdint.h>

/* "ipcproof CMD: MESSAGE" and a pointer to the usage on stderr; exit(2). */
_Noreturn void st_cli_die(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A decimal integer in [min, max] ("010" is ten), or st_cli_die naming opt. */
uint64_t st_cli_u64(const char *cmd, const char *opt, const char *s, uint64_t min, uint64_t max);

/* A decimal number in [min, max], or st_cli_die naming opt. */
double st_cli_double(const char *cmd, const char *opt, const char *s, double min, double max);

#endif

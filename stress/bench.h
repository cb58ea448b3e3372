/* bench.h - `ipcproof bench`: every protocol of libipcproof measured against its raw mechanism
 * and the physical limit in one interleaved run (stress/bench.c; figures in docs/bench.md). */
#ifndef IPCP_BENCH_H
#define IPCP_BENCH_H

/* Entry of the subcommand; argv[0] is "bench". Prints the table on stdout (and the rows as JSON
 * with --json FILE). Returns 0 when every row was measured (missed aims included: a benchmark
 * reports, it does not judge), 1 when a measurement failed, 2 on a usage error. */
int st_bench_main(int argc, char **argv);

/* bench_chan.c: channel rows driven through the plugin ABI, each built-in protocol against its
 * raw mechanism (or, for ring-sysv, against the POSIX ring). */
#include <stddef.h>

#include "ipcproof/plugin.h"

struct st_bench_chan {
    const char *stem;                     /* row name stem: "sysv-msg" */
    const struct ipcp_channel_ops *proto; /* the built-in protocol */
    const struct ipcp_channel_ops *raw;   /* the baseline; its .name names it in the table */
    unsigned slots;                       /* capacity hint in messages (0: the default) */
};
extern const struct st_bench_chan st_bench_chans[];
extern const size_t st_bench_nchans;

#endif

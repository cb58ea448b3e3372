/* bench.h - `ipcproof bench`: every protocol of libipcproof measured against its raw mechanism
 * and the physical limit in one interleaved run (stress/bench.c; figures in docs/bench.md). */
#ifndef IPCP_BENCH_H
#define IPCP_BENCH_H

/* Entry of the subcommand; argv[0] is "bench". Prints the table on stdout (and the rows as JSON
 * with --json FILE). Returns 0 when every row was measured (missed aims included: a benchmark
 * reports, it does not judge), 1 when a measurement failed, 2 on a usage error. */
int st_bench_main(int argc, char **argv);

#endif

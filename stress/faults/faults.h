/* faults.h - what ipcproof and libipcproof-faults.so share when the interposer runs inside a
 * program (an exec endpoint, docs/exec.md) rather than inside ipcproof's own workers.
 *
 * ipcproof starts the program with LD_PRELOAD naming the interposer and these variables. Every
 * dynamically linked image of the program's process tree (the /bin/sh -c that runs the command,
 * the interpreter, the program, its children) loads it; its constructor maps the counters page
 * (an inherited memfd), counts itself, installs a handler for IPCP_FX_SIGNAL without SA_RESTART
 * and, when a rate is given, injects short counts, EINTR and EAGAIN into the reads and writes of
 * pipes, FIFOs and sockets - except the contract pipes with ipcproof, listed in IPCP_FX_ENV_SKIP.
 * A static binary (or a setuid one: the loader ignores LD_PRELOAD there) loads nothing; ipcproof
 * sees that in /proc (the library is not mapped in the process) and makes the case n/a.
 *
 * The page lives in memory the program can write: ipcproof reads its counters as untrusted
 * numbers (a program that scribbles on them fools the counts, never ipcproof's memory). */
#ifndef IPCP_STRESS_FAULTS_H
#define IPCP_STRESS_FAULTS_H

#include <signal.h>
#include <stdint.h>

#define IPCP_FX_LIB      "libipcproof-faults.so"
#define IPCP_FX_ENV_FD   "IPCPROOF_FAULTS_FD"   /* the counters page: an fd of a memfd */
#define IPCP_FX_ENV_RATE "IPCPROOF_FAULTS_RATE" /* short-io: faults per million calls; 0: none */
#define IPCP_FX_ENV_SEED                                                                           \
    "IPCPROOF_FAULTS_SEED" /* the random stream of every image derives from it */
#define IPCP_FX_ENV_SKIP "IPCPROOF_FAULTS_SKIP" /* "dev:ino,...": the pipes never faulted */
#define IPCP_FX_MEMFD    "ipcproof-faults"      /* the memfd's name (/proc/self/fd/N says it) */
#define IPCP_FX_SIGNAL   SIGURG /* ignored by default: harmless where the handler is missing */
#define IPCP_FX_MAGIC    0x7866706370690001ull
#define IPCP_FX_MAX_SKIP 8

struct ipcp_fx_page {
    uint64_t magic;            /* IPCP_FX_MAGIC, written by ipcproof */
    _Atomic uint64_t images;   /* program images the interposer started in */
    _Atomic uint64_t injected; /* faults injected into their pipe, FIFO and socket calls */
    _Atomic uint64_t signals;  /* IPCP_FX_SIGNALs their handler took */
};

#endif

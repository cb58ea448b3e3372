/* exec.h - black-box endpoints: the user's own programs as producers and consumers (--exec-*).
 *
 * The contract (docs/exec.md, version ST_EXEC_CONTRACT): every program runs through /bin/sh -c
 * in a process group of its own, with IPCPROOF_* variables in its environment. A producer reads
 * the messages it must send from its stdin, each as a 4-byte little-endian length and the bytes,
 * sends them in order through the protocol under test and exits 0 at stdin EOF. A consumer
 * writes every message it receives to its stdout in the same framing; when ipcproof closes its
 * stdin (every producer has ended) it writes what it still has and exits 0.
 *
 * The endpoints are an ordinary channel protocol to the rest of the engine (st_exec_ops): the
 * worker process of each endpoint starts the program in open(), send() writes a record to the
 * producer's stdin, recv() reads one from the consumer's stdout, and st_exec_close() closes
 * stdin and judges how the program ended. Everything a program writes is untrusted. */
#ifndef IPCP_STRESS_EXEC_H
#define IPCP_STRESS_EXEC_H

#include <stdint.h>
#include <sys/types.h>

#include "ipcproof/plugin.h"
#include "stress.h"

#define ST_EXEC_CONTRACT 1        /* IPCPROOF_EXEC_CONTRACT in the programs' environment */
#define ST_EXEC_PROTO    "(exec)" /* st_config.proto of an --exec case */
#define ST_EXEC_DECLINE  77       /* --exec-setup's exit status for "not this configuration" */

/* How a program failed the contract (st_slot.exec_why); exec_val says more. */
enum st_exec_why {
    ST_EX_NONE = 0,
    ST_EX_SPAWN,     /* could not start: val = errno */
    ST_EX_STATUS,    /* exited with status val (not 0) */
    ST_EX_SIGNAL,    /* killed by signal val (not by ipcproof) */
    ST_EX_EARLY,     /* producer: exited (status val) before the end of its stdin */
    ST_EX_NOEXIT,    /* did not exit within val ms of the end of its stdin: killed */
    ST_EX_FRAMING,   /* consumer: malformed record on stdout (val: the length it declared) */
    ST_EX_TRUNCATED, /* consumer: stdout ended inside a record (val: bytes of it that came) */
    ST_EX_LINE,      /* lock worker: not the line the contract says (val: which case) */
};
/* A sentence for a failure: "exited with status 3", ... */
const char *st_exec_why_text(int why, int64_t val, char *buf, size_t cap);

/* The endpoints as a channel protocol (IPCP_CHAN_FIFO when --fifo was given), or as a lock
 * (--exec-worker; IPCP_LOCK_ROBUST with --robust); NULL for the other kind. */
const struct ipcp_channel_ops *st_exec_chan(void);
const struct ipcp_lock_ops *st_exec_lock(void);

/* Before anything forks: the commands and the case the endpoints belong to. */
void st_exec_bind(const struct st_config *c);
void st_exec_bind_case(const struct st_case *cs);

/* The program's process group (> 1) once open() started it, else 0. */
pid_t st_exec_pgid(void *ep);
/* Ends the endpoint: closes the program's stdin, waits for it (producers: as long as it takes,
 * the watchdog watches; consumers: ST_DRAIN_MS), kills what is left of its process group and
 * frees ep. Returns ST_EX_NONE or the failure, with *val; fx (may be NULL) gets what
 * --fault short-io/signals did in the program (execfx.h). */
struct st_exfx_out;
int st_exec_close(void *ep, int64_t *val, struct st_exfx_out *fx);

#endif

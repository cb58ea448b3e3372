/* fuzz_ring_sched.c - the real ring (core/src/ring.c) under ipcproof's scheduler, with the
 * fuzzer's bytes as the scheduling decisions.
 *
 * ring.c is compiled into this target with the -fsanitize=thread instrumentation (only the
 * instrumentation: the callbacks are ipcproof's scheduler runtime, stress/sched/, linked in), so
 * every atomic operation of the ring is a scheduling point; its futex calls and clocks go to the
 * scheduler too (sched_glue.c). A producer thread and a consumer thread send and receive the
 * input's messages through one ring in memory, one thread running at a time, and at every point
 * the next input byte says which runs next and whether a store buffered under x86-TSO becomes
 * visible: coverage guides the search for a schedule, as in libFuzzer-driven schedulers. This
 * replaces a hand-written model of ring.c's access order that nothing tied to ring.c.
 *
 * Input: byte 0: bit 0 capacity 128 or 256 bytes; bits 1-2 the ring's spin count (0, 1, 4, 32
 * polls before sleeping); bit 3 sequential consistency instead of TSO; bit 4 signals (a futex
 * wait may be interrupted: EINTR, one more decision); bit 5 fenced publishes (sides that do not
 * use membarrier; without it, the default on Linux: publishes without a fence, and a sleeper's
 * membarrier drains every store buffer, sched_glue.c). Byte 1: message count
 * 1..24. Then one length byte per message (0 .. capacity - 16). The rest: the decisions, one
 * byte each; when they run out, a fixed stream takes over.
 *
 * Checked: every message arrives, whole, in order, and every send and receive succeeds (the
 * timeouts are long, in virtual time); no deadlock (every thread blocked and no timer); no lost
 * wake-up (nobody can run and a thread sleeps in FUTEX_WAIT on a word that changed: only its
 * 20 ms slice would wake it); no livelock. The lost wake-up the old model found (a publisher
 * that cleared the sleeper's flag) is found again on ring.c with that fix reverted:
 * IPCP_RING_REVERT_WAKE_FIX builds the ring_sched_revert check target (harnesses/CMakeLists.txt);
 * so is the one a sleeper that skips its membarrier would cause with fence-less publishes
 * (IPCP_RING_REVERT_MEMBARRIER, ring_sched_mb_revert).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "ipcproof/ring.h"
#include "ring_impl.h"
#include "sched_glue.h"

#define MAX_MSGS 24

static _Alignas(64) uint8_t region[IPCP_RING_HDR_SIZE + 256];
static struct st_sched_report report;

struct job {
    struct ipcp_ring r;
    uint32_t n;
    uint8_t len[MAX_MSGS];
};

/* what a thread found wrong, reported with the trace (one thread runs at a time) */
static char failure[160];

static void fill(uint8_t *p, size_t len, uint32_t seq)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(seq * 31u + i * 7u + 1u);
}

static void *producer(void *arg)
{
    struct job *j = arg;
    ipcproof_sched_enter(0, "producer");
    uint8_t msg[256];
    for (uint32_t k = 0; k < j->n; k++) {
        fill(msg, j->len[k], k);
        int rc = ipcp_ring_send(&j->r, msg, j->len[k], 5000);
        if (rc != 0) {
            if (failure[0] == '\0')
                snprintf(failure, sizeof(failure), "message %u: send returned %d", k, rc);
            break;
        }
    }
    ipcproof_sched_leave();
    return NULL;
}

static struct job prod, cons;

static void *consumer(void *arg)
{
    struct job *j = arg;
    ipcproof_sched_enter(1, "consumer");
    uint8_t buf[256], want[256];
    for (uint32_t k = 0; k < j->n && failure[0] == '\0'; k++) {
        ssize_t got = ipcp_ring_recv(&j->r, buf, sizeof(buf), 5000);
        if (got != prod.len[k]) {
            snprintf(failure, sizeof(failure), "message %u: recv returned %zd, sent %u bytes", k,
                     got, prod.len[k]);
            break;
        }
        fill(want, (size_t)got, k);
        for (size_t i = 0; i < (size_t)got && failure[0] == '\0'; i++)
            if (buf[i] != want[i])
                snprintf(failure, sizeof(failure), "message %u byte %zu: 0x%02x, sent 0x%02x", k, i,
                         buf[i], want[i]);
    }
    ipcproof_sched_leave();
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int trace = -1;
    if (trace < 0) trace = getenv("IPCP_FUZZ_TRACE") != NULL;
    failure[0] = '\0';
    struct fz_in in = fz_in_make(data, size);
    uint8_t mode = fz_u8(&in);
    size_t cap = (mode & 1) ? 256 : 128;
    static const unsigned spins[] = {0, 1, 4, 32};
    uint32_t n = 1 + fz_u8(&in) % MAX_MSGS;
    prod.n = cons.n = n;
    for (uint32_t k = 0; k < n; k++)
        prod.len[k] = (uint8_t)(fz_u8(&in) % (cap - IPCP_RING_REC_HDR + 1));
    struct ipcp_ring_cfg cfg = {.capacity = cap, .max_msg = 256, .spin = spins[(mode >> 1) & 3]};
    /* decided by the input, not by this kernel: the scheduler models the barrier */
    ipcp__ring_membarrier_mode = (mode & 32) ? -1 : 1;
    size_t size_needed = ipcp_ring_mem_size(cap);
    FZ_CHECK(size_needed <= sizeof(region), "ring size");
    memset(region, 0, sizeof(region));
    FZ_CHECK_RC(ipcp_ring_init_mem(&prod.r, region, size_needed, IPCP_RING_PRODUCER, &cfg), 0,
                "init_mem");
    FZ_CHECK_RC(ipcp_ring_attach_mem(&cons.r, region, size_needed, IPCP_RING_CONSUMER, &cfg), 0,
                "attach_mem");

    size_t left = fz_left(&in);
    const uint8_t *decisions = fz_bytes(&in, left, &left);
    struct st_sched_cfg sc = {.strategy = ST_SCHED_RANDOM,
                              .seed = 1,
                              .max_steps = 200000,
                              .nthreads = 2,
                              .tso = !(mode & 8),
                              .lost_wakeups = 1,
                              .decisions = decisions,
                              .ndecisions = left,
                              .raw_trace = 1,
                              .signals = (mode & 16) != 0};
    FZ_CHECK_RC(ipcproof_sched_begin(&sc, &report), 0, "sched begin");
    pthread_t tp, tc;
    FZ_CHECK(pthread_create(&tp, NULL, producer, &prod) == 0, "pthread_create");
    FZ_CHECK(pthread_create(&tc, NULL, consumer, &cons) == 0, "pthread_create");
    int st = ipcproof_sched_run();
    if (st != ST_SCHED_FINISHED || failure[0] || trace)
        fz_sched_print_trace(&report, "ring_sched", 48);
    FZ_CHECK(failure[0] == '\0', "%s", failure);
    FZ_CHECK(st == ST_SCHED_FINISHED, "the schedule ended in %s at step %llu",
             fz_sched_status_text(st), (unsigned long long)report.steps);
    pthread_join(tp, NULL);
    pthread_join(tc, NULL);
    ipcp_ring_close(&prod.r);
    ipcp_ring_close(&cons.r);
    return 0;
}

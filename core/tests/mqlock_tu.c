/* mqlock_tu.c - helpers shared by the mq token lock's unit tests (mqlock_tu.h). */
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <unistd.h>

#include "deadline.h"
#include "ipcproof/err.h"
#include "mqlock_tu.h"
#include "testutil.h"

int mqtu_mq_gone(const char *name)
{
    mqd_t q = mq_open(name, O_RDONLY);
    if (q != (mqd_t)-1) {
        mq_close(q);
        return 0;
    }
    return errno == ENOENT;
}

int mqtu_shm_left(void)
{
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "ipcp.mqlock.%ld.", (long)getpid());
    return tu_shm_count(prefix);
}

struct ipcp_mqlock *mqtu_make_lock(int recovery_ms, char *name, size_t cap)
{
    struct ipcp_mqlock_cfg cfg = {.stem = NULL, .recovery_ms = recovery_ms, .depth = 0};
    struct ipcp_mqlock *l = NULL;
    int rc = ipcp_mqlock_create(&cfg, &l);
    if (rc != 0) fail_msg("ipcp_mqlock_create: %s", ipcp_strerror(rc));
    snprintf(name, cap, "%s", ipcp_mqlock_name(l));
    return l;
}

void mqtu_destroy_and_check(struct ipcp_mqlock *l, const char *name)
{
    ipcp_mqlock_destroy(l);
    assert_true(mqtu_mq_gone(name));
    assert_int_equal(mqtu_shm_left(), 0);
}

int64_t mqtu_ms_since(int64_t t0)
{
    return (ipcp__now_ns() - t0) / 1000000;
}

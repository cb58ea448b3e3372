/* eptab.c - the endpoint table of a channel (see eptab.h): claims, closes and judges one owner
 * word per endpoint in an anonymous shared mapping. */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "atomics.h"
#include "eptab.h"
#include "proc.h"
#include "ipcproof/err.h"

int ipcp__eptab_create(struct ipcp__eptab *t, uint32_t producers, uint32_t consumers)
{
    memset(t, 0, sizeof(*t));
    if (producers == 0 || producers > IPCP__EPTAB_MAX_EP || consumers == 0 ||
        consumers > IPCP__EPTAB_MAX_EP)
        return -EINVAL;
    size_t len = ((size_t)producers + consumers) * sizeof(uint64_t);
    /* anonymous and shared: forked endpoints share it, and it is no named object to leak */
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return -errno;
    t->word = m; /* zero-filled: never opened */
    t->n[IPCP__EPTAB_PRODUCER] = producers;
    t->n[IPCP__EPTAB_CONSUMER] = consumers;
    t->ns = ipcp__proc_ns();
    t->len = len;
    return 0;
}

void ipcp__eptab_destroy(struct ipcp__eptab *t)
{
    if (t->word != NULL) munmap((void *)t->word, t->len);
    memset(t, 0, sizeof(*t));
}

/* The word of an endpoint, or NULL when side or index is out of range. */
static _Atomic uint64_t *word_of(const struct ipcp__eptab *t, int side, uint32_t index)
{
    if (t->word == NULL || (side != IPCP__EPTAB_PRODUCER && side != IPCP__EPTAB_CONSUMER) ||
        index >= t->n[side])
        return NULL;
    return t->word + (side == IPCP__EPTAB_CONSUMER ? t->n[IPCP__EPTAB_PRODUCER] : 0) + index;
}

/* This process's owner word: 0, or a negative code (another PID namespace, /proc unreadable).
 * pid < 2^22 (pid_max): the word is neither 0 nor IPCP__EPTAB_CLOSED. */
static int owner_word(const struct ipcp__eptab *t, uint64_t *me)
{
    int rc = ipcp__proc_ns_check(t->ns);
    if (rc < 0) return rc;
    uint32_t pid;
    uint64_t start;
    rc = ipcp__proc_self(&pid, &start);
    if (rc < 0) return rc;
    *me = ((start & 0xffffffffull) << 32) | pid;
    return 0;
}

/* acq_rel: claims the endpoint exactly once, whoever else tries at the same time */
static int cas_claim(_Atomic uint64_t *w, uint64_t me)
{
    uint64_t expected = 0;
    return ipcp_cas_acq_rel64(w, &expected, me);
}

int ipcp__eptab_claim(struct ipcp__eptab *t, int side, uint32_t index)
{
    _Atomic uint64_t *w = word_of(t, side, index);
    if (w == NULL) return -EINVAL;
    uint64_t me;
    int rc = owner_word(t, &me);
    if (rc < 0) return rc;
    return cas_claim(w, me) ? 0 : -EBUSY;
}

int ipcp__eptab_claim_any(struct ipcp__eptab *t, int side)
{
    if (word_of(t, side, 0) == NULL) return -EINVAL;
    uint64_t me;
    int rc = owner_word(t, &me);
    if (rc < 0) return rc;
    for (uint32_t i = 0; i < t->n[side]; i++)
        if (cas_claim(word_of(t, side, i), me)) return (int)i;
    return -EBUSY;
}

void ipcp__eptab_close(struct ipcp__eptab *t, int side, uint32_t index)
{
    _Atomic uint64_t *w = word_of(t, side, index);
    if (w != NULL) ipcp_store_release64(w, IPCP__EPTAB_CLOSED);
}

int ipcp__eptab_state(const struct ipcp__eptab *t, int side, uint32_t index)
{
    _Atomic uint64_t *w = word_of(t, side, index);
    if (w == NULL) return -EINVAL;
    uint64_t o = ipcp_load_acquire64(w); /* read once: the code under test can write it */
    if (o == 0) return 0;
    if (o == IPCP__EPTAB_CLOSED) return -EPIPE;
    return ipcp__proc_alive((uint32_t)o, o >> 32, 0xffffffffull) ? 0 : -IPCP_E_PEERDEAD;
}

int ipcp__eptab_gone(const struct ipcp__eptab *t, int side)
{
    if (word_of(t, side, 0) == NULL) return -EINVAL;
    int rc = -EPIPE;
    for (uint32_t i = 0; i < t->n[side]; i++) {
        int st = ipcp__eptab_state(t, side, i);
        if (st == 0) return 0;
        if (st == -IPCP_E_PEERDEAD) rc = st;
    }
    return rc;
}

/* shm_sem_pair.c - the textbook bounded buffer as black-box programs (docs/exec.md): slots in
 * POSIX shared memory, counting semaphores `empty` and `full`, and a semaphore as the mutex
 * between producers (and between consumers). One program plays every role, chosen by
 * IPCPROOF_ROLE: setup creates and initialises the segment, teardown removes it, producers and
 * consumers move ipcproof's messages through it.
 *
 *   cc -O2 -o shm_sem_pair shm_sem_pair.c   (glibc 2.34+; older: add -pthread -lrt)
 *   ipcproof validate --exec-producer ./shm_sem_pair --exec-consumer ./shm_sem_pair \
 *                     --exec-setup ./shm_sem_pair --exec-teardown ./shm_sem_pair --fifo
 *
 * Correct while nobody dies. A semaphore is not a robust mutex: a producer killed between its
 * sem_wait(&mutex) and sem_post(&mutex) leaves every other producer waiting for ever, and
 * validate's kill cases report that as the deadlock it is (docs/exec.md). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define SLOTS 8

struct shared {
    sem_t empty, full, pmutex, cmutex;
    uint32_t head, tail; /* slot indices, under cmutex and pmutex */
    size_t slot_size;
    unsigned char slots[]; /* SLOTS x (4-byte length + slot_size bytes) */
};

static const char *env(const char *name)
{
    const char *v = getenv(name);
    if (v == NULL) {
        fprintf(stderr, "shm_sem_pair: %s is not set (run me through ipcproof --exec-*)\n", name);
        exit(2);
    }
    return v;
}

static size_t read_full(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r == 0) break;
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) exit(1);
        got += (size_t)r;
    }
    return got;
}

static void write_full(int fd, const void *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, buf, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) exit(1);
        buf = (const char *)buf + w;
        n -= (size_t)w;
    }
}

/* sem_wait in slices of 50 ms; returns 0, or -1 when stop() says to give up. */
static int wait_sem(sem_t *s, int (*stop)(void))
{
    for (;;) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000;
        if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
        if (sem_timedwait(s, &ts) == 0) return 0;
        if (errno != ETIMEDOUT && errno != EINTR) exit(1);
        if (stop != NULL && stop()) return -1;
    }
}

static int stdin_ended(void)
{
    struct pollfd p = {.fd = 0, .events = POLLIN};
    char c;
    return poll(&p, 1, 0) == 1 && read(0, &c, 1) == 0;
}

int main(void)
{
    const char *role = env("IPCPROOF_ROLE");
    char name[96];
    snprintf(name, sizeof(name), "/ipcproof-exec-%s", env("IPCPROOF_RUN_ID"));
    size_t slot_size = (size_t)strtoull(env("IPCPROOF_MAX_SIZE"), NULL, 10);
    size_t len = sizeof(struct shared) + SLOTS * (4 + slot_size);
    if (strcmp(role, "teardown") == 0) return shm_unlink(name) == 0 ? 0 : 1;
    int setup = strcmp(role, "setup") == 0;
    int fd = shm_open(name, setup ? O_RDWR | O_CREAT | O_EXCL : O_RDWR, 0600);
    if (fd < 0 || (setup && ftruncate(fd, (off_t)len) < 0)) {
        perror("shm_sem_pair: shm");
        return 1;
    }
    struct shared *sh = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (sh == MAP_FAILED) return 1;
    if (setup) {
        sem_init(&sh->empty, 1, SLOTS);
        sem_init(&sh->full, 1, 0);
        sem_init(&sh->pmutex, 1, 1);
        sem_init(&sh->cmutex, 1, 1);
        sh->slot_size = slot_size;
        return 0;
    }
    unsigned char *buf = malloc(slot_size);
    if (buf == NULL || sh->slot_size != slot_size) return 1;
    if (strcmp(role, "producer") == 0) {
        uint32_t n;
        while (read_full(0, &n, 4) == 4) { /* stdin: the messages to send, in order */
            n = le32toh(n);
            if (n > slot_size || read_full(0, buf, n) != n) return 1;
            wait_sem(&sh->empty, NULL);
            wait_sem(&sh->pmutex, NULL);
            unsigned char *slot = sh->slots + (size_t)(sh->tail % SLOTS) * (4 + slot_size);
            memcpy(slot, &n, 4);
            memcpy(slot + 4, buf, n);
            sh->tail++;
            sem_post(&sh->pmutex);
            sem_post(&sh->full);
        }
        free(buf);
        return 0;
    }
    /* consumer: until stdin ends, then whatever is still in the slots */
    int ended = 0;
    for (;;) {
        if (!ended && wait_sem(&sh->full, stdin_ended) < 0) ended = 1;
        if (ended && sem_trywait(&sh->full) < 0) break;
        wait_sem(&sh->cmutex, NULL);
        unsigned char *slot = sh->slots + (size_t)(sh->head % SLOTS) * (4 + slot_size);
        uint32_t n;
        memcpy(&n, slot, 4);
        if (n > slot_size) return 1; /* shared memory is not to be trusted */
        memcpy(buf, slot + 4, n);
        sh->head++;
        sem_post(&sh->cmutex);
        sem_post(&sh->empty);
        uint32_t le = htole32(n);
        write_full(1, &le, 4);
        write_full(1, buf, n);
    }
    free(buf);
    return 0;
}

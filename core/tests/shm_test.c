/* shm_test.c - the shm module: names follow /ipcp.<kind>.<pid>.<random|stem> and parse back;
 * objects are created exclusively with mode 0600, attached with a size check, unlinked exactly
 * once and never when the name was re-created by someone else; memfds are close-on-exec and
 * sealed; ipcp_shm_clean() removes the objects of dead creators and nothing else. Every test
 * checks that no object and no fd is left behind. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "atomics.h"
#include "ipcproof/err.h"
#include "ipcproof/shm.h"
#include "testutil.h"

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

/* Objects of this process in /dev/shm ("ipcp.<kind>.<pid>."), whatever the kind. */
static int own_objects(void)
{
    DIR *d = opendir("/dev/shm");
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        long pid;
        if (ipcp_shm_parse_name(e->d_name, NULL, 0, &pid) == 0 && pid == (long)getpid()) n++;
    }
    closedir(d);
    return n;
}

static int exists(const char *name)
{
    char path[256];
    snprintf(path, sizeof(path), "/dev/shm%s", name);
    struct stat st;
    return stat(path, &st) == 0;
}

static void test_names(void **s)
{
    (void)s;
    char a[IPCP_SHM_NAME_MAX], b[IPCP_SHM_NAME_MAX], kind[IPCP_SHM_KIND_MAX + 1], want[64];
    int n = ipcp_shm_name(a, sizeof(a), "ring");
    assert_int_equal(n, (int)strlen(a));
    snprintf(want, sizeof(want), "/ipcp.ring.%ld.", (long)getpid());
    assert_int_equal(strncmp(a, want, strlen(want)), 0);
    const char *hex = a + strlen(want);
    assert_int_equal(strlen(hex), 16);
    assert_int_equal(strspn(hex, "0123456789abcdef"), 16);
    assert_true(ipcp_shm_name(b, sizeof(b), "ring") > 0);
    assert_string_not_equal(a, b);
    long pid = 0;
    assert_int_equal(ipcp_shm_parse_name(a, kind, sizeof(kind), &pid), 0);
    assert_string_equal(kind, "ring");
    assert_int_equal(pid, (long)getpid());
    assert_int_equal(ipcp_shm_parse_name(a + 1, NULL, 0, &pid), 0); /* as listed in /dev/shm */

    assert_true(ipcp_shm_name_stem(a, sizeof(a), "mq", "run_42-x") > 0);
    snprintf(want, sizeof(want), "/ipcp.mq.%ld.run_42-x", (long)getpid());
    assert_string_equal(a, want);

    const char *bad_kinds[] = {"", "Ring", "a.b", "a/b", "abcdefghijklmnopq", "r-1"};
    for (size_t i = 0; i < IPCP_ARRAY_SIZE(bad_kinds); i++)
        assert_int_equal(ipcp_shm_name(a, sizeof(a), bad_kinds[i]), -EINVAL);
    assert_int_equal(ipcp_shm_name(a, sizeof(a), NULL), -EINVAL);
    char long_stem[80];
    memset(long_stem, 'x', 65);
    long_stem[65] = '\0';
    const char *bad_stems[] = {"", "a.b", "a/b", "a b", long_stem};
    for (size_t i = 0; i < IPCP_ARRAY_SIZE(bad_stems); i++)
        assert_int_equal(ipcp_shm_name_stem(a, sizeof(a), "ring", bad_stems[i]), -EINVAL);
    assert_int_equal(ipcp_shm_name(a, 12, "ring"), -ENAMETOOLONG);

    const char *foreign[] = {"ipcp-test-1-2",      "ipcp.ring.0.abc", "ipcp.ring.12a.x",
                             "ipcp..1.x",          "ipcp.ring.1.",    "ipcp.ring.99999999999.x",
                             "ipcp.ring.5.a.b",    "ipcp.Ring.5.a",   "ipcp.ring.2147483648.a",
                             "xipcp.ring.5.abcde", "ipcp.ring.5"};
    for (size_t i = 0; i < IPCP_ARRAY_SIZE(foreign); i++)
        if (ipcp_shm_parse_name(foreign[i], NULL, 0, &pid) != -EINVAL)
            fail_msg("'%s' parsed as one of ours", foreign[i]);
}

static void test_create_attach_unlink(void **s)
{
    (void)s;
    int fds = count_fds();
    struct ipcp_shm a, b;
    assert_int_equal(ipcp_shm_create(&a, "ring", NULL, 8192), 0);
    assert_true(exists(a.name));
    char path[256];
    snprintf(path, sizeof(path), "/dev/shm%s", a.name);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 8192);
    assert_int_equal(a.size, 8192);
    assert_int_equal(count_fds(), fds); /* the mapping keeps the object; no fd stays open */

    assert_int_equal(ipcp_shm_attach(&b, a.name, 4096, 8192), 0);
    ((volatile uint8_t *)a.addr)[100] = 0x5a;
    assert_int_equal(((volatile uint8_t *)b.addr)[100], 0x5a);
    assert_int_equal(ipcp_shm_unlink(&b), 0);
    assert_false(exists(a.name));
    assert_int_equal(ipcp_shm_unlink(&b), 0); /* only once */
    ((volatile uint8_t *)b.addr)[101] = 0xa5; /* mappings outlive the name */
    assert_int_equal(((volatile uint8_t *)a.addr)[101], 0xa5);
    ipcp_shm_close(&b);
    ipcp_shm_close(&a);
    ipcp_shm_close(&a); /* twice is harmless */

    /* an attacher's close does not unlink; the creator's does */
    assert_int_equal(ipcp_shm_create(&a, "ring", NULL, 4096), 0);
    assert_int_equal(ipcp_shm_attach(&b, a.name, 1, 1 << 20), 0);
    ipcp_shm_close(&b);
    assert_true(exists(a.name));
    char name[IPCP_SHM_NAME_MAX];
    memcpy(name, a.name, sizeof(name));
    ipcp_shm_close(&a);
    assert_false(exists(name));

    assert_int_equal(own_objects(), 0);
    assert_int_equal(count_fds(), fds);
}

static void test_attach_errors(void **s)
{
    (void)s;
    int fds = count_fds();
    struct ipcp_shm a, b;
    char name[IPCP_SHM_NAME_MAX];
    ipcp_shm_name(name, sizeof(name), "ring");
    assert_int_equal(ipcp_shm_attach(&b, name, 1, 4096), -ENOENT);
    assert_int_equal(ipcp_shm_attach(&b, "/not-ours", 1, 4096), -EINVAL);
    assert_int_equal(ipcp_shm_attach(&b, name + 1, 1, 4096), -EINVAL); /* no leading '/' */
    assert_null(b.addr);

    assert_int_equal(ipcp_shm_create(&a, "ring", "attach-errors", 4096), 0);
    assert_int_equal(ipcp_shm_attach(&b, a.name, 4097, 1 << 20), -IPCP_E_LAYOUT);
    assert_int_equal(ipcp_shm_attach(&b, a.name, 1, 4095), -IPCP_E_LAYOUT);
    assert_null(b.addr);
    struct ipcp_shm c;
    assert_int_equal(ipcp_shm_create(&c, "ring", "attach-errors", 4096), -EEXIST);
    assert_int_equal(ipcp_shm_create(&c, "ring", "bad.stem", 4096), -EINVAL);
    assert_int_equal(ipcp_shm_create(&c, "ring", NULL, 0), -EINVAL);
    ipcp_shm_close(&a);
    assert_int_equal(own_objects(), 0);
    assert_int_equal(count_fds(), fds);
}

/* A name removed behind our back and re-created by someone else is not ours to unlink. */
static void test_close_spares_recreated_name(void **s)
{
    (void)s;
    struct ipcp_shm a, b;
    assert_int_equal(ipcp_shm_create(&a, "ring", "recreated", 4096), 0);
    assert_int_equal(shm_unlink(a.name), 0);
    assert_int_equal(ipcp_shm_create(&b, "ring", "recreated", 4096), 0);
    ipcp_shm_close(&a);
    assert_true(exists(b.name));
    char name[IPCP_SHM_NAME_MAX];
    memcpy(name, b.name, sizeof(name));
    ipcp_shm_close(&b);
    assert_false(exists(name));
    assert_int_equal(own_objects(), 0);
}

static void test_memfd(void **s)
{
    (void)s;
    int fds = count_fds();
    struct ipcp_shm a, b;
    assert_int_equal(ipcp_shm_create_memfd(&a, "ring", 4096), 0);
    assert_true(a.fd >= 0);
    assert_string_equal(a.name, "");
    assert_true(fcntl(a.fd, F_GETFD) & FD_CLOEXEC);
    int seals = fcntl(a.fd, F_GET_SEALS);
    assert_true(seals >= 0);
    assert_int_equal(seals & (F_SEAL_SHRINK | F_SEAL_GROW), F_SEAL_SHRINK | F_SEAL_GROW);
    assert_int_equal(ftruncate(a.fd, 100), -1);
    assert_int_equal(errno, EPERM);
    assert_int_equal(ipcp_shm_attach_fd(&b, a.fd, 4096, 4096), 0);
    assert_int_equal(b.fd, -1); /* the fd stays the caller's */
    ((volatile uint8_t *)a.addr)[7] = 7;
    assert_int_equal(((volatile uint8_t *)b.addr)[7], 7);
    assert_int_equal(ipcp_shm_attach_fd(&b, a.fd, 8192, 1 << 20), -IPCP_E_LAYOUT);
    assert_int_equal(ipcp_shm_attach_fd(&b, -1, 1, 1 << 20), -EBADF);
    ipcp_shm_close(&b);
    ipcp_shm_close(&a);
    assert_int_equal(count_fds(), fds);
    assert_int_equal(own_objects(), 0);
}

struct seen {
    char names[8][IPCP_SHM_NAME_MAX];
    long pids[8];
    int removed[8];
    int n;
    const char *watch[3]; /* names of this test, without '/' */
};

static void on_clean(const char *name, long pid, int removed, void *arg)
{
    struct seen *sn = arg;
    for (int i = 0; i < 3; i++) {
        if (sn->watch[i] == NULL || strcmp(name, sn->watch[i]) != 0) continue;
        if (sn->n < 8) {
            snprintf(sn->names[sn->n], IPCP_SHM_NAME_MAX, "%s", name);
            sn->pids[sn->n] = pid;
            sn->removed[sn->n] = removed;
            sn->n++;
        }
    }
}

static int crashed_creator(void *arg)
{
    struct ipcp_shm m;
    int *pipefd = arg;
    if (ipcp_shm_create(&m, "ring", "crashed", 4096) < 0) return 1;
    if (write(pipefd[1], m.name, strlen(m.name) + 1) < 0) return 2;
    return 0; /* exits without closing: the object stays, like after a crash */
}

static void test_clean_removes_only_dead_owners(void **s)
{
    (void)s;
    int pfd[2];
    assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
    pid_t child = tu_spawn(crashed_creator, pfd);
    tu_wait_ok(child, 10000); /* reaped: kill(child, 0) now fails with ESRCH */
    char dead[IPCP_SHM_NAME_MAX] = {0};
    assert_true(read(pfd[0], dead, sizeof(dead)) > 0);
    close(pfd[0]);
    close(pfd[1]);
    assert_true(exists(dead));

    struct ipcp_shm live;
    assert_int_equal(ipcp_shm_create(&live, "ring", NULL, 4096), 0);
    /* one of ours by prefix, but not a name we make: must be left alone */
    char odd[IPCP_SHM_NAME_MAX];
    snprintf(odd, sizeof(odd), "/ipcp.ring.%ld.a.b", (long)child);
    int ofd = shm_open(odd, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    assert_true(ofd >= 0);
    close(ofd);

    struct seen sn = {.watch = {dead + 1, live.name + 1, odd + 1}};
    int n = ipcp_shm_clean(1, on_clean, &sn);
    assert_true(n >= 1);
    assert_int_equal(sn.n, 1);
    assert_string_equal(sn.names[0], dead + 1);
    assert_int_equal(sn.pids[0], (long)child);
    assert_int_equal(sn.removed[0], 0);
    assert_true(exists(dead)); /* dry run */

    memset(sn.names, 0, sizeof(sn.names));
    sn.n = 0;
    n = ipcp_shm_clean(0, on_clean, &sn);
    assert_true(n >= 1);
    assert_int_equal(sn.n, 1);
    assert_string_equal(sn.names[0], dead + 1);
    assert_int_equal(sn.removed[0], 1);
    assert_false(exists(dead));
    assert_true(exists(live.name));
    assert_true(exists(odd));

    assert_int_equal(shm_unlink(odd), 0);
    ipcp_shm_close(&live);
    assert_int_equal(own_objects(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),         cmocka_unit_test(test_create_attach_unlink),
        cmocka_unit_test(test_attach_errors), cmocka_unit_test(test_close_spares_recreated_name),
        cmocka_unit_test(test_memfd),         cmocka_unit_test(test_clean_removes_only_dead_owners),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

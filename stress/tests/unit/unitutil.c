/* unitutil.c - see unitutil.h. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spawn.h"
#include "unitutil.h"

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

int ut_dir_setup(void **state)
{
    const char *t = getenv("TMPDIR");
    if (t == NULL || *t == '\0' || strlen(t) > 200) t = "/tmp";
    char *dir = malloc(PATH_MAX);
    if (dir == NULL) return -1;
    snprintf(dir, PATH_MAX, "%s/ipcp-unit-XXXXXX", t);
    if (mkdtemp(dir) == NULL) {
        free(dir);
        return -1;
    }
    *state = dir;
    return 0;
}

int ut_dir_teardown(void **state)
{
    char *dir = *state;
    if (dir != NULL) {
        (void)nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        free(dir);
    }
    *state = NULL;
    return 0;
}

char *ut_path(char *buf, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(buf, cap, "%s/%s", dir, name);
    assert_true(n > 0 && (size_t)n < cap);
    return buf;
}

void ut_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "we");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

unsigned char *ut_read(const char *path, size_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    size_t len = (size_t)st.st_size;
    unsigned char *p = malloc(len ? len : 1);
    assert_non_null(p);
    size_t done = 0;
    while (done < len) {
        ssize_t n = read(fd, p + done, len - done);
        if (n < 0 && errno == EINTR) continue;
        assert_true(n > 0);
        done += (size_t)n;
    }
    close(fd);
    *size = len;
    return p;
}

const char *ut_which(const char *prog, char *buf, size_t cap)
{
    const char *path = getenv("PATH");
    if (path == NULL) return NULL;
    while (*path) {
        size_t len = strcspn(path, ":");
        int n = snprintf(buf, cap, "%.*s/%s", (int)len, path, prog);
        struct stat st;
        if (len > 0 && n > 0 && (size_t)n < cap && stat(buf, &st) == 0 && S_ISREG(st.st_mode) &&
            access(buf, X_OK) == 0)
            return buf;
        path += len;
        if (*path == ':') path++;
    }
    return NULL;
}

int ut_run(char *const argv[], const char *log)
{
    int fd = open(log != NULL ? log : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    struct st_child_opts o = {.out_fd = fd, .in_null = 1, .die_with_parent = 1};
    pid_t pid = st_spawn_exec(&o, argv, NULL);
    close(fd);
    assert_true(pid > 0);
    return st_wait_timeout(pid, 300);
}

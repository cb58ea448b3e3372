/* replay_main.c - standalone driver for libFuzzer-style targets, no fuzzing engine needed.
 *
 * Usage: fuzz_<name> [-flags ignored] [file-or-dir ...]   (no paths: read stdin once)
 * Each file (directories are walked recursively, entries sorted, hidden files skipped) is read
 * into an exactly-sized heap buffer, so ASan sees reads past the end of the input, and passed to
 * LLVMFuzzerTestOneInput. Arguments starting with '-' are ignored so libFuzzer command lines
 * still work. Exit: 0 every input ran; 2 an input could not be read; a finding aborts. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

static unsigned long n_run;
static int status;

static int run_stream(FILE *f, const char *name)
{
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    if (buf == NULL) return -1;
    for (;;) {
        if (len == cap) {
            uint8_t *nb = realloc(buf, cap *= 2);
            if (nb == NULL) {
                free(buf);
                return -1;
            }
            buf = nb;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        free(buf);
        return -1;
    }
    uint8_t *exact = malloc(len ? len : 1);
    if (exact == NULL) {
        free(buf);
        return -1;
    }
    if (len) memcpy(exact, buf, len);
    free(buf);
    fprintf(stderr, "Running: %s (%zu bytes)\n", name, len);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    n_run++;
    return 0;
}

static void run_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        status = 2;
        return;
    }
    if (S_ISDIR(st.st_mode)) {
        struct dirent **ents;
        int n = scandir(path, &ents, NULL, alphasort);
        if (n < 0) {
            fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
            status = 2;
            return;
        }
        for (int i = 0; i < n; i++) {
            const char *e = ents[i]->d_name;
            if (e[0] != '.') {
                size_t need = strlen(path) + strlen(e) + 2;
                char *child = malloc(need);
                if (child != NULL) {
                    snprintf(child, need, "%s/%s", path, e);
                    run_path(child);
                    free(child);
                } else {
                    status = 2;
                }
            }
            free(ents[i]);
        }
        free(ents);
        return;
    }
    FILE *f = fopen(path, "rb");
    if (f == NULL || run_stream(f, path) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        status = 2;
    }
    if (f != NULL) fclose(f);
}

int main(int argc, char **argv)
{
    int npaths = 0;
    if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1] != '\0') continue; /* a libFuzzer flag */
        npaths++;
        run_path(argv[i]);
    }
    if (npaths == 0 && run_stream(stdin, "<stdin>") != 0) status = 2;
    fprintf(stderr, "replay: executed %lu inputs\n", n_run);
    return status;
}

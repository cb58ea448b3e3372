/* report.c - the verdicts, the table and the JSON of `ipcproof bench` (bench.h). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "bench.h"

const char *bench_compiler(void)
{
#ifdef __clang__
    return "clang " __clang_version__;
#else
    return "gcc " __VERSION__;
#endif
}

/* ---- output ------------------------------------------------------------------------------- */

static void human(double v, char *buf, size_t cap)
{
    if (v >= 1e9)
        snprintf(buf, cap, "%.2fG", v / 1e9);
    else if (v >= 1e6)
        snprintf(buf, cap, "%.2fM", v / 1e6);
    else if (v >= 1e4)
        snprintf(buf, cap, "%.1fk", v / 1e3);
    else
        snprintf(buf, cap, "%.1f", v);
}

static void figure(const char *unit, double v, char *buf, size_t cap)
{
    if (strcmp(unit, "us") == 0)
        snprintf(buf, cap, "%.2f", v);
    else if (strcmp(unit, "MB/s") == 0 || strcmp(unit, "ns") == 0)
        snprintf(buf, cap, "%.1f", v);
    else
        human(v, buf, cap);
}

static int aim_met(const struct bench_row *r)
{
    return r->aim_op == AIM_GE ? r->ratio >= r->aim : r->ratio <= r->aim;
}

#define NOISY_SPREAD 1.5 /* the best repetition's ratio this many times the worst's */

/* A row cannot say met or missed when its repetitions disagree about the aim (some meet it,
 * others miss it, the best ratio NOISY_SPREAD times the worst), or when it was measured while
 * the machine had more runnable work than CPUs and its median is within NOISY_SPREAD of the
 * aim: a baseline that collapsed under load once made a round trip "met". A row far from its
 * aim in every repetition keeps its verdict. Fills r->noisy with why. */
void bench_row_noise(struct bench_row *r)
{
    r->noisy[0] = '\0';
    if (r->aim_op == AIM_NONE || r->na || r->error[0] || r->reps < 2 || r->rmin <= 0) return;
    int straddle = r->aim_op == AIM_GE ? r->rmin < r->aim && r->aim <= r->rmax
                                       : r->rmin <= r->aim && r->aim < r->rmax;
    if (straddle && r->rmax / r->rmin >= NOISY_SPREAD) {
        snprintf(r->noisy, sizeof(r->noisy),
                 "repetitions disagree: ratios %.3g to %.3g about the aim", r->rmin, r->rmax);
        return;
    }
    double load = 0;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    FILE *f = fopen("/proc/loadavg", "re");
    if (f != NULL) {
        if (fscanf(f, "%lf", &load) != 1) load = 0;
        fclose(f);
    }
    if (ncpu > 0 && load > (double)ncpu && r->ratio * NOISY_SPREAD >= r->aim &&
        r->ratio <= r->aim * NOISY_SPREAD)
        snprintf(r->noisy, sizeof(r->noisy), "load %.2f on %ld CPUs, ratio near the aim", load,
                 ncpu);
}

void bench_print_header(void)
{
    printf("%-38s %-6s %10s %10s %6s %6s %6s %7s %-6s %s\n", "row", "unit", "protocol", "baseline",
           "ratio", "min", "max", "aim", "", "baseline is");
}

void bench_print_row(const struct bench_row *r)
{
    char a[32], b[32], aim[16] = "";
    if (r->aim_op != AIM_NONE)
        snprintf(aim, sizeof(aim), "%s%.2f", r->aim_op == AIM_GE ? ">=" : "<=", r->aim);
    if (r->na) {
        printf("%-38s %-6s n/a (%s)\n", r->name, r->unit, r->na);
    } else if (r->error[0]) {
        printf("%-38s %-6s FAILED: %s\n", r->name, r->unit, r->error);
    } else {
        figure(r->unit, r->value, a, sizeof(a));
        figure(r->unit, r->baseline, b, sizeof(b));
        printf("%-38s %-6s %10s %10s %6.2f %6.2f %6.2f %7s %-6s %s%s%s%s\n", r->name, r->unit, a, b,
               r->ratio, r->rmin, r->rmax, aim,
               r->aim_op == AIM_NONE ? ""
               : r->noisy[0]         ? "noisy"
               : aim_met(r)          ? "met"
                                     : "MISSED",
               r->baseline_name, r->noisy[0] ? " (" : "", r->noisy, r->noisy[0] ? ")" : "");
        if (r->extra && strcmp(r->extra, "msgs_per_s") == 0) {
            human(r->xval, a, sizeof(a));
            human(r->xbase, b, sizeof(b));
            printf("%-38s %-6s %10s %10s\n", "", "msg/s", a, b);
        } else if (r->extra) {
            printf("%-38s %-6s %10.2f %10.2f\n", "", "share", r->xval, r->xbase);
        }
    }
    fflush(stdout);
}

void bench_read_line(const char *path, const char *key, char *buf, size_t cap)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f == NULL) return;
    char line[512];
    while (fgets(line, sizeof(line), f)) {
        if (key == NULL || strncmp(line, key, strlen(key)) == 0) {
            char *p = key ? strchr(line, ':') : line;
            p = p ? (key ? p + 1 : p) : line;
            while (*p == ' ' || *p == '\t')
                p++;
            p[strcspn(p, "\n")] = '\0';
            snprintf(buf, cap, "%.*s", (int)(cap - 1), p);
            break;
        }
    }
    fclose(f);
}

int bench_optimized(void)
{
#ifdef __OPTIMIZE__
    return 1;
#else
    return 0;
#endif
}

int bench_write_json(const char *path, const struct bench_machine *m, double seconds)
{
    json_t *root = json_object();
    json_object_set_new(root, "tool", json_string("ipcproof bench"));
    json_object_set_new(root, "mode", json_string(bench_mode_name[bench_mode]));
    json_object_set_new(root, "reps", json_integer(bench_reps));
    json_object_set_new(root, "seconds", json_real(seconds));
    json_t *mj = json_object();
    json_object_set_new(mj, "cpus", json_integer(m->ncpu));
    json_object_set_new(mj, "cpu", json_string(m->cpu));
    json_object_set_new(mj, "kernel", json_string(m->kernel));
    json_object_set_new(mj, "loadavg_start", json_string(m->load0));
    json_object_set_new(mj, "loadavg_end", json_string(m->load1));
    json_object_set_new(mj, "compiler", json_string(bench_compiler()));
    json_object_set_new(mj, "optimized", json_boolean(bench_optimized()));
    json_object_set_new(mj, "sanitizers", json_string(bench_sanitizers()));
    json_object_set_new(root, "machine", mj);
    json_t *rows = json_array();
    for (int i = 0; i < bench_nrows; i++) {
        const struct bench_row *r = &bench_rows[i];
        json_t *o = json_object();
        int have = r->na == NULL && r->error[0] == '\0';
        json_object_set_new(o, "name", json_string(r->name));
        json_object_set_new(o, "unit", json_string(r->unit));
        json_object_set_new(o, "value", have ? json_real(r->value) : json_null());
        json_object_set_new(o, "baseline_name", json_string(r->baseline_name));
        json_object_set_new(o, "baseline", have ? json_real(r->baseline) : json_null());
        json_object_set_new(o, "ratio", have ? json_real(r->ratio) : json_null());
        json_object_set_new(o, "min_ratio", have ? json_real(r->rmin) : json_null());
        json_object_set_new(o, "max_ratio", have ? json_real(r->rmax) : json_null());
        json_object_set_new(o, "reps", json_integer(r->reps));
        if (r->count > 0) json_object_set_new(o, "count", json_integer(r->count));
        json_object_set_new(o, "case_seconds", json_real(r->seconds));
        if (r->extra && have) {
            char key[64];
            snprintf(key, sizeof(key), "baseline_%s", r->extra);
            json_object_set_new(o, r->extra, json_real(r->xval));
            json_object_set_new(o, key, json_real(r->xbase));
        }
        if (r->aim_op != AIM_NONE) {
            char aim[16];
            snprintf(aim, sizeof(aim), "%s%.2f", r->aim_op == AIM_GE ? ">=" : "<=", r->aim);
            json_object_set_new(o, "aim", json_string(aim));
            if (have) json_object_set_new(o, "aim_met", json_boolean(aim_met(r)));
            if (have)
                json_object_set_new(o, "verdict",
                                    json_string(r->noisy[0]  ? "noisy"
                                                : aim_met(r) ? "met"
                                                             : "missed"));
            if (r->noisy[0]) json_object_set_new(o, "noisy", json_string(r->noisy));
        }
        if (r->na) json_object_set_new(o, "na", json_string(r->na));
        if (r->error[0]) json_object_set_new(o, "error", json_string(r->error));
        json_array_append_new(rows, o);
    }
    json_object_set_new(root, "rows", rows);
    int rc = json_dump_file(root, path, JSON_INDENT(1) | JSON_REAL_PRECISION(6));
    json_decref(root);
    if (rc != 0) fprintf(stderr, "ipcproof bench: cannot write %s\n", path);
    return rc == 0 ? 0 : -1;
}

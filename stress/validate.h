/* validate.h - the state of one `ipcproof validate`, shared by validate.c (options, plugins,
 * the TSan build, running commands) and vbattery.c (the table of cases, the rounds that spend
 * the budget, the verdict table and the JSON). */
#ifndef IPCP_STRESS_VALIDATE_H
#define IPCP_STRESS_VALIDATE_H

#include <limits.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "stress.h"

#define VB_MAX_CASES 48

/* One row of the verdict table, accumulated over every run of the case. */
struct vcase {
    const struct vdef *def;
    char name[96];
    char args[320];  /* the case's stress arguments (the 1:1 variant after a fallback) */
    int na;          /* the protocol refused the configuration, or the fault had nothing to hit */
    int fallback;    /* runs with 1 producer and 1 consumer: the protocol refused more */
    int mode;        /* enum st_mode */
    int crashpts;    /* --crash-points (process mode, run by the sched build) */
    int rec_is_fail; /* the recorded run (violations, detail, repro, log) failed */
    char na_why[256];
    unsigned runs, fails, errors, kills, kills_failed;
    double mps; /* of the last passing run */
    char kinds[128];
    char detail[1400];
    char repro[2048];
    char bin[PATH_MAX]; /* the ipcproof that ran the failing run, when not this one */
    json_t *violations; /* of the first failing run */
    json_t *seeds;      /* every seed run */
    json_t *failed_seeds;
    char log[PATH_MAX]; /* the first failing run's output */
};

struct vstate {
    const char *proto, *plugin, *plugin_tsan, *plugin_src, *cflags, *json, *opt;
    struct { /* --exec-*: the endpoints are programs */
        const char *producer, *consumer, *setup, *teardown;
        const char *worker; /* lock contenders */
        int fifo, robust;
    } exec;
    FILE *jf;
    const char *sarif; /* --sarif FILE */
    FILE *sf;
    double budget;
    uint64_t seed;
    int verbose, no_sandbox;
    enum st_kind kind;
    char tmpdir[1024];
    char built_plain[PATH_MAX], built_tsan[PATH_MAX];
    const char *tsan_bin;
    const char *plain_so, *tsan_so; /* the plugin for the plain and for the TSan binary */
    const char *sched_bin;          /* a build without sanitizers with the scheduler runtime */
    char sched_na[256];             /* why the sched cases cannot run, when they cannot */
    int has_chan, has_lock;
    char chan_name[64], lock_name[64];
    uint32_t chan_flags, lock_flags;
    char notes[4096];
    char error[9000];
    char stopped[512]; /* why the battery ended early */
    int64_t t0;
    unsigned rounds, runs;
    struct vcase cases[VB_MAX_CASES];
    int ncases;
};

/* validate.c */
void vt_note(struct vstate *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int vt_run(char *const argv[], const char *log, double timeout_s, int tsan);
void vt_binary_for(const struct vstate *v, int mode, const char **bin, const char **so, int *tsan);

/* vbattery.c */
int vb_run_battery(struct vstate *v, volatile int *interrupted); /* the exit status */
void vb_write_json(struct vstate *v, int status);
void vb_keep_only_plugins(struct vstate *v);
void vb_free(struct vstate *v);

#endif

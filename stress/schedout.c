/* schedout.c - what the scheduler runtime said of a schedule (its struct st_sched_report), as
 * the violations of the case's report: an exact deadlock or a lost wake-up with what each thread
 * was blocked in, a livelock, and a data race with both of its accesses. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "stress.h"
#include "symbolize.h"

/* One side of a data race: what ("consumer 0 read of 4 bytes at m3+0x90"), and where, as
 * "copy_out broken_ring.c:66, after step 12" for the detail and as a frame "copy_out at
 * broken_ring.c:66" (the form sanitizer frames and SARIF locations are read in). */
static void race_side(const struct st_sched_report *sr, const struct st_sched_access *a, char *what,
                      char *where, char *frame, size_t cap)
{
    const char *who = a->thread < ST_SCHED_MAX_THREADS ? sr->names[a->thread] : "?";
    const char *rw = a->write ? "write" : "read";
    if (!a->known) { /* older than what its thread's log keeps */
        snprintf(what, cap, "%.24s %s of m%u+0x%x", who, rw, a->object, a->offset);
        snprintf(where, cap, "too long ago to say where");
        snprintf(frame, cap, "?");
        return;
    }
    snprintf(what, cap, "%.24s %s of %llu byte%s at m%u+0x%x", who, rw, (unsigned long long)a->size,
             a->size == 1 ? "" : "s", a->object, a->offset);
    snprintf(where, cap, "%.160s, after step %llu", a->where, (unsigned long long)a->step);
    const char *sp = strchr(a->where, ' ');
    if (sp != NULL && sp[1] != '(' && strchr(sp, ':') != NULL)
        snprintf(frame, cap, "%.*s at %.100s", (int)(sp - a->where), a->where, sp + 1);
    else
        snprintf(frame, cap, "%.160s", a->where);
}

/* A data race the runtime found: both accesses in the detail, and as the violation's frames. */
static void race_outcome(const struct st_sched_report *sr, uint64_t schedule, struct st_report *rep)
{
    char what[2][200], where[2][200], frame[2][200];
    for (int i = 0; i < 2; i++)
        race_side(sr, &sr->race.access[i], what[i], where[i], frame[i], sizeof(what[i]));
    st_report_add(rep, ST_V_RACE, 1,
                  "schedule %" PRIu64 ", step %" PRIu64
                  ": a data race on m%u+0x%x: the %s (%s) races with the earlier %s (%s); neither "
                  "happens before the other",
                  schedule, sr->steps, sr->race.object, sr->race.offset, what[1], where[1], what[0],
                  where[0]);
    for (int i = 0; i < rep->nv; i++)
        if (rep->v[i].kind == ST_V_RACE && rep->v[i].frames[0] == '\0')
            snprintf(rep->v[i].frames, sizeof(rep->v[i].frames),
                     "#0 %.150s: this %.200s\n#1 %.150s: the earlier %.200s", frame[1], what[1],
                     frame[0], what[0]);
}

void st_sched_outcome(struct st_sched_report *sr, uint64_t schedule, int ran, struct st_report *rep)
{
    if (sr->status == ST_SCHED_RACE) {
        st_symbolize(sr);
        race_outcome(sr, schedule, rep);
    } else if (sr->status == ST_SCHED_DEADLOCK || sr->status == ST_SCHED_LOSTWAKE) {
        st_symbolize(sr);
        char text[1024] = "";
        size_t len = 0;
        for (uint32_t i = 0; i < ST_SCHED_MAX_THREADS && len < sizeof(text); i++) {
            const struct st_sched_blocked *b = &sr->blocked[i];
            if (!b->blocked) continue;
            len += (size_t)snprintf(text + len, sizeof(text) - len,
                                    "%s%.24s in %.32s at %.160s (on m%u+0x%x)", len ? "; " : "",
                                    sr->names[i], b->what, b->where, b->object, b->offset);
        }
        if (sr->status == ST_SCHED_DEADLOCK)
            st_report_add(rep, ST_V_DEADLOCK, 1,
                          "schedule %" PRIu64 ", step %" PRIu64
                          ": every thread is blocked and no timer is pending: %s",
                          schedule, sr->steps, text);
        else
            st_report_add(rep, ST_V_DEADLOCK, 1,
                          "schedule %" PRIu64 ", step %" PRIu64
                          ": a lost wake-up: nobody can run, and a futex waiter sleeps on a word "
                          "that has changed since (only its timeout will wake it): %s",
                          schedule, sr->steps, text);
    } else if (sr->status == ST_SCHED_LIVELOCK)
        st_report_add(rep, ST_V_DEADLOCK, 1, "schedule %" PRIu64 ": %s", schedule, sr->text);
    else if (sr->status != ST_SCHED_FINISHED && ran)
        st_report_note(rep, "schedule %" PRIu64 ": the scheduler runtime did not report an end",
                       schedule);
}

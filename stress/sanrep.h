/* sanrep.h - sanitizer reports as data.
 *
 * The supervisor keeps what the protocol's processes printed (bounded text: possibly cut at the
 * start or the end, interleaved with other output, holding several reports). st_sanrep_next()
 * finds the reports in it and extracts what a JSON report or a one-line summary needs: the tool,
 * the kind of error, the top frames of the first stack and the SUMMARY line. Formats understood
 * (those of clang 14 and gcc 12):
 *
 *   WARNING: ThreadSanitizer: data race (pid=123)             ThreadSanitizer reports
 *   ==123==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x... at pc ...
 *   ==123==ERROR: LeakSanitizer: detected memory leaks
 *   ==123==ERROR: ThreadSanitizer: SEGV on unknown address 0x... (pc ...)   (DEADLYSIGNAL)
 *   FATAL: ThreadSanitizer: unexpected memory mapping 0x...-0x...
 *   x.c:12:5: runtime error: signed integer overflow: ...     UndefinedBehaviorSanitizer
 *
 * and stack frames in both symbolizer styles:
 *
 *       #0 foo /src/x.c:12:5 (lib.so+0x1234) (BuildId: ...)   ThreadSanitizer
 *       #2 <null> <null> (libc.so.6+0x27249)
 *       #0 0x55d5 in foo /src/x.c:12 (ASan, UBSan)  or  #4 0x55d5 in _start (/bin/prog+0x1090)
 *
 * Lines may carry a "==123==" pid prefix, terminal colours, or the "  | " indentation of a display
 * that quotes the output. Paths with spaces in a location are not understood. Pure functions over
 * memory: no allocation, no I/O, safe on any bytes. */
#ifndef IPCP_STRESS_SANREP_H
#define IPCP_STRESS_SANREP_H

#include <stddef.h>

#define ST_SANREP_FRAMES 6

struct st_sanframe {
    char func[128];   /* "" when the symbolizer printed <null> or nothing */
    char file[256];   /* basename of the source file; "" when unknown or inside the sanitizer */
    unsigned line;    /* 0 when unknown */
    char module[128]; /* basename of the binary or library of "(module+0x...)"; "" when absent */
};

struct st_sanrep {
    /* "ThreadSanitizer", "AddressSanitizer", "UndefinedBehaviorSanitizer", "LeakSanitizer", ... */
    char tool[32];
    /* The kind of error without addresses, pids or registers: "data race", "heap-buffer-overflow",
     * "SEGV on unknown address", "unlock of an unlocked mutex (or by a wrong thread)",
     * "lock-order-inversion (potential deadlock)", "detected memory leaks", or UBSan's whole
     * message ("signed integer overflow: 2147483647 + 1 cannot be represented in type 'int'"). */
    char title[160];
    /* The top frames of the first stack of the report, #0 first. An UBSan report printed without
     * a stack gets one frame: the location of its "runtime error" line. */
    struct st_sanframe frames[ST_SANREP_FRAMES];
    int nframes;
    char summary[256]; /* the "SUMMARY: ..." line of the report (from "SUMMARY:" on), or "" */
};

/* Finds the first sanitizer report in text[*pos, len) and fills *out. Returns 1 with *pos moved
 * past that report (so calling again finds the next one), or 0 with *pos = len when there is
 * none. pos may be NULL (search from the start), and out (only say whether there is one). Never
 * reads past len; text need not be NUL-terminated and may contain any bytes (a NUL inside a line
 * reads as a space). */
int st_sanrep_next(const char *text, size_t len, size_t *pos, struct st_sanrep *out);

/* One line, always NUL-terminated when cap > 0, cut with "..." when it does not fit:
 *   "ThreadSanitizer: data race at copy_out (ring.c:66) <- recv_msg (ring.c:127) <- ..."
 * A frame is "func (file:line)", "func (module)" when there is no file, "func" alone, or without a
 * function only its place: "file:line" (UBSan's location), "module", "?" when nothing is known. */
void st_sanrep_format(const struct st_sanrep *r, char *buf, size_t cap);

#endif

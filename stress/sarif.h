/* sarif.h - violations as SARIF 2.1.0, for GitHub code scanning (`--sarif FILE`).
 *
 * Made from the same report model as the JSON (the report's "violations" array: kind, count,
 * detail, frames, case, repro), so the two never disagree: one SARIF result per violation, one
 * rule per violation kind, and a location where one is known - the frame of a sanitizer report
 * that lies in the user's source, else the plugin's source file, else the program an exec
 * endpoint runs. Nothing here trusts the report's strings beyond their being strings. */
#ifndef IPCP_STRESS_SARIF_H
#define IPCP_STRESS_SARIF_H

#include <stdio.h>

#include <jansson.h>

struct st_sarif_src {
    const char *source;  /* the plugin's source file (--plugin-src), or NULL */
    const char *program; /* an exec endpoint's command (its first word may be a file), or NULL */
    const char *version; /* ipcproof's */
};

/* The SARIF log of report (borrowed); a new reference. */
json_t *st_sarif_from_report(const json_t *report, const struct st_sarif_src *src);

/* Writes it to out (truncated first); 0, or -1. */
int st_sarif_write(const json_t *report, const struct st_sarif_src *src, FILE *out);

#endif

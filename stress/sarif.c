/* sarif.c - violations as SARIF 2.1.0; see sarif.h. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sarif.h"

static const struct {
    const char *kind, *text;
} rules[] = {
    {"loss", "a message whose send() returned 0 never arrived"},
    {"duplicate", "a message was delivered more than once"},
    {"reorder", "a producer's messages arrived out of order on a channel that promises order"},
    {"torn", "a message arrived with bytes that are not the ones sent"},
    {"exclusion", "two workers were inside the critical section at once"},
    {"deadlock", "no progress: every endpoint waits"},
    {"crash", "an endpoint died (a signal, or an exit that is not the harness's)"},
    {"race", "ThreadSanitizer reported a data race"},
    {"leak", "an OS object or a process outlived the run"},
    {"error", "the protocol returned an error it should not have, or broke its contract"},
    {"starvation", "an endpoint waited far longer than the others for its turn"},
};

static int rule_index(const char *kind)
{
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
        if (kind != NULL && strcmp(kind, rules[i].kind) == 0) return (int)i;
    return -1;
}

/* "#0 func at FILE:LINE in module" -> FILE and LINE when FILE ends with the source's name. */
static int frame_in(const char *frame, const char *source, char *file, size_t cap, long *line)
{
    const char *at = strstr(frame, " at ");
    if (at == NULL || source == NULL) return 0;
    at += 4;
    const char *colon = strchr(at, ':');
    if (colon == NULL || (size_t)(colon - at) >= cap) return 0;
    snprintf(file, cap, "%.*s", (int)(colon - at), at);
    const char *base = strrchr(source, '/');
    base = base ? base + 1 : source;
    size_t fl = strlen(file), bl = strlen(base);
    if (fl < bl || strcmp(file + fl - bl, base) != 0) return 0;
    char *end;
    *line = strtol(colon + 1, &end, 10);
    return *line > 0;
}

/* The first word of a command, when it names a regular file. */
static int program_file(const char *cmd, char *out, size_t cap)
{
    if (cmd == NULL) return 0;
    size_t n = strcspn(cmd, " \t");
    if (n == 0 || n >= cap) return 0;
    snprintf(out, cap, "%.*s", (int)n, cmd);
    struct stat st;
    return stat(out, &st) == 0 && S_ISREG(st.st_mode);
}

/* A path as a URI relative to the working directory (the repository, in a GitHub job) when it
 * lies below it, else as it is. */
static json_t *artifact(const char *path)
{
    char cwd[PATH_MAX], abs[PATH_MAX];
    const char *uri = path;
    if (getcwd(cwd, sizeof(cwd)) != NULL && realpath(path, abs) != NULL) {
        size_t cl = strlen(cwd);
        if (strncmp(abs, cwd, cl) == 0 && abs[cl] == '/')
            uri = path[0] == '/' ? abs + cl + 1 : path;
    }
    if (strncmp(uri, "./", 2) == 0) uri += 2;
    return json_pack("{s:s}", "uri", uri);
}

static json_t *location(const json_t *viol, const struct st_sarif_src *src)
{
    char file[PATH_MAX];
    long line = 0;
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(viol, "frames"), i, f)
    {
        const char *s = json_string_value(f);
        if (s != NULL && frame_in(s, src->source, file, sizeof(file), &line))
            return json_pack("{s:{s:o, s:{s:I}}}", "physicalLocation", "artifactLocation",
                             artifact(file), "region", "startLine", (json_int_t)line);
    }
    if (src->source != NULL)
        return json_pack("{s:{s:o, s:{s:i}}}", "physicalLocation", "artifactLocation",
                         artifact(src->source), "region", "startLine", 1);
    if (program_file(src->program, file, sizeof(file)))
        return json_pack("{s:{s:o, s:{s:i}}}", "physicalLocation", "artifactLocation",
                         artifact(file), "region", "startLine", 1);
    return NULL;
}

json_t *st_sarif_from_report(const json_t *report, const struct st_sarif_src *src)
{
    json_t *rl = json_array();
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
        json_array_append_new(rl,
                              json_pack("{s:s, s:s, s:{s:s}, s:{s:s}}", "id", rules[i].kind, "name",
                                        rules[i].kind, "shortDescription", "text", rules[i].text,
                                        "defaultConfiguration", "level", "error"));
    json_t *results = json_array();
    const char *top_repro = json_string_value(json_object_get(report, "repro"));
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(report, "violations"), i, v)
    {
        const char *kind = json_string_value(json_object_get(v, "kind"));
        const char *detail = json_string_value(json_object_get(v, "detail"));
        const char *cs = json_string_value(json_object_get(v, "case"));
        const char *repro = json_string_value(json_object_get(v, "repro"));
        if (repro == NULL) repro = top_repro;
        int r = rule_index(kind);
        size_t len =
            strlen(detail ? detail : "") + strlen(cs ? cs : "") + strlen(repro ? repro : "") + 64;
        char *text = malloc(len);
        if (text == NULL) continue;
        snprintf(text, len, "%s%s%s%s%s%s", cs ? cs : "", cs ? ": " : "",
                 detail ? detail
                 : kind ? kind
                        : "violation",
                 repro ? "\nrerun: " : "", repro ? repro : "", "");
        json_t *res = json_pack("{s:s, s:s, s:{s:s}}", "ruleId", r >= 0 ? rules[r].kind : "error",
                                "level", "error", "message", "text", text);
        free(text);
        if (r >= 0) json_object_set_new(res, "ruleIndex", json_integer(r));
        json_t *loc = location(v, src);
        if (loc != NULL) json_object_set_new(res, "locations", json_pack("[o]", loc));
        /* the same violation of the same case is the same alert from run to run */
        char fp[256];
        snprintf(fp, sizeof(fp), "%s/%s", cs ? cs : "stress", kind ? kind : "?");
        json_object_set_new(res, "partialFingerprints",
                            json_pack("{s:s}", "ipcproofCaseKind/v1", fp));
        json_array_append_new(results, res);
    }
    const char *result = json_string_value(json_object_get(report, "result"));
    json_t *run = json_pack("{s:{s:{s:s, s:s, s:o}}, s:o, s:[{s:b}]}", "tool", "driver", "name",
                            "ipcproof", "version", src->version ? src->version : "0", "rules", rl,
                            "results", results, "invocations", "executionSuccessful",
                            result != NULL && strcmp(result, "error") != 0);
    return json_pack("{s:s, s:s, s:[o]}", "$schema",
                     "https://json.schemastore.org/sarif-2.1.0.json", "version", "2.1.0", "runs",
                     run);
}

int st_sarif_write(const json_t *report, const struct st_sarif_src *src, FILE *out)
{
    json_t *log = st_sarif_from_report(report, src);
    if (log == NULL) return -1;
    rewind(out);
    int rc = ftruncate(fileno(out), 0) < 0 ||
             json_dumpf(log, out, JSON_INDENT(2) | JSON_ENSURE_ASCII) != 0 || fflush(out) != 0;
    json_decref(log);
    return rc ? -1 : 0;
}

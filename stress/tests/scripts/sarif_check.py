#!/usr/bin/env python3
"""sarif_check.py FILE RULE URI_SUFFIX - checks that FILE is a SARIF 2.1.0 log of ipcproof with
a result of rule RULE located in a file whose URI ends with URI_SUFFIX, every result naming a
rule the driver declares, and a message with the rerun line."""
import json
import sys

path, rule, suffix = sys.argv[1:4]
log = json.load(open(path))
assert log["version"] == "2.1.0", log.get("version")
run = log["runs"][0]
assert run["tool"]["driver"]["name"] == "ipcproof"
ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
results = run["results"]
assert results, "no results"
for r in results:
    assert r["ruleId"] in ids, r["ruleId"]
    assert ids[r["ruleIndex"]] == r["ruleId"]
    assert r["level"] == "error"
    assert "rerun: ipcproof stress" in r["message"]["text"], r["message"]["text"]
hits = [r for r in results if r["ruleId"] == rule and any(
    loc["physicalLocation"]["artifactLocation"]["uri"].endswith(suffix)
    for loc in r.get("locations", []))]
assert hits, "no %s result located in *%s: %s" % (rule, suffix, json.dumps(results)[:600])
for r in hits:  # a file name, not a frame's text around it
    for loc in r["locations"]:
        uri = loc["physicalLocation"]["artifactLocation"]["uri"]
        assert " " not in uri and "(" not in uri, uri
print("sarif ok: %d results, %d %s in %s" % (len(results), len(hits), rule, suffix))

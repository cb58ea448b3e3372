#!/usr/bin/env python3
"""report_test.py - what ci/report puts on the page for the fixture summary.json.

    report_test.py CI_REPORT FIXTURE_SUMMARY_JSON

Checks, against the figures in the fixture (read here, not repeated): the verdict, one section
per part of the run, the crash rows with their `ci/reproduce` lines (new crashes first), one
verdict-table row per stress run with its result, violations and repro command, two SVG line
charts per fuzz target with one polyline per engine, one coverage row per file, that the page
loads nothing from outside, that strings from the summary are HTML-escaped, that a summary with
nothing in it still renders, and that unreadable input exits 2.
"""
import copy
import html
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

REPORT = FIXTURE = None


def render(summary=None, path=None):
    if summary is not None:
        r = subprocess.run([sys.executable, REPORT], input=json.dumps(summary), capture_output=True,
                           text=True, timeout=60)
    else:
        r = subprocess.run([sys.executable, REPORT, path], capture_output=True, text=True, timeout=60)
    return r


class ReportTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(FIXTURE, encoding="utf-8") as f:
            cls.s = json.load(f)
        r = render(path=FIXTURE)
        assert r.returncode == 0, r.stderr
        cls.page = r.stdout

    def section(self, sid):
        m = re.search(r'<section id="%s">(.*?)</section>' % sid, self.page, re.S)
        self.assertIsNotNone(m, f"no section {sid}")
        return m.group(1)

    def test_verdict_and_cards(self):
        self.assertTrue(self.page.startswith("<!DOCTYPE html>"))
        head = self.section("summary")
        self.assertIn('<span class="verdict fail">FAIL</span>', head)
        self.assertIn(f"exit status {self.s['exit_code']}", head)
        new = sum(1 for c in self.s["crashes"] if c["new"])
        self.assertRegex(head, r'<div class="v">%d</div><div class="k">new crashes' % new)
        runs = self.s["stress"]["runs"]
        failed = sum(1 for r in runs if r["result"] == "fail")
        self.assertIn(f"{failed} / {len(runs)}</div><div class=\"k\">stress runs failed", head)

    def test_crash_rows_with_repro_lines(self):
        sec = self.section("crashes")
        rows = re.findall(r"<tr class=\"[^\"]*\">(.*?)</tr>", sec, re.S)
        self.assertEqual(len(rows), len(self.s["crashes"]))
        for c in self.s["crashes"]:
            self.assertIn(f'<code class="repro">{html.escape(c["repro"])}</code>', sec)
            self.assertTrue(c["repro"].startswith("ci/reproduce "))
            self.assertIn(html.escape(c["summary"]), sec)
        # new crashes come first and are marked
        self.assertIn('<span class="pill new">new</span>', rows[0])
        self.assertIn('<span class="pill known">known</span>', rows[-1])

    def test_stress_verdict_table(self):
        sec = self.section("stress")
        body = sec.split("<tbody>", 1)[1]
        rows = re.findall(r"<tr class=\"(fail|)\">(.*?)</tr>", body, re.S)
        runs = self.s["stress"]["runs"]
        self.assertEqual(len(rows), len(runs))
        for r in runs:
            cells = (f'<td class="name">{html.escape(r["proto"])}</td><td>{r["build"]}</td>'
                     f'<td>{r["mode"]}</td><td><span class="pill {r["result"]}">{r["result"]}</span></td>'
                     f'<td class="num">{r["violations"]}')
            match = [cls for cls, row in rows if row.startswith(cells)]
            self.assertEqual(len(match), 1, f"row for {r['proto']} {r['build']} {r['mode']}")
            self.assertEqual(match[0], "fail" if r["result"] != "pass" else "")
            self.assertIn(html.escape(r["repro"]), body)
        self.assertEqual(rows[0][0], "fail", "failing runs are listed first")

    def test_charts_per_target(self):
        sec = self.section("fuzz")
        for t in self.s["fuzz"]["targets"]:
            m = re.search(r'<div class="target" id="target-%s">(.*?)</div></div>' % t["name"], sec, re.S)
            self.assertIsNotNone(m, t["name"])
            svgs = re.findall(r"<svg .*?</svg>", m.group(1), re.S)
            self.assertEqual(len(svgs), 2)
            self.assertIn('aria-label="exec/s"', svgs[0])
            self.assertIn('aria-label="coverage growth"', svgs[1])
            for svg in svgs:
                lines = re.findall(r'<polyline points="([^"]+)"', svg)
                self.assertEqual(len(lines), len(t["engines"]))
                for pts in lines:
                    xy = [tuple(map(float, p.split(","))) for p in pts.split()]
                    xs = [x for x, _ in xy]
                    self.assertEqual(xs, sorted(xs), "points in time order")
                    for x, y in xy:  # inside the 560x230 drawing
                        self.assertTrue(0 <= x <= 560 and 0 <= y <= 230, (x, y))
            # the facts line carries the final figures
            lf = t["engines"]["libfuzzer"]
            self.assertIn(f"{lf['cov']} edges", m.group(1))

    def test_speed_rows(self):
        sec = self.section("fuzz")
        table = re.search(r'<table class="speed">(.*?)</table>', sec, re.S)
        self.assertIsNotNone(table)
        rows = re.findall(r'<tr class="([^"]*)"><td class="name">([^<]+)</td>(.*?)</tr>', table.group(1), re.S)
        self.assertEqual([r[1] for r in rows], [t["name"] for t in self.s["fuzz"]["targets"]])
        pills = {"met": "pass", "missed": "fail", "noisy": "flaky"}
        for (cls, name, cells), t in zip(rows, self.s["fuzz"]["targets"]):
            v = t["engines"]["libfuzzer"]["speed"]
            self.assertIn(f'<span class="pill {pills[v["verdict"]]}">{v["verdict"]}</span>', cells)
            self.assertEqual(cls, "fail" if v["verdict"] == "missed" else "", name)
            if v["verdict"] == "noisy":
                self.assertIn(v["noisy"], cells)
        verdicts = {t["engines"]["libfuzzer"]["speed"]["verdict"] for t in self.s["fuzz"]["targets"]}
        self.assertEqual(verdicts, {"missed", "noisy"}, "the fixture shows two kinds of rows")

    def test_coverage_rows(self):
        sec = self.section("coverage")
        core = sec.split("Fuzz targets")[0]
        rows = re.findall(r"<tr><td><code>.*?</tr>", core, re.S)
        self.assertEqual(len(rows), len(self.s["coverage"]["files"]))
        for f in self.s["coverage"]["files"]:
            row = [r for r in rows if r.startswith(f"<tr><td><code>{f['file']}</code></td>")]
            self.assertEqual(len(row), 1, f["file"])
            pct = f["lines"]["percent"]
            self.assertIn(f'<span style="width:{pct:.1f}%">', row[0])
            for k in ("lines", "functions", "branches"):  # each with its own numbers
                m = f[k]
                self.assertIn(f"{m['percent']:.1f}% <span class=\"muted\">({m['covered']}/"
                              f"{m['count']})", row[0], (f["file"], k))
            t = f.get("trend")
            if t is None:  # not in the previous night's summary
                self.assertIn('<td class="num">new</td>', row[0])
            else:
                self.assertIn(f'<td class="num">l {t["lines"]:+.1f} / f {t["functions"]:+.1f} / '
                              f'b {t["branches"]:+.1f}</td>', row[0])
        # a file no target reaches is a row at 0 %
        self.assertTrue(any("xport.c" in r and "0.0% <span" in r for r in rows))
        tot, tr = self.s["coverage"]["totals"], self.s["coverage"]["trend"]
        self.assertIn(f"<th>total</th><th></th><th class=\"num\">{tot['lines']['percent']:.1f}%", sec)
        self.assertIn(f"{tot['branches']['percent']:.1f}% <span class=\"muted\">"
                      f"({tot['branches']['covered']}/{tot['branches']['count']})</span></th>", sec)
        self.assertIn(f'<th class="num">l {tr["lines"]:+.1f} / f {tr["functions"]:+.1f} / '
                      f'b {tr["branches"]:+.1f}</th>', sec)
        self.assertIn("against the previous run&#x27;s summary.json", sec)
        for h in self.s["coverage"]["harnesses"]:
            self.assertIn(f"<tr><td><code>{h['file']}</code></td><td>{h['target']}</td>", sec)
            self.assertIn(f"{h['lines']['percent']:.1f}% <span class=\"muted\">", sec)
        for t, href in self.s["coverage"]["html"].items():
            self.assertIn(f'<a href="{href}">{t}</a>', sec)
        head = self.section("summary")
        self.assertIn(f"{tot['lines']['percent']:.1f}% ({tr['lines']:+.1f})", head)

    def test_coverage_without_trend(self):
        s = json.loads(json.dumps(self.s))
        s["coverage"].pop("trend")
        s["coverage"].pop("previous")
        for f in s["coverage"]["files"]:
            f.pop("trend")
        r = render(s)
        self.assertEqual(r.returncode, 0, r.stderr)
        page = r.stdout
        sec = page[page.index('<section id="coverage">'):]
        sec = sec[:sec.index("</section>")]
        self.assertNotIn(">trend<", sec)
        self.assertNotIn(">new<", sec)

    def test_self_contained(self):
        low = self.page.lower()
        for bad in ("<script", "<link", "<img", "<iframe", "<object", "<embed", "@import", "url(",
                    "src="):
            self.assertNotIn(bad, low)
        # the only URL on the page is the SVG namespace identifier
        self.assertEqual(set(re.findall(r"https?://[^\s\"'<>]+", self.page)),
                         {"http://www.w3.org/2000/svg"})

    def test_escaping(self):
        s = copy.deepcopy(self.s)
        evil = '<script>alert("x")</script>'
        s["crashes"][0]["summary"] = evil
        s["stress"]["runs"][0]["proto"] = evil
        s["fuzz"]["targets"][0]["name"] = evil
        r = render(summary=s)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("<script", r.stdout)
        self.assertIn("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;", r.stdout)

    def test_empty_summary(self):
        r = render(summary={"status": "error", "errors": ["build libfuzzer failed"]})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('<span class="verdict error">ERROR</span>', r.stdout)
        self.assertIn("<li>build libfuzzer failed</li>", r.stdout)
        for sid in ("crashes", "fuzz", "stress", "coverage", "phases"):
            self.assertIn(f'<section id="{sid}">', r.stdout)

    def test_bad_input(self):
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            f.write("{not json")
        try:
            r = render(path=f.name)
            self.assertEqual(r.returncode, 2)
            self.assertIn("cannot read", r.stderr)
        finally:
            os.unlink(f.name)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        print(__doc__)
        sys.exit(2)
    REPORT, FIXTURE = sys.argv[1], sys.argv[2]
    unittest.main(argv=[sys.argv[0], "-v"])

#!/usr/bin/env python3
"""report_screenshot.py - the nightly report renders in a real browser.

    report_screenshot.py CI_REPORT FIXTURE_SUMMARY_JSON CHROMIUM [KEEP_PNG]

Generates report.html from the fixture with ci/report, has headless Chromium take a 1280x2000
screenshot of it from a file:// URL (fresh profile, no network features), and checks the PNG:
valid signature and chunks, exactly 1280x2000, and not blank: a real share of non-white pixels,
the dark page header at the top, and the libFuzzer line colour of the inline SVG charts. A report
whose CSS or SVG the browser rejected, or an empty page, fails. Python 3 standard library only.
"""
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

WIDTH, HEIGHT = 1280, 2000
LIBFUZZER_BLUE = (0x25, 0x63, 0xEB)  # ENGINE_STYLE["libfuzzer"] in ci/report
HEADER_DARK = (0x0F, 0x17, 0x2A)  # header background in ci/report's CSS


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def read_png(path):
    """Returns (width, height, bytes per pixel, rows): each row the unfiltered pixel bytes."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        fail(f"{path} is not a PNG (signature {data[:8]!r})")
    pos, idat, ihdr = 8, [], None
    while pos < len(data):
        if pos + 8 > len(data):
            fail("truncated PNG chunk header")
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        ctype = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        if zlib.crc32(ctype + body) & 0xFFFFFFFF != crc:
            fail(f"bad CRC in PNG chunk {ctype!r}")
        if ctype == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif ctype == b"IDAT":
            idat.append(body)
        elif ctype == b"IEND":
            break
        pos += 12 + length
    if ihdr is None or not idat:
        fail("PNG without IHDR or IDAT")
    w, h, depth, ctype, _, _, interlace = ihdr
    if depth != 8 or ctype not in (2, 6) or interlace != 0:
        fail(f"unexpected PNG format: depth {depth}, colour type {ctype}, interlace {interlace}")
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = w * bpp
    if len(raw) != h * (stride + 1):
        fail(f"PNG data has {len(raw)} bytes, expected {h * (stride + 1)}")
    rows, prev = [], bytearray(stride)
    for y in range(h):
        ft = raw[y * (stride + 1)]
        row = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if ft == 1:  # Sub
            for i in range(bpp, stride):
                row[i] = (row[i] + row[i - bpp]) & 0xFF
        elif ft == 2:  # Up
            row = bytearray((a + b) & 0xFF for a, b in zip(row, prev))
        elif ft == 3:  # Average
            for i in range(stride):
                left = row[i - bpp] if i >= bpp else 0
                row[i] = (row[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif ft == 4:  # Paeth
            for i in range(stride):
                a = row[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                row[i] = (row[i] + pred) & 0xFF
        elif ft != 0:
            fail(f"bad PNG filter type {ft} in row {y}")
        rows.append(bytes(row))
        prev = row
    return w, h, bpp, rows


def near(px, ref, tol):
    return all(abs(a - b) <= tol for a, b in zip(px, ref))


def main():
    if len(sys.argv) < 4:
        print(__doc__)
        return 2
    report, fixture, chromium = sys.argv[1:4]
    keep = sys.argv[4] if len(sys.argv) > 4 else None
    tmp = tempfile.mkdtemp(prefix="ipcp-report-shot.")
    try:
        html_path = os.path.join(tmp, "report.html")
        png = os.path.join(tmp, "shot.png")
        r = subprocess.run([sys.executable, report, fixture, "-o", html_path],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            fail(f"ci/report exited {r.returncode}: {r.stderr}")
        cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--disable-extensions", "--hide-scrollbars",
               f"--user-data-dir={os.path.join(tmp, 'profile')}", f"--screenshot={png}",
               f"--window-size={WIDTH},{HEIGHT}", "file://" + html_path]
        env = dict(os.environ, HOME=tmp)
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=90, env=env)
        except subprocess.TimeoutExpired:
            fail("chromium did not finish within 90 s")
        if not os.path.isfile(png):
            fail(f"chromium wrote no screenshot (rc {r.returncode}):\n{r.stderr[-3000:]}")
        if keep:
            shutil.copyfile(png, keep)
        w, h, bpp, rows = read_png(png)
        if (w, h) != (WIDTH, HEIGHT):
            fail(f"screenshot is {w}x{h}, expected {WIDTH}x{HEIGHT}")
        nonwhite = blue = 0
        for row in rows:
            for x in range(0, len(row), bpp):
                px = row[x:x + 3]
                if px[0] < 245 or px[1] < 245 or px[2] < 245:
                    nonwhite += 1
                    if near(px, LIBFUZZER_BLUE, 24):
                        blue += 1
        share = nonwhite / (w * h)
        header = rows[8][40 * bpp:40 * bpp + 3]
        print(f"screenshot {w}x{h}: {share:.1%} non-white pixels, {blue} chart-blue pixels, "
              f"header pixel {tuple(header)}")
        if share < 0.10:
            fail(f"screenshot is nearly blank ({share:.1%} non-white pixels)")
        if not near(header, HEADER_DARK, 16):
            fail(f"no dark page header at the top (pixel {tuple(header)}): CSS not applied?")
        if blue < 200:
            fail(f"only {blue} pixels in the libFuzzer chart colour: SVG charts not drawn?")
        print("PASS: the report renders in headless Chromium")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Proxy benchmark: landjail-proxy against a direct connection, squid and mitmproxy.

Everything runs on 127.0.0.1 in one run, with nginx as the origin (origin.test, a plain and a
TLS port, a certificate from a throw-away test CA):

  1. small keep-alive requests   wrk, absolute-form GET of a 100-byte body: req/s, p50, p99
  2. new connection per request  wrk with "Connection: close": req/s
  3. 100 MiB bulk, plain HTTP    curl, best of 3: MB/s
  4. new intercepted HTTPS       tlsconn.c: CONNECT, TLS handshake, GET, close: connections/s
  5. 100 MiB bulk, HTTPS         curl through CONNECT (intercepted), best of 3: MB/s
  6. proxy RSS                   idle after start, under load, 1 000 idle keep-alive connections

Figures are reported with ratios against the baselines of the same run, and a PASS/FAIL per
target. The table goes to stdout and to results.md next to this file (or --out). A missed
target is reported, not an error: the exit status is non-zero only when the harness fails.

Needs nginx, squid, mitmproxy (mitmdump), wrk, curl, openssl, cc and libssl-dev (Debian
packages). Every server it starts is stopped on exit, including on errors and Ctrl-C.
"""

import argparse
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixtures import (BULK_BYTES, HOST, HarnessError, Procs, RssSampler, cpu_seconds,  # noqa: E402
                      fmt, free_port, identity, interrupted, log, make_files, make_pki, rss_kib,
                      run, run_main, start_landjail, start_mitmproxy, start_nginx, start_squid,
                      write_report)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))


# ---- measurements -------------------------------------------------------------------------


class Target:
    """One way to reach the origin: direct, or through a proxy listening on port."""

    def __init__(self, name, proc, port, ca):
        self.name, self.proc, self.port, self.ca = name, proc, port, ca

    @property
    def direct(self):
        return self.proc is None


def parse_duration_ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise HarnessError(f"cannot parse wrk latency '{text}'")
    return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[m.group(2)]


def wrk(cfg, t, d, close, seconds, connections):
    """Runs wrk against t; returns (req/s, p50 ms, p99 ms, errors, requests)."""
    origin = f"{HOST}:{cfg.port}"
    script = os.path.join(d, "wrk.lua")
    with open(script, "w") as f:
        # wrk.init builds its request from wrk.path and wrk.headers (-H) once per thread.
        path = "/small" if t.direct else f"http://{origin}/small"
        f.write(f'wrk.path = "{path}"\n')
    url = f"http://127.0.0.1:{cfg.port if t.direct else t.port}/"
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s",
            "-s", script, "-H", f"Host: {origin}"]
    if close:
        argv += ["-H", "Connection: close"]
    out = run(argv + [url], seconds + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    count = int(re.search(r"(\d+) requests in", out).group(1))
    p50 = parse_duration_ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = parse_duration_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:  # with Connection: close, wrk counts the server's close as a read error
        connect, read, write, timeout = (int(x) for x in m.groups())
        errors += connect + write + timeout + (0 if close else read)
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m.group(1))
    return rps, p50, p99, errors, count


def curl_bulk(cfg, t, tls, tries):
    """Best of `tries` downloads of /bulk; returns MB/s (10^6 bytes per second)."""
    port = cfg.tls_port if tls else cfg.port
    scheme = "https" if tls else "http"
    argv = ["curl", "-sS", "-o", "/dev/null", "--max-time", "60", "-w",
            "%{http_code} %{size_download} %{speed_download}"]
    if t.direct:
        argv += ["--resolve", f"{HOST}:{port}:127.0.0.1"]
    else:
        argv += ["-x", f"http://127.0.0.1:{t.port}"]
    if tls:
        argv += ["--cacert", t.ca]
    argv.append(f"{scheme}://{HOST}:{port}/bulk")
    best = 0.0
    for _ in range(tries):
        code, size, speed = run(argv, 90).stdout.split()
        if code != "200" or int(size) != BULK_BYTES:
            raise HarnessError(f"{t.name}: bulk {scheme} got HTTP {code}, {size} bytes")
        best = max(best, float(speed) / 1e6)
    return best


def tls_conns(cfg, t, seconds, threads):
    """New TLS connections per second (CONNECT + handshake + GET /small + close)."""
    origin = f"{HOST}:{cfg.tls_port}"
    if t.direct:
        argv = [cfg.tlsconn, f"127.0.0.1:{cfg.tls_port}", origin, t.ca, "/small", str(threads),
                str(seconds), "1000000", "direct"]
    else:
        argv = [cfg.tlsconn, f"127.0.0.1:{t.port}", origin, t.ca, "/small", str(threads),
                str(seconds), "1000000", "proxy"]
    r = run(argv, seconds + 60, check=False)
    m = re.search(r"ok (\d+) fail (\d+) seconds ([\d.]+) rate ([\d.]+)", r.stdout)
    if not m or r.returncode != 0:
        raise HarnessError(f"{t.name}: tlsconn failed: {r.stdout.strip()} {r.stderr.strip()}")
    if r.stderr.strip():
        log(f"{t.name}: tlsconn: {r.stderr.strip()[:400]}")
    return float(m.group(4)), int(m.group(2)), int(m.group(1))


def read_response(s):
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise HarnessError("connection closed before the response headers")
        buf += chunk
    head, body = buf.split(b"\r\n\r\n", 1)
    if not head.startswith(b"HTTP/1.1 200"):
        raise HarnessError(f"unexpected response: {head[:80]!r}")
    m = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.I)
    if not m:
        raise HarnessError("response without Content-Length")
    need = int(m.group(1))
    while len(body) < need:
        chunk = s.recv(65536)
        if not chunk:
            raise HarnessError("connection closed inside the response body")
        body += chunk


def idle_connections(cfg, t, count, timeout=60):
    """Opens `count` keep-alive connections through t, one request each, left open; returns
    the proxy's VmRSS in KiB with all of them open."""
    req = (f"GET http://{HOST}:{cfg.port}/small HTTP/1.1\r\nHost: {HOST}:{cfg.port}\r\n"
           "Connection: keep-alive\r\n\r\n").encode()
    socks = []
    deadline = time.monotonic() + timeout
    try:
        for _ in range(count):
            if time.monotonic() > deadline:
                raise HarnessError(f"{t.name}: {count} idle connections took over {timeout} s")
            s = socket.create_connection(("127.0.0.1", t.port), timeout=10)
            socks.append(s)
            s.sendall(req)
            read_response(s)
        time.sleep(1.0)
        for s in socks[:: max(1, count // 20)]:  # still open and answering?
            s.sendall(req)
            read_response(s)
        time.sleep(0.5)
        return rss_kib(t.proc.pid)
    finally:
        for s in socks:
            s.close()


# ---- the run ------------------------------------------------------------------------------


class Config:
    pass


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def best_of(rounds, targets, run_one):
    """Runs run_one(t) `rounds` times per target, interleaving the targets so that a burst of
    load from elsewhere on the machine hits them alike; keeps each target's best result
    (by its first element)."""
    best = {}
    for _ in range(rounds):
        for t in targets:
            r = run_one(t)
            if t.name not in best or r[0] > best[t.name][0]:
                best[t.name] = r
    return best


def measure_load(cfg, targets, d):
    """Runs the load measurements 1-5; returns {(row, target name): value}."""
    res = {}
    dur, rounds = cfg.seconds, cfg.rounds
    peaks = {t.name: 0 for t in targets}

    def keepalive(t):
        if t.proc is None:
            return wrk(cfg, t, d, False, dur, 32) + (None,)
        cpu = cpu_seconds(t.proc)
        with RssSampler(t.proc.pid) as s:
            r = wrk(cfg, t, d, False, dur, 32)
        peaks[t.name] = max(peaks[t.name], s.peak)
        return r + ((cpu_seconds(t.proc) - cpu) / max(r[4], 1) * 1e6,)

    log(f"1/6 small keep-alive requests (wrk -t1 -c32, best of {rounds})")
    for t in targets:
        wrk(cfg, t, d, False, 1, 32)  # warm-up: upstream connections, caches
    for name, (rps, p50, p99, err, _, cpu) in best_of(rounds, targets, keepalive).items():
        res[("ka", name)], res[("ka50", name)], res[("ka99", name)] = rps, p50, p99
        res[("kaerr", name)], res[("kacpu", name)] = err, cpu
        log(f"  {name}: {rps:.0f} req/s p50 {p50:.3f} ms p99 {p99:.3f} ms errors {err}")

    log(f"2/6 new connection per request (wrk -t1 -c16, Connection: close, best of {rounds})")
    closing = best_of(rounds, targets, lambda t: wrk(cfg, t, d, True, dur, 16))
    for name, (rps, _, _, err, _) in closing.items():
        res[("close", name)], res[("closeerr", name)] = rps, err
        log(f"  {name}: {rps:.0f} req/s errors {err}")

    log("3/6 100 MiB bulk, plain HTTP (curl, best of 3)")
    for t in targets:
        res[("bulk", t.name)] = curl_bulk(cfg, t, False, 3)
        log(f"  {t.name}: {res[('bulk', t.name)]:.0f} MB/s")

    tls_targets = [t for t in targets if t.name != "squid"]

    def tls(t):
        cpu = cpu_seconds(t.proc)
        rate, fail, ok = tls_conns(cfg, t, dur, cfg.tls_threads)
        per_conn = None if t.proc is None else (cpu_seconds(t.proc) - cpu) / max(ok, 1) * 1e3
        return rate, fail, per_conn

    log(f"4/6 new intercepted HTTPS connections (tlsconn, {cfg.tls_threads} threads, "
        f"best of {rounds})")
    for t in tls_targets:
        tls_conns(cfg, t, 1, cfg.tls_threads)  # warm-up (leaf certificate cache, pools)
    for name, (rate, fail, cpu) in best_of(rounds, tls_targets, tls).items():
        res[("tls", name)], res[("tlserr", name)], res[("tlscpu", name)] = rate, fail, cpu
        log(f"  {name}: {rate:.0f} conn/s, {fail} failed")

    log("5/6 100 MiB bulk, intercepted HTTPS (curl, best of 3)")
    for t in tls_targets:
        res[("tlsbulk", t.name)] = curl_bulk(cfg, t, True, 3)
        log(f"  {t.name}: {res[('tlsbulk', t.name)]:.0f} MB/s")

    for t in targets:
        if t.proc is not None:
            res[("rssload", t.name)] = peaks[t.name] / 1024
            res[("rsshwm", t.name)] = rss_kib(t.proc.pid, "VmHWM") / 1024
    return res


def measure_rss(cfg, targets, ljs, d, res):
    """6: RSS with idle connections (squid, mitmproxy) and of fresh landjail-proxies."""
    log("6/6 RSS")
    for t in targets:
        if t.name in ("squid", "mitmproxy"):
            res[("rss1000", t.name)] = idle_connections(cfg, t, cfg.idle_conns) / 1024
            log(f"  {t.name}: {res[('rss1000', t.name)]:.1f} MiB with {cfg.idle_conns} idle")
    for name, threads in ljs:
        # A fresh instance: idle RSS after start, then the cost of 1 000 idle connections.
        p, port, ca = start_landjail(cfg.procs, d, cfg.proxy, name + "-fresh", threads, cfg.port,
                                     cfg.tls_port, cfg.test_ca)
        time.sleep(1.0)
        res[("rssidle", name)] = rss_kib(p.pid) / 1024
        fresh = Target(name, p, port, ca)
        res[("rss1000", name)] = idle_connections(cfg, fresh, cfg.idle_conns) / 1024
        log(f"  {name}: idle {res[('rssidle', name)]:.1f} MiB, "
            f"{res[('rss1000', name)]:.1f} MiB with {cfg.idle_conns} idle connections")
        cfg.procs.stop(p)
        if p.returncode not in (0, -signal.SIGTERM):
            raise HarnessError(f"{name}-fresh exited with status {p.returncode} on SIGTERM")


ROWS = [
    # key, label, unit, digits, higher is better, baseline for the target, target ratio/limit
    ("ka", "small keep-alive requests", "req/s", 0, True, "squid", 2.0),
    ("ka50", "small keep-alive p50 latency", "ms", 3, False, None, None),
    ("ka99", "small keep-alive p99 latency", "ms", 3, False, None, None),
    ("kacpu", "proxy CPU per keep-alive request", "µs", 1, False, None, None),
    ("close", "new connection per request", "req/s", 0, True, None, None),
    ("bulk", "100 MiB bulk, plain HTTP", "MB/s", 0, True, "direct", 0.5),
    ("tls", "new intercepted HTTPS connections", "conn/s", 0, True, "mitmproxy", 4.0),
    ("tlscpu", "proxy CPU per intercepted connection", "ms", 2, False, None, None),
    ("tlsbulk", "100 MiB bulk, intercepted HTTPS", "MB/s", 0, True, "mitmproxy", 2.0),
    ("rssidle", "proxy RSS, idle after start", "MiB", 1, False, "limit", 16.0),
    ("rssload", "proxy RSS, peak under keep-alive load", "MiB", 1, False, None, None),
    ("rss1000", "proxy RSS, {n} idle keep-alive conns", "MiB", 1, False, "limit", 64.0),
    ("rsshwm", "proxy peak RSS over the whole run (VmHWM)", "MiB", 1, False, None, None),
]


def verdict(res, key, name, base, goal):
    """('PASS'|'FAIL', shown figure) for one landjail column against a target row."""
    v = res.get((key, name))
    if base == "limit":
        return ("PASS" if v is not None and v <= goal else "FAIL"), fmt(v, 1) + " MiB"
    r = ratio(v, res.get((key, base)))
    return ("PASS" if r is not None and r >= goal else "FAIL"), fmt(r, 2) + "×"


def table(res, primary, other, idle_conns):
    """The markdown table; ratios and the first verdict use `primary`, the last column
    gives the verdict `other` (the other --threads setting) would get."""
    cols = ["direct", "squid", "mitmproxy", primary, other]
    head = ["measurement", "unit"] + [c + (" ★" if c == primary else "") for c in cols] + [
        "★/direct", "★/squid", "★/mitmproxy", "target", "★ result", f"{other} result"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    verdicts = []
    for key, label, unit, digits, _higher, base, goal in ROWS:
        label = label.format(n=fmt(idle_conns, 0))
        vals = [res.get((key, c)) for c in cols]
        ratios = [ratio(res.get((key, primary)), res.get((key, b)))
                  for b in ("direct", "squid", "mitmproxy")]
        target, mine, theirs = "", "", ""
        if base is not None:
            target = f"≤ {goal:g} MiB" if base == "limit" else f"≥ {goal:g}× {base}"
            v, shown = verdict(res, key, primary, base, goal)
            mine = f"**{v}**" if v == "FAIL" else v
            verdicts.append((label, v, shown))
            v2, shown2 = verdict(res, key, other, base, goal)
            theirs = f"{v2} ({shown2})"
        lines.append("| " + " | ".join(
            [label, unit] + [fmt(v, digits) for v in vals] +
            [fmt(r, 2) + "×" if r is not None else "–" for r in ratios] +
            [target, mine, theirs]) + " |")
    return lines, verdicts


def environment():
    def ver(argv, pat):
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=20)
            m = re.search(pat, out.stdout + out.stderr)
            return m.group(1) if m else "?"
        except OSError:
            return "?"
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    tools = [("nginx", ["nginx", "-v"], r"nginx/(\S+)"),
             ("squid", ["squid", "-v"], r"Version (\S+)"),
             ("mitmproxy", ["mitmdump", "--version"], r"Mitmproxy: (\S+)"),
             ("wrk", ["wrk", "-v"], r"wrk (\S+)"),
             ("curl", ["curl", "--version"], r"curl (\S+)")]
    return f"{os.cpu_count()} CPUs ({cpu}); " + ", ".join(
        f"{name} {ver(argv, pat)}" for name, argv, pat in tools)


def check_tools():
    missing = [t for t in ("nginx", "squid", "mitmdump", "wrk", "curl", "openssl", "cc")
               if shutil.which(t) is None]
    if missing:
        raise HarnessError("missing " + ", ".join(missing) +
                           " (Debian packages: nginx-light squid mitmproxy wrk curl openssl "
                           "libssl-dev; ./install.sh installs them)")


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--proxy", default=os.path.join(ROOT, "build/bin/landjail-proxy"))
    ap.add_argument("--out", default=os.path.join(HERE, "results.md"))
    ap.add_argument("--seconds", type=int, default=5, help="length of each load run (5)")
    ap.add_argument("--rounds", type=int, default=2,
                    help="load runs per target, interleaved; the best counts (2)")
    ap.add_argument("--tls-threads", type=int, default=4, help="tlsconn threads (4)")
    ap.add_argument("--idle-conns", type=int, default=1000)
    ap.add_argument("--table-threads", type=int, default=2, choices=(1, 2),
                    help="landjail-proxy --threads used for the ratios and verdicts (2: the default on 2 cores)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    if not (1 <= args.seconds <= 30 and 1 <= args.rounds <= 5 and 1 <= args.tls_threads <= 16
            and 1 <= args.idle_conns <= 3000):
        ap.error("--seconds 1..30, --rounds 1..5, --tls-threads 1..16, --idle-conns 1..3000")
    return args


def prepare(args):
    """Checks the tools and the binary, and raises the open-file limit."""
    # nginx and squid live in /usr/sbin, which is not on a normal user's PATH on Debian.
    path = os.environ.get("PATH", "").split(os.pathsep)
    extra = [p for p in ("/usr/sbin", "/sbin") if p not in path]
    os.environ["PATH"] = os.pathsep.join(path + extra)
    check_tools()
    if not os.access(args.proxy, os.X_OK):
        raise HarnessError(f"{args.proxy} is not built (make build/bin/landjail-proxy)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 8192 if hard == resource.RLIM_INFINITY else min(8192, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < 2 * args.idle_conns + 200:
        raise HarnessError(f"open-file limit {want} is too low for {args.idle_conns} connections")


def start_all(cfg, d, ljs):
    """Builds tlsconn, makes the PKI and files, starts every server; returns the targets."""
    cfg.tlsconn = os.path.join(d, "tlsconn")
    run(["cc", "-O2", "-Wall", "-Wextra", "-o", cfg.tlsconn, os.path.join(HERE, "tlsconn.c"),
         "-lssl", "-lcrypto", "-pthread"], 120)
    cfg.test_ca, crt, key = make_pki(d)
    make_files(d)
    cfg.port, cfg.tls_port = free_port(), free_port()
    start_nginx(cfg.procs, d, cfg.port, cfg.tls_port, crt, key)
    squid_port, mitm_port = free_port(), free_port()
    squid = start_squid(cfg.procs, d, squid_port)
    mitm, mitm_ca = start_mitmproxy(cfg.procs, d, mitm_port, cfg.test_ca)
    targets = [Target("direct", None, None, cfg.test_ca),
               Target("squid", squid, squid_port, None),
               Target("mitmproxy", mitm, mitm_port, mitm_ca)]
    for name, threads in ljs:
        p, port, ca = start_landjail(cfg.procs, d, cfg.proxy, name, threads, cfg.port,
                                     cfg.tls_port, cfg.test_ca)
        targets.append(Target(name, p, port, ca))
    return targets


def notes(cfg, args, res, targets, other, seconds_taken):
    errs = {t.name: (res.get(("kaerr", t.name), 0), res.get(("closeerr", t.name), 0),
                     res.get(("tlserr", t.name), 0)) for t in targets}
    return [
        f"Run {time.strftime('%Y-%m-%d %H:%M')}, {seconds_taken:.0f} s; " + environment() +
        f"; proxy {identity(args.proxy, ('proxy', 'policy', 'Makefile'))}.",
        "",
        f"★ = landjail-proxy `--threads {args.table_threads}`, used for the ratios and the "
        f"★ verdicts; the last column is the verdict {other} would get. All on 127.0.0.1, "
        "nginx (1 worker) as the origin, `--audit-log` on. Load runs last "
        f"{cfg.seconds} s after a 1 s warm-up; each target is run {cfg.rounds}×, "
        "interleaved, and the best run counts. Keep-alive: wrk -t1 -c32; new connection: "
        "wrk -t1 -c16 with `Connection: close`; new intercepted HTTPS: tlsconn.c "
        f"(OpenSSL client, {cfg.tls_threads} threads: CONNECT, full handshake without "
        "resumption, GET /small, close; direct = TLS straight to nginx); bulk: curl, best of "
        "3, MB = 10^6 bytes. CPU rows: the proxy's user+system CPU time over the run "
        "divided by the requests or connections completed (lower is better; less sensitive "
        "to other load on the machine than the rates). mitmproxy: `stream_large_bodies=1` "
        "(streams the bulk bodies), `http2=false`, upstream verified against the test CA. "
        "squid 5: `cache deny all`, no cache_dir; it does not intercept TLS here (its HTTPS "
        "rows are –). RSS idle / idle connections: a fresh landjail-proxy, one "
        "keep-alive GET per connection, then left open (squid and mitmproxy: the instances "
        "used for the load runs).",
        "",
        "Errors (keep-alive, close, tls): " + ", ".join(
            f"{n} {a}/{b}/{c}" for n, (a, b, c) in errs.items()) + ".",
    ]


def main():
    args = parse_args()
    prepare(args)
    cfg = Config()
    cfg.proxy, cfg.seconds, cfg.tls_threads = args.proxy, args.seconds, args.tls_threads
    cfg.idle_conns, cfg.rounds = args.idle_conns, args.rounds
    cfg.procs = Procs()
    primary, other = f"landjail-t{args.table_threads}", f"landjail-t{3 - args.table_threads}"
    ljs = [("landjail-t1", 1), ("landjail-t2", 2)]
    d = tempfile.mkdtemp(prefix="lj-proxy-bench.")
    started = time.monotonic()
    # SIGTERM/SIGHUP become exceptions so that the finally below stops every server.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupted)
    try:
        targets = start_all(cfg, d, ljs)
        res = measure_load(cfg, targets, d)
        measure_rss(cfg, targets, ljs, d, res)
        for t in targets:
            if t.proc is not None and t.proc.poll() is not None:
                raise HarnessError(f"{t.name} died during the run (status {t.proc.returncode})")
        lines, verdicts = table(res, primary, other, cfg.idle_conns)
        write_report("landjail-proxy benchmark", lines + [""] + notes(
            cfg, args, res, targets, other, time.monotonic() - started), args.out)
        for label, v, shown in verdicts:
            if v != "PASS":
                log(f"target missed: {label} ({shown})")
        return 0
    finally:
        cfg.procs.stop_all()
        if args.keep:
            log(f"kept {d}")
        else:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    run_main(main)

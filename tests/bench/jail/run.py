#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Jail benchmark: what landjail adds to starting a command and to one TCP connect.

  1. start-up    `landjail --allow … -- true` against plain `true`, many runs interleaved:
                 median and p90 wall time (fork + exec + wait, measured here), difference
                 of the medians (target ≤ 30 ms). Also with --proxy-addr (no proxy to start).
  2. connect     connect_bench.c: socket + connect + close N times to a loopback listener,
                 mean µs per connect. Plain against a standalone landjail-proxy (the same
                 accept side as in the jail) and against a bare accept loop; inside landjail
                 against its own proxy (every connect trapped by the supervisor, performed with
                 pidfd_getfd); and, when build/tests/e2e/outer-seccomp exists, inside landjail
                 run under `outer-seccomp --pidfd-getfd-eperm` (the ADDFD fallback). Each
                 variant runs --rounds times, interleaved; the lowest mean counts. Target:
                 supervised − plain ≤ 15 µs. Two floors (connect_bench --floor) show what a
                 minimal supervisor costs on this host.

All on 127.0.0.1, as the user running it. The table goes to stdout and to results.md next to
this file (or --out). A missed target is reported, not an error: the exit status is non-zero
only when the harness fails (a run exits non-zero, a connect fails).
"""

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "proxy"))
from fixtures import (ROOT, HarnessError, Procs, fmt, identity, interrupted,  # noqa: E402
                      log, read_line, run_main, write_report)

RULE = "domain=bench.test"
START_TARGET_MS = 30.0
CONNECT_TARGET_US = 15.0

# Where a change makes the measured binaries "uncommitted" (identity()).
SOURCES = ("landjail", "proxy", "policy")


# ---- running things -----------------------------------------------------------------------


class Config:
    pass


def bench_env(cfg):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": cfg.home,
           "XDG_CONFIG_HOME": os.path.join(cfg.home, ".config"), "LANG": "C.UTF-8"}
    if cfg.proxy:
        env["LANDJAIL_PROXY"] = cfg.proxy
    return env


def jail_argv(cfg, command, proxy_addr=None):
    argv = [cfg.landjail, "--allow", RULE, "--ca-dir", cfg.ca_dir,
            "--audit-log", os.path.join(cfg.dir, "audit.jsonl")]
    if proxy_addr:
        argv += ["--proxy-addr", proxy_addr]
    return argv + ["--"] + command


def timed_run(cfg, argv):
    """Wall time of one run in ms (fork, exec, wait); raises when it does not exit 0."""
    t0 = time.perf_counter_ns()
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, env=bench_env(cfg), cwd=cfg.dir, timeout=60)
    ms = (time.perf_counter_ns() - t0) / 1e6
    if p.returncode != 0:
        raise HarnessError(f"{' '.join(argv)}: exit {p.returncode}: "
                           f"{p.stderr.decode(errors='replace').strip()[-800:]}")
    return ms


def start_listener(cfg, procs, argv, name, ready_fd=False):
    """Starts a listener that reports its address (stdout line, or --ready-fd); returns it."""
    if ready_fd:
        r, w = os.pipe()
        try:
            p = procs.start(name, argv + ["--ready-fd", str(w)], pass_fds=(w,),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=bench_env(cfg))
        finally:
            os.close(w)
        try:
            line = read_line(r, 30)
        finally:
            os.close(r)
    else:
        p = procs.start(name, argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = read_line(p.stdout.fileno(), 30)
    m = re.search(rb"(127\.0\.0\.1:\d+)", line)
    if not m:
        raise HarnessError(f"{name} reported {line!r}, want 127.0.0.1:PORT")
    return p, m.group(1).decode()


CONNECT_RE = re.compile(r"connects (\d+) errors (\d+) mean_us ([\d.]+) median_us ([\d.]+) "
                        r"p90_us ([\d.]+) min_us ([\d.]+)")


def connect_run(cfg, name, argv):
    """One connect_bench run; returns ((mean, median, p90, min) in µs, stderr text)."""
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       env=bench_env(cfg), cwd=cfg.dir, timeout=600)
    m = CONNECT_RE.search(p.stdout)
    if p.returncode != 0 or not m or int(m.group(2)) != 0:
        raise HarnessError(f"{name}: exit {p.returncode}: {p.stdout.strip()} "
                           f"{p.stderr.strip()[-800:]}")
    return tuple(float(m.group(i)) for i in (3, 4, 5, 6)), p.stderr


# ---- the measurements ---------------------------------------------------------------------


def percentile(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def measure_startup(cfg, procs, res):
    """1: start-up of `true`, plain, in landjail, and in landjail with --proxy-addr."""
    true = shutil.which("true")
    proxy, addr = start_listener(cfg, procs, [cfg.proxy, "--listen", "127.0.0.1:0",
                                              "--allow", RULE, "--ca-dir", cfg.ca_dir,
                                              "--disable-audit-logs"], "standalone-proxy",
                                 ready_fd=True)
    variants = {"plain": [true]}
    if not cfg.plain_only:
        variants.update({"landjail": jail_argv(cfg, [true]),
                         "proxy-addr": jail_argv(cfg, [true], addr)})
    log(f"1/2 start-up of `true` ({cfg.runs} runs each, interleaved, after 3 warm-up runs)")
    for argv in variants.values():
        for _ in range(3):
            timed_run(cfg, argv)
    times = {k: [] for k in variants}
    for _ in range(cfg.runs):
        for k, argv in variants.items():
            times[k].append(timed_run(cfg, argv))
    for k, v in times.items():
        res[("start50", k)] = statistics.median(v)
        res[("start90", k)] = percentile(v, 0.9)
        log(f"  {k}: median {res[('start50', k)]:.2f} ms, p90 {res[('start90', k)]:.2f} ms")
    procs.stop(proxy)


def measure_connect(cfg, procs, res):
    """2: connect + close, plain and supervised."""
    serve, serve_addr = start_listener(cfg, procs, [cfg.connect_bench, "--serve"], "accept-loop")
    proxy, proxy_addr = start_listener(cfg, procs, [cfg.proxy, "--listen", "127.0.0.1:0",
                                                    "--allow", RULE, "--ca-dir", cfg.ca_dir,
                                                    "--disable-audit-logs", "--log-level",
                                                    "error"], "standalone-proxy", ready_fd=True)
    n = ["-n", str(cfg.connects)]
    variants = {
        "plain-loop": [cfg.connect_bench, *n, serve_addr],
        "plain-proxy": [cfg.connect_bench, *n, proxy_addr],
        "floor-continue": [cfg.connect_bench, "--floor", "continue", *n, proxy_addr],
        "floor-getfd": [cfg.connect_bench, "--floor", "getfd", *n, proxy_addr],
    }
    if not cfg.plain_only:
        variants["jail"] = jail_argv(cfg, [cfg.connect_bench, *n])
    if cfg.outer_seccomp and not cfg.plain_only:
        variants["jail-addfd"] = [cfg.outer_seccomp, "--pidfd-getfd-eperm", "--"] + jail_argv(
            cfg, [cfg.connect_bench, *n])
    log(f"2/2 connect + close, {cfg.connects} per run, best of {cfg.rounds}: "
        + ", ".join(variants))
    best = {}
    for _ in range(cfg.rounds):
        for k, argv in variants.items():
            figures, err = connect_run(cfg, k, argv)
            if k not in best or figures[0] < best[k][0]:
                best[k] = figures
            if k == "jail-addfd":
                cfg.addfd_warning = err.strip().splitlines()[:2]
    for k, figures in best.items():
        res[("conn", k)] = figures[0]
        res[("conndist", k)] = figures
        log(f"  {k}: mean {figures[0]:.2f} µs, median {figures[1]:.2f} µs, "
            f"p90 {figures[2]:.2f} µs, min {figures[3]:.2f} µs")
    procs.stop(serve)
    procs.stop(proxy)


# ---- the table ----------------------------------------------------------------------------


def row(label, unit, plain, jail, target=None, digits=1):
    diff = None if plain is None or jail is None else jail - plain
    result = ""
    if target is not None:
        result = "–" if diff is None else ("PASS" if diff <= target else "**FAIL**")
    return ("| " + " | ".join([label, unit, fmt(plain, digits), fmt(jail, digits),
                               ("+" if diff is not None and diff >= 0 else "") + fmt(diff, digits),
                               f"≤ +{target:g} {unit}" if target is not None else "", result])
            + " |", (label, result, diff))


def table(res, cfg):
    g = res.get
    rows = [
        row("start-up of `true`, median", "ms", g(("start50", "plain")),
            g(("start50", "landjail")), START_TARGET_MS, 2),
        row("start-up of `true`, p90", "ms", g(("start90", "plain")), g(("start90", "landjail")),
            None, 2),
        row("start-up with --proxy-addr (no proxy to start), median", "ms",
            g(("start50", "plain")), g(("start50", "proxy-addr")), None, 2),
        row("connect + close, mean (pidfd_getfd)", "µs", g(("conn", "plain-proxy")),
            g(("conn", "jail")), CONNECT_TARGET_US),
        row("connect + close, mean (ADDFD fallback)", "µs", g(("conn", "plain-proxy")),
            g(("conn", "jail-addfd")), None),
        row("floor: minimal supervisor answering CONTINUE, mean", "µs",
            g(("conn", "plain-proxy")), g(("conn", "floor-continue")), None),
        row("floor: minimal supervisor with pidfd_getfd + connect, mean", "µs",
            g(("conn", "plain-proxy")), g(("conn", "floor-getfd")), None),
    ]
    head = ["| measurement | unit | plain | landjail (or floor) | difference | target | result |",
            "|---|---|---|---|---|---|---|"]
    dist = ["", "Connect + close per variant (µs; the run with the lowest mean):", "",
            "| variant | mean | median | p90 | min |", "|---|---|---|---|---|"]
    for key, label in CONNECT_VARIANTS:
        figures = g(("conndist", key))
        if figures:
            dist.append(f"| {label} | " + " | ".join(fmt(v, 1) for v in figures) + " |")
    return head + [r for r, _ in rows] + dist, [v for _, v in rows if v[1]]


CONNECT_VARIANTS = [
    ("plain-loop", "plain, bare accept loop (connect_bench --serve)"),
    ("plain-proxy", "plain, standalone landjail-proxy"),
    ("floor-continue", "floor: minimal supervisor, CONTINUE"),
    ("floor-getfd", "floor: minimal supervisor, pidfd_getfd + connect"),
    ("jail", "landjail (pidfd_getfd)"),
    ("jail-addfd", "landjail, ADDFD fallback"),
]


def notes(cfg, seconds):
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    addfd = ("`outer-seccomp --pidfd-getfd-eperm` (pidfd_getfd answers EPERM, as in Docker "
             "without CAP_SYS_PTRACE)" + (f"; landjail said: {' / '.join(cfg.addfd_warning)}"
                                          if cfg.addfd_warning else "")
             if cfg.outer_seccomp else "not measured: build/tests/e2e/outer-seccomp is not built")
    return [
        f"Run {time.strftime('%Y-%m-%d %H:%M')}, {seconds:.0f} s; {os.cpu_count()} CPUs ({cpu}); "
        f"kernel {os.uname().release}; uid {os.getuid()}; {identity(cfg.landjail, SOURCES)}.",
        "",
        f"Start-up: wall time of fork + exec + wait from Python, {cfg.runs} runs of each "
        f"variant interleaved after 3 warm-up runs; landjail with `--allow {RULE}`, an existing "
        "--ca-dir (the CA is made once, before the runs) and --audit-log to a file; "
        "--proxy-addr points at a landjail-proxy started once beforehand.",
        f"Connect: connect_bench.c, {cfg.connects} × (socket, connect, close with SO_LINGER 0) "
        "after 500 untimed ones, per-connect times from CLOCK_MONOTONIC; each variant run "
        f"{cfg.rounds}×, interleaved, lowest mean kept. \"plain\" = the same program without "
        "the jail against a standalone landjail-proxy (the same accept side as the jail's own "
        "proxy); landjail = inside the jail, against the proxy landjail started (every connect "
        "trapped by seccomp user notification and performed by the supervisor). ADDFD: "
        + addfd + ". Floors: connect_bench --floor, the same loop in a child whose connect() is "
        "trapped by a seccomp user notification that a minimal supervisor answers with "
        "CONTINUE (the notification round trip alone) or by connecting the child's socket "
        "taken with pidfd_getfd (landjail's method without reading or checking the "
        "address): the part of landjail's figure no supervisor can avoid on this host. "
        "The bare accept loop (connect_bench --serve) is the kernel-only figure. On a 2-CPU "
        "VM the notification round trip depends on where the scheduler puts the supervisor "
        "and the caller (a cross-CPU wake-up is an IPI), so means carry a long tail: compare "
        "medians and minimums too, and run on an otherwise idle machine.",
    ]


# ---- main ---------------------------------------------------------------------------------


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--landjail", default=os.path.join(ROOT, "build/bin/landjail"))
    ap.add_argument("--proxy", default=None,
                    help="landjail-proxy (default: next to --landjail, or $LANDJAIL_PROXY)")
    ap.add_argument("--connect-bench", default=os.path.join(ROOT, "build/bench/connect_bench"))
    ap.add_argument("--outer-seccomp", default=None,
                    help="default: build/tests/e2e/outer-seccomp when it exists")
    ap.add_argument("--runs", type=int, default=60, help="start-up runs per variant (60)")
    ap.add_argument("--connects", type=int, default=20000, help="connects per run (20000)")
    ap.add_argument("--rounds", type=int, default=5, help="connect runs per variant (5)")
    ap.add_argument("--out", default=os.path.join(HERE, "results.md"))
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--plain-only", action="store_true",
                    help="measure the baselines only (checks the harness without the jail)")
    a = ap.parse_args()
    if not (5 <= a.runs <= 1000 and 1000 <= a.connects <= 1000000 and 1 <= a.rounds <= 10):
        ap.error("--runs 5..1000, --connects 1000..1000000, --rounds 1..10")
    a.landjail = os.path.abspath(a.landjail)
    a.connect_bench = os.path.abspath(a.connect_bench)
    if a.proxy is None:
        a.proxy = os.environ.get("LANDJAIL_PROXY") or os.path.join(
            os.path.dirname(a.landjail), "landjail-proxy")
    if a.outer_seccomp is None:
        default = os.path.join(ROOT, "build/tests/e2e/outer-seccomp")
        a.outer_seccomp = default if os.access(default, os.X_OK) else None
    for path in (a.landjail, a.proxy, a.connect_bench) + ((a.outer_seccomp,)
                                                          if a.outer_seccomp else ()):
        if not os.access(path, os.X_OK):
            raise HarnessError(f"{path} is not built (make bench builds it)")
    return a


def main():
    args = parse_args()
    cfg = Config()
    cfg.landjail, cfg.proxy, cfg.connect_bench = args.landjail, args.proxy, args.connect_bench
    cfg.outer_seccomp, cfg.runs, cfg.connects = args.outer_seccomp, args.runs, args.connects
    cfg.rounds, cfg.addfd_warning, cfg.plain_only = args.rounds, None, args.plain_only
    cfg.dir = tempfile.mkdtemp(prefix="lj-jail-bench.")
    cfg.home, cfg.ca_dir = os.path.join(cfg.dir, "home"), os.path.join(cfg.dir, "ca")
    os.mkdir(cfg.home)
    procs = Procs()
    started = time.monotonic()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupted)
    try:
        if not cfg.plain_only:
            timed_run(cfg, jail_argv(cfg, ["true"]))  # makes the CA once
        res = {}
        measure_startup(cfg, procs, res)
        measure_connect(cfg, procs, res)
        lines, verdicts = table(res, cfg)
        write_report("landjail jail benchmark",
                     lines + [""] + notes(cfg, time.monotonic() - started), args.out)
        for label, result, diff in verdicts:
            if result != "PASS":
                log(f"target missed: {label} ({fmt(diff, 2)})")
        return 0
    finally:
        procs.stop_all()
        if args.keep:
            log(f"kept {cfg.dir}")
        else:
            shutil.rmtree(cfg.dir, ignore_errors=True)


if __name__ == "__main__":
    run_main(main)

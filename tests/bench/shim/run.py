#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Shim benchmark (issue 5, item 7): many short connections through the shim's CONNECT
tunnels, against the same client using the proxy explicitly (as an HTTPS_PROXY-aware program
does), in the same run.

The client is tests/e2e/shim_clients/threads_connect.c: per connection getaddrinfo (shim: a
placeholder), socket, connect, one plain HTTP/1.1 GET with Connection: close, the response to
EOF, close. With --proxy it connects to the proxy's literal address and sends CONNECT itself.
The origin is tests/e2e/shim_clients/http_origin.c (C, 127.0.0.1, fixed 17-byte body), so the
origin is not what is measured. Variants:

  shim            in landjail: connect(bench.test:80) -> the shim's tunnel (landjail's proxy)
  explicit        in landjail: threads_connect --proxy "$HTTPS_PROXY" (the shim is loaded
                  and passes the connect to the proxy through)
  explicit-noshim in landjail --no-shim: the same, without the shim
  plain-proxy     no jail: --proxy to a standalone landjail-proxy (same policy and --resolve)
  direct          no jail, no proxy: straight to the origin (the floor)

Two measurements per variant, each run --rounds times, interleaved, best kept:
  latency     one thread, --connects sequential connections after --warmup: "setup" = from
              before getaddrinfo/socket until the tunnel is ready (shim: connect() returned;
              explicit: the proxy's 200 to CONNECT read), "request" = the whole connection.
  throughput  --threads threads x --per-thread connections: connections per second.

All on 127.0.0.1, as the user running it. The table goes to stdout and to results.md next to
this file (or --out). The exit status is non-zero only when the harness fails.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "proxy"))
from fixtures import (ROOT, HarnessError, Procs, fmt, identity, interrupted,  # noqa: E402
                      log, read_line, run_main, write_report)

HOST = "bench.test"
RULE = "domain=" + HOST
BODY = "hello from origin"

VARIANTS = [
    ("shim", "landjail, shim tunnel"),
    ("explicit", "landjail, explicit HTTPS_PROXY (shim loaded)"),
    ("explicit-noshim", "landjail --no-shim, explicit HTTPS_PROXY"),
    ("plain-proxy", "no jail, explicit, standalone landjail-proxy"),
    ("direct", "no jail, no proxy (origin only)"),
]

STATS_RE = re.compile(r"^(setup_us|total_us) mean ([\d.]+) median ([\d.]+) p90 ([\d.]+) "
                      r"min ([\d.]+)$", re.M)
OK_RE = re.compile(r"^ok (\d+) fail (\d+)$", re.M)
RATE_RE = re.compile(r"^wall_s ([\d.]+) rate ([\d.]+)$", re.M)

# Where a change makes the measured binaries "uncommitted" (identity()).
SOURCES = ("landjail", "proxy", "policy", "shim")


class Config:
    pass


def bench_env(cfg):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": cfg.home,
           "XDG_CONFIG_HOME": os.path.join(cfg.home, ".config"), "LANG": "C.UTF-8"}
    if cfg.proxy:
        env["LANDJAIL_PROXY"] = cfg.proxy
    return env


def jail_argv(cfg, command, no_shim=False):
    argv = [cfg.landjail, "--allow", RULE, "--resolve", f"{HOST}:80:{cfg.origin_addr}",
            "--ca-dir", cfg.ca_dir, "--audit-log", os.path.join(cfg.dir, "audit.jsonl"),
            "--log-level", "error"]
    if no_shim:
        argv.append("--no-shim")
    return argv + ["--"] + command


def client_args(cfg, kind, explicit):
    """threads_connect arguments for one measurement (latency or throughput)."""
    if kind == "latency":
        a = ["-t", "1", "-n", str(cfg.connects), "--warmup", str(cfg.warmup)]
    else:
        a = ["-t", str(cfg.threads), "-n", str(cfg.per_thread), "--warmup", "20"]
    return a + (explicit or []) + ["--expect", BODY]


def variant_argv(cfg, name, kind):
    tc = cfg.threads_connect
    target = [HOST, "80", "/"]
    if name == "shim":
        return jail_argv(cfg, [tc] + client_args(cfg, kind, None) + target)
    if name in ("explicit", "explicit-noshim"):
        # The proxy URL is only known inside the jail: let a shell expand $HTTPS_PROXY.
        script = 'exec "$0" "$@" --proxy "$HTTPS_PROXY" ' + " ".join(target)
        return jail_argv(cfg, ["sh", "-c", script, tc] + client_args(cfg, kind, None),
                         no_shim=(name == "explicit-noshim"))
    if name == "plain-proxy":
        return [tc] + client_args(cfg, kind, ["--proxy", "http://" + cfg.proxy_addr]) + target
    if name == "direct":
        host, port = cfg.origin_addr.rsplit(":", 1)
        return [tc] + client_args(cfg, kind, None) + [host, port, "/"]
    raise ValueError(name)


def run_client(cfg, name, kind):
    argv = variant_argv(cfg, name, kind)
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       env=bench_env(cfg), cwd=cfg.dir, timeout=600)
    ok = OK_RE.search(p.stdout)
    if p.returncode != 0 or not ok or int(ok.group(2)) != 0:
        raise HarnessError(f"{name}/{kind}: exit {p.returncode}: {p.stdout.strip()[-800:]} "
                           f"{p.stderr.strip()[-800:]}")
    stats = {m.group(1): tuple(float(m.group(i)) for i in (2, 3, 4, 5))
             for m in STATS_RE.finditer(p.stdout)}
    rate = RATE_RE.search(p.stdout)
    return {"setup": stats["setup_us"], "total": stats["total_us"],
            "rate": float(rate.group(2)), "n": int(ok.group(1))}


def start_origin(cfg, procs):
    p = procs.start("http_origin", [cfg.http_origin, "-t", "4", "--body", BODY],
                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    line = read_line(p.stdout.fileno(), 30).decode().strip()
    if not re.fullmatch(r"127\.0\.0\.1:\d+", line):
        raise HarnessError(f"http_origin printed {line!r}")
    return p, line


def start_proxy(cfg, procs):
    r, w = os.pipe()
    try:
        p = procs.start("standalone-proxy",
                        [cfg.proxy, "--listen", "127.0.0.1:0", "--allow", RULE, "--resolve",
                         f"{HOST}:80:{cfg.origin_addr}", "--ca-dir", cfg.ca_dir,
                         "--audit-log", os.path.join(cfg.dir, "proxy-audit.jsonl"),
                         "--log-level", "error", "--ready-fd", str(w)],
                        pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                        env=bench_env(cfg))
    finally:
        os.close(w)
    try:
        line = read_line(r, 30).decode()
    finally:
        os.close(r)
    m = re.search(r"(127\.0\.0\.1:\d+)", line)
    if not m:
        raise HarnessError(f"landjail-proxy reported {line!r}")
    return p, m.group(1)


# ---- the table ----------------------------------------------------------------------------


def table(res):
    g = res.get

    def row(label, unit, key, idx, lower_is_better=True):
        e, s = g(("latency", "explicit")), g(("latency", "shim"))
        if key == "rate":
            e, s = g(("throughput", "explicit")), g(("throughput", "shim"))
            ev = e["rate"] if e else None
            sv = s["rate"] if s else None
        else:
            ev = e[key][idx] if e else None
            sv = s[key][idx] if s else None
        diff = None if ev is None or sv is None else sv - ev
        ratio = None if not ev or sv is None else sv / ev
        return ("| " + " | ".join([label, unit, fmt(ev), fmt(sv),
                                   ("+" if diff is not None and diff >= 0 else "") + fmt(diff),
                                   "–" if ratio is None else f"{ratio:.2f}×"]) + " |")

    lines = ["| measurement | unit | explicit HTTPS_PROXY | shim | difference | shim / explicit |",
             "|---|---|---|---|---|---|",
             row("tunnel ready (lookup + connect [+ CONNECT]), median", "µs", "setup", 1),
             row("tunnel ready, p90", "µs", "setup", 2),
             row("whole request (tunnel + GET + response), median", "µs", "total", 1),
             row("whole request, p90", "µs", "total", 2),
             row("whole request, mean", "µs", "total", 0),
             row(f"throughput, {res['threads']} threads", "conn/s", "rate", 0),
             "", "Every variant (µs; latency: 1 thread, the run with the lowest median request "
             "time; throughput: the best run):", "",
             "| variant | setup median | setup p90 | request median | request p90 | "
             "request mean | request min | throughput (conn/s) |",
             "|---|---|---|---|---|---|---|---|"]
    for key, label in VARIANTS:
        lat, thr = g(("latency", key)), g(("throughput", key))
        if not lat:
            continue
        lines.append("| " + " | ".join([
            label, fmt(lat["setup"][1]), fmt(lat["setup"][2]), fmt(lat["total"][1]),
            fmt(lat["total"][2]), fmt(lat["total"][0]), fmt(lat["total"][3]),
            fmt(thr["rate"] if thr else None, 0)]) + " |")
    return lines


def notes(cfg, seconds):
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return [
        f"Run {time.strftime('%Y-%m-%d %H:%M')}, {seconds:.0f} s; {os.cpu_count()} CPUs ({cpu}); "
        f"kernel {os.uname().release}; uid {os.getuid()}; {identity(cfg.landjail, SOURCES)}.",
        "",
        f"Client: threads_connect (tests/e2e/shim_clients), plain HTTP/1.1 GET with "
        f"Connection: close to {HOST}:80 = http_origin on {cfg.origin_addr} (C, 4 threads). "
        f"Latency: 1 thread, {cfg.connects} connections after {cfg.warmup} untimed ones; "
        f"throughput: {cfg.threads} threads × {cfg.per_thread}. Each variant {cfg.rounds}×, "
        "interleaved, best kept. \"shim\": the client connects the name; the shim answers the "
        "lookup with a placeholder and turns connect() into CONNECT " + HOST + ":80 to "
        "landjail's proxy (the connect to the proxy itself trapped by the supervisor), then "
        "the proxy handles the plain HTTP inside the tunnel. \"explicit\": the same client "
        "connects to $HTTPS_PROXY and sends the same CONNECT itself, so both variants make "
        "the same proxy and supervisor round trips; the difference is the shim's lookup and "
        "its synchronous CONNECT inside connect(). Audit to a file (--audit-log) in every "
        "landjail variant and for the standalone proxy.",
    ]


# ---- main ---------------------------------------------------------------------------------


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--landjail", default=os.path.join(ROOT, "build/bin/landjail"))
    ap.add_argument("--proxy", default=None,
                    help="landjail-proxy (default: next to --landjail, or $LANDJAIL_PROXY)")
    ap.add_argument("--clients", default=os.path.join(ROOT, "build/tests/e2e"),
                    help="directory of threads_connect and http_origin (build/tests/e2e)")
    ap.add_argument("--connects", type=int, default=3000,
                    help="sequential connections of the latency run (3000)")
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--threads", type=int, default=8, help="threads of the throughput run (8)")
    ap.add_argument("--per-thread", type=int, default=500,
                    help="connections per thread of the throughput run (500)")
    ap.add_argument("--rounds", type=int, default=3, help="runs per variant (3)")
    ap.add_argument("--out", default=os.path.join(HERE, "results.md"))
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    a = ap.parse_args()
    if not (100 <= a.connects <= 1000000 and 1 <= a.threads <= 64 and
            10 <= a.per_thread <= 100000 and 1 <= a.rounds <= 10 and 0 <= a.warmup <= 10000):
        ap.error("--connects 100.., --threads 1..64, --per-thread 10.., --rounds 1..10")
    a.landjail = os.path.abspath(a.landjail)
    if a.proxy is None:
        a.proxy = os.environ.get("LANDJAIL_PROXY") or os.path.join(
            os.path.dirname(a.landjail), "landjail-proxy")
    a.threads_connect = os.path.join(os.path.abspath(a.clients), "threads_connect")
    a.http_origin = os.path.join(os.path.abspath(a.clients), "http_origin")
    for path in (a.landjail, a.proxy, a.threads_connect, a.http_origin):
        if not os.access(path, os.X_OK):
            raise HarnessError(f"{path} is not built (make all and the e2e clients)")
    shim = os.path.join(os.path.dirname(os.path.dirname(a.landjail)), "lib",
                        "liblandjail-shim.so")
    if not os.path.exists(shim):
        raise HarnessError(f"the shim is not built at {shim} (make shim)")
    return a


def main():
    args = parse_args()
    cfg = Config()
    for k in ("landjail", "proxy", "threads_connect", "http_origin", "connects", "warmup",
              "threads", "per_thread", "rounds"):
        setattr(cfg, k, getattr(args, k))
    cfg.dir = tempfile.mkdtemp(prefix="lj-shim-bench.")
    cfg.home, cfg.ca_dir = os.path.join(cfg.dir, "home"), os.path.join(cfg.dir, "ca")
    os.mkdir(cfg.home)
    procs = Procs()
    started = time.monotonic()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupted)
    try:
        _, cfg.origin_addr = start_origin(cfg, procs)
        subprocess.run(jail_argv(cfg, ["true"]), env=bench_env(cfg), cwd=cfg.dir,
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=60)  # makes the CA
        _, cfg.proxy_addr = start_proxy(cfg, procs)
        res = {"threads": cfg.threads}
        for kind in ("latency", "throughput"):
            log(f"{kind}: {', '.join(k for k, _ in VARIANTS)} × {cfg.rounds} rounds")
            for _ in range(cfg.rounds):
                for key, _ in VARIANTS:
                    r = run_client(cfg, key, kind)
                    best = res.get((kind, key))
                    better = (best is None or (r["total"][1] < best["total"][1]
                                               if kind == "latency" else r["rate"] > best["rate"]))
                    if better:
                        res[(kind, key)] = r
            for key, _ in VARIANTS:
                r = res[(kind, key)]
                log(f"  {key}: setup median {r['setup'][1]:.1f} µs, request median "
                    f"{r['total'][1]:.1f} µs, {r['rate']:.0f} conn/s")
        write_report("landjail shim benchmark",
                     table(res) + [""] + notes(cfg, time.monotonic() - started), args.out)
        return 0
    finally:
        procs.stop_all()
        if args.keep:
            log(f"kept {cfg.dir}")
        else:
            shutil.rmtree(cfg.dir, ignore_errors=True)


if __name__ == "__main__":
    run_main(main)

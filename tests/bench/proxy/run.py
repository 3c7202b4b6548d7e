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
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
HOST = "origin.test"
SMALL_BODY = "landjail proxy benchmark: a small response body of about one hundred bytes....\n"
BULK_BYTES = 100 * 1024 * 1024
MIB = 1024 * 1024


class HarnessError(Exception):
    pass


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


# ---- processes ----------------------------------------------------------------------------


class Procs:
    """Servers started by this run; stop_all() terminates each by its pid (then kills)."""

    def __init__(self):
        self.procs = []

    def start(self, name, argv, **kw):
        log(f"starting {name}: {' '.join(argv)}")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, **kw)
        p.bench_name = name
        self.procs.append(p)
        return p

    def stop(self, p):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                log(f"{p.bench_name} (pid {p.pid}) ignored SIGTERM; killing it")
                p.kill()
                p.wait(timeout=10)
        if p in self.procs:
            self.procs.remove(p)

    def stop_all(self):
        for p in reversed(list(self.procs)):
            try:
                self.stop(p)
            except Exception as e:  # keep stopping the others
                log(f"stopping {p.bench_name}: {e}")


def run(argv, timeout, check=True, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise HarnessError(f"{' '.join(argv)}: exit {r.returncode}: {r.stderr.strip()[-800:]}")
    return r


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise HarnessError(f"{what} exited with status {proc.returncode} while starting")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise HarnessError(f"{what} did not listen on 127.0.0.1:{port} within {timeout} s")


def rss_kib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise HarnessError(f"no {field} for pid {pid}")


class RssSampler:
    """Samples a pid's VmRSS every 50 ms in a thread; .peak is the largest, in KiB."""

    def __init__(self, pid):
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, rss_kib(self.pid))
            except (OSError, HarnessError):
                return
            self._stop.wait(0.05)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


# ---- fixtures: PKI, origin, peers, landjail-proxy -----------------------------------------


def make_pki(d):
    """A test CA and an origin.test leaf (EC P-256) signed by it; returns the CA's path."""
    ca_key, ca, key, csr, crt = (os.path.join(d, n) for n in
                                 ("ca-key.pem", "ca.pem", "origin-key.pem", "origin.csr",
                                  "origin.pem"))
    ext = os.path.join(d, "origin.ext")
    with open(ext, "w") as f:
        f.write(f"subjectAltName=DNS:{HOST}\nbasicConstraints=CA:FALSE\n"
                "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run(["openssl", "req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "2",
         "-subj", "/CN=landjail bench test CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"], 30)
    run(["openssl", "req", "-new", *ec, "-keyout", key, "-out", csr, "-subj", f"/CN={HOST}"], 30)
    run(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
         "-out", crt, "-days", "2", "-extfile", ext], 30)
    return ca, crt, key


def make_files(d):
    with open(os.path.join(d, "small"), "w") as f:
        f.write(SMALL_BODY)
    with open(os.path.join(d, "bulk"), "wb") as f:
        for _ in range(BULK_BYTES // MIB):
            f.write(os.urandom(MIB))


def start_nginx(procs, d, port, tls_port, crt, key):
    root = os.path.join(d, "nginx")
    os.makedirs(os.path.join(root, "logs"))
    conf = os.path.join(root, "nginx.conf")
    user = "user root root;\n" if os.geteuid() == 0 else ""  # workers must read the tmp dir
    locations = f"""
        location = /small {{ alias {d}/small; default_type text/plain; }}
        location = /bulk {{ alias {d}/bulk; default_type application/octet-stream; }}"""
    with open(conf, "w") as f:
        f.write(f"""{user}worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/logs/error.log error;
worker_rlimit_nofile 8192;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    open_file_cache max=16;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    client_body_temp_path {root}/client_body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    server {{
        listen 127.0.0.1:{port};
        server_name {HOST};{locations}
    }}
    server {{
        listen 127.0.0.1:{tls_port} ssl;
        server_name {HOST};
        ssl_certificate {crt};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache off;
        ssl_session_tickets off;{locations}
    }}
}}
""")
    p = procs.start("nginx", ["nginx", "-p", root, "-e", f"{root}/logs/error.log", "-c", conf],
                    stdout=subprocess.DEVNULL)
    wait_port(port, p, "nginx")
    wait_port(tls_port, p, "nginx")
    return p


def start_squid(procs, d, port):
    root = os.path.join(d, "squid")
    os.makedirs(root)
    with open(os.path.join(root, "hosts"), "w") as f:
        f.write(f"127.0.0.1 {HOST}\n")
    conf = os.path.join(root, "squid.conf")
    with open(conf, "w") as f:
        f.write(f"""http_port 127.0.0.1:{port}
workers 1
http_access allow localhost
http_access deny all
cache deny all
cache_mem 8 MB
access_log none
cache_store_log none
cache_log {root}/cache.log
pid_filename {root}/squid.pid
coredump_dir {root}
hosts_file {root}/hosts
dns_nameservers 127.0.0.1
icp_port 0
htcp_port 0
max_filedescriptors 8192
shutdown_lifetime 0 seconds
""")
    if os.geteuid() == 0:  # squid drops root for its effective user (Debian: proxy)
        import pwd
        pw = pwd.getpwnam("proxy")
        os.chown(root, pw.pw_uid, pw.pw_gid)
        os.chmod(d, 0o755)
    run(["squid", "-k", "parse", "-f", conf], 30)
    p = procs.start("squid", ["squid", "-N", "-f", conf], stdout=subprocess.DEVNULL,
                    stderr=open(os.path.join(d, "squid.stderr"), "w"))
    wait_port(port, p, "squid")
    return p


def start_mitmproxy(procs, d, port, test_ca):
    confdir = os.path.join(d, "mitmproxy")
    os.makedirs(confdir)
    p = procs.start("mitmproxy", [
        "mitmdump", "-q", "--listen-host", "127.0.0.1", "--listen-port", str(port),
        "--set", f"confdir={confdir}", "--set", f"ssl_verify_upstream_trusted_ca={test_ca}",
        "--set", "stream_large_bodies=1", "--set", "http2=false",
        "-s", os.path.join(HERE, "mitm_resolve.py"), "--set", f"bench_resolve={HOST}"],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, "mitmproxy.stderr"), "w"))
    wait_port(port, p, "mitmproxy")
    ca = os.path.join(confdir, "mitmproxy-ca-cert.pem")
    deadline = time.monotonic() + 20
    while not os.path.exists(ca):
        if time.monotonic() > deadline:
            raise HarnessError(f"mitmproxy wrote no {ca}")
        time.sleep(0.1)
    return p, ca


def start_landjail(procs, d, binary, name, threads, port, tls_port, test_ca):
    ca_dir = os.path.join(d, name + "-ca")
    r, w = os.pipe()
    argv = [binary, "--listen", "127.0.0.1:0", "--ready-fd", str(w),
            "--allow", f"domain={HOST}",
            "--resolve", f"{HOST}:{port}:127.0.0.1", "--resolve", f"{HOST}:{tls_port}:127.0.0.1",
            "--ca-dir", ca_dir, "--upstream-ca", test_ca,
            "--audit-log", os.path.join(d, name + "-audit.jsonl"), "--log-level", "error",
            "--threads", str(threads)]
    try:
        p = procs.start(name, argv, pass_fds=(w,), stdout=subprocess.DEVNULL)
    finally:
        os.close(w)
    try:
        buf = b""
        deadline = time.monotonic() + 30
        while not buf.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([r], [], [], left)[0]:
                raise HarnessError(f"{name} did not report ready within 30 s")
            chunk = os.read(r, 64)
            if not chunk:
                raise HarnessError(f"{name} closed --ready-fd without an address "
                                   f"(status {p.poll()})")
            buf += chunk
    finally:
        os.close(r)
    addr = buf.decode().strip()
    lj_port = int(addr.rsplit(":", 1)[1])
    return p, lj_port, os.path.join(ca_dir, "ca.pem")


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


def fmt(v, digits=0):
    if v is None:
        return "–"
    if isinstance(v, str):
        return v
    return f"{v:,.{digits}f}".replace(",", " ")


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def cpu_seconds(proc):
    """User + system CPU time of a process so far (its threads included)."""
    if proc is None:
        return 0.0
    with open(f"/proc/{proc.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


def measure(cfg, targets, ljs, d):
    res = {}  # (row, target name) -> value
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
        return rate, fail, None if t.proc is None else (cpu_seconds(t.proc) - cpu) / max(ok, 1) * 1e3

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

    log("6/6 RSS")
    for t in targets:
        if t.proc is not None:
            res[("rssload", t.name)] = peaks[t.name] / 1024
            res[("rsshwm", t.name)] = rss_kib(t.proc.pid, "VmHWM") / 1024
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
    return res


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
        label = label.format(n=fmt(idle_conns))
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


def proxy_identity(binary):
    """'git 766c6e1 (+ uncommitted changes), built 2026-11-23 23:45' when inside the repo."""
    built = time.strftime("%Y-%m-%d %H:%M", time.localtime(os.stat(binary).st_mtime))
    try:
        head = run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], 10).stdout.strip()
        dirty = run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                    10).stdout.strip()
    except (HarnessError, OSError, subprocess.TimeoutExpired):
        return f"{binary}, built {built}"
    shown = os.path.relpath(binary, ROOT) if binary.startswith(ROOT + os.sep) else binary
    return f"{shown} at git {head}" + (
        " (+ uncommitted changes)" if dirty else "") + f", built {built}"


def check_tools():
    missing = [t for t in ("nginx", "squid", "mitmdump", "wrk", "curl", "openssl", "cc")
               if shutil.which(t) is None]
    if missing:
        raise HarnessError("missing " + ", ".join(missing) +
                           " (Debian packages: nginx-light squid mitmproxy wrk curl openssl "
                           "libssl-dev; ./install.sh installs them)")


def interrupted(signum, frame):
    raise KeyboardInterrupt()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--proxy", default=os.path.join(ROOT, "build/bin/landjail-proxy"))
    ap.add_argument("--out", default=os.path.join(HERE, "results.md"))
    ap.add_argument("--seconds", type=int, default=5, help="length of each load run (5)")
    ap.add_argument("--rounds", type=int, default=2,
                    help="load runs per target, interleaved; the best counts (2)")
    ap.add_argument("--tls-threads", type=int, default=4, help="tlsconn threads (4)")
    ap.add_argument("--idle-conns", type=int, default=1000)
    ap.add_argument("--table-threads", type=int, default=1, choices=(1, 2),
                    help="landjail-proxy --threads used for the ratios and verdicts (1)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    if not (1 <= args.seconds <= 30 and 1 <= args.rounds <= 5 and 1 <= args.tls_threads <= 16
            and 1 <= args.idle_conns <= 3000):
        ap.error("--seconds 1..30, --rounds 1..5, --tls-threads 1..16, --idle-conns 1..3000")
    # nginx and squid live in /usr/sbin, which is not on a normal user's PATH on Debian.
    path = os.environ.get("PATH", "").split(os.pathsep)
    os.environ["PATH"] = os.pathsep.join(path + [p for p in ("/usr/sbin", "/sbin") if p not in path])
    check_tools()
    if not os.access(args.proxy, os.X_OK):
        raise HarnessError(f"{args.proxy} is not built (make build/bin/landjail-proxy)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 8192 if hard == resource.RLIM_INFINITY else min(8192, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < 2 * args.idle_conns + 200:
        raise HarnessError(f"open-file limit {want} is too low for {args.idle_conns} connections")

    cfg = Config()
    cfg.proxy, cfg.seconds, cfg.tls_threads = args.proxy, args.seconds, args.tls_threads
    cfg.idle_conns, cfg.rounds = args.idle_conns, args.rounds
    cfg.procs = Procs()
    d = tempfile.mkdtemp(prefix="lj-proxy-bench.")
    started = time.monotonic()
    # SIGTERM/SIGHUP become exceptions so that the finally below stops every server.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupted)
    try:
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
        ljs = [("landjail-t1", 1), ("landjail-t2", 2)]
        for name, threads in ljs:
            p, port, ca = start_landjail(cfg.procs, d, cfg.proxy, name, threads, cfg.port,
                                         cfg.tls_port, cfg.test_ca)
            targets.append(Target(name, p, port, ca))
        primary = f"landjail-t{args.table_threads}"

        res = measure(cfg, targets, ljs, d)
        for t in targets:
            if t.proc is not None and t.proc.poll() is not None:
                raise HarnessError(f"{t.name} died during the run (status {t.proc.returncode})")
        other = f"landjail-t{3 - args.table_threads}"
        lines, verdicts = table(res, primary, other, cfg.idle_conns)
        errs = {t.name: (res.get(("kaerr", t.name), 0), res.get(("closeerr", t.name), 0),
                         res.get(("tlserr", t.name), 0)) for t in targets}
        ident = proxy_identity(args.proxy)
        notes = [
            f"Run {time.strftime('%Y-%m-%d %H:%M')}, {time.monotonic() - started:.0f} s; "
            + environment() + f"; proxy {ident}.",
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
        text = "\n".join(["# landjail-proxy benchmark", ""] + lines + [""] + notes) + "\n"
        print(text)
        with open(args.out, "w") as f:
            f.write(text)
        log(f"wrote {args.out}")
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
    try:
        sys.exit(main())
    except HarnessError as e:
        log(f"error: {e}")
        sys.exit(1)
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)

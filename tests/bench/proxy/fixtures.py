#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Fixtures of the proxy benchmark (run.py): a test CA, the nginx origin, squid, mitmproxy
and landjail-proxy on 127.0.0.1, and the process bookkeeping that stops them all."""

import os
import pwd
import select
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
HOST = "origin.test"
SMALL_BODY = ("landjail proxy benchmark: a small response body of exactly one hundred bytes"
              ".......................\n")
BULK_BYTES = 100 * 1024 * 1024
MIB = 1024 * 1024
assert len(SMALL_BODY) == 100


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
    if os.geteuid() == 0:
        # squid drops root for its effective user (Debian: proxy), which must reach its
        # directory; the run's directory holds only throw-away test keys.
        pw = pwd.getpwnam("proxy")
        os.chown(root, pw.pw_uid, pw.pw_gid)
        os.chmod(d, 0o755)
    run(["squid", "-k", "parse", "-f", conf], 30)
    with open(os.path.join(d, "squid.stderr"), "w") as err:
        p = procs.start("squid", ["squid", "-N", "-f", conf], stdout=subprocess.DEVNULL,
                        stderr=err)
    wait_port(port, p, "squid")
    return p


def start_mitmproxy(procs, d, port, test_ca):
    confdir = os.path.join(d, "mitmproxy")
    os.makedirs(confdir)
    argv = ["mitmdump", "-q", "--listen-host", "127.0.0.1", "--listen-port", str(port),
            "--set", f"confdir={confdir}", "--set", f"ssl_verify_upstream_trusted_ca={test_ca}",
            "--set", "stream_large_bodies=1", "--set", "http2=false",
            "-s", os.path.join(HERE, "mitm_resolve.py"), "--set", f"bench_resolve={HOST}"]
    with open(os.path.join(d, "mitmproxy.stderr"), "w") as err:
        p = procs.start("mitmproxy", argv, stdout=subprocess.DEVNULL, stderr=err)
    wait_port(port, p, "mitmproxy")
    ca = os.path.join(confdir, "mitmproxy-ca-cert.pem")
    deadline = time.monotonic() + 20
    while not os.path.exists(ca):
        if time.monotonic() > deadline:
            raise HarnessError(f"mitmproxy wrote no {ca}")
        time.sleep(0.1)
    return p, ca


def read_line(fd, timeout):
    """Reads from fd up to a newline, within timeout seconds."""
    buf = b""
    deadline = time.monotonic() + timeout
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise HarnessError(f"no ready line within {timeout} s")
        chunk = os.read(fd, 64)
        if not chunk:
            raise HarnessError("--ready-fd closed without an address")
        buf += chunk
    return buf


def start_landjail(procs, d, binary, name, threads, port, tls_port, test_ca):
    """landjail-proxy on 127.0.0.1:0 (port from --ready-fd); returns (proc, port, CA path)."""
    ca_dir = os.path.join(d, name + "-ca")
    r, w = os.pipe()
    argv = [binary, "--listen", "127.0.0.1:0", "--ready-fd", str(w),
            "--allow", f"domain={HOST}",
            "--resolve", f"{HOST}:{port}:127.0.0.1", "--resolve", f"{HOST}:{tls_port}:127.0.0.1",
            "--ca-dir", ca_dir, "--upstream-ca", test_ca,
            "--audit-log", os.path.join(d, name + "-audit.jsonl"), "--log-level", "error",
            "--threads", str(threads)]
    stderr_path = os.path.join(d, name + ".stderr")
    try:
        with open(stderr_path, "w") as err:
            p = procs.start(name, argv, pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=err)
    finally:
        os.close(w)
    try:
        buf = read_line(r, 30)
    except HarnessError as e:
        with open(stderr_path) as f:
            raise HarnessError(f"{name}: {e} (status {p.poll()}); stderr: "
                               f"{f.read().strip()[-600:]}") from None
    finally:
        os.close(r)
    addr = buf.decode().strip()
    lj_port = int(addr.rsplit(":", 1)[1])
    return p, lj_port, os.path.join(ca_dir, "ca.pem")


def cpu_seconds(proc):
    """User + system CPU time of a process so far (its threads included)."""
    if proc is None:
        return 0.0
    with open(f"/proc/{proc.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---- shared by the benchmarks' run.py (proxy, jail, shim) ---------------------------------

ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))


def fmt(v, digits=1):
    """A table cell: '–' for a missing value, text as it is, numbers grouped with spaces."""
    if v is None:
        return "–"
    if isinstance(v, str):
        return v
    return f"{v:,.{digits}f}".replace(",", " ")


def identity(binary, paths):
    """'build/bin/X at git abc1234 (+ uncommitted changes), built 2026-11-23 23:45': the
    commit, and whether the sources under `paths` (relative to the repository) differ."""
    built = time.strftime("%Y-%m-%d %H:%M", time.localtime(os.stat(binary).st_mtime))
    try:
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", *paths],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return f"{binary}, built {built}"
    shown = os.path.relpath(binary, ROOT) if binary.startswith(ROOT + os.sep) else binary
    return f"{shown} at git {head}" + (" (+ uncommitted changes)" if dirty else "") + \
        f", built {built}"


def interrupted(signum, frame):
    raise KeyboardInterrupt()


def write_report(title, lines, path):
    """The results as markdown: printed, and written to `path`."""
    text = "\n".join([f"# {title}", ""] + lines) + "\n"
    print(text)
    with open(path, "w") as f:
        f.write(text)
    log(f"wrote {path}")


def run_main(main):
    """Exits with main()'s status; 1 when the harness fails, 130 when interrupted."""
    try:
        sys.exit(main())
    except HarnessError as e:
        log(f"error: {e}")
        sys.exit(1)
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)

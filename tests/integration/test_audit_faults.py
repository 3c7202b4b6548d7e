"""Audit trail faults (issue 13 items 6, 7, 8): a full file system (a 64 KiB tmpfs: needs root,
as CI has; skipped with the reason otherwise), a symlinked, planted or shared audit file, a
deleted file, rotation by a real logrotate with SIGHUP while requests flow, and kill -9 with
events waiting for an HTTP collector."""

from __future__ import annotations

import http.client
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from clients import curl

ALLOW = "domain=origin.test"


# ---- helpers ---------------------------------------------------------------------------------


def get_many(p, n: int, prefix: str = "/path-echo/r") -> list[int]:
    """n GETs on one keep-alive connection (fast, and one audit event each); the statuses."""
    conn = http.client.HTTPConnection("127.0.0.1", p.port, timeout=30)
    statuses = []
    try:
        for i in range(n):
            conn.request("GET", "http://origin.test%s%d" % (prefix, i),
                         headers={"Host": "origin.test"})
            r = conn.getresponse()
            r.read()
            statuses.append(r.status)
            if r.will_close:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", p.port, timeout=30)
    finally:
        conn.close()
    return statuses


def whole_lines(path: Path) -> list[dict]:
    """The file's lines, each one JSON object; fails on a cut or merged line."""
    text = path.read_text()
    assert text == "" or text.endswith("\n"), "%s ends in a cut line: %r" % (path, text[-120:])
    out = []
    for line in text.split("\n")[:-1]:
        try:
            obj = json.loads(line)
        except ValueError:
            raise AssertionError("%s: not one JSON object (cut or merged): %r" % (path, line))
        assert isinstance(obj, dict), line
        out.append(obj)
    return out


def wait_for(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        got = predicate()
        if got:
            return got
        if time.monotonic() >= deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.02)


class Tmpfs:
    """A tmpfs of `size` mounted at `path` (root only), unmounted at exit."""

    def __init__(self, path: Path, size: str):
        if os.geteuid() != 0:
            pytest.skip("a full file system needs a small tmpfs, and mounting one needs root "
                        "(uid %d); CI runs this as root" % os.geteuid())
        path.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0700" % size, "tmpfs",
                            str(path)], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip("cannot mount a tmpfs here (%s): %s" % (r.returncode, r.stderr.strip()))
        self.path = path

    def fill(self, leave: int) -> Path:
        """Fills the file system, then frees `leave` bytes."""
        filler = self.path / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(fd, b"\0" * 4096) > 0:
                pass
        except OSError:
            pass  # ENOSPC: full
        finally:
            os.close(fd)
        size = filler.stat().st_size
        os.truncate(filler, max(0, size - leave))
        return filler

    def umount(self):
        subprocess.run(["umount", "-l", str(self.path)], capture_output=True)


@pytest.fixture
def tmpfs(tmp_path):
    mounts = []

    def make(size="64k"):
        t = Tmpfs(tmp_path / ("tmpfs%d" % len(mounts)), size)
        mounts.append(t)
        return t

    yield make
    for t in mounts:
        t.umount()


# ---- item 6: a full file system --------------------------------------------------------------


def test_full_disk_whole_lines_counted_and_said(proxy, origins, tmpfs):
    """On a 64 KiB tmpfs with 8 KiB left, 150 requests: proxying goes on, the file holds only
    whole lines, the events that did not fit are counted, said once on stderr at once, in an
    audit_dropped event once there is space again, and in the total at exit."""
    fs = tmpfs()
    audit = fs.path / "audit.jsonl"
    p = proxy(allow=[ALLOW], args=["--audit-log", str(audit)])
    filler = fs.fill(leave=8192)
    n = 150
    assert get_many(p, n) == [200] * n, "proxying stopped"
    wait_for(lambda: "No space left on device" in p.stderr, what="the ENOSPC report")
    assert p.stderr.count("No space left on device") == 1, p.stderr
    written = whole_lines(audit)
    assert 0 < len(written) < n, len(written)
    filler.unlink()
    # The writer retries every second: the notice comes without another request.
    wait_for(lambda: any(x.get("event") == "audit_dropped" for x in whole_lines(audit)),
             what="the audit_dropped event")
    assert get_many(p, 1, "/path-echo/after") == [200]
    p.stop()
    lines = whole_lines(audit)
    seqs = [x["seq"] for x in lines if "seq" in x]
    # One notice or more (one can fit in the space a removed cut line left); together they
    # count every event that is not in the file.
    notices = [x for x in lines if x.get("event") == "audit_dropped"]
    assert notices, lines
    for notice in notices:
        assert notice["sink"] == "file" and notice["reason"] == "write_failed" and \
            notice["errno"] == "ENOSPC" and "seq" not in notice, notice
    missing = sorted(set(range(1, n + 2)) - set(seqs))
    assert len(seqs) == len(set(seqs)) and seqs == sorted(seqs), seqs
    assert sum(x["count"] for x in notices) == len(missing), (notices, missing)
    assert seqs[-1] == n + 1, "the request after recovery is in the file"
    assert "writing works again" in p.stderr, p.stderr
    assert ("%d events could not be written to %s (ENOSPC" % (len(missing), audit)) in \
        p.stderr, p.stderr


def test_audit_required_refuses_while_the_disk_is_full(proxy, origins, tmpfs):
    fs = tmpfs()
    audit = fs.path / "audit.jsonl"
    p = proxy(allow=[ALLOW], args=["--audit-log", str(audit), "--audit-required"])
    filler = fs.fill(leave=0)
    statuses = get_many(p, 20)
    assert 503 in statuses, statuses
    first = statuses.index(503)
    assert set(statuses[first:]) == {503}, statuses
    got = origins.received()
    assert len(got) == first, "a request was forwarded while the trail could not be written"
    filler.unlink()
    wait_for(lambda: get_many(p, 1, "/path-echo/again") == [200], what="recovery")


# ---- item 7: the file itself ----------------------------------------------------------------


def test_symlinked_audit_file_is_refused(proxy, tmp_path):
    target = tmp_path / "target.jsonl"
    target.write_text("")
    link = tmp_path / "audit.jsonl"
    link.symlink_to(target)
    rc, err, ready = proxy.run_expecting_failure(["--audit-log", str(link)])
    assert rc == 1 and ready == b"", (rc, err)
    assert "the audit file %s is a symbolic link" % link in err, err
    assert target.read_text() == ""


def test_planted_world_writable_file_is_refused(proxy, tmp_path):
    """Another user planted a 0666 file where the trail goes: refused, untouched."""
    if os.geteuid() != 0:
        pytest.skip("needs root to plant a file of another user")
    planted = tmp_path / "audit.jsonl"
    planted.write_text("")
    os.chmod(planted, 0o666)
    os.chown(planted, 65534, 65534)
    rc, err, _ = proxy.run_expecting_failure(["--audit-log", str(planted)])
    assert rc == 1 and "belongs to uid 65534" in err, (rc, err)
    assert planted.read_text() == ""


def test_readable_file_becomes_0600(proxy, origins, tmp_path):
    path = tmp_path / "shared.jsonl"
    path.write_text("")
    os.chmod(path, 0o644)
    p = proxy(allow=[ALLOW], args=["--audit-log", str(path)])
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert "its mode is now 0600" in p.stderr, p.stderr
    assert curl(p, "http://origin.test/").status == 200
    p.stop()
    assert len(whole_lines(path)) == 1


def test_deleted_file_is_created_again(proxy, origins):
    p = proxy(allow=[ALLOW])
    assert get_many(p, 1) == [200]
    p.audit(1)
    p.audit_path.unlink()
    assert get_many(p, 1, "/path-echo/after") == [200]
    p.stop()
    lines = whole_lines(p.audit_path)
    assert [x["seq"] for x in lines] == [2], lines
    assert "was deleted: created it again" in p.stderr, p.stderr


class Traffic:
    """Requests on a thread until stopped; the statuses."""

    def __init__(self, p):
        self.p, self.statuses, self.stop_flag = p, [], threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        i = 0
        while not self.stop_flag.is_set():
            self.statuses += get_many(self.p, 5, "/path-echo/t%d-" % i)
            i += 1

    def stop(self):
        self.stop_flag.set()
        self.thread.join(30)
        return self.statuses


def test_logrotate_with_sighup_loses_and_duplicates_nothing(proxy, origins, tmp_path):
    """A real logrotate run (create, then postrotate kill -HUP) while requests flow: both files
    hold whole lines, and the seq numbers continue across them, each once."""
    logrotate = shutil.which("logrotate") or "/usr/sbin/logrotate"
    if not os.path.exists(logrotate):
        pytest.fail("logrotate not found (Debian package: logrotate, in install.sh)")
    p = proxy(allow=[ALLOW])
    conf = tmp_path / "logrotate.conf"
    conf.write_text("%s {\n  create 0600\n  rotate 3\n  nocompress\n  missingok\n"
                    "  postrotate\n    kill -HUP %d\n  endscript\n}\n" % (p.audit_path, p.pid))
    os.chmod(conf, 0o644)
    traffic = Traffic(p)
    try:
        p.audit(20)
        r = subprocess.run([logrotate, "-f", "-s", str(tmp_path / "logrotate.state"), str(conf)],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        rotated = Path(str(p.audit_path) + ".1")
        wait_for(lambda: len(p.audit()) >= 20, what="events in the new file")
    finally:
        statuses = traffic.stop()
    assert p.alive(), "SIGHUP killed the proxy:\n" + p.stderr[-2000:]
    assert set(statuses) == {200}, statuses
    p.stop()
    old, new = whole_lines(rotated), whole_lines(p.audit_path)
    seqs = [x["seq"] for x in old] + [x["seq"] for x in new]
    assert seqs == list(range(1, len(statuses) + 1)), "lost or duplicated: %r" % (
        sorted(set(range(1, len(statuses) + 1)) ^ set(seqs)))
    assert old and new
    assert oct(p.audit_path.stat().st_mode & 0o777) == "0o600"


def test_rename_and_create_is_followed_without_a_signal(proxy, origins):
    """logrotate's create without postrotate (how landjail's own trail rotates): the writer
    notices that the path names a new file and writes there."""
    p = proxy(allow=[ALLOW])
    assert get_many(p, 3) == [200] * 3
    p.audit(3)
    rotated = Path(str(p.audit_path) + ".1")
    os.rename(p.audit_path, rotated)
    fd = os.open(p.audit_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    assert get_many(p, 2, "/path-echo/after") == [200] * 2
    p.stop()
    assert [x["seq"] for x in whole_lines(rotated)] == [1, 2, 3]
    assert [x["seq"] for x in whole_lines(p.audit_path)] == [4, 5]


# ---- item 8: kill -9 with events waiting for the collector -----------------------------------


class HungCollector:
    """Accepts, reads each request whole, and never answers; counts the lines it got."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.lines, self.conns, self.lock = 0, [], threading.Lock()
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            data = b""
            while b"\r\n\r\n" not in data:
                data += c.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = int([h.split(b":")[1] for h in head.split(b"\r\n")
                          if h.lower().startswith(b"content-length:")][0])
            while len(body) < length:
                body += c.recv(65536)
            with self.lock:
                self.lines += body.count(b"\n")

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


class Collector:
    """Answers 204 to each POST and keeps its lines."""

    def __init__(self):
        self.got = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.got += body.decode().splitlines()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/events" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def spooled_lines(spool: Path) -> int:
    return sum(len(f.read_bytes().splitlines()) for f in spool.glob("*/*.ndjson"))


def http_config(url, spool):
    return ("audit:\n  http:\n    url: %s\n    flush_interval_ms: 50\n    spool_dir: %s\n"
            % (url, spool))


def test_kill_9_loses_nothing_of_the_spool(proxy, origins, tmp_path):
    """20 events, their batch in flight to a collector that never answers, then kill -9: a
    new proxy with the same spool_dir delivers all 20 to a working collector, each once."""
    spool = tmp_path / "spool"
    hung = HungCollector()
    try:
        first = proxy(allow=[ALLOW], config=http_config("http://127.0.0.1:%d/" % hung.port,
                                                        spool))
        assert get_many(first, 20) == [200] * 20
        wait_for(lambda: hung.lines >= 1, what="a batch in flight")
        # The sink has taken every event once it is in the spool's batch files (the first
        # batch, in flight, included).
        wait_for(lambda: spooled_lines(spool) == 20, what="20 events in the spool")
        first.kill()  # SIGKILL: no grace period, no flush
        killed = whole_lines(first.audit_path)
    finally:
        hung.close()
    assert len(killed) == 20
    c = Collector()
    try:
        second = proxy(allow=[ALLOW], config=http_config(c.url, spool))
        wait_for(lambda: len(c.got) >= 20, what="the first run's events")
        second.stop()
    finally:
        c.close()
    first_session = killed[0]["session_id"]
    delivered = [json.loads(x) for x in c.got]
    mine = [x["seq"] for x in delivered if x["session_id"] == first_session]
    assert mine == list(range(1, 21)), mine

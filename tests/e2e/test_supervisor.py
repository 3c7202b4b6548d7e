"""The supervisor under load and races (issue 4, item 3): many threads connecting at once,
signals interrupting trapped connects, jailed processes killed while their connect waits for
the supervisor, and process trees (fork, exec, orphans re-parented to landjail). Each test
runs as root and as uid 65534, in full mode and with the ADDFD fallback (pidfd_getfd refused
by an outer seccomp filter, as in Docker without CAP_SYS_PTRACE).

What proves it: the proxy really answered every connect the program counts as done (it sends
a request and reads the proxy's 403), a forbidden listener received nothing, and the jail
still works afterwards (the supervisor neither crashed nor hung)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

sys.dont_write_bytecode = True
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from e2e_support_env import as_user, e2e_bin_dir, landjail_path, require_binary  # noqa: E402
from e2e_support_origins import AcceptCounter, SharedDir  # noqa: E402
from e2e_support_jail import Jail  # noqa: E402

USERS = ["root", "nobody"]
MODES = {"full": (), "addfd": ("--pidfd-getfd-eperm",)}
# The dead-proxy test also runs where there is no Landlock (Docker's default profile).
FAULT_MODES = dict(MODES, docker=("--landlock-enosys", "--pidfd-getfd-eperm"))


@pytest.fixture(scope="module")
def shared():
    s = SharedDir("lj-e2e-supervisor.")
    yield s
    s.cleanup()


@pytest.fixture
def forbidden():
    f = AcceptCounter()  # the jail must never reach it
    yield f
    f.close()


def wrapper_for(mode: str) -> tuple:
    """outer-seccomp FLAGS -- for a mode of FAULT_MODES (nothing for full)."""
    if not FAULT_MODES[mode]:
        return ()
    outer = require_binary(e2e_bin_dir() / "outer-seccomp", "outer-seccomp")
    return (str(outer), *FAULT_MODES[mode], "--")


def run_script(shared, user: str, mode: str, body: str, timeout: float = 120, args=()):
    """Runs `python3 -c PRELUDE+BODY` in the jail (mode: full or addfd); returns the JailRun."""
    jail = Jail(require_binary(landjail_path(), "landjail"), shared, None)
    script = PRELUDE + textwrap.dedent(body)
    return jail.run(["/usr/bin/python3", "-c", script], user=user, args=args,
                    allow=("domain=allowed.test",), wrapper=wrapper_for(mode), timeout=timeout)


# Shared by the scripts: one request through the proxy, which must answer 403 (no rule allows
# the made-up name), so a connect counts only if the proxy itself was reached.
PRELUDE = """
import os, socket, sys, threading
PROXY = os.environ["HTTP_PROXY"].rsplit("/", 1)[-1]
HOST, PORT = PROXY.rsplit(":", 1)[0], int(PROXY.rsplit(":", 1)[1])

def via_proxy():
    s = socket.create_connection((HOST, PORT), timeout=30)
    try:
        s.sendall(b"GET http://denied.test/ HTTP/1.1\\r\\nHost: denied.test\\r\\nConnection: close\\r\\n\\r\\n")
        head = s.recv(64)
    finally:
        s.close()
    if not head.startswith(b"HTTP/1.1 403"):
        raise SystemExit("the proxy did not answer: %r" % head)
"""


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("user", USERS)
def test_many_threads_connect_at_once(shared, forbidden, user, mode):
    """32 threads x 25 requests through the proxy, while 4 threads hammer a forbidden port:
    every proxied request is answered, every forbidden connect is refused."""
    r = run_script(shared, user, mode, """
    errors, refused = [], [0]
    def good():
        try:
            for _ in range(25):
                via_proxy()
        except BaseException as e:
            errors.append(repr(e))
    def bad():
        for _ in range(50):
            try:
                socket.create_connection(("127.0.0.1", %d), timeout=5).close()
                errors.append("forbidden connect succeeded")
            except ConnectionRefusedError:
                refused[0] += 1
    ts = [threading.Thread(target=good) for _ in range(32)] + \\
         [threading.Thread(target=bad) for _ in range(4)]
    for t in ts: t.start()
    for t in ts: t.join()
    print("errors", errors[:3], "refused", refused[0])
    sys.exit(1 if errors or refused[0] != 200 else 0)
    """ % forbidden.port)
    assert r.rc == 0, r
    assert forbidden.accepted == 0, r


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("user", USERS)
def test_signals_interrupt_trapped_connects(shared, user, mode):
    """An interval timer (SA_RESTART, as Go's runtime and libuv install their handlers) fires
    every 200 us while 1500 requests go through the supervisor: a connect interrupted before
    the supervisor took it is restarted by the kernel as a new notification, and one it took
    completes once (WAIT_KILLABLE_RECV): every request reaches the proxy, none fails with
    EPIPE, EISCONN or EALREADY from a connect lost or performed twice."""
    r = run_script(shared, user, mode, """
    import signal
    hits = [0]
    def tick(*_):
        hits[0] += 1
    signal.signal(signal.SIGALRM, tick)
    signal.siginterrupt(signal.SIGALRM, False)  # SA_RESTART
    signal.setitimer(signal.ITIMER_REAL, 0.0002, 0.0002)
    try:
        for i in range(1500):
            via_proxy()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    print("signals", hits[0])
    sys.exit(0 if hits[0] > 100 else 3)
    """)
    assert r.rc == 0, r


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("user", USERS)
def test_processes_killed_while_their_connect_waits(shared, forbidden, user, mode):
    """60 times: a child with 4 threads connecting in a loop (to the proxy and to a forbidden
    port) is SIGKILLed mid-flight. Afterwards the supervisor still answers: the parent's
    request through the proxy works and nothing reached the forbidden port."""
    r = run_script(shared, user, mode, """
    import signal, time, random
    for round in range(60):
        pid = os.fork()
        if pid == 0:
            def loop(port):
                while True:
                    try:
                        socket.create_connection(("127.0.0.1", port), timeout=5).close()
                    except OSError:
                        pass
            for port in (PORT, PORT, %d, %d):
                threading.Thread(target=loop, args=(port,), daemon=True).start()
            time.sleep(60)
            os._exit(0)
        time.sleep(random.uniform(0.001, 0.01))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    via_proxy()
    print("ok")
    """ % (forbidden.port, forbidden.port))
    assert r.rc == 0, r
    assert "ok" in r.stdout, r
    assert forbidden.accepted == 0, r


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("user", USERS)
def test_process_trees_and_orphans(shared, forbidden, user, mode):
    """Connects from a grandchild after exec (sh -> python3), and from an orphan whose parent
    exited (re-parented to landjail, the subreaper) are performed as any other; the orphan's
    forbidden connect is refused."""
    r = run_script(shared, user, mode, """
    import subprocess, time
    # A grandchild through sh and exec.
    grand = ("import os, socket; h, p = os.environ['HTTP_PROXY'].rsplit('/', 1)[-1]"
             ".rsplit(':', 1); socket.create_connection((h, int(p))).close()")
    code = subprocess.call(["/bin/sh", "-c", 'exec /usr/bin/python3 -c "$LJ_GRAND"'],
                           env=dict(os.environ, LJ_GRAND=grand))
    if code != 0:
        sys.exit("grandchild connect failed: %d" % code)
    # An orphan: its parent exits at once; it reports through a pipe.
    r, w = os.pipe()
    if os.fork() == 0:
        if os.fork() == 0:
            os.close(r)
            time.sleep(0.2)  # let the middle process exit first
            out = []
            try:
                via_proxy(); out.append("proxy ok")
            except BaseException as e:
                out.append("proxy failed %r" % e)
            try:
                socket.create_connection(("127.0.0.1", FORBIDDEN), timeout=5).close()
                out.append("forbidden connected")
            except ConnectionRefusedError:
                out.append("forbidden refused")
            out.append("ppid %d" % os.getppid())
            os.write(w, (" ".join(out)).encode())
            os._exit(0)
        os._exit(0)
    os.close(w)
    os.wait()
    got = os.read(r, 200).decode()
    print(got)
    sys.exit(0 if "proxy ok" in got and "forbidden refused" in got else 4)
    """.replace("FORBIDDEN", str(forbidden.port)))
    assert r.rc == 0, r
    assert forbidden.accepted == 0, r


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("user", USERS)
def test_one_ordered_audit_stream(shared, forbidden, user, mode):
    """The supervisor's connect_denied and socket_denied events go through the proxy
    (--event-fd) into its stream: one session_id, seq 1, 2, 3, … in the order they happened,
    and no HTTP fields on the jail's events. The proxy's http_request events name the
    process that sent the request (pid, exe), which the supervisor reported with the client
    port of the connection it made."""
    r = run_script(shared, user, mode, """
    via_proxy()
    try:
        socket.create_connection(("127.0.0.1", FORBIDDEN), timeout=5)
    except ConnectionRefusedError:
        pass
    try:
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    except PermissionError:
        pass
    via_proxy()
    """.replace("FORBIDDEN", str(forbidden.port)), args=("--no-shim",))
    assert r.rc == 0, r
    events = r.audit()
    assert [e["event"] for e in events] == [
        "http_request", "connect_denied", "socket_denied", "http_request"], events
    assert len({e["session_id"] for e in events}) == 1, events
    assert [e["seq"] for e in events] == [1, 2, 3, 4], events
    for e in events[1:3]:
        assert "http_method" not in e and "http_url" not in e, e
        assert e["pid"] > 0 and e["exe"].startswith("/usr/bin/python3"), e
    for e in (events[0], events[3]):
        assert e["pid"] == events[1]["pid"] and e["exe"] == events[1]["exe"], events
    assert events[1]["destination"] == "127.0.0.1:%d" % forbidden.port, events
    assert events[2]["destination"] == "socket(AF_INET, SOCK_DGRAM, 0)", events


@pytest.mark.parametrize("user", USERS)
def test_forbidden_listener_control_without_the_jail(forbidden, user):
    """The control for the tests above: the same user without landjail reaches the forbidden
    listener, so its silence under the jail is the supervisor's doing."""
    code = "import socket, sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 5)"
    p = subprocess.run(as_user(user, ["/usr/bin/python3", "-c", code, str(forbidden.port)]),
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p
    deadline = time.monotonic() + 10
    while forbidden.accepted == 0 and time.monotonic() < deadline:
        time.sleep(0.01)  # the accept thread counts it
    assert forbidden.accepted == 1


# ---- the proxy dies while the jail runs --------------------------------------------------------

# Reaches the proxy once, says READY with the proxy's port, waits for a line on stdin (the
# test kills the proxy meanwhile and listens on its port itself), then tries the proxy's port,
# a forbidden port and a UDP socket, and prints what each got.
DEAD_PROXY = """
import errno
via_proxy()
print("READY", PORT, flush=True)
sys.stdin.readline()
out = []
for name, port in (("proxy", PORT), ("forbidden", FORBIDDEN), ("proxy-again", PORT)):
    try:
        socket.create_connection((HOST, port), timeout=5).close()
        out.append(name + ":connected")
    except OSError as e:
        out.append("%s:%s" % (name, errno.errorcode.get(e.errno, e.errno)))
try:
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    out.append("udp:created")
except OSError as e:
    out.append("udp:%s" % errno.errorcode.get(e.errno, e.errno))
print(" ".join(out), flush=True)
"""


def _proxy_child(pid: int) -> int:
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and (d / "comm").read_text().strip() == "landjail-proxy" and \
                    int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                return int(d.name)
        except (OSError, ValueError, IndexError):
            continue
    raise AssertionError("no landjail-proxy child of landjail %d" % pid)


def _wait_exited(pid: int, timeout: float = 10.0):
    """Until the process is a zombie or gone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()[0] in "ZX":
                return
        except (OSError, IndexError):
            return
        time.sleep(0.01)
    raise AssertionError("process %d did not exit" % pid)


def _listen_when_free(port: int, timeout: float = 10.0) -> AcceptCounter:
    """A listener on the dead proxy's port, once its last thread has let go of it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return AcceptCounter(port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


@pytest.mark.parametrize("mode", list(FAULT_MODES))
@pytest.mark.parametrize("user", USERS)
def test_dead_proxy_fails_closed(shared, forbidden, user, mode):
    """The proxy is SIGKILLed while the command runs, and the test listens on its port: landjail
    and the command survive the supervisor's next write to the dead proxy (no SIGPIPE, exit
    141), every connect is refused from then on (the proxy's port too, whoever listens there
    now), landjail audits the refusals itself (a new audit session in the same file) and says
    on stderr, once, that the proxy died and how."""
    jail = Jail(require_binary(landjail_path(), "landjail"), shared, None)
    script = PRELUDE + DEAD_PROXY.replace("FORBIDDEN", str(forbidden.port))
    p = jail.popen(["/usr/bin/python3", "-c", script], user=user, args=("--no-shim",),
                   allow=("domain=allowed.test",), wrapper=wrapper_for(mode))
    takeover = None
    try:
        port = int(re.fullmatch(r"READY (\d+)", p.readline()).group(1))
        proxy = _proxy_child(p.pid)
        os.kill(proxy, signal.SIGKILL)
        _wait_exited(proxy)
        takeover = _listen_when_free(port)
        p.write(b"go\n")
        r = p.finish()
        reached = (takeover.settled(), forbidden.settled())
    finally:
        p.kill()
        if takeover:
            takeover.close()
    assert r.rc == 0, r
    tried = r.stdout.strip().splitlines()[-1]
    assert tried == ("proxy:ECONNREFUSED forbidden:ECONNREFUSED proxy-again:ECONNREFUSED "
                     "udp:EACCES"), r
    assert reached == (0, 0), "ESCAPED after the proxy died (%s, %s): %r\n%r" % (
        user, mode, reached, r)
    said = re.findall(r"landjail: warning: landjail-proxy was killed by signal 9.*", r.stderr)
    assert len(said) == 1 and "refused" in said[0], r
    # The proxy's own event for the first request may be lost with it (SIGKILL); the jail's
    # refusals after its death are landjail's, in a session of their own.
    events = r.audit()
    local = [e for e in events if e["event"] != "http_request"]
    assert len({e["session_id"] for e in local}) == 1, events
    assert all(e["session_id"] != local[0]["session_id"] for e in events
               if e["event"] == "http_request"), events
    assert [(e["event"], e.get("reason")) for e in local] == [
        ("connect_denied", "proxy_gone"), ("connect_denied", "not_the_proxy"),
        ("connect_denied", "proxy_gone"), ("socket_denied", "socket_type_not_allowed")], events
    assert local[0]["destination"] == "127.0.0.1:%d" % port, local
    assert [e["seq"] for e in local] == [1, 2, 3, 4], local

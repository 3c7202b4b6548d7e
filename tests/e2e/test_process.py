# SPDX-License-Identifier: Apache-2.0
"""landjail as a process (issue 4, item 4), as root and as uid 65534:
  - exit status: the command's own, 128+N when it dies of signal N, 126 not executable, 127
    not found, 125 for landjail's own failures (bad flag, rule or config) with a message that
    names the problem, and the command never started;
  - SIGINT, SIGTERM and SIGHUP sent to landjail reach the command; landjail then exits with
    the command's status (its handler's code, or 128+N when it does not trap the signal);
  - an interactive program keeps the terminal: stdin is a tty, its process group is the
    terminal's foreground group, typed text echoes, Ctrl-C reaches it, `bash -i` gets job
    control;
  - two jails at once get different proxy ports and both work;
  - --proxy-addr uses an already running landjail-proxy and leaves it running;
  - the proxy landjail starts is gone when the command ends (normally, killed, or landjail
    sent SIGTERM): no leftover landjail-proxy, nothing listening on its port;
  - `landjail doctor` exits 0 and reports the Landlock ABI and the protection level.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from e2e_support_env import (  # noqa: E402
    PYTHON, USERS, as_user, base_env, e2e_bin_dir, landjail_path, proxy_path, require_binary)
from e2e_support_origins import origin_world, write_scripts  # noqa: E402
from e2e_support_audit import check_decision, http_events, read_audit  # noqa: E402
from e2e_support_jail import Jail  # noqa: E402
from e2e_support_proxy import (  # noqa: E402
    StandaloneProxy, connect_refused, exe_of, listener_pids, process_alive,
    proxy_port_from_env_line)
from e2e_support_terminal import Terminal  # noqa: E402

SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGHUP": signal.SIGHUP}
TRAP_EXIT_BASE = 100  # the trapping script exits 100 + the signal number

# Traps SIGINT/SIGTERM/SIGHUP, says "ready PID", and on a signal writes "got NAME" and exits
# 100 + its number.
TRAP_SCRIPT = r'''
import os, signal
names = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM", signal.SIGHUP: "SIGHUP"}
def got(signum, frame):
    # os.write, not print: the signal may land while "ready" is still inside sys.stdout.
    os.write(1, b"got %s\n" % names[signum].encode())
    os._exit(100 + signum)
for s in names:
    signal.signal(s, got)
os.write(1, b"ready %d\n" % os.getpid())
while True:
    signal.pause()
'''

# Prints the proxy URL it was given, waits for a line on stdin, then fetches each URL in argv
# through HTTP_PROXY and prints one JSON line per URL.
FETCH_SCRIPT = r'''
import json, os, sys, urllib.error, urllib.request
print(os.environ.get("HTTP_PROXY", ""), os.getpid(), flush=True)
sys.stdin.readline()
for url in sys.argv[1:]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            print(json.dumps({"status": r.status, "body": r.read().decode()}), flush=True)
    except urllib.error.HTTPError as e:
        print(json.dumps({"status": e.code, "body": e.read().decode()}), flush=True)
    except Exception as e:
        print(json.dumps({"error": "%s: %s" % (type(e).__name__, e)}), flush=True)
'''

# On a terminal: reports isatty and whether its process group is the terminal's foreground
# group, reads one typed line, then waits for Ctrl-C and exits 3 from the handler.
TTY_SCRIPT = r'''
import os, signal, sys
fg = os.tcgetpgrp(0) == os.getpgrp()
print("isatty=%s fg=%s" % (os.isatty(0), fg), flush=True)
line = input("prompt> ")
print("got: %s" % line, flush=True)
def on_int(signum, frame):
    os.write(1, b"caught SIGINT\n")  # not print: stdout's lock may be held
    os._exit(3)
signal.signal(signal.SIGINT, on_int)
print("waiting for ctrl-c", flush=True)
while True:
    signal.pause()
'''


# ---- fixtures ------------------------------------------------------------------------------


class Env:
    pass


@pytest.fixture(scope="module")
def env():
    """Origins on loopback, the test PKI, the scripts, and a Jail factory (the jail binary is
    required by every test here)."""
    with origin_world("lj-e2e-process.") as (shared, pki, origins):
        e = Env()
        e.shared, e.pki, e.origins = shared, pki, origins
        e.scripts = write_scripts(shared.subdir("scripts"), {
            "trap.py": TRAP_SCRIPT,
            "fetch.py": FETCH_SCRIPT,
            "tty.py": TTY_SCRIPT})
        yield e


@pytest.fixture
def jail(env):
    """A Jail; every landjail still running at teardown (a test that failed early) is killed."""
    j = Jail(require_binary(landjail_path(), "landjail"), env.shared, env.pki, env.origins)
    started = []
    real_popen = j.popen

    def popen(*a, **kw):
        p = real_popen(*a, **kw)
        started.append(p)
        return p

    j.popen = popen
    yield j
    for p in started:
        p.kill()


# ---- exit status ---------------------------------------------------------------------------


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("command,status", [
    (["true"], 0),
    (["sh", "-c", "exit 7"], 7),
    (["sh", "-c", "exit 255"], 255),
    (["sh", "-c", "kill -TERM $$"], 128 + signal.SIGTERM),
    (["sh", "-c", "kill -KILL $$"], 128 + signal.SIGKILL),
    (["sh", "-c", "kill -USR1 $$"], 128 + signal.SIGUSR1),
], ids=["true", "exit7", "exit255", "sigterm", "sigkill", "sigusr1"])
def test_exit_status_is_the_commands(jail, user, command, status):
    """landjail exits with the command's status, or 128+N when the command dies of signal N."""
    r = jail.run(command, user=user)
    assert r.rc == status, r


@pytest.mark.parametrize("user", USERS)
def test_not_executable_is_126(jail, env, user):
    """A file without execute permission: 126 and a message naming it; so is a directory."""
    d = env.shared.subdir("noexec")
    script = d / "not-executable.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    os.chmod(script, 0o644)
    r = jail.run([str(script)], user=user)
    assert r.rc == 126, r
    assert "landjail: %s: not executable" % script in r.stderr, r
    r = jail.run([str(d)], user=user)
    assert r.rc == 126, r
    assert "landjail: %s: not executable" % d in r.stderr, r


@pytest.mark.parametrize("user", USERS)
def test_not_found_is_127(jail, env, user):
    """A command that is not on PATH, or a path that does not exist: 127, named."""
    r = jail.run(["landjail-no-such-command"], user=user)
    assert r.rc == 127, r
    assert "landjail: landjail-no-such-command: command not found" in r.stderr, r
    missing = str(env.shared.path / "no" / "such" / "file")
    r = jail.run([missing], user=user)
    assert r.rc == 127, r
    assert "landjail: %s: no such file" % missing in r.stderr, r


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("case", ["flag", "rule", "config", "config-key"])
def test_landjail_failure_is_125_and_named(jail, env, user, case):
    """landjail's own failures exit 125 with a message naming what is wrong, and the command
    never runs (it would create a marker file)."""
    d = env.shared.subdir("bad-" + case)
    marker = d / "command-ran"
    kw = {"workdir": d}
    if case == "flag":
        kw["args"] = ["--no-such-flag"]
        named = "landjail: unrecognized option '--no-such-flag'"
    elif case == "rule":
        kw["allow"] = ["colour=red"]
        named = "landjail: --allow: rule 'colour=red': unknown key 'colour'"
    elif case == "config":
        kw["args"] = ["--config", str(d / "missing.yaml")]
        named = "landjail: config file '%s' (from --config) does not exist" % (d / "missing.yaml")
    else:
        cfg = d / "config.yaml"
        cfg.write_text("allowlist:\n  - domain=origin.test\nno_such_key: 1\n")
        os.chmod(cfg, 0o644)
        kw["args"] = ["--config", str(cfg)]
        named = "landjail: %s:3:1: unknown key 'no_such_key'" % cfg
    r = jail.run(["touch", str(marker)], user=user, **kw)
    assert r.rc == 125, r
    assert named in r.stderr, r
    assert not marker.exists(), "the command ran although landjail failed: %r" % r


# ---- signals -------------------------------------------------------------------------------


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("signame", list(SIGNALS))
def test_signal_reaches_trapping_command(jail, env, user, signame):
    """A signal sent to landjail reaches the command, which traps it, says so and exits
    100+N; landjail exits with that status."""
    sig = SIGNALS[signame]
    p = jail.popen([PYTHON, env.scripts["trap.py"]], user=user)
    ready = p.readline()
    assert ready.startswith("ready "), ready
    os.kill(p.pid, sig)
    r = p.finish(timeout=30)
    assert r.stdout.strip().splitlines() == ["got " + signame], r
    assert r.rc == TRAP_EXIT_BASE + sig, r


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("signame", list(SIGNALS))
def test_signal_kills_untrapping_command(jail, user, signame):
    """A command that does not trap the signal dies of it; landjail exits 128+N (so the signal
    was not ignored on the way, nor turned into another one)."""
    sig = SIGNALS[signame]
    p = jail.popen(["sh", "-c", "echo ready; exec sleep 300"], user=user)
    assert p.readline() == "ready"
    os.kill(p.pid, sig)
    r = p.finish(timeout=30)
    assert r.rc == 128 + sig, r


# ---- the terminal --------------------------------------------------------------------------


@pytest.fixture
def terminal():
    started = []

    def start(argv, env, cwd):
        t = Terminal(argv, env, cwd)
        started.append(t)
        return t

    yield start
    for t in started:
        t.close()


@pytest.mark.parametrize("user", USERS)
def test_interactive_program_keeps_the_terminal(jail, env, terminal, user):
    """On a terminal, the jailed program has stdin on the tty and is in the foreground
    process group; what is typed echoes and reaches it; Ctrl-C reaches it (its handler
    decides the exit status, 3, which landjail returns)."""
    argv, e, workdir = jail.prepare([PYTHON, env.scripts["tty.py"]], user=user)
    t = terminal(argv, e, workdir)
    t.expect(rb"isatty=True fg=True")
    t.expect(rb"prompt> ")
    t.type(b"hello jail\r")
    t.expect(rb"hello jail\r\n")  # the terminal's echo
    t.expect(rb"got: hello jail")
    t.expect(rb"waiting for ctrl-c")
    t.type(b"\x03")
    t.expect(rb"caught SIGINT")
    assert t.wait() == 3, t.transcript


@pytest.mark.parametrize("user", USERS)
def test_denial_lines_wait_until_the_terminal_is_free(jail, terminal, user):
    """While the command has the terminal (a TUI agent), the proxy's logfmt denial lines
    would be drawn over its screen: landjail holds them back and prints them, counted, after
    the command exits. The request itself is still refused at once (the command sees 403)."""
    script = ("import os, socket; port = int(os.environ['HTTP_PROXY'].rsplit(':', 1)[1]); "
              "s = socket.create_connection(('127.0.0.1', port)); "
              "s.sendall(b'GET http://held.test/x HTTP/1.1\\r\\nHost: held.test\\r\\n"
              "Connection: close\\r\\n\\r\\n'); "
              "print('status', s.recv(64).split()[1].decode()); print('command done')")
    command = [PYTHON, "-c", script]
    argv, e, workdir = jail.prepare(command, user=user, allow=("domain=allowed.test",))
    t = terminal(argv, e, workdir)
    running = t.expect(rb"status 403\r\n[\s\S]*?command done\r\n")
    assert b"landjail_request" not in t.transcript[:running.end()], t.transcript
    assert t.wait() == 0, t.transcript
    after = t.transcript.decode(errors="replace")
    assert re.search(r"landjail: 1 request was denied while the command ran on this terminal:"
                     r"\r\n  landjail_request decision=deny http_method=GET "
                     r"http_url=http://held.test/x ", after), after
    assert after.index("command done") < after.index("landjail_request"), after


@pytest.mark.parametrize("user", USERS)
def test_bash_interactive_job_control(jail, terminal, user):
    """`bash -i` in the jail gets job control (no "no job control" warning), runs typed
    commands, Ctrl-C interrupts a foreground job and returns to the prompt, and `exit 5`
    is landjail's status."""
    argv, e, workdir = jail.prepare(["bash", "--norc", "--noprofile", "-i"], user=user,
                                    env={"PS1": "lj$ ", "TERM": "dumb"})
    t = terminal(argv, e, workdir)
    t.expect(rb"lj\$ ")
    t.type(b"echo sum=$((6*7)); tty -s && echo tty-ok\r")
    t.expect(rb"sum=42")
    t.expect(rb"tty-ok")
    t.expect(rb"lj\$ ")
    # The foreground job says when it runs (then becomes `sleep`), so Ctrl-C cannot come
    # before bash has started it.
    t.type(b"sh -c 'echo sleeping; exec sleep 300'\r")
    t.expect(rb"\nsleeping\r\n")
    t.type(b"\x03")
    t.expect(rb"lj\$ ")
    t.type(b"echo after=$?\r")
    t.expect(rb"after=130")
    t.expect(rb"lj\$ ")
    t.type(b"exit 5\r")
    status = t.wait()
    everything = t.transcript
    assert status == 5, everything
    for bad in (b"no job control", b"cannot set terminal process group"):
        assert bad not in everything, everything


# ---- proxies -------------------------------------------------------------------------------


def test_two_jails_get_different_ports_and_both_work(jail, env):
    """Two jails started at once each get their own proxy (different ports); both fetch
    through it while the other is running, and each audit log has its own request."""
    a = jail.popen([PYTHON, env.scripts["fetch.py"], "http://origin.test/path-echo/two/a"])
    b = jail.popen([PYTHON, env.scripts["fetch.py"], "http://origin.test/path-echo/two/b"],
                   user="nobody")
    port_a = proxy_port_from_env_line(a.readline().split()[0])
    port_b = proxy_port_from_env_line(b.readline().split()[0])
    assert port_a != port_b
    # Both are running now; let them fetch.
    a.write(b"go\n")
    b.write(b"go\n")
    ra, rb = a.finish(), b.finish()
    for r, tag in ((ra, "a"), (rb, "b")):
        assert r.rc == 0, r
        got = json.loads(r.stdout.strip().splitlines()[-1])
        assert got == {"status": 200, "body": "/path-echo/two/" + tag}, r
        check_decision(http_events(r.audit()), "allow", "GET", "domain=origin.test",
                       url="http://origin.test/path-echo/two/" + tag)


def test_proxy_addr_uses_a_running_proxy(jail, env):
    """--proxy-addr: the child gets the running proxy's address, its requests go through it
    (the standalone proxy's audit has them), landjail starts no proxy of its own and leaves
    the running one alone when the command ends."""
    proxy = StandaloneProxy(require_binary(proxy_path(), "landjail-proxy"),
                            env.shared.subdir("standalone"),
                            ["--allow", "domain=origin.test", "--upstream-ca",
                             str(env.pki.ca_pem)] + env.origins.resolve_args())
    try:
        p = jail.popen([PYTHON, env.scripts["fetch.py"], "http://origin.test/path-echo/pa",
                        "https://origin.test/path-echo/pa-tls", "http://other.test/"],
                       args=["--proxy-addr", proxy.addr], resolve=False,
                       ca_dir=proxy.ca_pem.parent)
        first = p.readline().split()
        assert proxy_port_from_env_line(first[0]) == proxy.port
        # No proxy of landjail's own: the only listener of the child's proxy address is the
        # standalone one, and no landjail-proxy runs under landjail.
        assert listener_pids(proxy.port) == {proxy.proc.pid}
        assert not [c for c in descendants(p.pid) if exe_of(c).endswith("landjail-proxy")]
        p.write(b"go\n")
        r = p.finish()
        assert r.rc == 0, r
        results = [json.loads(x) for x in r.stdout.strip().splitlines()]
        assert results[0] == {"status": 200, "body": "/path-echo/pa"}, r
        assert results[1] == {"status": 200, "body": "/path-echo/pa-tls"}, r
        assert results[2]["status"] == 403, r
        assert proxy.proc.poll() is None, "landjail stopped a proxy it did not start"
        assert not connect_refused(proxy.port)
    finally:
        proxy.stop()
    lines = http_events(read_audit(proxy.audit_path))
    check_decision(lines, "allow", "GET", "domain=origin.test",
                   url="http://origin.test/path-echo/pa")
    check_decision(lines, "allow", "GET", "domain=origin.test",
                   url="https://origin.test/path-echo/pa-tls")
    check_decision(lines, "deny", "GET", None, url="http://other.test/")


def descendants(pid: int) -> list[int]:
    """Every descendant of pid (from /proc/PID/task/*/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = os.listdir("/proc/%d/task" % p)
        except FileNotFoundError:
            continue
        for t in tasks:
            try:
                with open("/proc/%d/task/%s/children" % (p, t)) as f:
                    kids = [int(x) for x in f.read().split()]
            except FileNotFoundError:
                continue
            out += kids
            todo += kids
    return out


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("ending", ["exit", "killed", "sigterm-to-landjail"])
def test_proxy_stops_with_the_command(jail, env, user, ending):
    """While the command runs, exactly one landjail-proxy (started by landjail) listens on the
    child's proxy port; once landjail has exited — the command exited, was SIGKILLed, or
    landjail got SIGTERM — that process is gone and the port refuses connections."""
    p = jail.popen([PYTHON, env.scripts["fetch.py"], "http://origin.test/path-echo/stop"],
                   user=user)
    url, command_pid = p.readline().split()
    port = proxy_port_from_env_line(url)
    holders = listener_pids(port)
    assert len(holders) == 1, holders
    proxy_pid = holders.pop()
    assert exe_of(proxy_pid) == str(proxy_path()), exe_of(proxy_pid)
    assert proxy_pid in descendants(p.pid), "the proxy is not landjail's"
    if ending == "exit":
        p.write(b"go\n")
        r = p.finish()
        assert r.rc == 0, r
        assert json.loads(r.stdout.splitlines()[-1])["status"] == 200, r
    elif ending == "killed":
        os.kill(int(command_pid), signal.SIGKILL)
        r = p.finish()
        assert r.rc == 128 + signal.SIGKILL, r
    else:
        os.kill(p.pid, signal.SIGTERM)
        r = p.finish()
        assert r.rc == 128 + signal.SIGTERM, r
    assert not process_alive(proxy_pid), "landjail-proxy %d outlived landjail" % proxy_pid
    assert connect_refused(port), "something still listens on the proxy port %d" % port


# ---- doctor --------------------------------------------------------------------------------


def kernel_landlock_abi() -> int:
    """The Landlock ABI the kernel reports (landlock_create_ruleset with
    LANDLOCK_CREATE_RULESET_VERSION), 0 without Landlock."""
    libc = ctypes.CDLL(None, use_errno=True)
    nr_landlock_create_ruleset = 444  # x86_64 and the generic table, Linux 5.13
    abi = libc.syscall(nr_landlock_create_ruleset, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return max(abi, 0)


def doctor(user: str, home: Path, wrapper: list[str] = ()) -> subprocess.CompletedProcess:
    binary = require_binary(landjail_path(), "landjail")
    return subprocess.run(list(wrapper) + as_user(user, [str(binary), "doctor"]),
                          env=base_env(home), capture_output=True, text=True, timeout=60,
                          cwd=str(home))


def doctor_field(out: str, name: str) -> str:
    m = re.search(r"^%s:[ \t]+(.*)$" % re.escape(name), out, re.M)
    assert m, "doctor prints no %r line:\n%s" % (name, out)
    return m.group(1)


@pytest.mark.parametrize("user", USERS)
def test_doctor(env, user):
    """`landjail doctor` exits 0 and names the kernel's Landlock ABI (as the kernel itself
    reports it) and the protection level: full on a host with Landlock ABI >= 6, seccomp
    notification and pidfd_getfd (this test host), for root and for uid 65534 alike."""
    p = doctor(user, env.shared.subdir("doctor"))
    assert p.returncode == 0, p
    abi = kernel_landlock_abi()
    landlock = doctor_field(p.stdout, "landlock")
    if abi:
        assert landlock == "Landlock ABI %d" % abi, p.stdout
    else:
        assert landlock.startswith("no Landlock"), p.stdout
    assert doctor_field(p.stdout, "running as uid") == str(0 if user == "root" else 65534)
    protection = doctor_field(p.stdout, "protection")
    if abi >= 6:
        assert protection == ("full: Landlock ABI %d, seccomp supervisor with pidfd_getfd"
                              % abi), p.stdout
    else:
        assert re.match(r"degraded \(level \d\)", protection), p.stdout


@pytest.mark.parametrize("mode,level,lost", [
    ("--pidfd-getfd-eperm", 2, "pidfd_getfd is refused (EPERM)"),
    ("--landlock-enosys", 4, "no Landlock"),
])
def test_doctor_on_degraded_host(env, mode, level, lost):
    """Under tests/e2e's outer-seccomp (a host that refuses pidfd_getfd, or has no Landlock)
    doctor still exits 0 and names the degraded level and what is lost."""
    wrapper = e2e_bin_dir() / "outer-seccomp"
    require_binary(wrapper, "outer-seccomp")
    if kernel_landlock_abi() < 6:
        pytest.skip("the expected levels assume Landlock ABI >= 6 underneath")
    p = doctor("root", env.shared.subdir("doctor"), [str(wrapper), mode, "--"])
    assert p.returncode == 0, p
    assert doctor_field(p.stdout, "protection").startswith("degraded (level %d): " % level), \
        p.stdout
    assert re.search(r"^  lost: .*%s" % re.escape(lost), p.stdout, re.M), p.stdout

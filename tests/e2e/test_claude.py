# SPDX-License-Identifier: Apache-2.0
"""`landjail --profile claude-code -- claude`, for real (issue 6, item 5).

Claude Code (the npm package pinned in tests/e2e/package.json, installed by ./install.sh with
`npm ci`) runs in the jail against a fake Anthropic Messages API (fake_anthropic.py) on
127.0.0.1, reached through a made-up name: ANTHROPIC_BASE_URL=https://api.fake-anthropic.test,
mapped with --resolve, its certificate signed by the test CA given as --upstream-ca. As root
and as uid 65534, each run with a fresh HOME the user owns:

- test_print_allowed: `claude -p "say hi"` under `--profile claude-code --allow
  domain=api.fake-anthropic.test` prints the fake's reply and exits 0; the fake received one
  streamed POST /v1/messages for that name with the API key and the prompt; the audit has its
  allow line (the rule, status 200, claude's executable).
- test_print_denied: the same with the profile alone: claude exits 1 naming the proxy's
  refusal, the audit has one deny line for the CONNECT to the name, and the fake accepted no
  connection at all.
- test_interactive: `claude` under tmux (120x40, a private socket), with ~/.claude.json as a
  first run leaves it (onboarding done, this folder trusted, the API key approved): the UI
  renders and a typed prompt gets the fake's reply rendered; then Ctrl-C twice ends it and
  landjail exits 0 (ctrl-c), or the terminal goes away (hangup: tmux kill-session). Either
  way no process of the run is left. Every screen is printed and written to the test's
  tmp_path.

No internet. Whatever ANTHROPIC_BASE_URL says, Claude Code also calls Anthropic's services
(api.anthropic.com: /api/eval/…, /api/claude_cli/bootstrap, /api/claude_code_penguin_mode,
/api/directory/server-urls, /api/event_logging/v2/batch, and /api/hello on a first
interactive start; downloads.claude.ai for the plugin list). The profile allows those names, so
the test pins them with --resolve to a port of 127.0.0.1 that refuses connections (PINNED):
the proxy answers 502 at once, and every allowed request must be for a pinned name or the
fake's. What it tries outside the profile (github.com over HTTPS and ssh, for the plugin
marketplace; raw.githubusercontent.com; registry.npmjs.org from node, the npm update check) is
denied by the proxy. No Claude Code setting is changed but CLAUDE_CODE_MAX_RETRIES=0 in the
denied case (by default Claude Code retries ten times, about three minutes).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from e2e_support_env import (  # noqa: E402
    NOBODY, USERS, as_user, base_env, landjail_path, require_binary)
from e2e_support_origins import SharedDir, make_pki  # noqa: E402
from e2e_support_audit import read_audit  # noqa: E402
from fake_anthropic import FakeAnthropic  # noqa: E402

HERE = Path(__file__).resolve().parent
PACKAGE_JSON = HERE / "package.json"
CLAUDE = HERE / "node_modules" / ".bin" / "claude"
API_NAME = "api.fake-anthropic.test"
API_RULE = "domain=" + API_NAME
API_KEY = "sk-ant-api03-landjail-e2e-not-a-real-key-0123456789"
PROMPT = "say hi"
REPLY = "Hello from the fake Messages API, through landjail (e2e 5b1e)"
# Names the claude-code profile allows that Claude Code calls (or might): pinned to a refusing
# port so that an allowed request never goes to DNS and the internet.
PINNED = ("api.anthropic.com", "statsig.anthropic.com", "claude.ai", "downloads.claude.ai",
          "platform.claude.com", "sentry.io")
RUN_TIMEOUT = 90.0
UI_TIMEOUT = 45.0
COLUMNS, LINES = 120, 40


def pinned_version() -> str:
    return json.loads(PACKAGE_JSON.read_text())["dependencies"]["@anthropic-ai/claude-code"]


# ---- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def claude() -> Path:
    """The pinned Claude Code, runnable by root and uid 65534; a failure (never a skip) when
    it is missing or another version."""
    want = pinned_version()
    hint = "run ./install.sh (it installs it with `npm ci --prefix tests/e2e`)"
    if not os.access(CLAUDE, os.X_OK):
        pytest.fail("Claude Code %s is not installed (%s not found): %s" % (want, CLAUDE, hint))
    for user in USERS:
        p = subprocess.run(as_user(user, [str(CLAUDE), "--version"]), capture_output=True,
                           text=True, timeout=60, cwd="/", env=base_env(Path("/nonexistent")))
        if p.returncode != 0 or not p.stdout.startswith(want + " "):
            pytest.fail("`claude --version` as %s: rc=%d, %r %r; want %s: %s"
                        % (user, p.returncode, p.stdout, p.stderr, want, hint))
    return CLAUDE


class Setup:
    pass


@pytest.fixture(scope="module")
def setup():
    """landjail, the test CA with a certificate for API_NAME, and the refusing port the
    PINNED names go to (bound and never listening: connects get RST, nobody can take it)."""
    s = Setup()
    s.landjail = require_binary(landjail_path(), "landjail")
    s.shared = SharedDir("lj-e2e-claude.")
    s.pki = make_pki(s.shared.subdir("pki"))
    s.cert, s.key = make_leaf(s.pki.dir, API_NAME)
    s.refuser = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.refuser.bind(("127.0.0.1", 0))
    s.refusing_port = s.refuser.getsockname()[1]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", s.refusing_port), timeout=5).close()
    yield s
    s.refuser.close()
    s.shared.cleanup()


def make_leaf(d: Path, name: str) -> tuple[Path, Path]:
    """A server certificate for `name` signed by the test CA in d (ca.pem, ca.key)."""
    ext = d / (name + ".ext")
    ext.write_text("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                   "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:%s\n" % name)
    for argv in (["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                  "-nodes", "-keyout", name + ".key", "-out", name + ".csr", "-subj",
                  "/CN=" + name],
                 ["x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                  "-CAcreateserial", "-days", "30", "-sha256", "-extfile", ext.name,
                  "-out", name + ".pem"]):
        p = subprocess.run(["openssl", *argv], cwd=d, capture_output=True, text=True)
        assert p.returncode == 0, "openssl %s: %s" % (" ".join(argv), p.stderr)
    return d / (name + ".pem"), d / (name + ".key")


@pytest.fixture
def fake(setup):
    """A fresh fake Messages API for each test (its requests are that test's alone)."""
    f = FakeAnthropic(str(setup.cert), str(setup.key), REPLY)
    yield f
    f.stop()


# ---- running claude in the jail ------------------------------------------------------------


def new_workdir(setup: Setup, user: str, name: str) -> Path:
    """A directory and its home/ (0700), both owned by `user`."""
    d = setup.shared.subdir(name)
    home = d / "home"
    home.mkdir(mode=0o700)
    ids = (0, 0) if user == "root" else (NOBODY, NOBODY)
    for p in (d, home):
        os.chown(p, *ids)
    return d


def jail_argv(setup: Setup, fake: FakeAnthropic, user: str, workdir: Path, claude_args,
              allow_api: bool, extra=()) -> list[str]:
    """[setpriv …] landjail --profile claude-code [--allow domain=API_NAME] --resolve … --
    claude ARGS."""
    argv = [str(setup.landjail), "--profile", "claude-code"]
    if allow_api:
        argv += ["--allow", API_RULE]
    argv += ["--resolve", "%s:443:127.0.0.1:%d" % (API_NAME, fake.port)]
    for name in PINNED:
        argv += ["--resolve", "%s:443:127.0.0.1:%d" % (name, setup.refusing_port)]
    argv += ["--upstream-ca", str(setup.pki.ca_pem), "--ca-dir", str(workdir / "ca"),
             "--audit-log", str(workdir / "audit.jsonl"), *extra, "--", str(CLAUDE),
             *claude_args]
    return as_user(user, argv)


def claude_env(workdir: Path, **extra) -> dict:
    return base_env(workdir / "home", ANTHROPIC_BASE_URL="https://" + API_NAME,
                    ANTHROPIC_API_KEY=API_KEY, **extra)


class Run:
    def __init__(self, user, argv, rc, stdout, stderr, workdir: Path):
        self.user, self.argv, self.rc = user, argv, rc
        self.stdout, self.stderr, self.workdir = stdout, stderr, workdir
        self.audit = read_audit(workdir / "audit.jsonl")

    def __repr__(self):
        return "Run(user=%s, rc=%r, argv=%r,\nstdout=%s\nstderr=%s\naudit:\n%s" % (
            self.user, self.rc, self.argv, self.stdout[-3000:], self.stderr[-3000:],
            audit_summary(self.audit))


def run_print(setup: Setup, fake: FakeAnthropic, user: str, allow_api: bool, **env) -> Run:
    workdir = new_workdir(setup, user, "print")
    argv = jail_argv(setup, fake, user, workdir, ["-p", PROMPT], allow_api)
    try:
        p = subprocess.run(argv, env=claude_env(workdir, **env), cwd=str(workdir),
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        raise AssertionError("claude -p did not finish within %.0fs: %r\nstdout: %r\nstderr: %r"
                             % (RUN_TIMEOUT, argv, e.stdout, e.stderr)) from None
    r = Run(user, argv, p.returncode, p.stdout.decode(errors="replace"),
            p.stderr.decode(errors="replace"), workdir)
    report(r.audit, fake)
    return r


# ---- what to check -------------------------------------------------------------------------


def audit_summary(audit: list[dict]) -> str:
    return "\n".join("  %s %s %s %s %s %s" % (
        x.get("event"), x.get("decision", ""), x.get("http_method", ""),
        x.get("http_url") or x.get("destination", ""), x.get("status", ""),
        os.path.basename(x.get("exe") or "")) for x in audit) or "  (none)"


def report(audit: list[dict], fake: FakeAnthropic):
    """What Claude Code asked for: the fake's requests and the proxy's decisions (shown by
    pytest on failure, or with -rP)."""
    print("fake-anthropic received %d connection(s), %d request(s):" % (
        fake.connections, len(fake.received())))
    for r in fake.received():
        print("  " + r.summary())
    print("audit (event decision method url status exe):\n" + audit_summary(audit))


def messages_events(audit: list[dict]) -> list[dict]:
    """The audit lines of POST https://API_NAME/v1/messages (any query)."""
    return [x for x in audit if x.get("event") == "http_request"
            and x.get("http_method") == "POST" and x.get("host") == API_NAME
            and urllib.parse.urlsplit(x.get("http_url", "")).path == "/v1/messages"]


def check_messages_allowed(audit: list[dict], out) -> dict:
    """One allow line for the Messages request: the --allow rule, status 200, claude's exe."""
    lines = messages_events(audit)
    assert len(lines) == 1, out
    a = lines[0]
    assert a["decision"] == "allow" and a["matched_rule"] == API_RULE, out
    assert a["reason"] == "allow_rule_matched" and a.get("status") == 200, out
    assert a["http_url"].startswith("https://%s/v1/messages" % API_NAME), out
    assert a["exe"] == os.path.realpath(CLAUDE), out
    return a


def check_request(fake: FakeAnthropic, client: str, out):
    """The fake got exactly one Messages request, streamed, for API_NAME, with the key, the
    prompt and Claude Code's user agent (`client`: cli or sdk-cli)."""
    msgs = fake.messages()
    assert len(msgs) == 1, out
    m = msgs[0]
    body = m.json if isinstance(m.json, dict) else {}
    assert m.headers.get("host") == API_NAME, (m.headers, out)
    assert m.headers.get("x-api-key") == API_KEY, (m.headers, out)
    assert body.get("stream") is True, (m.raw[:2000], out)
    assert PROMPT in m.last_user_text(), (body.get("messages"), out)
    agent = m.headers.get("user-agent", "")
    assert agent.startswith("claude-cli/%s " % pinned_version()), (agent, out)
    assert "%s)" % client in agent, (agent, out)


def check_stayed_on_loopback(audit: list[dict], out):
    """Every request the proxy let through was for the fake or for a pinned name (answered
    502: nothing left 127.0.0.1), and nothing tried to go around the proxy."""
    allowed = [x for x in audit if x.get("event") == "http_request"
               and x.get("decision") == "allow"]
    unpinned = sorted({x.get("host") for x in allowed} - set(PINNED) - {API_NAME})
    assert not unpinned, ("allowed requests for names not pinned with --resolve (they would "
                          "go to DNS and the internet): add them to PINNED: %s\n%r"
                          % (unpinned, out))
    for x in allowed:
        if x["host"] in PINNED and x["http_method"] != "CONNECT":
            assert x.get("status") == 502, (x, out)
    others = [x for x in audit if x.get("event") != "http_request"]
    assert others == [], ("Claude Code went around the proxy (supervisor denials)", out)


# ---- the tests -----------------------------------------------------------------------------


@pytest.mark.parametrize("user", USERS)
def test_print_allowed(setup, claude, fake, user):
    """`claude -p "say hi"` with the profile and the fake's name allowed prints the reply."""
    r = run_print(setup, fake, user, allow_api=True)
    assert r.rc == 0, r
    assert r.stdout.strip() == REPLY, r
    check_request(fake, "sdk-cli", r)
    check_messages_allowed(r.audit, r)
    check_stayed_on_loopback(r.audit, r)


@pytest.mark.parametrize("user", USERS)
def test_print_denied(setup, claude, fake, user):
    """The profile alone: the tunnel to the fake's name is intercepted (tls.intercept_denied)
    and the Messages request inside refused with 403 and audited with its full URL; claude
    fails, the fake sees nothing."""
    r = run_print(setup, fake, user, allow_api=False, CLAUDE_CODE_MAX_RETRIES="0")
    assert r.rc == 1, r  # claude's own failure (landjail's would be 125)
    assert REPLY not in r.stdout, r
    assert "403" in r.stdout, r  # Claude Code shows the proxy's answer
    denied = [x for x in r.audit if x.get("event") == "http_request" and
              x.get("host") == API_NAME]
    assert len(denied) == 1, r  # no retry: CLAUDE_CODE_MAX_RETRIES=0
    d = denied[0]
    assert (d["decision"], d["http_method"]) == ("deny", "POST"), r
    assert d["http_url"].startswith("https://%s/v1/messages" % API_NAME), r
    assert d["matched_rule"] is None and d["reason"] == "no_rule_matched", r
    assert d.get("status") == 403 and d["exe"] == os.path.realpath(CLAUDE), r
    line = [x for x in r.stderr.splitlines() if "landjail_request decision=deny" in x
            and "https://%s/v1/messages" % API_NAME in x]
    assert len(line) == 1 and "http_method=POST" in line[0], r
    assert fake.connections == 0 and fake.received() == [], r
    check_stayed_on_loopback(r.audit, r)


# ---- interactive, under tmux ---------------------------------------------------------------


class Tmux:
    """A tmux server on a private socket (-S WORKDIR/tmux.sock) with one session of COLUMNS x
    LINES. Its pane runs the command as a user's shell would, `sh -c 'set -m; COMMAND; echo
    $? >FILE'`: the command is a job in its own process group, in the foreground of the
    terminal (Ctrl-C reaches it, not the shell), and the shell writes its exit status to a
    file. tmux's #{pane_dead_status} is not used: tmux 3.3a now and then misses the SIGCHLD
    of its pane and never reaps it (1 run in 20 here, with `sh -c 'sleep 0.3'` as well)."""

    def __init__(self, workdir: Path, env: dict):
        # In the work directory, not -L NAME: tmux leaves its socket behind in /tmp/tmux-UID.
        self.socket = workdir / "tmux.sock"
        self.conf = workdir / "tmux.conf"
        # remain-on-exit: the last screen can still be captured after the command exits.
        self.conf.write_text("set -g remain-on-exit on\nset -g status off\n")
        self.status_file = workdir / "exit-status"
        self.env = env

    def cmd(self, *args: str) -> str:
        p = subprocess.run(["tmux", "-S", str(self.socket), "-f", str(self.conf), *args],
                           env=self.env, capture_output=True, text=True, timeout=15)
        assert p.returncode == 0, "tmux %s: %s" % (" ".join(args), p.stderr)
        return p.stdout

    def start(self, argv: list[str], cwd: Path):
        script = 'set -m; "$@"; echo "$?" >"%s"' % self.status_file
        self.cmd("new-session", "-d", "-s", "jail", "-x", str(COLUMNS), "-y", str(LINES),
                 "-c", str(cwd), "sh", "-c", script, "sh", *argv)

    def screen(self) -> str:
        return self.cmd("capture-pane", "-p", "-t", "jail")

    def exit_status(self) -> int | None:
        """The command's exit status once it has exited, else None."""
        try:
            text = self.status_file.read_text()
        except FileNotFoundError:
            return None
        return int(text) if text.endswith("\n") else None

    def keys(self, *keys: str, literal: bool = False):
        self.cmd("send-keys", "-t", "jail", *(["-l"] if literal else []), *keys)

    def wait_for(self, pred, what: str, timeout: float = UI_TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        while True:
            s = self.screen()
            if pred(s):
                return s
            if time.monotonic() > deadline or self.exit_status() is not None:
                raise AssertionError("%s: not on the screen after %.0fs (exit status %r); "
                                     "screen:\n%s" % (what, timeout, self.exit_status(), s))
            time.sleep(0.2)

    def kill(self):
        subprocess.run(["tmux", "-S", str(self.socket), "kill-server"], env=self.env,
                       capture_output=True, timeout=15)


def seed_claude_json(workdir: Path, user: str):
    """~/.claude.json as after a first interactive run: onboarding done, the folder trusted,
    the API key approved (Claude Code keeps its last 20 characters). Without it the first
    start checks https://api.anthropic.com/api/hello, gets the 502 of the pinned name and
    stops at "Unable to connect to Anthropic services" (exit 1)."""
    cfg = {"hasCompletedOnboarding": True, "lastOnboardingVersion": pinned_version(),
           "lastReleaseNotesSeen": pinned_version(), "theme": "dark",
           "customApiKeyResponses": {"approved": [API_KEY[-20:]], "rejected": []},
           "projects": {str(workdir): {"hasTrustDialogAccepted": True,
                                       "hasCompletedProjectOnboarding": True}}}
    path = workdir / "home" / ".claude.json"
    path.write_text(json.dumps(cfg, indent=2) + "\n")
    os.chmod(path, 0o600)
    if user != "root":
        os.chown(path, NOBODY, NOBODY)


def processes_in(d: Path) -> dict[int, str]:
    """pid -> "executable (ppid P, state S): command line" of the live processes whose working
    directory is d."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink("/proc/%s/cwd" % entry) != str(d):
                    continue
                exe = os.readlink("/proc/%s/exe" % entry)
                stat = Path("/proc/%s/stat" % entry).read_text().rsplit(")", 1)[1].split()
                argv = Path("/proc/%s/cmdline" % entry).read_bytes().split(b"\0")
            except OSError:
                continue  # gone, or a zombie
            out[int(entry)] = "%s (ppid %s, state %s): %s" % (
                exe, stat[1], stat[0], " ".join(a.decode(errors="replace") for a in argv)[:300])
    return out


def wait_gone(d: Path, timeout: float) -> dict[int, str]:
    """Waits up to `timeout` for the processes working in d to exit; returns those left."""
    deadline = time.monotonic() + timeout
    while (left := processes_in(d)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


@pytest.mark.parametrize("ending", ("ctrl-c", "hangup"))
@pytest.mark.parametrize("user", USERS)
def test_interactive(setup, claude, fake, user, ending, tmp_path):
    """Interactive `claude` in the jail under tmux: the UI renders, a prompt gets the fake's
    reply rendered; then either Ctrl-C twice exits and landjail exits 0, or the terminal goes
    away (tmux kill-session: SIGHUP); either way no process of the run is left."""
    workdir = new_workdir(setup, user, "interactive")
    seed_claude_json(workdir, user)
    # At the default log level: landjail holds the proxy's stderr denial lines back while
    # the command has the terminal, and shows them after it exits.
    argv = jail_argv(setup, fake, user, workdir, [], allow_api=True)
    tmux = Tmux(workdir, claude_env(workdir))
    log = []

    def keep(stage: str, screen: str):
        log.append("---- %s (%s) ----\n%s" % (stage, user, screen.rstrip()))
        (tmp_path / ("screen-%d-%s.txt" % (len(log), stage))).write_text(screen)
        print(log[-1])

    def out():
        return "screens:\n%s\nargv: %r\naudit:\n%s" % ("\n".join(log), argv,
                                                      audit_summary(read_audit(workdir /
                                                                               "audit.jsonl")))

    try:
        tmux.start(argv, workdir)
        banner = "Claude Code v" + pinned_version()
        s = tmux.wait_for(lambda s: banner in s and re.search(r"^❯", s, re.M),
                          "the banner (%s) and the prompt" % banner)
        keep("started", s)
        running = processes_in(workdir)
        exes = {os.path.basename(e.split(" ", 1)[0]) for e in running.values()}
        assert {"landjail", "landjail-proxy", "claude.exe"} <= exes, (running, out())
        tmux.keys(PROMPT, literal=True)
        tmux.wait_for(lambda s: re.search(r"^❯\s+%s\s*$" % re.escape(PROMPT), s, re.M),
                      "the typed prompt")
        tmux.keys("Enter")
        # The reply, and the turn over (no "esc to interrupt" in the footer any more).
        s = tmux.wait_for(lambda s: re.search(r"^●\s+%s\s*$" % re.escape(REPLY), s, re.M)
                          and "esc to interrupt" not in s, "the fake's reply, turn ended")
        keep("replied", s)
        for screen in log:
            assert "landjail_" not in screen, ("a denial line was drawn over the UI", out())
        if ending == "hangup":
            tmux.cmd("kill-session", "-t", "jail")  # the terminal goes away: SIGHUP
            left = wait_gone(workdir, 15)
            assert left == {}, ("processes left after the terminal went away", left, out())
        else:
            tmux.keys("C-c")
            tmux.wait_for(lambda s: "Press Ctrl-C again to exit" in s, "the exit hint")
            tmux.keys("C-c")
            deadline = time.monotonic() + 20
            while (status := tmux.exit_status()) is None and time.monotonic() < deadline:
                time.sleep(0.1)
            s = tmux.screen()
            keep("exited", s)
            assert status == 0, ("landjail's exit status: %r" % status, processes_in(workdir),
                                 out())
            assert "claude --resume " in s, out()  # Claude Code's own goodbye
            # The held-back denial lines, after the UI is gone: one per deny event.
            denied = [x for x in read_audit(workdir / "audit.jsonl")
                      if x.get("decision") == "deny"]
            if denied:
                assert re.search(r"^landjail: %d requests? (was|were) denied while the command "
                                 r"ran on this terminal" % len(denied), s, re.M), out()
            left = wait_gone(workdir, 10)
            assert left == {}, ("processes left after the jail exited", left, out())
    finally:
        tmux.kill()  # SIGHUP to the pane, when a check above failed
        for pid in wait_gone(workdir, 10):  # so that nothing writes into a removed directory
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        (tmp_path / "screens.txt").write_text("\n".join(log) + "\n")
    audit = read_audit(workdir / "audit.jsonl")
    report(audit, fake)
    check_request(fake, "cli", out())
    check_messages_allowed(audit, out())
    check_stayed_on_loopback(audit, out())

# SPDX-License-Identifier: Apache-2.0
"""Issue 16 items 2 and 4, as root and as uid 65534:

- Bottlerocket-like: landjail in a user namespace whose own user.max_user_namespaces is 0
  (no user namespaces can be made) with every capability dropped (setpriv --inh-caps=-all
  --bounding-set=-all): doctor says so and reaches full protection; in the jail an allowed
  request reaches the origin and a direct connect reaches nothing (connect_denied).
- Ctrl-C while a request hangs: once the command has exited, landjail ends within a second,
  with the request's audit event written (the proxy used to wait 10 s for it).
- A landjail binary copied away from its shim warns, says how to point at it
  (LANDJAIL_SHIM), and runs with it when pointed.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

import pytest

from e2e_support_runner import user_prefix

DROP_ALL = ["setpriv", "--inh-caps=-all", "--bounding-set=-all", "--"]


def bottlerocket(user: str, argv: list[str]) -> list[str]:
    """argv as `user` in a new user namespace that may make none of its own, without any
    capability."""
    inner = "echo 0 > /proc/sys/user/max_user_namespaces && exec \"$@\""
    return user_prefix(user) + ["unshare", "--user", "--map-root-user", "sh", "-c", inner,
                                "sh"] + DROP_ALL + argv


def test_bottlerocket_like_doctor(jail, user):
    wd = jail.workdir("bottlerocket-doctor")
    p = subprocess.run(bottlerocket(user, [str(jail.bins.landjail), "doctor"]),
                       env=jail.env(wd), cwd=str(wd), capture_output=True, text=True,
                       timeout=60)
    print(p.stdout, p.stderr)
    assert p.returncode == 0, p
    assert "user namespaces:        no (ENOSPC, user.max_user_namespaces = 0)" in p.stdout
    assert "capabilities effective: none" in p.stdout
    assert "capabilities bounding:  none" in p.stdout
    assert "protection:             full" in p.stdout


def test_bottlerocket_like_jail(jail, user, origin, pki, listener):
    wd = jail.workdir("bottlerocket-jail")
    target = listener.tcp("127.0.0.1")
    script = ("curl -sS https://origin.test/path-echo/bottlerocket; echo; "
              "%s tcp 127.0.0.1 %d; echo \"direct rc=$?\"" % (jail.bins.escape_static,
                                                             target.port))
    argv = jail.argv(["sh", "-c", script], wd, allow=("domain=origin.test",),
                     args=["--upstream-ca", str(pki.ca_pem)] + origin.resolve_args("origin.test"))
    # jail.argv starts with the user prefix; the namespace goes between it and landjail.
    landjail_argv = argv[len(user_prefix(user)):]
    p = subprocess.run(bottlerocket(user, landjail_argv), env=jail.env(wd), cwd=str(wd),
                       capture_output=True, text=True, timeout=120)
    print(p.stdout, p.stderr)
    assert p.returncode == 0, p
    assert "/path-echo/bottlerocket" in p.stdout
    assert [r["path"] for r in origin.received()] == ["/path-echo/bottlerocket"]
    assert target.collect() == []
    from e2e_support_audit import read_audit
    events = read_audit(wd / "audit.jsonl")
    assert any(e["event"] == "connect_denied" and
               e["destination"] == "127.0.0.1:%d" % target.port for e in events), events


def test_ctrl_c_while_a_request_hangs_exits_within_a_second(jail, origin, pki):
    """The command (curl) waits for an origin that answers after 30 s; Ctrl-C (SIGINT to the
    process group, as a terminal sends it) ends it at once, and landjail within a second,
    after the proxy wrote the request's audit event."""
    p, wd = jail.popen(["curl", "-sS", "https://origin.test/slow-headers?delay=30"],
                       allow=("domain=origin.test",),
                       args=["--upstream-ca", str(pki.ca_pem)] +
                       origin.resolve_args("origin.test"),
                       start_new_session=True)
    try:
        origin.state.wait_for(lambda rs: [r for r in rs if r["path"] == "/slow-headers"],
                              timeout=30, what="the hanging request at the origin")
        start = time.monotonic()
        os.killpg(p.pid, signal.SIGINT)
        _, err = p.communicate(timeout=60)
        took = time.monotonic() - start
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    print("landjail exited %.3f s after Ctrl-C (status %d)\n%s" % (took, p.returncode,
                                                                  err.decode()))
    assert p.returncode == 130, err
    assert took < 1.0, "landjail held the terminal %.1f s after the command exited" % took
    assert b"still busy" not in err
    from e2e_support_audit import read_audit
    events = [e for e in read_audit(wd / "audit.jsonl") if e["event"] == "http_request"]
    assert [e["http_url"] for e in events] == ["https://origin.test/slow-headers?delay=30"], \
        events
    assert events[0].get("outcome"), events


def test_copied_binary_warns_without_its_shim(jail, user):
    wd = jail.workdir("copied")
    copy = wd / "landjail"
    shutil.copy2(jail.bins.landjail, copy)
    shim = jail.bins.landjail.parent.parent / "lib" / "liblandjail-shim.so"

    def run(args, **env):
        e = jail.env(wd)
        e["LANDJAIL_PROXY"] = str(jail.bins.proxy_path())
        # No landjail-proxy on PATH (install.sh puts one in /usr/local/bin): a copy finds its
        # shim beside itself or beside the landjail-proxy on PATH (issue 15), else it warns.
        e["PATH"] = "/usr/bin:/bin"
        e.update(env)
        return subprocess.run(user_prefix(user) + [str(copy), "--ca-dir", str(wd / "ca")] +
                              args + ["--", "sh", "-c", 'echo "LD_PRELOAD=$LD_PRELOAD"'],
                              env=e, cwd=str(wd), capture_output=True, text=True, timeout=60)

    alone = run([])
    print(alone.stderr)
    assert alone.returncode == 0, alone
    assert "the shim (liblandjail-shim.so) was not found" in alone.stderr
    assert "LANDJAIL_SHIM=/path/to/liblandjail-shim.so" in alone.stderr
    assert "liblandjail-shim" not in alone.stdout
    pointed = run([], LANDJAIL_SHIM=str(shim))
    assert pointed.returncode == 0, pointed
    assert "LD_PRELOAD=%s" % shim in pointed.stdout, pointed
    assert "not found" not in pointed.stderr
    silent = run(["--no-shim"])
    assert silent.returncode == 0 and "shim" not in silent.stderr, silent
    wrong = run([], LANDJAIL_SHIM=str(wd / "missing.so"))
    assert wrong.returncode == 125, wrong
    assert "LANDJAIL_SHIM=%s" % (wd / "missing.so") in wrong.stderr, wrong

# SPDX-License-Identifier: Apache-2.0
"""The escape suite's cases and how they run (test_escape.py, test_escape_toctou.py,
test_escape_failclosed.py, test_containers.py): each `Case` names an `escape` subcommand, the
listener it must not reach and what the user needs to perform it without a jail; `Batch` runs
many cases in one shell script, bracketed by @@ begin/end lines, inside one landjail.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from e2e_support_runner import (
    DEFAULT_ALLOW, PROXY_VARS, JailRunner, ipv6_loopback, kernel_has_x32, ping_group_allows,
    user_ids)
from e2e_support_listeners import Listeners


PROXY_PORT_HOSTS = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "::1"]


# ---- the cases -------------------------------------------------------------------------------


def _needs_net_raw(user: str) -> str | None:
    if user != "root":
        return ("raw and packet sockets need CAP_NET_RAW: uid 65534 cannot send them even "
                "without the jail")
    return None


def _needs_lsrr(user: str) -> str | None:
    if user != "root":
        return ("source-route IP options need CAP_NET_RAW: uid 65534 cannot set them even "
                "without the jail")
    return None


def _needs_ping_group(user: str) -> str | None:
    gid = user_ids(user)[1]
    if not ping_group_allows(gid):
        rng = open("/proc/sys/net/ipv4/ping_group_range").read().split()
        return ("net.ipv4.ping_group_range is %s: ICMP sockets are refused to gid %d even "
                "without the jail" % ("-".join(rng), gid))
    return None


def _needs_x32(user: str) -> str | None:
    if not kernel_has_x32():
        return ("the kernel has no x32 ABI (CONFIG_X86_X32_ABI): x32 syscalls fail even "
                "without the jail")
    return None


@dataclass
class Ctx:
    """What a case needs to build its listener and arguments; a case may add proxy options
    (allow rules, --resolve) that the jail (or the control's own proxy) must be given."""
    listeners: Listeners
    user: str
    proxy_port: int
    proxy_listeners: dict  # host -> TcpListener on (host, proxy_port)
    allow: list
    proxy_args: list


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable  # (Ctx) -> (listener, [escape args])
    needs: Callable | None = None  # (user) -> reason the control cannot escape, or None
    static: bool = False  # run escape-static without LD_PRELOAD/proxy variables
    ipv6: bool = False
    plain_proxy: bool = False  # the control attacks a landjail-proxy started by hand

    def unavailable(self, user: str) -> str | None:
        return self.needs(user) if self.needs else None


def _addr(name, escape_case, listen, target=None, kind="tcp", proxy_port=False, needs=None,
          static=False) -> Case:
    """A case `escape ESCAPE_CASE TARGET PORT` against a kind listener on `listen`."""
    target = target or listen

    def make(ctx: Ctx):
        if proxy_port:
            lst = ctx.proxy_listeners[listen]
        elif kind == "tcp":
            lst = ctx.listeners.tcp(listen)
        else:
            lst = ctx.listeners.udp(listen)
        return lst, [escape_case, target, str(lst.port)]

    return Case(name, make, needs, static, ipv6=":" in listen or ":" in target)


def _icmp(name, escape_case, needs) -> Case:
    def make(ctx: Ctx):
        prog = "escape"
        return (ctx.listeners.icmp(("ESCAPED %s %s\n" % (escape_case, prog)).encode()),
                [escape_case, "127.0.0.1", "0"])

    return Case(name, make, needs)


def _lsrr(name, hop, target):
    """TCP to the proxy's own address and port, on a socket with a loose source route via
    `hop`: the SYN goes to `hop` if whoever connects the socket keeps its IP options. Setting
    a source route needs CAP_NET_RAW (root, or root in a container with Docker's default
    capabilities)."""
    def make(ctx: Ctx):
        return ctx.listeners.sniffer(hop), ["lsrr", hop, target, str(ctx.proxy_port)]

    return Case(name, make, needs=_needs_lsrr)


def _proxymem(ctx: Ctx):
    """Rewrites the proxy's --resolve override for an allowed name (asio::ip::address of
    127.0.0.77, i.e. type 0 then the IPv4 bytes) to 127.0.0.78 through /proc/PID/mem, then asks
    the proxy for that name: the request lands on a listener the policy never allowed."""
    lst = ctx.listeners.http_sink("127.0.0.78")
    ctx.allow.append("domain=ljtamper.test")
    ctx.proxy_args += ["--resolve", "ljtamper.test:80:127.0.0.77:%d" % lst.port]
    return lst, ["proxymem", "auto", "hex:000000007f00004d", "hex:000000007f00004e",
                 "127.0.0.1", str(ctx.proxy_port), "http://ljtamper.test/ESCAPED-proxymem"]


def _signal(ctx: Ctx):
    v = ctx.listeners.victim(ctx.user)
    return v, ["signal", str(v.pid)]


def _abstract(dgram: bool):
    def make(ctx: Ctx):
        a = ctx.listeners.abstract(dgram)
        return a, ["abstract-dgram" if dgram else "abstract", a.name]

    return make


CASES = [
    # direct TCP: other ports and addresses, IPv6, v4-mapped, the unspecified address
    _addr("tcp", "tcp", "127.0.0.1"),
    _addr("tcp-other-addr", "tcp", "127.0.0.3"),
    _addr("tcp-any-addr", "tcp", "127.0.0.1", "0.0.0.0"),
    _addr("tcp6", "tcp", "::1"),
    _addr("tcp6-any-addr", "tcp", "::1", "::"),
    _addr("tcp-v4-mapped", "tcp", "127.0.0.1", "::ffff:127.0.0.1"),
    # the proxy's port on another address
    _addr("tcp-proxy-port-other-addr", "tcp", "127.0.0.2", proxy_port=True),
    _addr("tcp-proxy-port-v4-mapped-other-addr", "tcp", "127.0.0.3", "::ffff:127.0.0.3",
          proxy_port=True),
    _addr("tcp6-proxy-port", "tcp", "::1", proxy_port=True),
    _addr("tcp-nonblock-proxy-port-other-addr", "tcp-nonblock", "127.0.0.4", proxy_port=True),
    # non-blocking connect, other threads and processes
    _addr("tcp-nonblock", "tcp-nonblock", "127.0.0.1"),
    _addr("tcp-nonblock6", "tcp-nonblock", "::1"),
    _addr("tcp-nonblock-v4-mapped", "tcp-nonblock", "127.0.0.1", "::ffff:127.0.0.1"),
    _addr("tcp-thread", "tcp-thread", "127.0.0.1"),
    _addr("tcp-vfork", "tcp-vfork", "127.0.0.1"),
    # IP options on the socket the supervisor connects for us (to the proxy's own address)
    _lsrr("lsrr", "127.0.0.5", "127.0.0.1"),
    _lsrr("lsrr-v4-mapped", "127.0.0.6", "::ffff:127.0.0.1"),
    # TCP Fast Open, MPTCP
    _addr("tfo-sendto", "tfo-sendto", "127.0.0.1"),
    _addr("tfo-sendto6", "tfo-sendto", "::1"),
    _addr("tfo-connect", "tfo-connect", "127.0.0.1"),
    _addr("tfo-connect6", "tfo-connect", "::1"),
    _addr("mptcp", "mptcp", "127.0.0.1"),
    _addr("mptcp6", "mptcp", "::1"),
    # UDP, v4 and v6
    _addr("udp-sendto", "udp-sendto", "127.0.0.1", kind="udp"),
    _addr("udp-connect", "udp-connect", "127.0.0.1", kind="udp"),
    _addr("udp-sendmsg", "udp-sendmsg", "127.0.0.1", kind="udp"),
    _addr("udp-sendmmsg", "udp-sendmmsg", "127.0.0.1", kind="udp"),
    _addr("udp6-sendto", "udp-sendto", "::1", kind="udp"),
    _addr("udp6-connect", "udp-connect", "::1", kind="udp"),
    _addr("udp6-sendmsg", "udp-sendmsg", "::1", kind="udp"),
    _addr("udp6-sendmmsg", "udp-sendmmsg", "::1", kind="udp"),
    _addr("udp-v4-mapped-sendto", "udp-sendto", "127.0.0.1", "::ffff:127.0.0.1", kind="udp"),
    # raw, packet and ICMP sockets
    _addr("raw", "raw", "127.0.0.1", kind="udp", needs=_needs_net_raw),
    _addr("raw6", "raw6", "::1", kind="udp", needs=_needs_net_raw),
    _addr("packet", "packet", "::1", kind="udp", needs=_needs_net_raw),
    _icmp("raw-icmp", "raw-icmp", _needs_net_raw),
    _icmp("ping", "ping", _needs_ping_group),
    # other syscall ABIs and io_uring
    _addr("i386-socketcall", "i386-socketcall", "127.0.0.1"),
    _addr("i386-socketcall6", "i386-socketcall", "::1"),
    _addr("i386-connect", "i386-connect", "127.0.0.1"),
    _addr("x32", "x32", "127.0.0.1", needs=_needs_x32),
    _addr("io_uring", "io_uring", "127.0.0.1"),
    _addr("io_uring6", "io_uring", "::1"),
    _addr("io_uring-udp", "io_uring-udp", "127.0.0.1", kind="udp"),
    # processes and abstract unix sockets outside the jail
    # landjail-proxy makes itself non-dumpable, so only root (CAP_SYS_PTRACE) can still open
    # its memory without the jail; in the jail without Landlock, landjail drops that capability.
    Case("proxymem", _proxymem, plain_proxy=True,
         needs=lambda user: (
             "landjail-proxy is not dumpable (PR_SET_DUMPABLE 0): /proc/PID/mem is closed to "
             "other processes of the same user even without the jail" if user != "root" else
             "an AddressSanitizer proxy keeps its heap in reserved regions the attacker skips"
             if "/asan/" in os.environ.get("LANDJAIL_PROXY", "") else None)),
    Case("signal", _signal),
    Case("abstract", _abstract(False)),
    Case("abstract-dgram", _abstract(True)),
    # the static attacker, with LD_PRELOAD and the proxy variables removed
    _addr("static-tcp", "tcp", "127.0.0.1", static=True),
    _addr("static-tcp6", "tcp", "::1", static=True),
    _addr("static-tcp-v4-mapped", "tcp", "127.0.0.1", "::ffff:127.0.0.1", static=True),
    _addr("static-tcp-proxy-port-other-addr", "tcp", "127.0.0.2", proxy_port=True, static=True),
    _addr("static-tcp-nonblock", "tcp-nonblock", "127.0.0.1", static=True),
    _addr("static-tfo-sendto", "tfo-sendto", "127.0.0.1", static=True),
    _addr("static-udp-sendto", "udp-sendto", "127.0.0.1", kind="udp", static=True),
    _addr("static-i386-socketcall", "i386-socketcall", "127.0.0.1", static=True),
    _addr("static-io_uring", "io_uring", "127.0.0.1", static=True),
]
CASES_BY_NAME = {c.name: c for c in CASES}
assert len(CASES_BY_NAME) == len(CASES), "duplicate case names"


def active_cases() -> list[Case]:
    return [c for c in CASES if ipv6_loopback() or not c.ipv6]


# ---- running cases in one shell script -------------------------------------------------------


class Batch:
    """Listeners for a set of cases and a shell script that runs each case once, bracketed by
    "@@ begin NAME" / "@@ end NAME rc=N" lines (the attacker's stderr in between)."""

    def __init__(self, runner: JailRunner, listeners: Listeners, cases: list[Case]):
        self.runner = runner
        self.cases = cases
        hosts = [h for h in PROXY_PORT_HOSTS if ipv6_loopback() or ":" not in h]
        self.proxy_port, pls = listeners.port_shared_by(hosts)
        ctx = Ctx(listeners, runner.user, self.proxy_port, dict(zip(hosts, pls)), [], [])
        self.listener = {}
        lines = ["#!/bin/sh", "# generated by tests/e2e/test_escape.py"]
        unset = " ".join("-u %s" % v for v in PROXY_VARS)
        for c in cases:
            lst, args = c.make(ctx)
            self.listener[c.name] = lst
            if c.static:
                prog = "env %s %s" % (unset, runner.bins.escape_static)
            else:
                prog = str(runner.bins.escape)
            lines.append('echo "@@ begin %s"; %s %s 2>&1; echo "@@ end %s rc=$?"'
                         % (c.name, prog, " ".join(_sh_quote(a) for a in args), c.name))
        self.text = "\n".join(lines) + "\n"
        self.allow = tuple(ctx.allow)
        self.proxy_args = list(ctx.proxy_args)

    def run_in(self, runner: JailRunner, mode: str, name: str, extra=()):
        """Runs the script in landjail (--proxy-port and the cases' proxy options)."""
        wd = runner.workdir("%s-%s" % (name, mode))
        return runner.run(["sh", self.write(wd)], mode=mode, workdir=wd,
                          allow=DEFAULT_ALLOW + self.allow,
                          args=["--proxy-port", str(self.proxy_port)] + self.proxy_args +
                          list(extra))

    def write(self, workdir: Path) -> Path:
        path = workdir / "cases.sh"
        path.write_text(self.text)
        path.chmod(0o755)
        return path

    @staticmethod
    def parse(output: str) -> dict:
        """{case name: (exit status, attacker output)} from the script's output."""
        out, current, text = {}, None, []
        for line in output.splitlines():
            m = re.fullmatch(r"@@ begin (\S+)", line)
            if m:
                current, text = m.group(1), []
                continue
            m = re.fullmatch(r"@@ end (\S+) rc=(\d+)", line)
            if m and m.group(1) == current:
                out[current] = (int(m.group(2)), "\n".join(text))
                current = None
                continue
            if current:
                text.append(line)
        return out

    def collect(self) -> dict:
        """{case name: what its listener received}, for every case."""
        return {name: lst.collect() for name, lst in self.listener.items()}


def _sh_quote(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'" if re.search(r"[^A-Za-z0-9_.:/@=-]", s) else s


def _pid_of(attacker_output: str) -> int:
    m = re.search(r"escape\[(\d+)\]", attacker_output)
    assert m, "no escape[PID] line in %r" % attacker_output
    return int(m.group(1))

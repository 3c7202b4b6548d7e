# SPDX-License-Identifier: Apache-2.0
"""A real Docker daemon for the container tests (test_containers.py; issue 16).

- `DockerDaemon`: Debian's dockerd (docker.io, 20.10) started by the tests with everything
  under one temporary directory (data root, exec root, socket, pid file, its containerd's
  state), `--iptables=false --ip-forward=false --ip-masq=false --bridge=none`: it touches
  neither the host's firewall nor its interfaces, and nothing is ever pulled. stop() removes
  the containers, stops dockerd (which stops the containerd it started), unmounts what is
  left under the directory and removes it.
- `build_image`: a minimal image made with `docker import` from a tar of host files: the
  landjail binaries in the installed layout (/usr/local/bin, /usr/local/lib/landjail,
  /usr/local/share/landjail/profiles), a shell, curl, python3 (its standard library), node,
  the e2e attackers, every shared library they need (ldd), the CA roots, and an /etc/passwd
  with root and nobody.
- `netns(pid)`: a context in which the calling thread is in the network namespace of a
  container (setns): the test's own listeners and origins opened there live on the
  container's loopback (the containers run with --network none), outside the jail and
  outside the attacker, and collect what arrives as the other e2e tests do.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

DOCKERD = "/usr/sbin/dockerd"
DOCKER = "/usr/bin/docker"  # Debian's client, of the daemon's version (not /usr/local/bin's)
IMAGE = "landjail-e2e:latest"
START_TIMEOUT = 60.0
CLONE_NEWNET = 0x40000000


def unavailable_reason() -> str | None:
    """Why dockerd cannot run here, or None."""
    for path in (DOCKERD, DOCKER, "/usr/bin/containerd", "/usr/sbin/runc"):
        if not os.access(path, os.X_OK):
            return ("%s not found: install Debian's docker.io (./install.sh does)" % path)
    if os.geteuid() != 0:
        return "dockerd needs root"
    if not Path("/sys/fs/cgroup").is_dir() or not any(Path("/sys/fs/cgroup").iterdir()):
        return "no cgroup file system at /sys/fs/cgroup: dockerd needs cgroups"
    return None


class DockerDaemon:
    """dockerd with its own data root and socket in `root` (a fresh directory)."""

    def __init__(self, root: Path):
        self.root = root
        self.sock = root / "docker.sock"
        self.log_path = root / "dockerd.log"
        self.proc: subprocess.Popen | None = None
        self.containers: list[str] = []

    def start(self):
        argv = [DOCKERD, "--data-root", str(self.root / "data"),
                "--exec-root", str(self.root / "exec"), "--pidfile", str(self.root / "pid"),
                "-H", "unix://%s" % self.sock, "--iptables=false", "--ip-forward=false",
                "--ip-masq=false", "--bridge=none", "--userland-proxy=false",
                "--log-driver=none"]  # the storage driver: dockerd picks (overlay2 here)
        self.log = open(self.log_path, "wb")
        # Its own session: a Ctrl-C of the test run does not reach it before stop() does.
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("dockerd exited with status %d:\n%s"
                                   % (self.proc.returncode, self.log_tail()))
            if self.sock.exists() and self.docker("version", check=False).returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError("dockerd did not answer within %.0f s:\n%s"
                           % (START_TIMEOUT, self.log_tail()))

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def docker(self, *args, check=True, input=None, timeout=300, **kw):
        p = subprocess.run([DOCKER, "-H", "unix://%s" % self.sock, *args], input=input,
                           capture_output=True, timeout=timeout, **kw)
        if check and p.returncode != 0:
            raise RuntimeError("docker %s: exit %d: %s" % (" ".join(map(str, args[:3])),
                                                         p.returncode,
                                                         p.stderr.decode(errors="replace")))
        return p

    def run_container(self, name: str, *options: str) -> "Container":
        """Starts a container of IMAGE that sleeps, with --network none and `options`."""
        self.docker("run", "-d", "--name", name, "--network", "none", "--init", *options,
                    IMAGE, "sleep", "infinity")
        self.containers.append(name)
        return Container(self, name)

    def remove_container(self, name: str):
        self.docker("rm", "-f", name, check=False)
        if name in self.containers:
            self.containers.remove(name)

    def stop(self):
        """Removes the containers, stops dockerd and its containerd, unmounts and removes
        what they left under the root."""
        for name in list(self.containers):
            self.remove_container(name)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        if self.proc is not None:
            self._kill_leftovers()
            self.log.close()
        self._unmount_all()
        shutil.rmtree(self.root, ignore_errors=True)

    def _kill_leftovers(self):
        """containerd and shims started for this daemon (their command lines name the root)."""
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(self.root) in cmd and int(d.name) != os.getpid():
                with contextlib.suppress(OSError):
                    os.kill(int(d.name), signal.SIGKILL)

    def _unmount_all(self):
        root = str(self.root)
        for _ in range(3):
            mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()
                      if line.split()[1].startswith(root)]
            if not mounts:
                return
            for m in sorted(mounts, key=len, reverse=True):
                subprocess.run(["umount", "-l", m], capture_output=True)


class Container:
    def __init__(self, daemon: DockerDaemon, name: str):
        self.daemon = daemon
        self.name = name
        info = json.loads(daemon.docker("inspect", name).stdout)[0]
        self.pid = int(info["State"]["Pid"])

    def exec(self, argv, user: str = "root", env: dict | None = None, timeout: float = 120,
             check: bool = False, workdir: str | None = None) -> subprocess.CompletedProcess:
        """`docker exec` as root or as uid/gid 65534; text output."""
        opts = ["-u", "0:0" if user == "root" else "65534:65534"]
        for k, v in (env or {}).items():
            opts += ["-e", "%s=%s" % (k, v)]
        if workdir:
            opts += ["-w", workdir]
        p = self.daemon.docker("exec", *opts, self.name, *argv, check=False, timeout=timeout)
        r = subprocess.CompletedProcess(p.args, p.returncode, p.stdout.decode(errors="replace"),
                                        p.stderr.decode(errors="replace"))
        if check and r.returncode != 0:
            raise AssertionError("in %s: %r exited %d\nstdout:\n%s\nstderr:\n%s"
                                 % (self.name, argv, r.returncode, r.stdout, r.stderr))
        return r

    def write(self, path: str, data: bytes, mode: int = 0o644, user: str = "root"):
        """Writes a file in the container as `user`, through `docker exec -i` (docker cp
        cannot write a read-only container or a tmpfs)."""
        p = self.daemon.docker("exec", "-i", "-u", "0:0" if user == "root" else "65534:65534",
                               self.name, "sh", "-c", 'cat > "$1" && chmod %o "$1"' % mode,
                               "sh", path, input=data, check=False)
        if p.returncode != 0:
            raise AssertionError("writing %s in %s: %s" % (path, self.name,
                                                           p.stderr.decode(errors="replace")))

    def read(self, path: str, user: str = "root") -> str:
        r = self.exec(["cat", path], user=user)
        return r.stdout if r.returncode == 0 else ""


# ---- the image ------------------------------------------------------------------------------


def _ldd(paths) -> set[str]:
    """The shared libraries (and loader) of the dynamic ELF files among `paths`."""
    libs = set()
    for p in paths:
        out = subprocess.run(["ldd", str(p)], capture_output=True, text=True).stdout
        for m in re.finditer(r"(/\S+)\s+\(0x", out):
            libs.add(m.group(1))
    return libs


def _python_stdlib() -> tuple[str, list[str]]:
    """Debian's python3 and the files of its standard library that the tests need."""
    exe = os.path.realpath("/usr/bin/python3")
    lib = Path("/usr/lib") / Path(exe).name  # /usr/lib/python3.11
    skip = {"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3",
            "site-packages", "dist-packages", "pydoc_data", "unittest", "distutils",
            "config-3.11-x86_64-linux-gnu"}
    files = []
    for dirpath, dirnames, filenames in os.walk(lib):
        dirnames[:] = [d for d in dirnames if d not in skip and d != "__pycache__"]
        files += [os.path.join(dirpath, f) for f in filenames]
    return exe, files


def build_image(daemon: DockerDaemon, files: dict[str, Path], work: Path):
    """docker import of a tar made of host files: `files` maps image paths to host files (the
    landjail binaries and test programs); curl, python3, node, sh and their libraries are
    added at their host paths."""
    programs = {p: Path(p) for p in ("/bin/sh", "/bin/dash", "/usr/bin/curl", "/usr/bin/env",
                                     "/usr/bin/cat", "/usr/bin/sleep", "/usr/bin/id",
                                     "/usr/bin/ls", "/usr/bin/mkdir", "/usr/bin/chmod",
                                     "/usr/bin/node")}
    py_exe, py_files = _python_stdlib()
    programs["/usr/bin/python3"] = Path(py_exe)
    everything = {**programs, **files, **{f: Path(f) for f in py_files}}
    libs = _ldd([p for p in everything.values()
                 if p.suffix == ".so" or os.access(p, os.X_OK)])
    everything.update({lib: Path(lib) for lib in libs})
    everything["/etc/ssl/certs/ca-certificates.crt"] = Path("/etc/ssl/certs/ca-certificates.crt")
    tar_path = work / "image.tar"
    with tarfile.open(tar_path, "w") as tar:
        for d, mode in (("/tmp", 0o1777), ("/root", 0o700), ("/home", 0o755),
                        ("/home/nobody", 0o755), ("/etc", 0o755), ("/proc", 0o555),
                        ("/sys", 0o555), ("/dev", 0o755), ("/run", 0o755)):
            info = tarfile.TarInfo(d.lstrip("/"))
            info.type, info.mode = tarfile.DIRTYPE, mode
            if d == "/home/nobody":
                info.uid = info.gid = 65534
            tar.addfile(info)
        for name, text in (("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"
                            "nobody:x:65534:65534:nobody:/home/nobody:/bin/sh\n"),
                           ("/etc/group", "root:x:0:\nnogroup:x:65534:\n"),
                           ("/etc/hosts", "127.0.0.1 localhost\n::1 localhost\n")):
            data = text.encode()
            info = tarfile.TarInfo(name.lstrip("/"))
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
        for name, host in sorted(everything.items()):
            tar.add(os.path.realpath(host), arcname=name.lstrip("/"), recursive=False)
    with open(tar_path, "rb") as f:
        daemon.docker("import", "-", IMAGE, stdin=f, timeout=600)
    tar_path.unlink()


# ---- the container's network namespace ------------------------------------------------------


@contextlib.contextmanager
def netns(pid: int):
    """The calling thread in the network namespace of process `pid` until the block ends
    (sockets made meanwhile stay there; threads started meanwhile stay there too)."""
    libc = ctypes.CDLL(None, use_errno=True)
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    target = os.open("/proc/%d/ns/net" % pid, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns(%d's network namespace)" % pid)
        try:
            yield
        finally:
            if libc.setns(own, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back to our network namespace")
    finally:
        os.close(own)
        os.close(target)

# SPDX-License-Identifier: Apache-2.0
"""Common clients trust the interception CA in the jail without the user doing anything
(issue 16 item 3), as root and as uid 65534.

Each client runs as `landjail --allow domain=origin.test --resolve … --upstream-ca TEST_CA --
CLIENT …` against the e2e HTTPS origin (loopback), with the user's own CA setting where the
issue found it broken (a `cafile` in a global npmrc, `cert` in pip.conf, `http.sslCAInfo` in
git's config, a ~/.wgetrc of the user's). A client trusted the proxy's certificate when the
origin received its request (each client asks for its own path, /c/CLIENT-USER…): the proxy
intercepts TLS, so a client that refuses the certificate sends nothing. What the client prints
afterwards (a 404 from the origin, which speaks no registry protocol) does not matter.

Controls (as root): the same client without the variable landjail adds for it (env -u VAR)
gets nothing to the origin, so each case depends on what landjail sets.

Clients not installed are skipped with the reason; ./install.sh installs wget, a JDK (javac
for the client below; the JRE runs it), gh (Debian) and yarn and pnpm (npm, pinned). cargo and
aws are the machine's own (under /root: root only). Not covered here: go, deno and bun (see
README, "Clients and the CA").
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

SYSTEM_CA = "/etc/ssl/certs/ca-certificates.crt"
JAVA_CLIENT = r'''
public class Get {
    public static void main(String[] a) throws Exception {
        var c = (java.net.HttpURLConnection) new java.net.URL(a[0]).openConnection();
        System.out.println("status " + c.getResponseCode());
    }
}
'''
# The bundle variables of DESIGN §7: pip and aws fall back from PIP_CERT and AWS_CA_BUNDLE to
# the others, so their controls take all of them away.
BUNDLE_VARS = ("SSL_CERT_FILE", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "PIP_CERT",
               "AWS_CA_BUNDLE")
NPM_BIN_DIRS = ["/usr/bin", "/usr/local/bin"]  # npm install -g (install.sh)


@dataclass
class Client:
    name: str
    binary: str  # what must be installed (a name in PATH or an absolute path)
    argv: Callable  # (url_base, workdir) -> argv; url_base = https://origin.test/c/NAME-USER
    control_unset: tuple | None  # the variables landjail sets that this client needs
    files: Callable | None = None  # (workdir) -> {relative path: text}: the user's settings
    env: Callable | None = None  # (workdir) -> extra environment
    root_only: str | None = None  # why 65534 cannot run it
    check: Callable | None = None  # (origin records) -> extra assertion
    hangs_on_refusal: bool = False  # the control ends it with timeout(1)


def _which(binary: str) -> str | None:
    if os.path.isabs(binary):
        return binary if os.access(binary, os.X_OK) else None
    path = os.pathsep.join(["/usr/local/bin", "/usr/bin", "/bin"] + NPM_BIN_DIRS)
    return shutil.which(binary, path=path)


def _wget_header_kept(records):
    assert records[0].header("X-Wgetrc") == "kept", \
        "the user's ~/.wgetrc was not applied: %r" % records[0]["headers"]


CLIENTS = [
    Client("wget", "wget", lambda u, wd: ["wget", "-q", "-O-", u], ("WGETRC",),
           files=lambda wd: {"home/.wgetrc": "header = X-Wgetrc: kept\n"},
           check=_wget_header_kept),
    Client("npm", "npm", lambda u, wd: ["npm", "view", "--fetch-retries=0", "--registry",
                                        u + "/", "somepkg"], ("NPM_CONFIG_CAFILE",),
           files=lambda wd: {"npmrc-global": "cafile=%s\n" % SYSTEM_CA},
           env=lambda wd: {"NPM_CONFIG_GLOBALCONFIG": str(wd / "npmrc-global")}),
    Client("yarn", "yarn", lambda u, wd: [_which("yarn"), "info", "--registry", u + "/",
                                          "somepkg"], ("NPM_CONFIG_CAFILE",),
           files=lambda wd: {"home/.npmrc": "cafile=%s\n" % SYSTEM_CA}),
    Client("pnpm", "pnpm", lambda u, wd: [_which("pnpm"), "add", "--fetch-retries=0",
                                          "--registry", u + "/", "somepkg"],
           ("NPM_CONFIG_CAFILE",), hangs_on_refusal=True,
           files=lambda wd: {"home/.npmrc": "cafile=%s\n" % SYSTEM_CA,
                             "package.json": '{"name": "x", "version": "1.0.0"}\n'}),
    Client("java", "java", lambda u, wd: ["java", "-cp", str(wd.parent / "java"), "Get", u],
           ("JAVA_TOOL_OPTIONS",)),
    Client("gcloud", "gcloud", lambda u, wd: ["gcloud", "projects", "list"],
           ("CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE",) + BUNDLE_VARS,
           files=lambda wd: {"token": "made-up-token\n", "gcloud/properties":
                             "[core]\ncustom_ca_certs_file = %s\n" % SYSTEM_CA},
           env=lambda wd: {"CLOUDSDK_CONFIG": str(wd / "gcloud"),
                           "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
                           "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE": str(wd / "token")}),
    Client("pip", "/usr/bin/python3", lambda u, wd: [
        "/usr/bin/python3", "-m", "pip", "download", "--no-deps", "-d", str(wd / "dl"),
        "--index-url", u + "/simple/", "somepkg"], BUNDLE_VARS,
        files=lambda wd: {"pip.conf": "[global]\ncert = %s\n" % SYSTEM_CA},
        env=lambda wd: {"PIP_CONFIG_FILE": str(wd / "pip.conf")}),
    Client("git", "git", lambda u, wd: ["git", "ls-remote", u + "/repo.git"],
           ("GIT_SSL_CAINFO",),
           files=lambda wd: {"gitconfig": "[http]\n\tsslCAInfo = %s\n" % SYSTEM_CA},
           env=lambda wd: {"GIT_CONFIG_GLOBAL": str(wd / "gitconfig")}),
    Client("gh", "gh", lambda u, wd: ["gh", "api", u.split("origin.test", 1)[1]],
           ("SSL_CERT_FILE",),
           env=lambda wd: {"GH_HOST": "origin.test", "GH_ENTERPRISE_TOKEN": "made-up",
                           "GH_CONFIG_DIR": str(wd / "gh")}),
    Client("cargo", "/root/.cargo/bin/cargo", lambda u, wd: [
        "/root/.cargo/bin/cargo", "search", "--registry", "t", "foo"], None,
        env=lambda wd: {"RUSTUP_HOME": "/root/.rustup", "CARGO_HOME": str(wd / "cargo")},
        root_only="installed by rustup under /root, which uid 65534 cannot enter"),
    Client("aws", "/root/.pyenv/shims/aws", lambda u, wd: [
        "/root/.pyenv/shims/aws", "s3", "ls", "--endpoint-url", u, "--no-sign-request"],
        BUNDLE_VARS, root_only="installed with pyenv under /root, which uid 65534 "
                                   "cannot enter"),
]
CLIENTS_BY_NAME = {c.name: c for c in CLIENTS}
# Where each client's request lands: gh puts /api/v3 before the path, gcloud asks for its
# API's path under the endpoint override, cargo for config.json of the sparse index.
URL_ENV = {
    "gcloud": lambda u: {"CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDRESOURCEMANAGER": u + "/"},
    "cargo": lambda u: {"CARGO_REGISTRIES_T_INDEX": "sparse+%s/" % u},
}


@pytest.fixture(scope="module")
def java_client(shared_root):
    """Get.class, compiled once (javac comes with the JDK install.sh installs)."""
    d = shared_root / "java"
    d.mkdir(mode=0o755, exist_ok=True)
    if shutil.which("javac") is None:
        return None
    (d / "Get.java").write_text(JAVA_CLIENT)
    subprocess.run(["javac", "-d", str(d), str(d / "Get.java")], check=True, timeout=120)
    return d


def run_client(jail, origin, pki, client: Client, user: str, unset: str | None = None,
               tag: str = ""):
    """The client in the jail as `user`; returns (landjail's result, origin records)."""
    binary = _which(client.binary)
    if binary is None:
        pytest.skip("%s is not installed" % client.binary)
    if user != "root" and client.root_only:
        pytest.skip("%s: %s" % (client.name, client.root_only))
    wd = jail.workdir("client-" + client.name)
    uid = 0 if user == "root" else 65534
    for rel, text in (client.files(wd) if client.files else {}).items():
        (wd / rel).parent.mkdir(exist_ok=True)
        os.chown((wd / rel).parent, uid, uid)
        (wd / rel).write_text(text)
        os.chown(wd / rel, uid, uid)
    base = "https://origin.test/c/%s-%s%s" % (client.name, user, tag)
    env = jail.env(wd)
    env["PATH"] = os.pathsep.join([env["PATH"]] + NPM_BIN_DIRS)
    env["npm_config_fetch_retries"] = "0"  # npm and pnpm retry a refused certificate
    env.update(client.env(wd) if client.env else {})
    env.update(URL_ENV[client.name](base) if client.name in URL_ENV else {})
    argv = client.argv(base, wd)
    if unset:
        # pnpm prints the certificate error and then does not exit (workers it started)
        stop = ["timeout", "10"] if client.hangs_on_refusal else []
        argv = stop + ["env"] + [a for v in unset for a in ("-u", v)] + argv
    origin.clear()
    r = jail.run(argv, workdir=wd, env=env, allow=("domain=origin.test",),
                 args=["--upstream-ca", str(pki.ca_pem)] + origin.resolve_args("origin.test"),
                 timeout=120)
    path = "/" + base.split("/", 3)[3]
    got = origin.state.received(path_prefix=path) + \
        origin.state.received(path_prefix="/api/v3" + path)
    return r, got


@pytest.mark.parametrize("name", [c.name for c in CLIENTS])
def test_client_trusts_the_ca(jail, origin, pki, java_client, name, user):
    client = CLIENTS_BY_NAME[name]
    if name == "java" and java_client is None:
        pytest.skip("javac not found (Debian: default-jdk-headless) to build the Java client")
    r, got = run_client(jail, origin, pki, client, user)
    print(r)
    assert got, "%s sent nothing the origin received (TLS refused?):\n%r" % (name, r)
    if client.check:
        client.check(got)


@pytest.mark.parametrize("name", [c.name for c in CLIENTS if c.control_unset])
def test_client_fails_without_the_variable(bins, shared_root, origin, pki, java_client, name):
    """The control: without the variables landjail sets for it, the client refuses the
    proxy's certificate and the origin receives nothing."""
    from e2e_support_runner import JailRunner
    client = CLIENTS_BY_NAME[name]
    if name == "java" and java_client is None:
        pytest.skip("javac not found (Debian: default-jdk-headless) to build the Java client")
    jail = JailRunner(bins, "root", shared_root)
    r, got = run_client(jail, origin, pki, client, "root", unset=client.control_unset,
                        tag="-control")
    print(r)
    assert got == [], "%s reached the origin without %s" % (name, " ".join(client.control_unset))

#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# install.sh: installs landjail's build and test dependencies (Debian 12 packages, and Claude
# Code from npm into tests/e2e/node_modules for the e2e tests; nothing else is downloaded),
# builds it with make and installs it under PREFIX (default /usr/local).
# Idempotent: a second run skips apt when every package is already installed and npm when the
# pinned Claude Code is, so it is fast and works offline. Run ./install.sh --help for the
# options.
set -eu

PROG=install.sh

# Build dependencies (clang and libclang-rt-14-dev, only recommended by clang, are for the
# libFuzzer targets of `make fuzz`), then what the tests use (real clients run in the jail;
# docker.io: a Docker daemon the container tests start themselves; wget, a JDK (javac builds
# the Java client, its JRE runs it), gh and pip: clients whose CA settings
# tests/e2e/test_client_trust.py checks).
BUILD_PACKAGES="build-essential g++ make pkg-config git ca-certificates
    libboost-dev libmbedtls-dev libyaml-cpp-dev libseccomp-dev libspdlog-dev libfmt-dev
    nlohmann-json3-dev libcurl4-openssl-dev libcriterion-dev libbenchmark-dev
    libprotobuf-dev protobuf-compiler
    clang libclang-rt-14-dev clang-format mandoc man-db"
TEST_PACKAGES="curl python3 python3-pytest python3-requests nodejs openssl tmux procps
    bsdextrautils util-linux logrotate docker.io wget default-jdk-headless gh python3-pip
    python3-protobuf"
# `make bench`: the origin and the peer proxies measured against, a load generator, and
# OpenSSL headers for the TLS connection client (tests/bench/proxy/tlsconn.c).
BENCH_PACKAGES="nginx-light squid mitmproxy wrk libssl-dev"

# Prints its arguments on one line, separated by single spaces.
one_line() { printf '%s\n' "$*"; }

usage() {
    # shellcheck disable=SC2086  # the package lists are words
    cat <<EOF
Usage: ./install.sh [OPTIONS]

Installs the Debian packages landjail needs to build and test, builds it with make and
installs it under PREFIX (binaries in PREFIX/bin, man pages in PREFIX/share/man).

Options:
  --prefix DIR    install under DIR (default: \$PREFIX, else /usr/local)
  --no-deps       do not install dependencies (neither apt-get nor npm is run)
  --as-boundary   also install landjail as \`boundary' and \`agent-firewall' (copies, not
                  symlinks) so that Coder's modules and scripts that run boundary run landjail
  --boundary-dir DIR  put those copies in DIR (e.g. ~/.local/bin, ahead on PATH) instead of
                  PREFIX/bin; implies --as-boundary
  --uninstall     remove what 'make install' installed under the same PREFIX and DESTDIR
  -h, --help      show this help and exit

Environment:
  PREFIX          installation prefix (--prefix wins)
  DESTDIR         staging directory prepended to PREFIX (for packaging)

Packages installed when missing (apt-get, --no-install-recommends):
$(one_line $BUILD_PACKAGES $TEST_PACKAGES $BENCH_PACKAGES | fold -s -w 90 | sed 's/^/  /; s/ *$//')

For the e2e tests, when missing (needs npm): @anthropic-ai/claude-code, the version pinned in
tests/e2e/package.json, by npm ci into tests/e2e/node_modules; and $NPM_CLIENTS
by npm install -g.

Needs root for apt-get and for a system PREFIX; uses sudo when not root and sudo exists.
EOF
}

say() { printf '%s: %s\n' "$PROG" "$*"; }
die() {
    printf '%s: error: %s\n' "$PROG" "$*" >&2
    exit 1
}
usage_error() {
    printf '%s: %s\n' "$PROG" "$*" >&2
    printf "Try './install.sh --help' for more information.\n" >&2
    exit 2
}

# Makes a path absolute relative to the directory install.sh was started from.
absolute() {
    case $1 in
        /*) printf '%s\n' "$1" ;;
        *) printf '%s/%s\n' "$START_DIR" "$1" ;;
    esac
}

# Prints the packages of "$@" that dpkg does not report as installed.
missing_packages() {
    for pkg in "$@"; do
        status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null) || status=
        case $status in
            *" ok installed") ;;
            *) printf '%s\n' "$pkg" ;;
        esac
    done
}

# Sets SUDO to "" when running as root, to "sudo" when it exists, else fails naming $1.
need_root() {
    if [ "$(id -u)" -eq 0 ]; then
        SUDO=
    elif command -v sudo >/dev/null 2>&1; then
        SUDO=sudo
    else
        die "$1 needs root and sudo is not installed; run as root or use $2"
    fi
}

install_packages() {
    # shellcheck disable=SC2086  # the lists are words
    missing=$(missing_packages $BUILD_PACKAGES $TEST_PACKAGES $BENCH_PACKAGES)
    if [ -z "$missing" ]; then
        say "Debian packages: all installed"
        return
    fi
    # shellcheck disable=SC2086
    command -v apt-get >/dev/null 2>&1 ||
        die "apt-get not found (landjail's installer supports Debian 12); install these packages yourself and rerun with --no-deps: $(one_line $missing)"
    need_root "installing Debian packages" "--no-deps"
    # shellcheck disable=SC2086
    say "installing Debian packages:" $missing
    $SUDO apt-get -q update
    # shellcheck disable=SC2086
    $SUDO env DEBIAN_FRONTEND=noninteractive \
        apt-get -q install -y --no-install-recommends $missing
}

# Claude Code, which tests/e2e/test_claude.py runs in the jail: an npm package pinned in
# tests/e2e/package.json and package-lock.json, installed into tests/e2e/node_modules (not
# globally) by `npm ci`, which installs exactly what the lock file names.
E2E_NPM_DIR=tests/e2e
E2E_CLAUDE=$E2E_NPM_DIR/node_modules/.bin/claude

# Prints the version of @anthropic-ai/claude-code that tests/e2e/package.json pins.
pinned_claude_version() {
    sed -n 's/^ *"@anthropic-ai\/claude-code": *"\([^"]*\)".*/\1/p' "$E2E_NPM_DIR/package.json"
}

# Succeeds when tests/e2e's claude runs and reports version $1 ("2.1.330 (Claude Code)").
claude_is() {
    reported=$("$E2E_CLAUDE" --version 2>/dev/null) || return 1
    [ "${reported%% *}" = "$1" ]
}

install_npm_packages() {
    want=$(pinned_claude_version)
    [ -n "$want" ] || die "no @anthropic-ai/claude-code version in $E2E_NPM_DIR/package.json"
    if claude_is "$want"; then
        say "npm packages (e2e tests): Claude Code $want installed"
        return
    fi
    command -v npm >/dev/null 2>&1 ||
        die "npm not found: it installs Claude Code $want for the e2e tests (npm ci in $E2E_NPM_DIR). NodeSource's nodejs includes npm; with Debian's nodejs, install Debian's npm package (apt-get install npm). Or rerun with --no-deps"
    say "installing Claude Code $want for the e2e tests (npm ci in $E2E_NPM_DIR)"
    npm ci --prefix "$E2E_NPM_DIR" --no-audit --no-fund
    claude_is "$want" ||
        die "$E2E_CLAUDE --version does not report $want after npm ci (its postinstall script puts the native binary in place: were install scripts disabled?)"
}

# yarn and pnpm, the npm clients tests/e2e/test_client_trust.py runs in the jail besides npm:
# pinned, installed globally (npm install -g) when the installed version differs.
NPM_CLIENTS="yarn@1.22.22 pnpm@10.34.9"

install_npm_clients() {
    missing=
    for spec in $NPM_CLIENTS; do
        name=${spec%@*}
        have=$("$name" --version 2>/dev/null) || have=
        [ "$have" = "${spec#*@}" ] || missing="$missing $spec"
    done
    if [ -z "$missing" ]; then
        say "npm clients (e2e tests): $NPM_CLIENTS installed"
        return
    fi
    command -v npm >/dev/null 2>&1 || die "npm not found: it installs$missing for the e2e tests"
    need_root "installing$missing with npm install -g" "--no-deps"
    say "installing$missing for the e2e tests (npm install -g)"
    # shellcheck disable=SC2086  # the specs are words
    $SUDO npm install -g --no-audit --no-fund $missing
}

# Sets SUDO for writing under $1: "" when this user can write its nearest existing ancestor.
install_sudo() {
    dir=$1
    while [ ! -d "$dir" ]; do
        dir=$(dirname "$dir")
    done
    if [ -w "$dir" ]; then
        SUDO=
    else
        need_root "writing to $1" "--prefix DIR"
    fi
}

# ---- options ------------------------------------------------------------------------------
START_DIR=$(pwd)
PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
DEPS=1
ACTION=install
AS_BOUNDARY=0
BOUNDARY_DIR=
while [ $# -gt 0 ]; do
    case $1 in
        --prefix)
            [ $# -ge 2 ] || usage_error "option '--prefix' needs a directory"
            PREFIX=$2
            shift
            ;;
        --prefix=*) PREFIX=${1#--prefix=} ;;
        --no-deps) DEPS=0 ;;
        --as-boundary) AS_BOUNDARY=1 ;;
        --boundary-dir)
            [ $# -ge 2 ] || usage_error "option '--boundary-dir' needs a directory"
            BOUNDARY_DIR=$2
            AS_BOUNDARY=1
            shift
            ;;
        --boundary-dir=*)
            BOUNDARY_DIR=${1#--boundary-dir=}
            AS_BOUNDARY=1
            ;;
        --uninstall) ACTION=uninstall ;;
        -h | --help)
            usage
            exit 0
            ;;
        -*) usage_error "unknown option '$1'" ;;
        *) usage_error "unexpected argument '$1' (install.sh takes options only)" ;;
    esac
    shift
done
[ -n "$PREFIX" ] || usage_error "the prefix is empty"
PREFIX=$(absolute "$PREFIX")
if [ -n "$DESTDIR" ]; then
    DESTDIR=$(absolute "$DESTDIR")
fi
if [ -n "$BOUNDARY_DIR" ]; then
    BOUNDARY_DIR=$(absolute "$BOUNDARY_DIR")
else
    BOUNDARY_DIR=$PREFIX/bin
fi

cd "$(dirname "$0")"

if [ "$ACTION" = uninstall ]; then
    install_sudo "$DESTDIR$PREFIX"
    $SUDO make uninstall PREFIX="$PREFIX" DESTDIR="$DESTDIR" BOUNDARY_BINDIR="$BOUNDARY_DIR"
    say "uninstalled landjail from $DESTDIR$PREFIX"
    exit 0
fi

if [ "$DEPS" -eq 1 ]; then
    install_packages
    install_npm_packages
    install_npm_clients
fi
command -v make >/dev/null 2>&1 || die "make not found; rerun without --no-deps"

say "building"
make -j"$(nproc)" PREFIX="$PREFIX"
install_sudo "$DESTDIR$PREFIX"
$SUDO make install PREFIX="$PREFIX" DESTDIR="$DESTDIR"
if [ "$AS_BOUNDARY" -eq 1 ]; then
    install_sudo "$DESTDIR$BOUNDARY_DIR"
    $SUDO make install-boundary PREFIX="$PREFIX" DESTDIR="$DESTDIR" BOUNDARY_BINDIR="$BOUNDARY_DIR"
    say "installed landjail as boundary and agent-firewall in $DESTDIR$BOUNDARY_DIR (copies of landjail)"
fi
say "installed landjail and landjail-proxy to $DESTDIR$PREFIX/bin, the shim to $DESTDIR$PREFIX/lib/landjail, the profiles to $DESTDIR$PREFIX/share/landjail/profiles (man pages in $DESTDIR$PREFIX/share/man: man landjail, man 5 landjail.yaml)"

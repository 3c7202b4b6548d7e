#!/bin/sh
# The house's layers (DESIGN §2, README "Development"): policy (pure) <- proxy/base (the ground
# floor) <- proxy/audit <- {proxy's tls/session/server, landjail}; the shim stands alone.
# - every #include of a project header points down (or sideways inside its own room);
# - the launcher binary links neither Asio nor mbedTLS (ldd and nm), and neither spdlog.
# Usage: LANDJAIL=path/to/landjail sh tests/cli/layers.sh
set -u
LJ=${LANDJAIL:?set LANDJAIL to the landjail binary}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
: >"$T/out"
: >"$T/err"
# shellcheck source=tests/cli/tap.sh
. "$(dirname "$0")/tap.sh"

# includes DIR: "file<TAB>included header" for every project include under DIR (not below a
# sub-folder when DIR ends in /*.?pp).
includes() {
    grep -H -o '#include "[a-z][a-z_/.]*"' "$@" 2>/dev/null |
        sed 's/:#include "/\t/; s/"$//'
}

# may ROOM ALLOWED...: the files of ROOM include only headers under the ALLOWED prefixes
# (C and C++ system headers are <...> and never seen here).
may() {
    room=$1
    shift
    files=$(find "$ROOT/$room" -maxdepth 1 -name '*.cpp' -o -maxdepth 1 -name '*.hpp' \
            -o -maxdepth 1 -name '*.c' -o -maxdepth 1 -name '*.h' | sort)
    if [ -z "$files" ]; then
        not_ok "$room: no sources found"
        return
    fi
    # shellcheck disable=SC2086  # the file list is words
    includes $files >"$T/inc"
    : >"$T/bad"
    while IFS="	" read -r file header; do
        allowed=no
        for prefix in "$@"; do
            case $header in "$prefix"*) allowed=yes ;; esac
        done
        [ "$allowed" = yes ] || printf '%s includes %s\n' "${file#"$ROOT"/}" "$header" >>"$T/bad"
    done <"$T/inc"
    if [ -s "$T/bad" ]; then
        not_ok "$room includes only $*"
        sed 's/^/#   /' "$T/bad"
    else
        ok "$room includes only $*"
    fi
}

may policy policy/
may proxy/base policy/ proxy/base/
may proxy/audit policy/ proxy/base/ proxy/audit/
may proxy/tls policy/ proxy/base/ proxy/net.hpp proxy/tls/
may proxy/session policy/ proxy/base/ proxy/audit/ proxy/net.hpp proxy/tls/ proxy/session/
may proxy/server policy/ proxy/base/ proxy/audit/ proxy/net.hpp proxy/tls/ proxy/session/ \
    proxy/server/
may proxy policy/ proxy/base/ proxy/audit/ proxy/net.hpp proxy/server/
may landjail policy/ proxy/base/ proxy/audit/ landjail/ shim/core.h
may landjail/jail policy/ proxy/base/ landjail/jail/ landjail/supervisor/inet.hpp
may landjail/supervisor policy/ proxy/base/ proxy/audit/event.hpp landjail/supervisor/ \
    landjail/jail/
may landjail/link policy/ proxy/base/ proxy/audit/ landjail/
may shim shim/

# The launcher (which is also the supervisor) carries no Asio, Beast, mbedTLS or spdlog.
if ldd "$LJ" >"$T/ldd" 2>&1; then
    if grep -qiE 'mbed|spdlog|boost' "$T/ldd"; then
        not_ok "landjail links a library of the proxy's"
        sed 's/^/#   /' "$T/ldd"
    else
        ok "landjail links no mbedTLS, spdlog or Boost library (ldd)"
    fi
else
    not_ok "ldd $LJ failed"
fi
nm -C "$LJ" 2>/dev/null | grep -cE 'boost::asio|boost::beast|mbedtls_' >"$T/count"
n=$(cat "$T/count")
if [ "$n" -eq 0 ]; then
    ok "landjail holds no boost::asio, boost::beast or mbedtls_ symbol (nm)"
else
    not_ok "landjail holds $n boost::asio/beast or mbedtls_ symbols"
fi
finish

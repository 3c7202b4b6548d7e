#!/bin/sh
# Man pages against the programs: for landjail (man/landjail.1) and landjail-proxy
# (man/landjail-proxy.1), `mandoc -T lint` is clean, `man -l` renders, every long option of
# `--help` appears in the rendered page, and the options the page's OPTIONS section documents
# (its .TP tags) are exactly the long options of `--help`.
# Usage: LANDJAIL=path/to/landjail LANDJAIL_PROXY=path/to/landjail-proxy sh tests/cli/man_check.sh
set -u
LJ=${LANDJAIL:?set LANDJAIL to the landjail binary}
LJP=${LANDJAIL_PROXY:?set LANDJAIL_PROXY to the landjail-proxy binary}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export HOME="$T/home"  # --help must not depend on the developer's config
export LC_ALL=C  # sort and comm agree; man -l renders ASCII
mkdir -p "$HOME"

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok $((pass + fail)) - $1"; }
# not_ok NAME [FILE...]: the files are shown as diagnostics.
not_ok() {
    fail=$((fail + 1))
    echo "not ok $((pass + fail)) - $1"
    shift
    for f in "$@"; do sed 's/^/#   /' "$f"; done
}

for tool in mandoc col; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "not ok 1 - $tool not found (Debian: mandoc, bsdextrautils)"
        echo "0 passed, 1 failed"
        exit 1
    fi
done

# long_options FILE: the long options named in FILE, one per line, sorted and unique.
long_options() {
    grep -o -- '--[a-z][a-z-]*' "$1" | sed 's/-*$//' | sort -u
}

# missing WANT HAVE OUT: the lines of WANT that are not lines of HAVE, into OUT; true when none.
missing() {
    comm -23 "$1" "$2" >"$3"
    [ ! -s "$3" ]
}

# check PROGRAM BINARY PAGE
check() {
    prog=$1 bin=$2 page=$3
    name=$(basename "$page")
    d="$T/$prog"
    mkdir -p "$d"

    if [ ! -f "$page" ]; then
        echo "$page does not exist" >"$d/err"
        not_ok "$name exists" "$d/err"
        return
    fi

    # mandoc -T lint implies -W all and prints its messages on standard output.
    if mandoc -T lint "$page" >"$d/lint" 2>&1 && [ ! -s "$d/lint" ]; then
        ok "$name: mandoc -T lint is clean"
    else
        not_ok "$name: mandoc -T lint reports problems" "$d/lint"
    fi

    if command -v man >/dev/null 2>&1; then
        if MANWIDTH=80 man -l "$page" >"$d/man" 2>"$d/man.err" && [ -s "$d/man" ]; then
            ok "$name: man -l renders"
        else
            not_ok "$name: man -l fails" "$d/man.err"
        fi
    fi

    # Rendered text without overstrikes (bold, underline) and without tabs.
    mandoc -T ascii "$page" 2>/dev/null | col -bx >"$d/text"
    # The OPTIONS section, and in it the tag lines (indented like the section's text: 7
    # spaces, then the option), which are what the page documents as options.
    awk '/^OPTIONS$/ { f = 1; next } /^[A-Z][A-Z ]*$/ { f = 0 } f' "$d/text" >"$d/options"
    grep -- '^       -' "$d/options" >"$d/tags"
    long_options "$d/tags" >"$d/documented"
    long_options "$d/text" >"$d/mentioned"

    if "$bin" --help >"$d/help" 2>"$d/help.err"; then
        ok "$prog --help (exit 0)"
    else
        not_ok "$prog --help fails" "$d/help" "$d/help.err"
    fi
    long_options "$d/help" >"$d/helped"

    nh=$(wc -l <"$d/helped" | tr -d ' ')
    nd=$(wc -l <"$d/documented" | tr -d ' ')
    if [ "$nh" -gt 0 ] && [ "$nd" -gt 0 ]; then
        ok "found $nh long options in --help, $nd in the OPTIONS section of $name"
    else
        cp "$d/options" "$d/why"
        not_ok "no options found: $nh in --help, $nd in the OPTIONS section of $name" "$d/why"
    fi
    if missing "$d/helped" "$d/mentioned" "$d/miss"; then
        ok "$name: every long option of $prog --help appears in the page"
    else
        not_ok "$name lacks options of $prog --help:" "$d/miss"
    fi
    if missing "$d/helped" "$d/documented" "$d/miss"; then
        ok "$name: every long option of $prog --help has an entry in OPTIONS"
    else
        not_ok "$name: OPTIONS has no entry for:" "$d/miss"
    fi
    if missing "$d/documented" "$d/helped" "$d/miss"; then
        ok "$name: every option in OPTIONS is in $prog --help"
    else
        not_ok "$name: OPTIONS documents options that $prog --help does not list:" "$d/miss"
    fi
}

check landjail "$LJ" "$ROOT/man/landjail.1"
check landjail-proxy "$LJP" "$ROOT/man/landjail-proxy.1"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

#!/bin/sh
# Man pages against the programs.
# - landjail (man/landjail.1) and landjail-proxy (man/landjail-proxy.1): `mandoc -T lint` is
#   clean, `man -l` renders, every long option of `--help` appears in the rendered page, and
#   the options the page's OPTIONS section documents (its .TP tags) are exactly the long
#   options of `--help`.
# - landjail.yaml(5) (man/landjail.yaml.5): lint-clean and renders; the keys its KEYS section
#   documents (its .TP tags, nested keys dotted: audit.http.url) are exactly the keys of the
#   key tables in policy/config.cpp; every `$ landjail ...` transcript in it prints what the
#   page shows; every rule under "Rejected rules" is refused; every config between the
#   `begin config example` and `end config example` comment lines is valid.
# - `make install` into a scratch DESTDIR installs pages that `man` finds through MANPATH
#   (`man landjail`, `man landjail-proxy`, `man 5 landjail.yaml`) and the profiles, mode 0644;
#   `make uninstall` removes every file again. It runs make in the source tree (SAN and the
#   other variables of a calling make come through MAKEFLAGS).
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
# The page's examples must not see the developer's rules or settings.
unset LANDJAIL_CONFIG BOUNDARY_CONFIG LANDJAIL_ALLOW BOUNDARY_ALLOW LANDJAIL_DENY \
      LANDJAIL_LOG_LEVEL BOUNDARY_LOG_LEVEL LANDJAIL_LOG_DIR BOUNDARY_LOG_DIR \
      LANDJAIL_PROXY_PORT PROXY_PORT BOUNDARY_JAIL_TYPE DISABLE_AUDIT_LOGS 2>/dev/null || true

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

# render_checks NAME PAGE DIR: mandoc -T lint is clean and man -l renders (true when the page
# exists).
render_checks() {
    name=$1 page=$2 d=$3
    if [ ! -f "$page" ]; then
        echo "$page does not exist" >"$d/err"
        not_ok "$name exists" "$d/err"
        return 1
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
    return 0
}

# config_keys FILE: the keys that the key tables of policy/config.cpp accept, one per line,
# nested ones dotted. A table is the brace list passed to `w.mapping(NODE, "WHERE", {...})`
# ("config" is the top level); its entries are `{"key", handler}`. The scanner tracks brace
# depth, skipping string and character literals and comments, so a brace inside a message
# cannot confuse it, and `{"landjail", "nsjail"}` (a value list, not a handler) is not a key.
config_keys() {
    perl -0777 -ne '
        my (@tables, $pending);
        my $depth = 0;
        while (/\G(?:(\bmapping\(\s*\w+\s*,\s*"([a-z_.]+)"\s*,)
                   |(\{\s*"([a-z_]+)"\s*,(?=\s*[^"\s]))
                   |(\{)|(\})
                   |("(?:\\.|[^"\\])*"|\x27(?:\\.|[^\x27\\])+\x27|\/\/[^\n]*|\/\*.*?\*\/|\s+)
                   |(.))/gsx) {
            if (defined $1) {
                $pending = $2;
            } elsif (defined $3) {
                $depth++;
                if (@tables && $tables[-1][1] == $depth - 1) {
                    my $where = $tables[-1][0];
                    print $where eq "config" ? "$4\n" : "$where.$4\n";
                }
            } elsif (defined $5) {
                $depth++;
                if (defined $pending) { push @tables, [$pending, $depth]; undef $pending; }
            } elsif (defined $6) {
                pop @tables if @tables && $tables[-1][1] == $depth;
                $depth--;
            } elsif (defined $8) {
                undef $pending;  # a mapping() whose table is not a brace list
            }
        }' "$1" | sort -u
}

# page_keys PAGE: the .TP/.TQ tags of the KEYS section of PAGE (roff source), one per line.
page_keys() {
    awk '/^\.SH / { keys = ($0 ~ /^\.SH "?KEYS"?$/); tag = 0; next }
         keys && /^\.T[PQ]/ { tag = 1; next }
         keys && tag { tag = 0; sub(/^\.[BI][RI]? +/, ""); gsub(/"/, ""); sub(/[ \t].*/, "");
                       gsub(/\\&/, ""); gsub(/\\-/, "-"); print }' "$1" | sort -u
}

# unroff: the text of roff source lines as a reader sees it, for the escapes the examples use.
unroff() {
    sed -e 's/\\(dq/"/g' -e "s/\\\\(aq/'/g" -e 's/\\-/-/g' -e 's/\\&//g' -e 's/\\e/\\/g'
}

# check_config_page PAGE
check_config_page() {
    page=$1
    name=$(basename "$page")
    d="$T/config-page"
    mkdir -p "$d" "$d/bin"
    render_checks "$name" "$page" "$d" || return

    config_keys "$ROOT/policy/config.cpp" >"$d/accepted"
    page_keys "$page" >"$d/documented"
    na=$(wc -l <"$d/accepted" | tr -d ' ')
    nd=$(wc -l <"$d/documented" | tr -d ' ')
    # allowlist and a nested key prove that both levels of the scanner work.
    if [ "$na" -ge 10 ] && grep -qx allowlist "$d/accepted" && grep -qx audit.http.url "$d/accepted"; then
        ok "found $na keys in policy/config.cpp, $nd in the KEYS section of $name"
    else
        cp "$d/accepted" "$d/why"
        not_ok "policy/config.cpp: the key scanner found $na keys (want allowlist, audit.http.url, ...)" "$d/why"
    fi
    if missing "$d/accepted" "$d/documented" "$d/miss"; then
        ok "$name: every key policy/config.cpp accepts is in KEYS"
    else
        not_ok "$name: KEYS lacks keys that policy/config.cpp accepts:" "$d/miss"
    fi
    if missing "$d/documented" "$d/accepted" "$d/miss"; then
        ok "$name: every key in KEYS is accepted by policy/config.cpp"
    else
        not_ok "$name: KEYS documents keys that policy/config.cpp does not accept:" "$d/miss"
    fi

    # Transcripts: in the rendered page, a line "$ landjail ..." (continued by a trailing
    # backslash) is a command; the lines under it, up to a blank line, the next command or
    # the end of the block, are the first lines of its standard output.
    mandoc -T ascii "$page" 2>/dev/null | col -bx >"$d/text"
    rm -rf "$d/tx"
    mkdir -p "$d/tx"
    awk -v dir="$d/tx" '
        function flush() { if (n != "") close(dir "/" n ".want") }
        /^ *\$ landjail / {
            flush(); n = sprintf("%03d", n + 1); indent = index($0, "$") - 1
            line = substr($0, indent + 3); cmd = ""
            while (line ~ /\\$/) {
                cmd = cmd substr(line, 1, length(line) - 1)
                if ((getline line) <= 0) break
                sub(/^ +/, "", line)
            }
            printf "%s%s\n", cmd, line > (dir "/" n ".cmd"); close(dir "/" n ".cmd")
            printf "" > (dir "/" n ".want"); want = 1; next
        }
        want && (/^ *$/ || match($0, /^ */) && RLENGTH < indent) { want = 0 }
        want { print substr($0, indent + 1) > (dir "/" n ".want") }
        END { flush() }' "$d/text"
    ln -sf "$LJ" "$d/bin/landjail"
    nt=0
    for cmd in "$d"/tx/*.cmd; do
        [ -f "$cmd" ] || continue
        nt=$((nt + 1))
        want="${cmd%.cmd}.want"
        c=$(cat "$cmd")
        PATH="$d/bin:$PATH" sh -c "$c" >"$d/got" 2>"$d/got.err"
        st=$?
        head -n "$(wc -l <"$want")" "$d/got" >"$d/got.head"
        if [ "$st" -le 1 ] && [ -s "$want" ] && cmp -s "$want" "$d/got.head"; then
            ok "$name: \$ $c"
        else
            { echo "exit status $st; the page shows:"; cat "$want"; echo "the program printed:";
              cat "$d/got" "$d/got.err"; } >"$d/why"
            not_ok "$name: \$ $c" "$d/why"
        fi
    done
    if [ "$nt" -ge 10 ]; then
        ok "$name: $nt landjail transcripts checked"
    else
        echo "$nt transcripts found" >"$d/why"
        not_ok "$name: too few landjail transcripts found" "$d/why"
    fi

    # Rejected rules: the .TP tags of that subsection, each refused by landjail check.
    awk '/^\.S[HS] / { rej = ($0 ~ /^\.SS "?Rejected rules"?$/); tag = 0; next }
         rej && /^\.TP/ { tag = 1; next }
         rej && tag { tag = 0; sub(/^\.B +/, ""); gsub(/^\\\(dq|\\\(dq$/, ""); print }' "$page" |
        unroff >"$d/rejected"
    nr=0
    while IFS= read -r rule; do
        nr=$((nr + 1))
        "$LJ" check --allow "$rule" >"$d/out" 2>&1
        st=$?
        if [ "$st" -eq 2 ] && grep -qF -- "--allow" "$d/out"; then
            ok "$name: rejected rule '$rule' is refused (exit 2)"
        else
            not_ok "$name: rejected rule '$rule': exit $st, want 2" "$d/out"
        fi
    done <"$d/rejected"
    if [ "$nr" -ge 5 ]; then ok "$name: $nr rejected rules checked"; else
        echo "$nr found" >"$d/why"; not_ok "$name: too few rejected rules found" "$d/why"; fi

    # Config examples: the lines between the marker comments, without the roff requests.
    awk -v dir="$d" '/^\.\\" begin config example$/ { n++; on = 1; printf "" > (dir "/example" n ".yaml"); next }
                     /^\.\\" end config example$/ { on = 0; next }
                     on && !/^\./ { print > (dir "/example" n ".yaml") }' "$page"
    ne=0
    for ex in "$d"/example*.yaml; do
        [ -f "$ex" ] || continue
        ne=$((ne + 1))
        unroff <"$ex" >"$ex.txt"
        if "$LJ" check --config "$ex.txt" >"$d/out" 2>&1; then
            ok "$name: config example $ne is valid (landjail check)"
        else
            cat "$ex.txt" >>"$d/out"
            not_ok "$name: config example $ne is invalid" "$d/out"
        fi
    done
    if [ "$ne" -ge 1 ]; then :; else
        echo "no begin/end config example markers" >"$d/why"
        not_ok "$name: no config example found" "$d/why"
    fi
}

# check_install: make install into a scratch DESTDIR; man finds the three pages through
# MANPATH; profiles and pages are installed mode 0644; make uninstall leaves no file.
check_install() {
    d="$T/install"
    root="$d/root"
    mkdir -p "$d"
    if ! command -v make >/dev/null 2>&1 || ! command -v man >/dev/null 2>&1; then
        echo "ok $((pass + fail + 1)) - make install + man # SKIP make or man not found"
        pass=$((pass + 1))
        return
    fi
    if make -C "$ROOT" install DESTDIR="$root" PREFIX=/usr/local >"$d/log" 2>&1; then
        ok "make install DESTDIR=... PREFIX=/usr/local"
    else
        not_ok "make install fails" "$d/log"
        return
    fi
    for args in "landjail" "landjail-proxy" "5 landjail.yaml"; do
        # shellcheck disable=SC2086  # args is "SECTION NAME" or "NAME"
        if MANPATH="$root/usr/local/share/man" MANWIDTH=80 MANPAGER=cat PAGER=cat \
            man $args >"$d/man" 2>"$d/man.err" && grep -q '^NAME' "$d/man"; then
            ok "after make install: MANPATH=.../usr/local/share/man man $args renders"
        else
            not_ok "after make install: man $args fails" "$d/man.err"
        fi
    done
    for f in "$ROOT"/policy/profiles/*.yaml share/man/man5/landjail.yaml.5; do
        case $f in
            */policy/profiles/*) f="share/landjail/profiles/$(basename "$f")" ;;
        esac
        mode=$(stat -c %a "$root/usr/local/$f" 2>/dev/null || echo missing)
        if [ "$mode" = 644 ]; then
            ok "installed PREFIX/$f (mode 0644)"
        else
            echo "mode: $mode" >"$d/why"
            not_ok "PREFIX/$f is not installed mode 0644" "$d/why"
        fi
    done
    if make -C "$ROOT" uninstall DESTDIR="$root" PREFIX=/usr/local >"$d/log" 2>&1 &&
        find "$root" ! -type d >"$d/left" && [ ! -s "$d/left" ] &&
        [ ! -e "$root/usr/local/share/landjail" ]; then
        ok "make uninstall removes every installed file and share/landjail"
    else
        cat "$d/log" >>"$d/left"
        find "$root/usr/local/share" -name '*landjail*' >>"$d/left" 2>/dev/null
        not_ok "make uninstall leaves files behind" "$d/left"
    fi
}

check landjail "$LJ" "$ROOT/man/landjail.1"
check landjail-proxy "$LJP" "$ROOT/man/landjail-proxy.1"
check_config_page "$ROOT/man/landjail.yaml.5"
check_install

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

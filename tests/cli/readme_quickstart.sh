#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Runs the README's quick start the way a user pastes it: the ```sh block that follows the
# line `<!-- quickstart -->` in README.md, with `sh -ex`, in a fresh HOME and an empty working
# directory, with the landjail under test first in PATH. Then checks what each command printed
# (the `+ …` lines of `sh -x` split the output into one section per command):
# - commands that need no internet must succeed and print what the README says (doctor's
#   protection line, the 403 body with its --allow suggestion, explain's allow/deny, the audit
#   trail, the profile in `landjail check`);
# - a jailed request to example.com that the policy allows needs the internet: either the page
#   arrives, or landjail-proxy answers 502/504 naming the upstream step that failed, which
#   still proves that the request went through the jail and was allowed by the proxy;
# - no command needs software install.sh does not install (claude stays a comment).
# Usage: LANDJAIL=path/to/landjail [LANDJAIL_PROXY=path/to/landjail-proxy] \
#            sh tests/cli/readme_quickstart.sh [README.md]
# Without LANDJAIL, the landjail first in PATH is tested (e.g. one installed by install.sh).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
README=${1:-$HERE/../../README.md}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok $((pass + fail)) - $1"; }
not_ok() { fail=$((fail + 1)); echo "not ok $((pass + fail)) - $1"; }
note() { echo "# $1"; }
# show FILE: the file, indented as a TAP comment.
show() { sed 's/^/#   /' "$1"; }

# --- the block ------------------------------------------------------------------------------
markers=$(grep -c '^<!-- quickstart -->$' "$README")
if [ "$markers" -eq 1 ]; then ok "README.md has one <!-- quickstart --> marker"; else
    not_ok "README.md has $markers <!-- quickstart --> markers, want 1"; fi
# The first fenced block after the marker; only blank lines may come between them.
if awk '
    state == 0 && $0 == "<!-- quickstart -->" { state = 1; next }
    state == 1 && $0 == "```sh" { state = 2; next }
    state == 1 && NF { exit 1 }
    state == 2 && $0 == "```" { state = 3; exit 0 }
    state == 2 { print }
    END { if (state != 3) exit 1 }
' "$README" >"$T/quickstart.sh" && [ -s "$T/quickstart.sh" ]; then
    ok "the marker is followed by a \`\`\`sh block"; else
    not_ok "no \`\`\`sh block right after <!-- quickstart -->"; echo "1..$((pass + fail))"; exit 1; fi
show "$T/quickstart.sh"
# A command needing software install.sh does not install must stay a comment.
if grep -Eq '^[^#]*-- claude' "$T/quickstart.sh"; then
    not_ok "the block runs claude, which install.sh does not install (comment it out)"; else
    ok "claude appears only as a comment"; fi

# --- the environment ------------------------------------------------------------------------
if [ -n "${LANDJAIL:-}" ]; then
    BIN=$(cd "$(dirname "$LANDJAIL")" && pwd)
    PATH="$BIN:$PATH"
fi
export PATH
unset LANDJAIL LANDJAIL_CONFIG BOUNDARY_CONFIG LANDJAIL_ALLOW BOUNDARY_ALLOW LANDJAIL_DENY \
      LANDJAIL_LOG_LEVEL BOUNDARY_LOG_LEVEL LANDJAIL_LOG_DIR BOUNDARY_LOG_DIR \
      LANDJAIL_PROXY_PORT PROXY_PORT BOUNDARY_JAIL_TYPE DISABLE_AUDIT_LOGS 2>/dev/null || true
export HOME="$T/home"
mkdir -p "$HOME" "$T/work"
note "landjail: $(command -v landjail || echo 'not in PATH')"

# --- run it ---------------------------------------------------------------------------------
(cd "$T/work" && sh -ex "$T/quickstart.sh") >"$T/out" 2>&1
status=$?
if [ "$status" -eq 0 ]; then ok "sh -ex quickstart: every command succeeded"; else
    last=$(grep '^+ ' "$T/out" | tail -n 1)
    not_ok "sh -ex quickstart stopped with status $status at: $last"
    tail -n 20 "$T/out" | sed 's/^/#   /'
fi

# One file per command: $T/sec.N holds the `+ command` line and what the command printed.
awk -v dir="$T" '/^\+ / { n++ } n { print > (dir "/sec." n) }' "$T/out"
# section REGEX: the file of the first command whose `+ …` line matches REGEX ("" if none).
section() {
    for f in "$T"/sec.*; do
        [ -f "$f" ] || continue
        if head -n 1 "$f" | grep -Eq -- "$1"; then echo "$f"; return; fi
    done
    echo ""
}
# expect NAME REGEX TEXT...: the command's section contains every TEXT (fixed strings).
expect() {
    name=$1 re=$2
    shift 2
    f=$(section "$re")
    if [ -z "$f" ]; then not_ok "$name: no command matching /$re/ ran"; return; fi
    for text in "$@"; do
        if grep -qF -- "$text" "$f"; then ok "$name: prints $text"; else
            not_ok "$name: does not print $text"; show "$f"; fi
    done
}

expect "doctor" '^\+ landjail doctor' "protection:"
# The request no rule allows: the proxy's 403 body, with the rule that would allow it.
expect "denied request" '^\+ landjail -- curl .*http://example\.com' \
    "landjail: request denied by policy" "--allow 'domain=example.com"
expect "explain" '^\+ landjail explain ' "allow GET https://example.com/" "rule:"

# upstream NAME FILE: FILE (a command's output) shows that a request the policy allowed went
# through the jail and the proxy: the page itself, or the proxy's own 502/504 when this host
# cannot reach the origin (no internet).
upstream() {
    if grep -q 'landjail: could not reach' "$2"; then
        step=$(grep -m 1 '^step:' "$2" | sed 's/^step: *//')
        error=$(grep -m 1 '^error:' "$2" | sed 's/^error: *//')
        ok "$1: allowed, and landjail-proxy answered that it could not reach the origin"
        note "no internet here (step: $step, error: $error); with internet the page is printed"
    elif grep -q 'Example Domain' "$2"; then
        ok "$1: allowed, and the page arrived through the jail"
    else
        not_ok "$1: neither the page nor landjail-proxy's 502/504"
        show "$2"
    fi
}
f=$(section '^\+ landjail .*--allow.* -- curl .*https://example\.com')
if [ -n "$f" ]; then upstream "allowed request" "$f"; else
    not_ok "no 'landjail --allow … -- curl https://example.com/' in the block"; fi

# The audited session: GET allowed (needs the internet), POST denied inside the same host.
expect "audited session" '^\+ landjail .*--audit-log' \
    "landjail: request denied by policy" "--allow 'domain=example.com method=POST"
audit=$(section '^\+ cat .*\.jsonl')
if [ -n "$audit" ]; then
    for text in '"decision":"allow"' '"http_method":"GET"' '"decision":"deny"' \
                '"http_method":"POST"' '"matched_rule":"domain=example.com method=GET"'; do
        if grep -qF -- "$text" "$audit"; then ok "audit trail has $text"; else
            not_ok "audit trail lacks $text"; show "$audit"; fi
    done
    if grep -q '"http_method":"GET".*"status":200' "$audit"; then
        ok "audit: the allowed GET got 200 from example.com"
    elif grep -Eq '"http_method":"GET".*"status":50[24]' "$audit"; then
        ok "audit: the allowed GET got landjail-proxy's 502/504"
        note "no internet here: the audited GET was allowed, the origin was unreachable"
    else
        not_ok "audit: the allowed GET has neither status 200 nor 502/504"; show "$audit"
    fi
else
    not_ok "the block does not show the audit trail (cat …jsonl)"
fi

expect "profile" '^\+ landjail check --profile claude-code' \
    "configuration is valid" "domain=api.anthropic.com"

echo "1..$((pass + fail))"
[ "$fail" -eq 0 ]

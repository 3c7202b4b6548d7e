# shellcheck shell=sh
# TAP-style helpers shared by the CLI tests (sourced; they set T first, a scratch directory).
# run NAME STATUS CMD... keeps the command's stdout in $T/out and stderr in $T/err; has, lacks,
# matches and empty look at one of those files; `finish` prints the count and sets the status.
# A clean environment: no config discovered from the developer's home or variables.
unset LANDJAIL_CONFIG BOUNDARY_CONFIG LANDJAIL_ALLOW BOUNDARY_ALLOW LANDJAIL_DENY \
      LANDJAIL_LOG_LEVEL BOUNDARY_LOG_LEVEL LANDJAIL_LOG_DIR BOUNDARY_LOG_DIR \
      LANDJAIL_PROXY_PORT PROXY_PORT BOUNDARY_JAIL_TYPE DISABLE_AUDIT_LOGS 2>/dev/null || true

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok $((pass + fail)) - $1"; }
not_ok() { fail=$((fail + 1)); echo "not ok $((pass + fail)) - $1"; sed 's/^/#   /' "$T/out" "$T/err"; }

# run NAME EXPECTED_STATUS CMD...: runs CMD with stdout in $T/out and stderr in $T/err.
run() {
    name=$1 want=$2
    shift 2
    "$@" >"$T/out" 2>"$T/err"
    got=$?
    if [ "$got" -eq "$want" ]; then ok "$name (exit $got)"; else not_ok "$name: exit $got, want $want"; fi
}
# has FILE TEXT: the file contains TEXT literally.
has() {
    if grep -qF -- "$2" "$T/$1"; then ok "  $1 has: $2"; else not_ok "  $1 lacks: $2"; fi
}
# matches FILE REGEX: some line of the file matches the extended regular expression.
matches() {
    if grep -qE -- "$2" "$T/$1"; then ok "  $1 matches: $2"; else not_ok "  $1 has no line matching: $2"; fi
}
# lacks FILE REGEX: no line of the file matches the extended regular expression.
lacks() {
    if grep -qE -- "$2" "$T/$1"; then not_ok "  $1 has a line matching: $2"; else ok "  $1 has no line matching: $2"; fi
}
# empty FILE: the file is empty.
empty() {
    if [ -s "$T/$1" ]; then not_ok "  $1 is not empty"; else ok "  $1 is empty"; fi
}
# finish: the summary line; the script's status is 0 only when nothing failed.
finish() {
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
}

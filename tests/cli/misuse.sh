#!/bin/sh
# Misuse of `landjail` and `landjail-proxy`, as a new user would make it: every mistake gets
# the documented exit status and one message that says what is wrong, names the input (flag,
# variable, rule, file:line:col) and says how to fix it, with no trace left behind (no proxy
# process, no session directory). Cases that switch to uid 65534 need root.
# Usage: LANDJAIL=path/to/landjail LANDJAIL_PROXY=path/to/landjail-proxy sh tests/cli/misuse.sh
set -u
LJ=${LANDJAIL:?set LANDJAIL to the landjail binary}
LJP=${LANDJAIL_PROXY:?set LANDJAIL_PROXY to the landjail-proxy binary}
T=$(mktemp -d)
BG=
trap 'if [ -n "$BG" ]; then kill "$BG" 2>/dev/null; wait "$BG" 2>/dev/null; fi; rm -rf "$T"' EXIT
# No config discovered from the developer's home (tap.sh clears the variables).
export HOME="$T/home" TMPDIR="$T/tmp"
mkdir -p "$HOME" "$TMPDIR"
# shellcheck source=tests/cli/tap.sh
. "$(dirname "$0")/tap.sh"
# one_line: stderr is exactly one line (one message, no stack of them, no exception text).
# (ASan's note about a stack switch in the child, under `make asan`, is not a message.)
one_line() {
    n=$(grep -cvE '^==[0-9]+==WARNING: ASan is ignoring requested __asan_handle_no_return|^False positive error reports may follow|^For details see https://github.com/google/sanitizers/issues/189' "$T/err")
    if [ "$n" -eq 1 ]; then ok "  one line on stderr"; else not_ok "  $n lines on stderr, want 1"; fi
}
# clean: no landjail-proxy of this test is left running and no session directory is left.
clean() {
    sleep 0.1
    if pgrep -f -- "$T/" >/dev/null 2>&1; then
        not_ok "  a process of this test is still running: $(pgrep -af -- "$T/" | head -n 3)"
    else
        ok "  no process left"
    fi
    if [ -z "$(ls -A "$TMPDIR")" ]; then ok "  no session directory left"; else not_ok "  TMPDIR keeps: $(ls -A "$TMPDIR")"; fi
}
# as_nobody CMD...: runs CMD as uid/gid 65534 (root only).
as_nobody() {
    setpriv --reuid=65534 --regid=65534 --clear-groups "$@"
}

# The interception CA exists from here on, so that no "created a new interception CA" line
# joins the messages below.
run "setup: a first run creates the CA" 0 "$LJ" -- true
clean

# --- the command line -----------------------------------------------------------------------
run "no arguments" 125 "$LJ"
has err "no command given"
has err "landjail --help"
one_line
run "-- and no command" 125 "$LJ" --
has err "no command given"
one_line
run "unknown long flag" 125 "$LJ" --frobnicate -- true
has err "unrecognized option '--frobnicate'"
has err "see landjail --help"
one_line
run "unknown short flag" 125 "$LJ" -x -- true
has err "unrecognized option '-x'"
one_line
run "flag missing its value" 125 "$LJ" --proxy-port
has err "option '--proxy-port' needs a value"
one_line
run "--keep-fd with a word" 125 "$LJ" --keep-fd stdout -- true
has err "--keep-fd 'stdout': not a file descriptor number"
one_line
run "--keep-fd of a descriptor that is not open" 125 "$LJ" --keep-fd 99 -- true
has err "--keep-fd 99: no such open file descriptor"
one_line
clean
run "--proxy-port 70000" 125 "$LJ" --proxy-port 70000 -- true
has err "--proxy-port: invalid port '70000' (expected 0..65535)"
one_line
run "--proxy-port abc" 125 "$LJ" --proxy-port abc -- true
has err "invalid port 'abc'"
run "--max-connections 0" 125 "$LJ" --max-connections 0 -- true
has err "--max-connections '0': expected a whole number from 1 to 1048576"
one_line
run "--max-connections lots" 125 "$LJ" --max-connections lots -- true
has err "--max-connections 'lots': expected a whole number from 1 to 1048576"
run "--log-level loud" 125 "$LJ" --log-level loud -- true
has err "--log-level: log level 'loud' is not one of error, warn, info, debug"
one_line
run "--require foo" 125 "$LJ" --require foo -- true
has err "--require 'foo': unknown layer 'foo'"
has err "landlock,seccomp"
one_line
run "--jail-type docker" 125 "$LJ" --jail-type docker -- true
has err "--jail-type: jail type 'docker' is not one of landjail, nsjail"
one_line
run "--resolve without fields" 125 "$LJ" --resolve malformed -- true
has err "landjail: --resolve 'malformed'"
has err "HOST:PORT:ADDR"
one_line
clean
run "--resolve with a name for ADDR" 125 "$LJ" --resolve example.com:443:notanip -- true
has err "'notanip' is not an IP address"
one_line
run "--proxy-addr malformed" 125 "$LJ" --proxy-addr notanaddress -- true
has err "--proxy-addr 'notanaddress': expected ADDR:PORT, e.g. 127.0.0.1:3128"
one_line
run "--proxy-addr where nothing listens" 125 "$LJ" --proxy-addr 127.0.0.1:1 -- true
has err "--proxy-addr 127.0.0.1:1: no proxy answers there (Connection refused)"
has err "landjail-proxy --listen 127.0.0.1:1"
has err "leave out --proxy-addr"
one_line
clean

# --- files the options name ----------------------------------------------------------------
printf 'x\n' >"$T/file"
run "--audit-log in a missing directory" 125 "$LJ" --audit-log "$T/nodir/audit.jsonl" -- true
has err "landjail: --audit-log $T/nodir/audit.jsonl: cannot create the audit file: $T/nodir does not exist; create it first"
one_line
clean
run "--audit-log that is a directory" 125 "$LJ" --audit-log "$T" -- true
has err "is a directory: name a file in it, e.g. $T/audit.jsonl"
one_line
ln -s "$T/file" "$T/audit-link.jsonl"
run "--audit-log that is a symlink" 125 "$LJ" --audit-log "$T/audit-link.jsonl" -- true
has err "landjail: --audit-log $T/audit-link.jsonl: is a symbolic link: the audit file is never opened through a link"
one_line
clean
cp "$T/file" "$T/shared.jsonl"
chmod 666 "$T/shared.jsonl"
run "--audit-log that others may write" 125 "$LJ" --audit-log "$T/shared.jsonl" -- true
has err "is writable by other users (mode 0666): they could add or change lines; run chmod 600 $T/shared.jsonl"
one_line
run "--audit-required without an audit trail" 125 "$LJ" --audit-required -- true
has err "audit.required (from --audit-required): there is no audit trail to require"
one_line
run "--log-dir that is a file" 125 "$LJ" --log-dir "$T/file" -- true
has err "--log-dir $T/file: cannot create the audit file: $T/file is not a directory"
one_line
run "--upstream-ca missing" 125 "$LJ" --upstream-ca "$T/nope.pem" -- true
has err "landjail: --upstream-ca $T/nope.pem: cannot read it: No such file or directory"
one_line
clean
run "--upstream-ca not PEM" 125 "$LJ" --upstream-ca "$T/file" -- true
has err "--upstream-ca $T/file: holds no certificate"
has err "PEM"
one_line
run "--upstream-ca a directory" 125 "$LJ" --upstream-ca "$T" -- true
has err "--upstream-ca $T: is a directory"
one_line
printf 'tls:\n  upstream_ca: %s\n' "$T/nope.pem" >"$T/ca.yaml"
run "tls.upstream_ca missing names the config line" 125 "$LJ" --config "$T/ca.yaml" -- true
has err "ca.yaml:2:16: tls.upstream_ca $T/nope.pem: cannot read it"
one_line

# The CA directory: the proxy reports it (exit status 1), landjail adds no second message.
run "--ca-dir that is a file" 125 "$LJ" --ca-dir "$T/file" -- true
has err "$T/file: create CA directory: exists and is not a directory; give --ca-dir a directory"
one_line
clean
mkdir -p "$T/corrupt"
printf 'garbage\n' >"$T/corrupt/ca.pem"
printf 'garbage\n' >"$T/corrupt/ca-key.pem"
chmod 600 "$T/corrupt/ca-key.pem"
run "--ca-dir with a corrupt ca.pem" 125 "$LJ" --ca-dir "$T/corrupt" -- true
has err "$T/corrupt/ca.pem: parse certificate"
has err "remove ca.pem and ca-key.pem to create a new CA"
one_line
clean
mkdir -p "$T/halfca"
cp "$HOME/.config/landjail/ca.pem" "$T/halfca/"
run "--ca-dir with ca.pem but no key" 125 "$LJ" --ca-dir "$T/halfca" -- true
has err "ca-key.pem missing next to ca.pem in $T/halfca; remove ca.pem to create a new CA"
one_line
mkdir -p "$T/loose"
cp -p "$HOME/.config/landjail/ca.pem" "$HOME/.config/landjail/ca-key.pem" "$T/loose/"
chmod 644 "$T/loose/ca-key.pem"
run "--ca-dir with our own key readable by others: fixed" 0 "$LJ" --ca-dir "$T/loose" -- true
if [ "$(stat -c %a "$T/loose/ca-key.pem")" = 600 ]; then ok "  the key is mode 600 now"; else not_ok "  the key is mode $(stat -c %a "$T/loose/ca-key.pem")"; fi

run "TMPDIR missing" 125 env TMPDIR="$T/notmp" "$LJ" -- true
has err "cannot create the session directory in $T/notmp (TMPDIR): No such file or directory; set TMPDIR"
one_line
clean

# --- rules ---------------------------------------------------------------------------------
run "rule: unknown key" 125 "$LJ" --allow 'domain=a.com colour=red' -- true
has err "--allow: rule 'domain=a.com colour=red': unknown key 'colour'; the keys are domain, method, path, port and upgrade"
one_line
run "rule: key in upper case" 125 "$LJ" --allow 'Domain=a.com' -- true
has err "keys are lower-case: domain="
run "rule: repeated key" 125 "$LJ" --allow 'domain=a.com domain=b.com' -- true
has err "key 'domain' given twice (write one rule for each host)"
one_line
run "rule: empty" 125 "$LJ" --allow '' -- true
has err "--allow: empty rule"
has err "domain=*"
one_line
run "rule: misspelt method" 125 "$LJ" --allow 'domain=a.com method=GTE' -- true
has err "method=GTE: unknown method 'GTE' (did you mean GET?)"
one_line
run "rule: misspelt method in a deny rule" 125 "$LJ" --allow domain=a.com --deny 'domain=a.com method=DELTE' -- true
has err "--deny: rule 'domain=a.com method=DELTE'"
has err "(did you mean DELETE?)"
run "rule: method that is not a token" 125 "$LJ" --allow 'domain=a.com method=G@T' -- true
has err "invalid HTTP method 'G@T'"
run "rule: an unregistered method is fine" 0 "$LJ" --allow 'domain=a.com method=PURGE,M-SEARCH' -- true
run "rule: port in domain=" 125 "$LJ" --allow 'domain=a.com:8443' -- true
has err "a port does not belong in domain= (write domain=a.com port=8443)"
one_line
run "rule: port in an IPv6 domain=" 125 "$LJ" --allow 'domain=[::1]:8080' -- true
has err "(write domain=[::1] port=8080)"
run "rule: scheme in domain=" 125 "$LJ" --allow 'domain=https://api.github.com/x' -- true
has err "a scheme does not belong in domain= (write the host only: domain=api.github.com)"
one_line
run "rule: a list in domain=" 125 "$LJ" --allow 'domain=a.com,b.com' -- true
has err "domain= takes one host pattern, not a list (write one rule for each host)"
run "rule: path without /" 125 "$LJ" --allow 'domain=a.com path=api' -- true
has err "path pattern 'api' does not start with '/' (write /api)"
run "rule: bad port" 125 "$LJ" --allow 'domain=a.com port=99999' -- true
has err "invalid port '99999' (expected 1..65535)"
run "rule from LANDJAIL_ALLOW" 125 env LANDJAIL_ALLOW="$(printf 'domain=ok.example\ndomain=a.com colour=red')" "$LJ" -- true
has err "LANDJAIL_ALLOW line 2: rule 'domain=a.com colour=red': unknown key 'colour'"
one_line
run "rule from BOUNDARY_ALLOW" 125 env BOUNDARY_ALLOW='domain=a.com:443' "$LJ" -- true
has err "BOUNDARY_ALLOW: rule 'domain=a.com:443'"
has err "write domain=a.com port=443"
one_line
printf 'allowlist:\n  - domain=ok.example\n  - "domain=a.com method=GTE"\n' >"$T/rule.yaml"
run "rule from a config file" 125 "$LJ" --config "$T/rule.yaml" -- true
has err "rule.yaml:3:5: allowlist: rule 'domain=a.com method=GTE'"
has err "(did you mean GET?)"
one_line
printf 'denylist:\n  - domain=https://a.com\n' >"$T/deny.yaml"
run "deny rule from a config file" 125 "$LJ" --config "$T/deny.yaml" -- true
has err "deny.yaml:2:5: denylist: rule 'domain=https://a.com'"
has err "domain=a.com)"
one_line

# --- config files --------------------------------------------------------------------------
run "--config missing" 125 "$LJ" --config "$T/nope.yaml" -- true
has err "config file '$T/nope.yaml' (from --config) does not exist"
one_line
run "LANDJAIL_CONFIG missing" 125 env LANDJAIL_CONFIG="$T/nope.yaml" "$LJ" -- true
has err "(from LANDJAIL_CONFIG) does not exist"
one_line
run "BOUNDARY_CONFIG missing" 125 env BOUNDARY_CONFIG="$T/nope.yaml" "$LJ" -- true
has err "(from BOUNDARY_CONFIG) does not exist"
one_line
run "LANDJAIL_CONFIG empty" 125 env LANDJAIL_CONFIG= "$LJ" -- true
has err "LANDJAIL_CONFIG is empty: give the path of a config file"
run "config that is a directory" 125 "$LJ" --config "$T" -- true
has err "config file '$T' is a directory"
one_line
printf 'allowlist: [domain=a.com\n' >"$T/syntax.yaml"
run "invalid YAML" 125 "$LJ" --config "$T/syntax.yaml" -- true
has err "syntax.yaml:2:1:"
one_line
printf 'allowlist:\n  - domain=a.com\nallowlst: []\n' >"$T/typo.yaml"
run "unknown key with a typo suggestion" 125 "$LJ" --config "$T/typo.yaml" -- true
has err "typo.yaml:3:1: unknown key 'allowlst' (did you mean 'allowlist'?)"
one_line
printf 'proxy_port: 70000\n' >"$T/port.yaml"
run "bad value in the config file" 125 "$LJ" --config "$T/port.yaml" -- true
has err "port.yaml:1:13: proxy_port: invalid port '70000'"

# --- the proxy's port in use ---------------------------------------------------------------
"$LJP" --listen 127.0.0.1:0 --ca-dir "$HOME/.config/landjail" --disable-audit-logs >"$T/bg.out" 2>"$T/bg.err" &
BG=$!
port=
for _ in $(seq 1 100); do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$T/bg.out")
    [ -n "$port" ] && break
    sleep 0.05
done
if [ -n "$port" ]; then
    run "--proxy-port already in use" 125 "$LJ" --proxy-port "$port" -- true
    has err "landjail: --proxy-port $port: another program is already listening on 127.0.0.1:$port: choose another port, or 0 for a free one"
    one_line
    run "PROXY_PORT already in use" 125 env PROXY_PORT="$port" "$LJ" -- true
    has err "PROXY_PORT=$port: another program is already listening"
    printf 'proxy_port: %s\n' "$port" >"$T/inuse.yaml"
    run "proxy_port already in use names the config line" 125 "$LJ" --config "$T/inuse.yaml" -- true
    has err "inuse.yaml:1:13: proxy_port $port: another program is already listening"
    run "landjail-proxy: --listen on a port in use" 1 "$LJP" --listen "127.0.0.1:$port" --disable-audit-logs
    has err "cannot listen on 127.0.0.1:$port: Address already in use"
    has err "choose another port, or 0 for a free one"
    one_line
else
    not_ok "a landjail-proxy to hold a port did not start: $(cat "$T/bg.err")"
fi
kill "$BG" 2>/dev/null
wait "$BG" 2>/dev/null
BG=

# --- the proxy binary ----------------------------------------------------------------------
mkdir -p "$T/alone"
cp "$LJ" "$T/alone/landjail"
run "landjail-proxy missing" 125 env -u LANDJAIL_PROXY PATH=/usr/bin:/bin "$T/alone/landjail" -- true
has err "landjail-proxy not found (looked for $T/alone/landjail-proxy and in PATH=/usr/bin:/bin)"
has err "set LANDJAIL_PROXY="
has err "--proxy-addr"
one_line
clean
run "LANDJAIL_PROXY that is not a program" 125 env LANDJAIL_PROXY="$T/alone" "$LJ" -- true
has err "LANDJAIL_PROXY=$T/alone: not an executable file; set it to the landjail-proxy program"
one_line
printf '#!/bin/sh\necho "landjail-proxy: unrecognized option" >&2\nexit 2\n' >"$T/oldproxy"
chmod 755 "$T/oldproxy"
run "a landjail-proxy that refuses landjail's options" 125 env LANDJAIL_PROXY="$T/oldproxy" "$LJ" -- true
has err "refused the options landjail gave it"
has err "landjail-proxy --version"
clean

# --- the command ---------------------------------------------------------------------------
run "command not found" 127 "$LJ" -- landjail-no-such-command
has err "landjail: landjail-no-such-command: command not found"
one_line
mkdir -p "$T/bin"
printf '#!/bin/sh\nexit 0\n' >"$T/bin/noexec"
chmod 644 "$T/bin/noexec"
printf '#!/bin/sh\nexit 0\n' >"$T/bin/here"
chmod 755 "$T/bin/here"
printf '#!/nonexistent/interpreter\n' >"$T/bin/badinterp"
chmod 755 "$T/bin/badinterp"
run "not executable" 126 "$LJ" -- "$T/bin/noexec"
has err "$T/bin/noexec: not executable (chmod +x $T/bin/noexec to run it)"
one_line
run "a directory as the command" 126 "$LJ" -- "$T/bin"
has err "$T/bin: not executable: it is a directory, not a program"
one_line
run "an empty command" 127 "$LJ" -- ''
has err "empty command name: the first word after -- is the program to run"
one_line
run "a relative path that does not exist" 127 sh -c 'cd "$1" && "$2" -- bin/nope' sh "$T" "$LJ"
has err "bin/nope: no such file (relative to $T)"
one_line
run "a relative path runs" 0 sh -c 'cd "$1" && "$2" -- bin/here' sh "$T" "$LJ"
run "a program of the current directory, not in PATH" 127 sh -c 'cd "$1/bin" && "$2" -- here' sh "$T" "$LJ"
has err "here: command not found (the here in the current directory runs as ./here)"
one_line
run "a missing #! interpreter" 127 "$LJ" -- "$T/bin/badinterp"
has err "its interpreter '/nonexistent/interpreter' (named on its #! line) was not found"
one_line
clean
run "a subcommand typo" 127 "$LJ" chek
has err "chek: command not found (did you mean the subcommand 'landjail check'?)"
one_line
run "a subcommand after --" 127 "$LJ" -- check
has err "(did you mean the subcommand 'landjail check'?)"

# --- subcommands: usage errors are exit status 2 (landjail(1)) -----------------------------
run "explain without operands" 2 "$LJ" explain
has err "explain needs exactly two operands: METHOD URL"
one_line
run "explain with three operands" 2 "$LJ" explain GET https://x.com/ extra
has err "explain needs exactly two operands"
run "explain with a method that is not a token" 2 "$LJ" explain 'FE@TCH' https://x.com/
has err "invalid HTTP method 'FE@TCH'"
one_line
run "explain with a URL that is not absolute" 2 "$LJ" explain GET x.com
has err "'x.com' is not an absolute URL (expected http://host/path or https://"
one_line
run "check extra" 2 "$LJ" check extra
has err "check takes no operands (got 'extra')"
one_line
run "doctor extra" 2 "$LJ" doctor extra
has err "doctor takes no operands (got 'extra')"
one_line

# --- landjail-proxy on its own: 2 for usage errors, 1 when it cannot start ------------------
run "proxy: unknown flag" 2 "$LJP" --bogus
has err "landjail-proxy: unrecognized option '--bogus' (see landjail-proxy --help)"
one_line
run "proxy: flag missing its value" 2 "$LJP" --listen
has err "option '--listen' needs a value"
run "proxy: an operand" 2 "$LJP" extra
has err "unexpected operand 'extra' (landjail-proxy takes options only"
run "proxy: --threads 0" 2 "$LJP" --threads 0
has err "--threads '0': expected a whole number from 1 to 64"
run "proxy: --listen not loopback" 1 "$LJP" --listen 0.0.0.0:8080
has err "--listen '0.0.0.0:8080': the proxy listens on loopback addresses only"
one_line
run "proxy: --listen with a bad port" 1 "$LJP" --listen 127.0.0.1:70000
has err "--listen '127.0.0.1:70000': invalid port '70000'"
run "proxy: --listen with a name" 1 "$LJP" --listen localhost:8080
has err "'localhost' is not an IP address"
run "proxy: --ready-fd not open" 1 "$LJP" --ready-fd 99
has err "--ready-fd 99: not an open file descriptor"
one_line
run "proxy: bad rule" 1 "$LJP" --allow 'domain=a.com:443'
has err "--allow: rule 'domain=a.com:443'"
has err "write domain=a.com port=443"
one_line
run "proxy: missing config" 1 "$LJP" --config "$T/nope.yaml"
has err "(from --config) does not exist"
run "proxy: --upstream-ca not PEM" 1 "$LJP" --upstream-ca "$T/file"
has err "--upstream-ca $T/file: holds no certificate"
one_line
run "proxy: --ca-dir that is a file" 1 "$LJP" --ca-dir "$T/file"
has err "interception CA: $T/file: create CA directory: exists and is not a directory"
one_line
run "proxy: --audit-log in a missing directory" 1 "$LJP" --audit-log "$T/nodir/a.jsonl"
has err "cannot open the audit file $T/nodir/a.jsonl: No such file or directory"
one_line
run "proxy: --audit-log that is a symlink" 1 "$LJP" --audit-log "$T/audit-link.jsonl"
has err "the audit file $T/audit-link.jsonl is a symbolic link"
one_line
run "proxy: --resolve malformed" 1 "$LJP" --resolve x
has err "--resolve 'x'"

# --- as another user (uid 65534) -----------------------------------------------------------
if [ "$(id -u)" -ne 0 ]; then
    echo "skip: needs root to switch to uid 65534"
else
    chmod 755 "$T"
    U="$T/nobody"
    mkdir -p "$U/tmp" "$U/home"
    chown -R 65534:65534 "$U"
    printf 'allowlist:\n  - domain=a.com\n' >"$T/secret.yaml"
    chmod 600 "$T/secret.yaml"
    run "uid 65534: unreadable config" 125 as_nobody env HOME="$U/home" TMPDIR="$U/tmp" "$LJ" --config "$T/secret.yaml" -- true
    has err "cannot read config file '$T/secret.yaml': Permission denied"
    one_line
    mkdir -p "$T/rohome"
    chmod 555 "$T/rohome"
    # A home that cannot be written: the CA goes to TMPDIR/landjail-ca-UID, with one warning.
    run "uid 65534: HOME not writable, the CA in TMPDIR" 0 as_nobody env HOME="$T/rohome" TMPDIR="$U/tmp" "$LJ" -- true
    has err "warning: $T/rohome/.config/landjail (from default (HOME)) cannot be written (Permission denied, e.g. a read-only home): the interception CA is kept in $U/tmp/landjail-ca-65534 instead (set LANDJAIL_CA_DIR=DIR, ca_dir: DIR in the config file or --ca-dir DIR"
    rm -rf "$U/tmp/landjail-ca-65534"
    # ... unless another user made that directory first (it could hold their CA).
    mkdir -m 700 "$U/tmp/landjail-ca-65534"
    run "uid 65534: HOME not writable, the TMPDIR fallback is another user's" 125 as_nobody env HOME="$T/rohome" TMPDIR="$U/tmp" "$LJ" -- true
    has err "no CA directory can be written: $T/rohome/.config/landjail (from default (HOME)): Permission denied; $U/tmp/landjail-ca-65534 is not a private directory of yours"
    has err "set LANDJAIL_CA_DIR=DIR, ca_dir: DIR in the config file or --ca-dir DIR to keep it in a directory you can write"
    one_line
    rmdir "$U/tmp/landjail-ca-65534"
    mkdir -p "$T/rootca"
    cp -p "$HOME/.config/landjail/ca.pem" "$HOME/.config/landjail/ca-key.pem" "$T/rootca/"
    chmod 700 "$T/rootca"
    run "uid 65534: the CA directory of another user" 125 as_nobody env HOME="$U/home" TMPDIR="$U/tmp" "$LJ" --ca-dir "$T/rootca" -- true
    has err "$T/rootca/ca.pem: stat: Permission denied; use a CA directory of your own with --ca-dir"
    one_line
    chmod 711 "$T/rootca"
    run "uid 65534: a CA key of another user" 125 as_nobody env HOME="$U/home" TMPDIR="$U/tmp" "$LJ" --ca-dir "$T/rootca" -- true
    has err "$T/rootca/ca-key.pem: open: Permission denied; use a CA directory of your own with --ca-dir"
    one_line
    mkdir -p "$T/shared"
    cp -p "$HOME/.config/landjail/ca.pem" "$HOME/.config/landjail/ca-key.pem" "$T/shared/"
    chmod 644 "$T/shared/ca-key.pem"
    run "uid 65534: a CA key of another user readable by all" 125 as_nobody env HOME="$U/home" TMPDIR="$U/tmp" "$LJ" --ca-dir "$T/shared" -- true
    has err "mode 0644 lets other users read the CA key"
    has err "chmod 600 $T/shared/ca-key.pem"
    one_line
    mkdir -p "$T/rodir"
    chmod 555 "$T/rodir"
    run "uid 65534: --ca-dir not writable" 125 as_nobody env HOME="$U/home" TMPDIR="$U/tmp" "$LJ" --ca-dir "$T/rodir" -- true
    has err "$T/rodir: create ca-key.pem: Permission denied; choose a CA directory you can write"
    one_line
    run "uid 65534: --audit-log not writable" 125 as_nobody env HOME="$U/home" TMPDIR="$U/tmp" "$LJ" --audit-log "$T/rodir/a.jsonl" -- true
    has err "--audit-log $T/rodir/a.jsonl: cannot create the audit file in $T/rodir: Permission denied"
    one_line
    run "uid 65534: --upstream-ca unreadable" 125 as_nobody env HOME="$U/home" TMPDIR="$U/tmp" "$LJ" --upstream-ca "$T/secret.yaml" -- true
    has err "--upstream-ca $T/secret.yaml: cannot read it: Permission denied"
    run "uid 65534: TMPDIR not writable" 125 as_nobody env HOME="$U/home" TMPDIR="$T/rodir" "$LJ" -- true
    has err "cannot create the session directory in $T/rodir (TMPDIR): Permission denied"
    one_line
    if [ "$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start 2>/dev/null || echo 1024)" -gt 80 ]; then
        run "uid 65534: --proxy-port below 1024" 125 as_nobody env HOME="$U/home" TMPDIR="$U/tmp" "$LJ" --proxy-port 80 -- true
        has err "--proxy-port 80: cannot listen on 127.0.0.1:80: Permission denied (ports below 1024 need privileges"
        one_line
    else
        echo "skip: unprivileged users may listen on port 80 here"
    fi
    if [ -z "$(ls -A "$U/tmp")" ]; then ok "  no session directory left by uid 65534"; else not_ok "  $U/tmp keeps: $(ls -A "$U/tmp")"; fi
fi

# --- messages reviewed with the rest (lead's files) -----------------------------------------
run "--require with an empty value" 125 "$LJ" --require '' -- true
has err "--require needs a value: landlock, seccomp or landlock,seccomp"
one_line
run "--resolve with a bad port shows the form once" 125 "$LJ" --resolve a:b:c -- true
has err "--resolve 'a:b:c': invalid port 'b' (expected 1..65535); the form is HOST:PORT:ADDR[:PORT2], e.g. example.com:443:127.0.0.1"
one_line
run "explain: a URL without a scheme gets a suggestion" 2 "$LJ" explain GET x.com
has err "'x.com' is not an absolute URL (expected http://host/path or https://…; did you mean https://x.com/?)"
mkdir -p "$T/confdir"
run "a config that is a directory" 125 "$LJ" --config "$T/confdir" -- true
has err "config file '$T/confdir' is a directory: give the path of a YAML file, e.g. $T/confdir/config.yaml"
printf 'allowlist: [a\n' >"$T/syntax.yaml"
run "YAML syntax errors say so, with the place" 125 "$LJ" --config "$T/syntax.yaml" -- true
has err "syntax.yaml:2:1: invalid YAML: end of sequence flow not found"
run "unknown profile" 125 "$LJ" --profile claude -- true
has err "unknown profile 'claude' (available: claude-code, github, package-managers;"
one_line

# No output on stderr anywhere above may come from C++ exceptions or internal errors.
clean
finish

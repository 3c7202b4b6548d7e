#!/bin/sh
# coder/boundary's command line, as landjail takes it (issue 15, item 4): the configs of
# boundary's and Coder's public docs (tests/cli/fixtures/boundary) load as they are; every
# boundary flag with its variable, flags as --flag=true|false; landjail under the names
# boundary and agent-firewall (no subcommands, a later -- for the command, --version on one
# line); the CA directory from XDG_CONFIG_HOME and a read-only home; --log-level error prints
# no warning; and ./install.sh --as-boundary into a scratch PREFIX (real copies that find the
# shim through the landjail-proxy on PATH).
# Usage: LANDJAIL=build/bin/landjail LANDJAIL_PROXY=build/bin/landjail-proxy sh tests/cli/boundary.sh
set -u
LJ=${LANDJAIL:?set LANDJAIL to the landjail binary}
PROXY=${LANDJAIL_PROXY:?set LANDJAIL_PROXY to the landjail-proxy binary}
HERE=$(cd "$(dirname "$0")" && pwd)
FIX=$HERE/fixtures/boundary
T=$(mktemp -d)
chmod 755 "$T"
trap 'chmod -R u+w "$T" 2>/dev/null; rm -rf "$T"' EXIT
export HOME="$T/home"
mkdir -p "$HOME"
# shellcheck source=tests/cli/tap.sh
. "$HERE/tap.sh"
unset BOUNDARY_PPROF BOUNDARY_PPROF_PORT BOUNDARY_USE_REAL_DNS BOUNDARY_NO_USER_NAMESPACE \
      BOUNDARY_UPSTREAM_PROXY LANDJAIL_CA_DIR XDG_CONFIG_HOME LANDJAIL_SHIM 2>/dev/null || true
BIN=$(cd "$(dirname "$PROXY")" && pwd)

# --- the docs' configs load as they are -----------------------------------------------------
for f in "$FIX"/*.yaml; do
    run "check $(basename "$f")" 0 "$LJ" check --config "$f"
    has out "configuration is valid"
done
run "docs' path-only rule loads" 0 "$LJ" check --config "$FIX/coder-rule-examples.yaml"
has err "allow rule 'path=/api/v1/*,/api/v2/*' (from $FIX/coder-rule-examples.yaml:10:5) has no domain= key: it matches every host"
matches out "log_level +warn +\[.*coder-rule-examples.yaml:16:12\]"
matches out "no_user_namespace +true \(no effect\) +\[.*coder-rule-examples.yaml:17:20\]"
run "--strict refuses a rule without domain=" 2 "$LJ" check --strict --config "$FIX/coder-rule-examples.yaml"
has err "--strict: allow rule 'path=/api/v1/*,/api/v2/*'"
run "--strict passes the minimal config" 0 "$LJ" check --strict --config "$FIX/coder-agent-firewall-minimal.yaml"
run "path-only rule allows its paths on any host" 0 "$LJ" explain GET https://any.example/api/v2/x --config "$FIX/coder-rule-examples.yaml"
has out "rule:     path=/api/v1/*,/api/v2/*"
run "and nothing else" 1 "$LJ" explain GET https://any.example/other --config "$FIX/coder-rule-examples.yaml"
run "nsjail in the minimal config warns once" 0 "$LJ" check --config "$FIX/coder-agent-firewall-minimal.yaml"
matches err "jail_type nsjail .* landjail runs its own"
run "newer keys at boundary's defaults are silent" 0 "$LJ" check --config "$FIX/boundary-newer-keys.yaml"
empty err
mkdir -p "$HOME/.config/coder_boundary"
cp "$FIX/agent-firewall-module-default.yaml" "$HOME/.config/coder_boundary/config.yaml"
run "discovered at ~/.config/coder_boundary/config.yaml" 0 "$LJ" check
has out "config file: $HOME/.config/coder_boundary/config.yaml [default location]"
matches out "jail_type +landjail +\[default\]"
rm -rf "$HOME/.config/coder_boundary"

# --- boundary's flags, variables and flag forms --------------------------------------------
run "--allow is one rule, commas and all" 0 "$LJ" check --allow 'method=GET,HEAD domain=a.test path=/x,/y'
has out "allow rules (1):"
run "--log-level WARN" 0 "$LJ" check --log-level WARN
matches out "log_level +warn +\[--log-level\]"
run "BOUNDARY_LOG_LEVEL=Debug" 0 env BOUNDARY_LOG_LEVEL=Debug "$LJ" check
matches out "log_level +debug +\[BOUNDARY_LOG_LEVEL\]"
run "--pprof --pprof-port" 0 "$LJ" check --pprof --pprof-port 7777
matches out "pprof_enabled +true \(no effect\) +\[--pprof\]"
matches out "pprof_port +7777 \(no effect\) +\[--pprof-port\]"
has err "pprof (from --pprof) has no effect"
run "--pprof=false beats BOUNDARY_PPROF" 0 env BOUNDARY_PPROF=true "$LJ" check --pprof=false
matches out "pprof_enabled +false \(no effect\) +\[--pprof\]"
lacks err "pprof"
run "BOUNDARY_* variables" 0 env BOUNDARY_USE_REAL_DNS=1 BOUNDARY_NO_USER_NAMESPACE=T BOUNDARY_PPROF_PORT=6061 "$LJ" check
matches out "use_real_dns +true \(no effect\) +\[BOUNDARY_USE_REAL_DNS\]"
matches out "no_user_namespace +true \(no effect\) +\[BOUNDARY_NO_USER_NAMESPACE\]"
matches out "pprof_port +6061 \(no effect\) +\[BOUNDARY_PPROF_PORT\]"
run "an empty variable is not set" 0 env DISABLE_AUDIT_LOGS= BOUNDARY_PPROF= "$LJ" check
matches out "disable_audit_logs +false +\[default\]"
run "--disable-audit-logs=true" 0 "$LJ" check --disable-audit-logs=true
matches out "disable_audit_logs +true +\[--disable-audit-logs\]"
run "--disable-audit-logs=0 beats DISABLE_AUDIT_LOGS" 0 env DISABLE_AUDIT_LOGS=1 "$LJ" check --disable-audit-logs=0
matches out "disable_audit_logs +false +\[--disable-audit-logs\]"
run "--upstream-proxy warns" 0 "$LJ" check --upstream-proxy http://proxy.corp:3128
has err "upstream_proxy (from --upstream-proxy) is not supported"
run "a flag with a bad word" 2 "$LJ" check --use-real-dns=maybe
has err "option '--use-real-dns' takes true or false, not 'maybe'"
run "a bad BOUNDARY_ boolean" 2 env BOUNDARY_NO_USER_NAMESPACE=sometimes "$LJ" check
has err "BOUNDARY_NO_USER_NAMESPACE: expected true or false, got 'sometimes'"
run "--jail-type nsjail" 0 "$LJ" check --jail-type nsjail
matches err "jail_type nsjail \(from --jail-type\)"

# --- the CA directory -----------------------------------------------------------------------
run "XDG_CONFIG_HOME" 0 env XDG_CONFIG_HOME="$T/xdg" "$LJ" check
matches out "ca_dir +$T/xdg/landjail +\[XDG_CONFIG_HOME\]"
printf 'ca_dir: %s/fileca\n' "$T" >"$T/ca.yaml"
run "ca_dir in the config" 0 env XDG_CONFIG_HOME="$T/xdg" "$LJ" check --config "$T/ca.yaml"
matches out "ca_dir +$T/fileca +\[$T/ca.yaml:1:9\]"
run "LANDJAIL_CA_DIR beats ca_dir" 0 env LANDJAIL_CA_DIR="$T/envca" "$LJ" check --config "$T/ca.yaml"
matches out "ca_dir +$T/envca +\[LANDJAIL_CA_DIR\]"

# --- boundary's names -----------------------------------------------------------------------
mkdir -p "$T/copies"
cp "$LJ" "$T/copies/boundary"
cp "$LJ" "$T/copies/agent-firewall"
for n in boundary agent-firewall; do
    run "$n --version" 0 "$T/copies/$n" --version
    if [ "$(wc -l <"$T/out")" -eq 1 ]; then ok "  one line"; else not_ok "  not one line"; fi
    run "$n --help" 0 "$T/copies/$n" --help
    has out "Usage: $n [flags] -- command [args...]"
done
run "boundary check runs a command named check" 127 "$T/copies/boundary" check
has err "check: command not found"
# The copies find landjail-proxy on PATH and, through it, the shim: no warning about it.
export PATH="$BIN:$PATH"
run "boundary -- COMMAND, a later -- for the command" 0 "$T/copies/boundary" --allow domain=a.test -- sh -c 'printf "%s|" "$@"' sh a -- --allow b
has out "a|--|--allow|b|"
lacks err "shim"
run "agent-firewall --pprof=true --use-real-dns=false -- true" 0 "$T/copies/agent-firewall" --pprof=true --use-real-dns=false -- true
if [ "$(grep -c pprof "$T/err")" -eq 1 ]; then ok "  one pprof warning"; else not_ok "  pprof warnings: $(grep -c pprof "$T/err")"; fi
run "--log-level error: no warning" 0 "$T/copies/boundary" --log-level ERROR --pprof --jail-type nsjail -- true
lacks err "warning"
run "a bad flag word fails before the command" 125 "$T/copies/boundary" --no-user-namespace=maybe -- true
has err "'--no-user-namespace' takes true or false"

# --- a read-only home (as uid 65534): the CA falls back to a writable place ---------------
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null 2>&1; then
    mkdir -p "$T/rohome" "$T/tmp65534"
    chown 65534:65534 "$T/tmp65534"
    run "read-only home" 0 env HOME="$T/rohome" TMPDIR="$T/tmp65534" \
        setpriv --reuid=65534 --regid=65534 --clear-groups "$LJ" -- true
    has err "$T/rohome/.config/landjail (from default (HOME)) cannot be written"
    has err "the interception CA is kept in $T/tmp65534/landjail-ca-65534 instead"
    if [ -s "$T/tmp65534/landjail-ca-65534/ca.pem" ]; then ok "  CA in the fallback"; else not_ok "  no CA in the fallback"; fi
    run "a named CA directory is not replaced" 125 env HOME="$T/rohome" TMPDIR="$T/tmp65534" LANDJAIL_CA_DIR="$T/rohome/ca" \
        setpriv --reuid=65534 --regid=65534 --clear-groups "$LJ" -- true
    lacks err "instead"
else
    echo "# skipped: the read-only home case needs root and setpriv"
fi

# --- ./install.sh --as-boundary into a scratch PREFIX ---------------------------------------
SRC=$(cd "$HERE/../.." && pwd)
if [ -x "$SRC/install.sh" ] && make --no-print-directory -C "$SRC" -q all 2>/dev/null; then
    P="$T/prefix"
    run "install.sh --as-boundary" 0 "$SRC/install.sh" --no-deps --as-boundary --prefix "$P"
    for n in boundary agent-firewall; do
        if [ -f "$P/bin/$n" ] && [ ! -L "$P/bin/$n" ] && cmp -s "$P/bin/$n" "$P/bin/landjail"; then
            ok "  $n is a copy of landjail"
        else
            not_ok "  $n is not a real copy of landjail"
        fi
    done
    run "installed boundary --version" 0 "$P/bin/boundary" --version
    run "install.sh --boundary-dir" 0 "$SRC/install.sh" --no-deps --boundary-dir "$T/local/bin" --prefix "$P"
    run "a copy in ~/.local/bin finds the shim" 0 env PATH="$P/bin:/usr/bin:/bin" "$T/local/bin/boundary" --allow domain=a.test -- true
    lacks err "shim"
    # Coder's module installer copies a boundary release over `boundary`: landjail is intact.
    cp /bin/true "$P/bin/boundary"
    if cmp -s "$P/bin/landjail" "$LJ"; then ok "  landjail intact after cp over boundary"; else not_ok "  landjail changed"; fi
    run "uninstall" 0 "$SRC/install.sh" --uninstall --prefix "$P"
    if [ -e "$P/bin/boundary" ] && [ ! -e "$P/bin/agent-firewall" ] && [ ! -e "$P/bin/landjail" ]; then
        ok "  our copy removed, the other boundary kept"
    else
        not_ok "  uninstall left: $(ls "$P/bin" 2>/dev/null | tr '\n' ' ')"
    fi
else
    echo "# skipped: install.sh needs an up-to-date build (make all)"
fi

finish

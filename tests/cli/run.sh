#!/bin/sh
# CLI tests for `landjail check`, `landjail explain`, `landjail doctor` and
# `landjail -- COMMAND`: exit statuses, first words, the child's environment, and the error
# messages users see. Usage: LANDJAIL=path/to/landjail sh tests/cli/run.sh
# `landjail -- COMMAND` starts the landjail-proxy next to $LANDJAIL (or $LANDJAIL_PROXY when
# set); the commands run here never open a connection.
set -u
LJ=${LANDJAIL:?set LANDJAIL to the landjail binary}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
# No config discovered from the developer's home (tap.sh clears the variables).
export HOME="$T/home"
mkdir -p "$HOME"
# shellcheck source=tests/cli/tap.sh
. "$(dirname "$0")/tap.sh"
first_word() {
    w=$(head -n 1 "$T/out" | cut -d' ' -f1)
    if [ "$w" = "$1" ]; then ok "  first word is $1"; else not_ok "  first word '$w', want $1"; fi
}

# --- the issue's acceptance commands ------------------------------------------------------
run "explain subdomain allowed by domain=" 0 "$LJ" explain GET https://api.github.com/repos --allow domain=github.com
first_word allow
has out "rule:     domain=github.com"
run "explain apex denied by *.github.com" 1 "$LJ" explain GET https://github.com/ --allow 'domain=*.github.com'
first_word deny
has out "reason:   no_rule_matched"
run "explain dot segments cannot escape path=/api/*" 1 "$LJ" explain GET https://example.com/api/../admin --allow 'domain=example.com path=/api/*'
first_word deny
has out "path=/admin"
run "explain encoded dot segments cannot escape" 1 "$LJ" explain GET 'https://example.com/api/%2e%2e/admin' --allow 'domain=example.com path=/api/*'
first_word deny
run "explain path under /api/ allowed" 0 "$LJ" explain GET 'https://example.com/api/v1/x?q=/admin' --allow 'domain=example.com path=/api/*'
has out "query:    not matched"

printf 'allowlist:\n  - domain=a.com\nallowlst: []\n' >"$T/bad.yaml"
(cd "$T" && "$LJ" check --config bad.yaml >"$T/out" 2>"$T/err"); st=$?
if [ $st -ne 0 ]; then ok "check unknown key fails (exit $st)"; else not_ok "check unknown key exit 0"; fi
has err "bad.yaml:3:1: unknown key 'allowlst' (did you mean 'allowlist'?)"

# --- explain details ------------------------------------------------------------------------
run "explain method list" 1 "$LJ" explain POST https://api.github.com/ --allow 'domain=github.com method=GET,HEAD'
has out "to allow: --allow 'domain=api.github.com method=POST path=/'"
run "explain lower-case method" 0 "$LJ" explain get https://api.github.com/ --allow 'domain=github.com method=GET'
run "explain deny rule overrides" 1 "$LJ" explain DELETE https://api.github.com/x --allow domain=github.com --deny 'domain=github.com method=DELETE'
has out "rule:     domain=github.com method=DELETE  [--deny]"
has out "reason:   deny_rule_matched"
run "explain first match named" 0 "$LJ" explain GET https://a.example.com/ --allow 'domain=example.com method=GET' --allow domain=a.example.com
has out "rule:     domain=example.com method=GET  [--allow]"
run "explain case and trailing dot" 0 "$LJ" explain GET 'https://API.GitHub.COM./x' --allow domain=github.com
has out "host=api.github.com"
run "explain IPv6 literal" 0 "$LJ" explain GET 'http://[::1]:8080/' --allow 'domain=[::1] port=8080'
run "explain port rule" 1 "$LJ" explain GET 'https://example.com:8443/' --allow 'domain=example.com port=443'
has out "port=8443"
run "explain numeric IPv4 form canonicalized" 0 "$LJ" explain GET 'http://127.1/' --allow 'domain=127.0.0.1'
has out "host=127.0.0.1"
run "explain with no rules denies" 1 "$LJ" explain GET https://example.com/
run "explain userinfo refused" 2 "$LJ" explain GET 'https://user:secret@example.com/' --allow domain=example.com
has err "user information"
run "explain ftp refused" 2 "$LJ" explain GET 'ftp://example.com/' --allow domain=example.com
has err "unsupported URL scheme 'ftp'"
run "explain needs two operands" 2 "$LJ" explain GET
run "explain unknown flag" 2 "$LJ" explain --bogus GET https://x.com/
has err "unrecognized option '--bogus'"
run "explain bad rule names the rule" 2 "$LJ" explain GET https://x.com/ --allow 'domain=https://x.com'
has err "rule 'domain=https://x.com'"
has err "--allow"
run "explain empty rule is an error" 2 "$LJ" explain GET https://x.com/ --allow ''
has err "empty rule"
run "rule without domain= matches every host, with a warning" 0 "$LJ" explain GET https://x.com/ --allow 'method=GET'
has err "allow rule 'method=GET' (from --allow) has no domain= key: it matches every host"
run "explain IDN rule rejected" 2 "$LJ" explain GET https://x.com/ --allow 'domain=bücher.de'
has err "xn--"
run "explain flag needs a value" 2 "$LJ" explain GET https://x.com/ --allow
has err "needs a value"

# --- config discovery and precedence --------------------------------------------------------
mkdir -p "$HOME/.config/coder_boundary"
cat >"$HOME/.config/coder_boundary/config.yaml" <<'Y'
jail_type: landjail
log_dir: /tmp/boundary-logs
proxy_port: 8080
log_level: warn
allowlist:
  - domain=github.com
  - "method=GET,HEAD domain=api.example.com path=/v1/*"
Y
run "check discovers ~/.config/coder_boundary" 0 "$LJ" check
has out "coder_boundary/config.yaml [default location]"
has out "domain=github.com"
has out "config.yaml:6:5]"
has out "proxy_port          8080"
has out "audit_file          /tmp/boundary-logs/audit.jsonl"
mkdir -p "$HOME/.config/landjail"
printf 'allowlist:\n  - domain=landjail.example\nlog_level: info\n' >"$HOME/.config/landjail/config.yaml"
run "landjail config preferred over boundary's" 0 "$LJ" check
has out "domain=landjail.example"
has out "log_level           info"
run "flag beats env beats file" 0 env LANDJAIL_LOG_LEVEL=debug "$LJ" check --log-level error
has out "log_level           error                        [--log-level]"
run "env beats file" 0 env LANDJAIL_LOG_LEVEL=debug "$LJ" check
has out "log_level           debug                        [LANDJAIL_LOG_LEVEL]"
run "boundary env names" 0 env BOUNDARY_LOG_LEVEL=error PROXY_PORT=9999 "$LJ" check
has out "[BOUNDARY_LOG_LEVEL]"
has out "9999"
run "bad env port" 2 env PROXY_PORT=http "$LJ" check
has err "PROXY_PORT: invalid port 'http'"
run "rules accumulate in order" 0 env LANDJAIL_ALLOW="$(printf 'domain=one.example\n\n# comment\ndomain=two.example')" BOUNDARY_ALLOW='domain=three.example' "$LJ" check --allow domain=four.example
has out "2   domain=one.example"
has out "[LANDJAIL_ALLOW line 1]"
has out "3   domain=two.example"
has out "[LANDJAIL_ALLOW line 4]"
has out "4   domain=three.example"
has out "5   domain=four.example"
run "bad env rule names the variable" 2 env LANDJAIL_ALLOW='domain=a.com:443' "$LJ" check
has err "LANDJAIL_ALLOW line 1: rule 'domain=a.com:443'"
run "nsjail warns and runs landjail" 0 "$LJ" check --jail-type nsjail
has err "warning: jail_type nsjail"
run "explicit missing config is an error" 2 "$LJ" check --config "$T/nope.yaml"
has err "nope.yaml' (from --config) does not exist"
run "LANDJAIL_CONFIG missing is an error" 2 env LANDJAIL_CONFIG="$T/nope.yaml" "$LJ" check
has err "(from LANDJAIL_CONFIG) does not exist"
run "BOUNDARY_CONFIG is used" 0 env BOUNDARY_CONFIG="$HOME/.config/coder_boundary/config.yaml" "$LJ" check
has out "[BOUNDARY_CONFIG]"

printf 'allowlist:\n  - domain=ok.example\n  - "domain=bad.example:443"\n' >"$T/rule.yaml"
run "bad rule in file located" 2 "$LJ" check --config "$T/rule.yaml"
has err "rule.yaml:3:5: allowlist: rule 'domain=bad.example:443'"
printf 'proxy_port: lots\n' >"$T/type.yaml"
run "wrong type located" 2 "$LJ" check --config "$T/type.yaml"
has err "type.yaml:1:13: proxy_port: invalid port 'lots'"
printf 'allowlist:\n  - domain=a.com\n  - ""\n' >"$T/empty.yaml"
run "empty rule in file" 2 "$LJ" check --config "$T/empty.yaml"
has err "empty.yaml:3:5: allowlist: empty rule"
printf 'allowlist: [domain=a.com\n' >"$T/syntax.yaml"
run "YAML syntax error located" 2 "$LJ" check --config "$T/syntax.yaml"
has err "syntax.yaml:"
run "config is a directory" 2 "$LJ" check --config "$T"
has err "is a directory"
printf 'allowlist: []\n' >"$T/none.yaml"
run "no rules: everything denied" 0 "$LJ" check --config "$T/none.yaml"
has out "every request will be denied"

# --- top level ------------------------------------------------------------------------------
run "--version" 0 "$LJ" --version
has out "landjail "
run "--help lists explain" 0 "$LJ" --help
has out "explain METHOD URL"
run "no command is a failure" 125 "$LJ"
has err "no command given"
run "unknown top-level flag" 125 "$LJ" --frobnicate -- true
has err "unrecognized option '--frobnicate'"
run "check takes no operands" 2 "$LJ" check extra
has err "check takes no operands"

# --- doctor ---------------------------------------------------------------------------------
# From here on, a home without the config files written above (the proxy creates its CA here).
export HOME="$T/jail-home"
mkdir -p "$HOME"
run "doctor: this host can run the jail" 0 "$LJ" doctor
has out "protection:"
has out "Landlock ABI"
lacks out "^protection: +none"
run "doctor takes no operands" 2 "$LJ" doctor extra-operand
has err "doctor takes no operands (got 'extra-operand')"
run "doctor with an unknown --require layer" 2 "$LJ" doctor --require bogus
has err "unknown layer 'bogus'"

# --- landjail -- COMMAND: exit statuses -----------------------------------------------------
run "jail: true" 0 "$LJ" -- true
empty out
run "jail: false" 1 "$LJ" -- false
run "jail: the command's own status" 7 "$LJ" -- sh -c 'exit 7'
run "jail: 128+N when the command dies of signal N" 143 "$LJ" -- sh -c 'kill -TERM $$'
run "jail: the command owns standard output" 0 "$LJ" -- echo hello from the jail
has out "hello from the jail"
run "jail: missing command is 127" 127 "$LJ" -- /nonexistent
has err "/nonexistent: no such file"
run "jail: command not in PATH is 127" 127 "$LJ" -- landjail-no-such-command
has err "landjail-no-such-command: command not found"
mkdir -p "$T/bin"
printf '#!/bin/sh\nexit 0\n' >"$T/bin/noexec"
chmod 644 "$T/bin/noexec"
run "jail: non-executable file is 126" 126 "$LJ" -- "$T/bin/noexec"
has err "noexec: not executable"
run "jail: non-executable in PATH is 126" 126 env PATH="$T/bin:/usr/bin:/bin" "$LJ" -- noexec
has err "noexec: found in PATH but not executable"
run "jail: no command is 125" 125 "$LJ" --allow domain=example.com
has err "no command given"
run "jail: bad rule is 125" 125 "$LJ" --allow 'domain=https://x.com' -- true
has err "rule 'domain=https://x.com'"
run "jail: --require with an unknown layer is 125" 125 "$LJ" --require bogus -- true
has err "unknown layer 'bogus'"
run "jail: --require landlock,seccomp holds here" 0 "$LJ" --require landlock,seccomp -- true
run "jail: bad --proxy-addr is 125" 125 "$LJ" --proxy-addr notanaddress -- true
has err "--proxy-addr 'notanaddress'"
run "jail: --proxy-port 0 is an ephemeral port" 0 "$LJ" --proxy-port 0 -- true
run "jail: LANDJAIL_PROXY that is not a program is 125" 125 env LANDJAIL_PROXY=/nonexistent "$LJ" -- true
has err "LANDJAIL_PROXY=/nonexistent"

# --- landjail -- COMMAND: the command's environment (DESIGN §7) -----------------------------
mkdir -p "$T/tmp"
run "jail: env" 0 env NO_PROXY=example.com no_proxy=example.com TMPDIR="$T/tmp" "$LJ" -- env
matches out "^HTTP_PROXY=http://127\.0\.0\.1:[0-9]+$"
matches out "^HTTPS_PROXY=http://127\.0\.0\.1:[0-9]+$"
matches out "^http_proxy=http://127\.0\.0\.1:[0-9]+$"
matches out "^https_proxy=http://127\.0\.0\.1:[0-9]+$"
matches out "^ALL_PROXY=http://127\.0\.0\.1:[0-9]+$"
matches out "^LANDJAIL=1$"
matches out "^NODE_USE_ENV_PROXY=1$"
matches out "^SSL_CERT_FILE=.+/ca-bundle\.pem$"
matches out "^CURL_CA_BUNDLE=.+/ca-bundle\.pem$"
matches out "^REQUESTS_CA_BUNDLE=.+/ca-bundle\.pem$"
has out "NODE_EXTRA_CA_CERTS=$HOME/.config/landjail/ca.pem"
lacks out "^NO_PROXY="
lacks out "^no_proxy="
# The session directory (SSL_CERT_FILE's) is under TMPDIR, and gone once landjail exits.
bundle=$(sed -n 's/^SSL_CERT_FILE=//p' "$T/out")
session=$(dirname "${bundle:-/}")
case $session in
    "$T/tmp/landjail."*) ok "  the session directory $session is under TMPDIR" ;;
    *) not_ok "  the session directory '$session' is not under TMPDIR=$T/tmp" ;;
esac
if [ -n "$bundle" ] && [ ! -e "$session" ]; then
    ok "  the session directory is removed after the run"
else
    not_ok "  the session directory '$session' is still there"
fi
# While the command runs, the bundle exists and ends with the interception CA.
run "jail: the CA bundle exists during the run" 0 env TMPDIR="$T/tmp" "$LJ" -- sh -c \
    'test -s "$SSL_CERT_FILE" && tail -c 4096 "$SSL_CERT_FILE" | tr -d "\n" | grep -qF -- "$(tr -d "\n" <"$NODE_EXTRA_CA_CERTS" | tail -c 1024)" && echo bundle-ok'
has out "bundle-ok"
if [ -z "$(ls -A "$T/tmp")" ]; then
    ok "  TMPDIR is empty after the runs"
else
    not_ok "  TMPDIR keeps: $(ls -A "$T/tmp")"
fi

# --- profiles (--profile NAME, issue 6) ---------------------------------------------------
# The shipped profiles are found next to the binary (BIN/../share/landjail/profiles: the
# build tree mirrors the installed layout).
run "check --profile claude-code lists its domains" 0 "$LJ" check --profile claude-code
has out "profile: claude-code ["
for d in 'api\.anthropic\.com' 'statsig\.anthropic\.com' 'claude\.ai' 'platform\.claude\.com' '\*\.sentry\.io'; do
    matches out "^  [0-9]+ +domain=$d +\[profile claude-code: .*claude-code.yaml:[0-9]+:[0-9]+\]"
done
run "explain: the Messages API is allowed by claude-code" 0 "$LJ" explain POST https://api.anthropic.com/v1/messages --profile claude-code
has out "rule:     domain=api.anthropic.com  [profile claude-code:"
run "explain: sentry ingest hosts (several labels) are allowed" 0 "$LJ" explain POST https://o1.ingest.us.sentry.io/api/1/envelope/ --profile claude-code
run "explain: sentry.io itself is not (only its subdomains)" 1 "$LJ" explain GET https://sentry.io/ --profile claude-code
run "explain: anything else is denied under claude-code" 1 "$LJ" explain GET https://example.com/ --profile claude-code
run "github: git clone's POST is allowed" 0 "$LJ" explain POST https://github.com/o/r.git/git-upload-pack --profile github
run "github: raw files" 0 "$LJ" explain GET https://raw.githubusercontent.com/o/r/main/README.md --profile github
run "package-managers: a download" 0 "$LJ" explain GET https://files.pythonhosted.org/packages/x.whl --profile package-managers
run "package-managers: npm audit's POST" 0 "$LJ" explain POST https://registry.npmjs.org/-/npm/v1/security/advisories/bulk --profile package-managers
run "package-managers: publishing (PUT) is denied" 1 "$LJ" explain PUT https://registry.npmjs.org/some-package --profile package-managers
run "package-managers: uploading to PyPI (POST) is denied" 1 "$LJ" explain POST https://pypi.org/legacy/ --profile package-managers
printf 'allowlist:\n  - domain=github.com\n  - domain=config.example\n' >"$T/base.yaml"
run "profiles are repeatable and merge after the config, before --allow" 0 "$LJ" check \
    --config "$T/base.yaml" --profile github --profile claude-code --allow domain=last.example
matches out "^  1 +domain=github.com +\[.*base.yaml:2:5\]"
matches out "^  3 +domain=github.com +\[profile github:"
matches out "^  6 +domain=api.anthropic.com +\[profile claude-code:"
matches out "^  11 +domain=last.example +\[--allow\]"
has out "profile: github ["
run "a profile given twice is read once" 0 "$LJ" check --profile github --profile github
has out "allow rules (3):"
run "unknown profile" 2 "$LJ" check --profile claude
has err "unknown profile 'claude' (available: claude-code, github, package-managers; looked for claude.yaml in"
run "unknown profile stops a run before the command (125)" 125 "$LJ" --profile nope -- echo ran
has err "unknown profile 'nope'"
lacks out "ran"
run "a profile name is not a path" 2 "$LJ" check --profile ../etc
has err "--profile ../etc: no such file"
run "a profile name with odd characters" 2 "$LJ" check --profile 'a b'
has err "a profile name has only letters, digits"
mkdir -p "$HOME/.config/landjail/profiles"
printf 'allowlist:\n  - domain=mine.example\n' >"$HOME/.config/landjail/profiles/github.yaml"
run "a user profile in ~/.config/landjail/profiles comes first" 0 "$LJ" check --profile github
has out "domain=mine.example"
lacks out "domain=githubusercontent.com"
rm "$HOME/.config/landjail/profiles/github.yaml"
printf 'allowlist:\n  - domain=path.example\ndenylist:\n  - domain=path.example path=/admin/*\n' >"$T/p.yaml"
run "a profile given by path, with a denylist" 1 "$LJ" explain GET https://path.example/admin/x --profile "$T/p.yaml"
has out "reason:   deny_rule_matched"
printf 'log_dir: /tmp/x\nallowlist:\n  - domain=a.example\n' >"$T/settings-profile.yaml"
run "a profile may set only rules" 2 "$LJ" check --profile "$T/settings-profile.yaml"
has err "sets 'log_dir': a profile may only set allowlist and denylist"
printf 'allowlist:\n  - domain=ok.example\n  - "domain=https://bad.example"\n' >"$T/bad-profile.yaml"
run "a bad rule in a profile is located" 2 "$LJ" check --profile "$T/bad-profile.yaml"
has err "--profile $T/bad-profile.yaml: $T/bad-profile.yaml:3:5: allowlist: rule 'domain=https://bad.example'"
if [ -n "${LANDJAIL_PROXY:-}" ]; then
    run "landjail-proxy: unknown profile" 1 "$LANDJAIL_PROXY" --profile nope
    has err "unknown profile 'nope'"
fi

finish

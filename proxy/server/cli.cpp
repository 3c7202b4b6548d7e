// SPDX-License-Identifier: Apache-2.0
#include "proxy/server/cli.hpp"

#include <array>
#include <charconv>
#include <string_view>

namespace lj::proxy {
namespace {

constexpr std::array kTable = {
    OptSpec{"listen", 'l', "ADDR:PORT",
            "loopback address to listen on (default 127.0.0.1:0: a free ephemeral port)", false},
    OptSpec{"ready-fd", 0, "N",
            "when listening, write 'ADDR:PORT' and a newline to fd N and close it", false},
    OptSpec{"event-fd", 0, "N",
            "add the audit events landjail's supervisor writes to fd N (JSON lines) to this "
            "session's stream",
            false},
    OptSpec{"clients-fd", 0, "N",
            "landjail's table of the process behind each client port (fd N, shared memory)", false},
    OptSpec{"config", 'c', "PATH", "read this config file (default: discovered as by landjail)",
            false},
    OptSpec{"allow", 'a', "RULE", "allow requests matching RULE", true},
    OptSpec{"deny", 0, "RULE", "deny requests matching RULE even when an allow rule matches", true},
    OptSpec{"profile", 0, "NAME", "add the rules of a profile (a name, or the path of a YAML file)",
            true},
    OptSpec{"ca-dir", 0, "DIR",
            "directory of the interception CA (ca.pem, ca-key.pem; default ~/.config/landjail)",
            false},
    OptSpec{"upstream-ca", 0, "FILE",
            "also trust the CA certificates in FILE when verifying upstream servers", false},
    OptSpec{"resolve", 0, "HOST:PORT:ADDR[:PORT2]",
            "connect to ADDR (port PORT2) for HOST:PORT instead of resolving HOST", true},
    OptSpec{"audit-log", 0, "PATH", "append the audit trail (JSON lines) to PATH", false},
    OptSpec{"audit-socket", 0, "PATH",
            "also send the audit trail (JSON lines) to the unix stream socket at PATH", false},
    OptSpec{"disable-audit-logs", 0, nullptr, "write no audit events", false},
    OptSpec{"audit-required", 0, nullptr,
            "answer 503 instead of forwarding while the audit trail cannot be written", false},
    OptSpec{"log-level", 0, "LEVEL", "error, warn (default), info or debug", false},
    OptSpec{"session-id", 0, "ID",
            "the audit session id (default: a random UUID; landjail passes its own)", false},
    OptSpec{"threads", 0, "N",
            "worker threads, each with its own event loop (default: one per core, at most 4)",
            false},
    OptSpec{"max-connections", 0, "N",
            "serve at most N client connections at once, answer more with 503 (default: what "
            "the file descriptor limit allows, at most 4096)",
            false},
    OptSpec{"header-timeout", 0, "SECONDS", "time allowed to send request headers (default 30)",
            false},
    OptSpec{"idle-timeout", 0, "SECONDS",
            "close a body or tunnel after this long without traffic (default 600)", false},
    OptSpec{"upstream-timeout", 0, "SECONDS",
            "time allowed to connect and to receive response headers; then 504 (default 300)",
            false},
    OptSpec{"version", 0, nullptr, "print the version and exit", false},
    OptSpec{"help", 'h', nullptr, "print this help and exit", false},
};

Result<unsigned long> number(const OptSpec& spec, const std::string& value, unsigned long min,
                             unsigned long max) {
    unsigned long n = 0;
    const char* end = value.data() + value.size();
    auto [ptr, ec] = std::from_chars(value.data(), end, n);
    if (value.empty() || ec != std::errc() || ptr != end || n < min || n > max) {
        return make_error("--" + std::string(spec.long_name) + " '" + value +
                          "': expected a whole number from " + std::to_string(min) + " to " +
                          std::to_string(max));
    }
    return n;
}

Status store(ProxyOptions& o, const OptSpec& spec, const std::string& v) {
    const std::string_view name = spec.long_name;
    auto seconds = [&](std::chrono::milliseconds& out) -> Status {
        auto n = number(spec, v, 1, 86400);
        if (!n) {
            return n.error();
        }
        out = std::chrono::seconds(*n);
        return {};
    };
    // --ready-fd, --event-fd, --clients-fd: a file descriptor number.
    auto fd = [&](std::optional<int>& out) -> Status {
        auto n = number(spec, v, 0, 1 << 20);
        if (!n) {
            return n.error();
        }
        out = static_cast<int>(*n);
        return {};
    };
    if (name == "listen") {
        o.listen = v;
    } else if (name == "ready-fd") {
        return fd(o.ready_fd);
    } else if (name == "clients-fd") {
        return fd(o.clients_fd);
    } else if (name == "event-fd") {
        return fd(o.event_fd);
    } else if (name == "config") {
        o.config = v;
    } else if (name == "allow") {
        o.flags.allow.push_back(v);
    } else if (name == "deny") {
        o.flags.deny.push_back(v);
    } else if (name == "profile") {
        o.flags.profiles.push_back(v);
    } else if (name == "ca-dir") {
        o.ca_dir = v;
    } else if (name == "upstream-ca") {
        o.upstream_ca = v;
    } else if (name == "resolve") {
        o.resolve.push_back(v);
    } else if (name == "audit-log") {
        o.flags.audit_log = v;
    } else if (name == "audit-socket") {
        o.flags.audit_socket = v;
    } else if (name == "disable-audit-logs") {
        o.flags.disable_audit_logs = true;
    } else if (name == "audit-required") {
        o.flags.audit_required = true;
    } else if (name == "log-level") {
        o.flags.log_level = v;
    } else if (name == "session-id") {
        if (v.empty() || v.size() > 128) {
            return make_error("--session-id: expected 1 to 128 characters");
        }
        o.session_id = v;
    } else if (name == "threads") {
        auto n = number(spec, v, 1, 64);
        if (!n) {
            return n.error();
        }
        o.threads = static_cast<unsigned>(*n);
    } else if (name == "max-connections") {
        auto n = number(spec, v, 1, policy::kMaxConnectionsLimit);
        if (!n) {
            return n.error();
        }
        o.flags.max_connections = v;
    } else if (name == "header-timeout") {
        return seconds(o.timeouts.header);
    } else if (name == "idle-timeout") {
        return seconds(o.timeouts.idle);
    } else if (name == "upstream-timeout") {
        return seconds(o.timeouts.upstream);
    } else if (name == "version") {
        o.version = true;
    } else if (name == "help") {
        o.help = true;
    }
    return {};
}

}  // namespace

std::span<const OptSpec> proxy_options() {
    return kTable;
}

Result<ProxyOptions> parse_proxy_cli(int argc, char** argv) {
    ProxyOptions o;
    auto first =
        parse_options(argc, argv, kTable, true, "landjail-proxy",
                      [&](const OptSpec& spec, const std::string& v) { return store(o, spec, v); });
    if (!first) {
        return first.error();
    }
    if (*first < argc) {
        return make_error("unexpected operand '" + std::string(argv[*first]) +
                          "' (landjail-proxy takes options only; see landjail-proxy --help)");
    }
    return o;
}

std::string proxy_help() {
    return "Usage: landjail-proxy [OPTIONS]\n"
           "\n"
           "The landjail HTTP(S) proxy: forwards absolute-form requests and CONNECT tunnels\n"
           "(TLS intercepted with a local CA) that the policy allows, answers the rest with 403,\n"
           "and writes one audit event per request.\n"
           "\n"
           "Options:\n" +
           format_options(kTable) +
           "\n"
           "Rules are 'key=value ...' with the keys domain, method, path and port; see "
           "landjail(1).\n"
           "SIGTERM or SIGINT: stop accepting, finish the requests in flight, flush the audit, "
           "exit 0.\n";
}

}  // namespace lj::proxy

// SPDX-License-Identifier: Apache-2.0
#include "proxy/server/cli.hpp"

#include <array>
#include <charconv>
#include <string_view>

namespace lj::proxy {
namespace {

using Row = OptRow<ProxyOptions>;

/// --ready-fd, --event-fd, --clients-fd: a file descriptor number.
template <std::optional<int> ProxyOptions::*M>
Status fd_number(ProxyOptions& o, const std::string& v, std::string_view name) {
    auto n = option_number(name, v, 0, 1 << 20);
    if (!n) {
        return n.error();
    }
    o.*M = static_cast<int>(*n);
    return {};
}

/// --header-timeout, --idle-timeout, --upstream-timeout: seconds.
Status seconds(std::chrono::milliseconds& out, const std::string& v, std::string_view name) {
    auto n = option_number(name, v, 1, 86400);
    if (!n) {
        return n.error();
    }
    out = std::chrono::seconds(*n);
    return {};
}

Status session_id(ProxyOptions& o, const std::string& v) {
    if (v.empty() || v.size() > 128) {
        return make_error("--session-id: expected 1 to 128 characters");
    }
    o.session_id = v;
    return {};
}

Status threads(ProxyOptions& o, const std::string& v) {
    auto n = option_number("threads", v, 1, 64);
    if (!n) {
        return n.error();
    }
    o.threads = static_cast<unsigned>(*n);
    return {};
}

std::vector<Row> make_table() {
    std::vector<Row> t = {
        {{"listen", 'l', "ADDR:PORT",
          "loopback address to listen on (default 127.0.0.1:0: a free ephemeral port)", false},
         [](ProxyOptions& o, const std::string& v) -> Status {
             o.listen = v;
             return {};
         }},
        {{"ready-fd", 0, "N",
          "when listening, write 'ADDR:PORT' and a newline to fd N and close it", false},
         [](ProxyOptions& o, const std::string& v) {
             return fd_number<&ProxyOptions::ready_fd>(o, v, "ready-fd");
         }},
        {{"event-fd", 0, "N",
          "add the audit events landjail's supervisor writes to fd N (JSON lines) to this "
          "session's stream",
          false},
         [](ProxyOptions& o, const std::string& v) {
             return fd_number<&ProxyOptions::event_fd>(o, v, "event-fd");
         }},
        {{"clients-fd", 0, "N",
          "landjail's table of the process behind each client port (fd N, shared memory)", false},
         [](ProxyOptions& o, const std::string& v) {
             return fd_number<&ProxyOptions::clients_fd>(o, v, "clients-fd");
         }},
    };
    const std::vector<Row> shared = shared_rows_for<ProxyOptions>();
    t.insert(t.end(), shared.begin(), shared.end());
    const std::vector<Row> own = {
        {{"session-id", 0, "ID",
          "the audit session id (default: a random UUID; landjail passes its own)", false},
         &session_id},
        {{"command-name", 0, "NAME",
          "the jailed command's name (the Coder agent's confined_process_name; landjail "
          "passes the basename of its COMMAND)",
          false},
         [](ProxyOptions& o, const std::string& v) -> Status {
             o.command_name = v;
             return {};
         }},
        {{"threads", 0, "N",
          "worker threads, each with its own event loop (default: one per core, at most 4)", false},
         &threads},
        {{"header-timeout", 0, "SECONDS", "time allowed to send request headers (default 30)",
          false},
         [](ProxyOptions& o, const std::string& v) {
             return seconds(o.timeouts.header, v, "header-timeout");
         }},
        {{"idle-timeout", 0, "SECONDS",
          "close a body or tunnel after this long without traffic (default 600)", false},
         [](ProxyOptions& o, const std::string& v) {
             return seconds(o.timeouts.idle, v, "idle-timeout");
         }},
        {{"upstream-timeout", 0, "SECONDS",
          "time allowed to connect and to receive response headers; then 504 (default 300)", false},
         [](ProxyOptions& o, const std::string& v) {
             return seconds(o.timeouts.upstream, v, "upstream-timeout");
         }},
        {{"version", 0, nullptr, "print the version and exit", false},
         [](ProxyOptions& o, const std::string& v) -> Status {
             o.version = flag_on(v);
             return {};
         }},
        {{"help", 'h', nullptr, "print this help and exit", false},
         [](ProxyOptions& o, const std::string& v) -> Status {
             o.help = flag_on(v);
             return {};
         }},
    };
    t.insert(t.end(), own.begin(), own.end());
    return t;
}

}  // namespace

const std::vector<OptRow<ProxyOptions>>& proxy_options() {
    static const std::vector<Row> table = make_table();
    return table;
}

Result<ProxyOptions> parse_proxy_cli(int argc, char** argv) {
    ProxyOptions o;
    auto first = parse_rows(argc, argv, proxy_options(), true, "landjail-proxy", o);
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
           format_rows(proxy_options()) +
           "\n"
           "Rules are 'key=value ...' with the keys domain, method, path and port; see "
           "landjail(1).\n"
           "SIGTERM or SIGINT: stop accepting, finish the requests in flight, flush the audit, "
           "exit 0.\n";
}

}  // namespace lj::proxy

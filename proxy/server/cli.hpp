// SPDX-License-Identifier: Apache-2.0
// The command line of landjail-proxy (one option table drives getopt_long, --help and the
// man-page check).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "policy/result.hpp"
#include "policy/settings.hpp"
#include "proxy/base/options.hpp"
#include "proxy/session/session.hpp"

namespace lj::proxy {

/// The default number of workers is one per core up to this: measured (make bench), two
/// workers take new intercepted connections from 3.4x to 4.0x mitmproxy on 2 cores.
inline constexpr unsigned kMaxDefaultThreads = 4;

/// landjail-proxy's options: the shared ones (config, rules, audit sinks, resolve, upstream CA,
/// CA directory, …) and its own.
struct ProxyOptions : SharedOptions {
    std::string listen = "127.0.0.1:0";
    std::optional<int> ready_fd;
    std::optional<int> event_fd;    ///< jail events (JSON lines) to add to the audit stream
    std::optional<int> clients_fd;  ///< landjail's table of the processes behind clients
    std::string session_id;         ///< audit session id; empty: a new random one
    unsigned threads = 0;           ///< 0: one per core, at most kMaxDefaultThreads
    Timeouts timeouts;
    bool help = false;
    bool version = false;
};

/// Every option landjail-proxy accepts, in --help order.
const std::vector<OptRow<ProxyOptions>>& proxy_options();

/// Parses argv; errors name the option and the bad value.
Result<ProxyOptions> parse_proxy_cli(int argc, char** argv);

std::string proxy_help();

}  // namespace lj::proxy

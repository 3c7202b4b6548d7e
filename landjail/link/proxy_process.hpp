// SPDX-License-Identifier: Apache-2.0
// landjail-proxy as a child of landjail (DESIGN §2): started with --ready-fd, waited for
// without sleeping, stopped with SIGTERM when the command ends. It runs in its own process
// group, so that a Ctrl-C meant for the command does not stop it first, and dies with us
// (PR_SET_PDEATHSIG). Before it starts, landjail checks what it would otherwise only learn
// from the proxy's failure (check_proxy_inputs), and probes an external proxy (probe_proxy).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "landjail/cli.hpp"
#include "landjail/supervisor/inet.hpp"
#include "policy/result.hpp"
#include "policy/settings.hpp"
#include "proxy/base/config_loader.hpp"
#include "proxy/base/fd.hpp"

namespace lj::jail {

struct ProxyProcess {
    pid_t pid = -1;
    UniqueFd pidfd;
    UniqueFd ready;       ///< read end of the --ready-fd pipe, until wait_ready()
    std::string address;  ///< "127.0.0.1:41234", as reported on the ready fd
    std::string binary;   ///< the program started
    /// Set by wait_ready when the proxy exited with status 1 before it was ready: it has
    /// said what was wrong and how to fix it on stderr (landjail-proxy(1), EXIT STATUS), so
    /// the caller need not add a message of its own.
    bool explained = false;
};

/// The arguments landjail gives its landjail-proxy (before --ready-fd and friends): where to
/// listen, the session, the same configuration and flags it read, the audit sinks, the CA.
std::vector<std::string> proxy_arguments(const CliOptions& cli, const policy::Settings& s,
                                         const proxy::ConfigChoice& config,
                                         const std::string& ca_dir, const std::string& session_id);

/// How a child ended, from its wait status: "exited with status 1", "was killed by signal 9
/// (Killed)".
std::string describe_status(int status);

/// The landjail-proxy binary: $LANDJAIL_PROXY, else next to this executable, else PATH.
Result<std::string> find_proxy_binary();

/// Starts `binary` with `args` plus --ready-fd, without waiting (the caller prepares the
/// jail meanwhile). Its stdout goes to /dev/null (the command owns ours); its stderr is ours.
/// Optional: `event_fd` is passed as fd 4 with --event-fd 4 (the supervisor's audit events),
/// `clients_fd` as fd 5 with --clients-fd 5 (who is behind each client port), `stderr_fd` as
/// its stderr instead of ours.
Result<ProxyProcess> start_proxy(const std::string& binary, const std::vector<std::string>& args,
                                 int event_fd = -1, int clients_fd = -1, int stderr_fd = -1);

/// Waits up to `timeout` for the address the proxy reports when it listens. When the proxy
/// stops first, the error says how (and sets `explained`, see above).
Status wait_ready(ProxyProcess& proxy, std::chrono::milliseconds timeout);

/// What landjail checks before it starts the proxy, so that a mistake is reported once, in
/// landjail's words, naming the option, variable or config line it came from (the proxy
/// would name the options landjail passed it): the audit file (always), and with `cli`
/// (null when an external proxy is used) --resolve, the upstream CA file and that a fixed
/// proxy port is free.
Status check_proxy_inputs(const policy::Settings& settings, const CliOptions* cli);

/// Whether something accepts connections at `addr` (the proxy of --proxy-addr), within 5 s;
/// the error says how to start one.
Status probe_proxy(const InetAddr& addr);

/// Copies what the proxy wrote to its stderr file `fd` since `*offset` to our stderr and
/// advances it. While the command runs on our terminal the proxy's denial lines (logfmt,
/// "landjail_…") would be drawn over its screen, so they are held back; `after_exit` shows
/// them, counted (the last 20).
void relay_proxy_log(int fd, off_t* offset, bool after_exit);

/// SIGTERM (the proxy stops accepting and lets requests in flight finish), then SIGKILL after
/// `grace`; returns the wait status (or -1 if already reaped). With `cut_after`, SIGTERM is
/// sent again from then on until the proxy exits: it closes the connections still busy at
/// once, after writing their audit events (for when the command is gone: its connections
/// have no client left).
int stop_proxy(ProxyProcess& proxy, std::chrono::milliseconds grace,
               std::optional<std::chrono::milliseconds> cut_after = std::nullopt);

}  // namespace lj::jail

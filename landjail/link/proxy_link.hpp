// SPDX-License-Identifier: Apache-2.0
// The proxy a jail talks to, behind one interface (DESIGN §2): a landjail-proxy that landjail
// starts for this run (its child), or one already listening at --proxy-addr. The jail asks
// it for the address the supervisor lets connects through, where the supervisor's audit
// events and client reports go, and to stop; it never asks which kind it has.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "landjail/cli.hpp"
#include "landjail/jail/protection.hpp"
#include "landjail/supervisor/inet.hpp"
#include "policy/result.hpp"
#include "policy/settings.hpp"
#include "proxy/audit/event.hpp"
#include "proxy/base/config_loader.hpp"

namespace lj::jail {

/// What a link needs to know about the run (owned by the jail).
struct LinkSpec {
    const CliOptions* cli = nullptr;
    const policy::Settings* settings = nullptr;
    const proxy::ConfigChoice* config = nullptr;  ///< the profile files landjail read
    const Plan* plan = nullptr;
    std::string session_id;   ///< the audit session of this run
    std::string ca_dir;       ///< the interception CA's directory
    std::string session_dir;  ///< landjail's private directory for this run
};

class ProxyLink {
  public:
    virtual ~ProxyLink() = default;

    /// Before anything starts: what landjail can check of the link's inputs, so that a mistake
    /// is reported once, in landjail's words (check_proxy_inputs). The error is for the user.
    virtual Status check() = 0;

    /// Starts what the link needs without waiting for it (the jail is prepared meanwhile).
    /// The error is for the user (it has not been printed).
    virtual Status start() = 0;

    /// Waits until the proxy listens and returns its address: the only destination a jailed
    /// connect may reach. The error is for the user, or empty when the proxy itself has
    /// already said what is wrong.
    virtual Result<InetAddr> wait_ready() = 0;

    /// Where the supervisor's audit events go: never blocks; thread-safe.
    virtual std::function<void(proxy::AuditEvent&&)> audit_sink() = 0;

    /// Where the supervisor reports the process behind each client port (empty: nowhere).
    virtual std::function<void(pid_t, std::uint16_t)> client_sink() = 0;

    /// The proxy process the jail must never reach as a jailed process (0 / -1: none).
    virtual pid_t pid() const = 0;
    virtual int pidfd() const = 0;

    /// A child of landjail ended: true when it was the proxy (then the link audits the
    /// jail's events itself from now on and has told the user).
    virtual bool reaped(pid_t pid, int status) = 0;

    /// The command has ended: stop the proxy (requests of processes the jail left behind may
    /// finish briefly), flush the audit trail, report what was lost.
    virtual void stop() = 0;
};

/// The link the options ask for: --proxy-addr, or a landjail-proxy of our own. `spec` must
/// outlive the link; its session_id and ca_dir are read by start().
std::unique_ptr<ProxyLink> make_proxy_link(const LinkSpec& spec);

}  // namespace lj::jail

// SPDX-License-Identifier: Apache-2.0
// landjail-proxy: the policy-enforcing, auditing HTTP(S) proxy (DESIGN §5).
#include <sys/prctl.h>

#include <iostream>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "proxy/base/diag.hpp"
#include "proxy/server/cli.hpp"
#include "proxy/server/server.hpp"

namespace {

/// Diagnostics go to stderr; the level follows the merged settings (Server::create).
void setup_logging() {
    auto logger = spdlog::stderr_color_mt("landjail-proxy");
    logger->set_pattern("landjail-proxy: %^%l%$: %v");
    spdlog::set_default_logger(logger);
}

}  // namespace

int main(int argc, char** argv) {
    using namespace lj::proxy;
    lj::diag::set_program("landjail-proxy");
    auto options = parse_proxy_cli(argc, argv);
    if (!options) {
        lj::diag::error(options.error().message);
        return 2;
    }
    if (options->help) {
        std::cout << proxy_help();
        return 0;
    }
    if (options->version) {
        std::cout << "landjail-proxy " << LJ_VERSION << "\n";
        return 0;
    }
    // Not dumpable: processes of the same user (a jail without Landlock among them) cannot
    // open /proc/PID/mem or ptrace us, so they can neither read the CA key nor change the
    // policy in memory.
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    setup_logging();
    auto server = Server::create(*options);
    if (!server) {
        spdlog::error("{}", server.error().what());
        return 1;
    }
    return (*server)->run(options->ready_fd);
}

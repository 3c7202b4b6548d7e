// SPDX-License-Identifier: Apache-2.0
// landjail: run a command so that it reaches only the HTTP(S) destinations a policy allows.
#include <csignal>
#include <cstdlib>
#include <iostream>

#include "landjail/cli.hpp"
#include "landjail/subcommands.hpp"
#include "proxy/base/diag.hpp"

int main(int argc, char** argv) {
    using namespace lj::jail;
    lj::diag::set_program("landjail");
    // Before anything: a write to a peer that went away (the proxy's event pipe, an audit
    // socket) must fail with EPIPE, never kill landjail and, with it, the jailed command.
    std::signal(SIGPIPE, SIG_IGN);
    // A jailed process that puts its own group in the terminal's foreground (job control)
    // leaves ours in the background: its reads or writes there (with TOSTOP) would make the
    // kernel stop our whole group, landjail with it. landjail never reads the terminal.
    std::signal(SIGTTOU, SIG_IGN);
    std::signal(SIGTTIN, SIG_IGN);
    // Installed as `boundary` or `agent-firewall`, landjail is boundary's CLI (no subcommands).
    const std::string name = invoked_name(argc > 0 ? argv[0] : nullptr);
    Command seen = Command::Run;
    auto cli = parse_cli(argc, argv, &seen, name != "landjail");
    if (!cli) {
        lj::diag::error(cli.error().message);
        return seen == Command::Run ? kExitFailed : kExitUsage;
    }
    switch (cli->command) {
        case Command::Help:
            std::cout << help_text(name);
            return 0;
        case Command::Version:
            std::cout << "landjail " << LJ_VERSION << "\n";
            return 0;
        case Command::Check:
            return run_check(*cli);
        case Command::Explain:
            return run_explain(*cli);
        case Command::Doctor:
            return run_doctor(*cli);
        case Command::Run:
            break;
    }
    // The supervisor thread may be answering a notification right now: leave without running
    // static destructors under it.
    const int status = run_command(*cli);
    std::cout.flush();
    std::cerr.flush();
    std::_Exit(status);
}

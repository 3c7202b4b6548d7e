// SPDX-License-Identifier: Apache-2.0
// What the jailed command is given (DESIGN §7): its environment, the CA bundle it trusts and
// the shim it preloads.
#pragma once

#include <string>
#include <vector>

#include "policy/result.hpp"

namespace lj::jail {

/// Writes DIR/ca-bundle.pem: the system roots (or the user's SSL_CERT_FILE) plus the
/// interception CA `ca_pem` (a warning when it is missing). Returns its path.
Result<std::string> write_ca_bundle(const std::string& dir, const std::string& ca_pem);

/// The environment of the command: ours without NO_PROXY and the shim's own variables, plus
/// the proxy variables, the CA bundle variables, NODE_EXTRA_CA_CERTS, LANDJAIL=1 and the shim
/// first in LD_PRELOAD (when `shim` is not empty).
std::vector<std::string> child_environment(const std::string& proxy_url, const std::string& bundle,
                                           const std::string& ca_pem, const std::string& shim);

/// The shim when it is installed: next to the binary, in ../lib/ or in ../lib/landjail/
/// ("" when not found).
std::string find_shim();

}  // namespace lj::jail

// SPDX-License-Identifier: Apache-2.0
// What the jailed command is given (DESIGN §7): its environment, the CA bundle it trusts and
// the shim it preloads.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "policy/config.hpp"
#include "policy/result.hpp"

namespace lj::jail {

/// Writes DIR/ca-bundle.pem: the system roots (or the user's SSL_CERT_FILE) plus the
/// interception CA `ca_pem` (a warning when it is missing). Returns its path.
Result<std::string> write_ca_bundle(const std::string& dir, const std::string& ca_pem);

/// The files that make the command's clients trust the interception CA, in the session
/// directory: the PEM bundle, a wgetrc and a Java trust store.
struct ClientTrust {
    std::string ca_pem;            ///< the interception CA alone (NODE_EXTRA_CA_CERTS)
    std::string bundle;            ///< system roots + the CA (SSL_CERT_FILE and friends)
    std::string wgetrc;            ///< the user's wgetrc ($WGETRC, else ~/.wgetrc) + ca_certificate
    std::string java_trust_store;  ///< PKCS#12 of the bundle (JAVA_TOOL_OPTIONS)
};

/// Writes the bundle (write_ca_bundle), the wgetrc and the Java trust store into `dir`.
Result<ClientTrust> write_client_trust(const std::string& dir, const std::string& ca_pem);

/// The environment of the command: ours without NO_PROXY and the shim's own variables, plus
/// the proxy variables, the CA variables (the bundle in SSL_CERT_FILE and the other variables
/// clients read, NODE_EXTRA_CA_CERTS, WGETRC, the trust store appended to JAVA_TOOL_OPTIONS),
/// LANDJAIL=1 and the shim first in LD_PRELOAD (when `shim` is not empty).
std::vector<std::string> child_environment(const std::string& proxy_url, const ClientTrust& trust,
                                           const std::string& shim);

/// The shim: $LANDJAIL_SHIM when set (an error when it is not a readable file), else next to
/// the binary, in ../lib/ or in ../lib/landjail/, the binary's directory and then that of the
/// landjail-proxy in PATH (proxy::install_bin_dirs); "" when not found, with `looked_in` set to
/// the places tried (for the warning that says how to point at it).
Result<std::string> find_shim(std::string* looked_in);

/// find_shim, with a warning on stderr when it is not found (a landjail binary copied away
/// from its installation): the command then runs without it, and programs that ignore
/// HTTP_PROXY fail; the warning says where landjail looked and how to point at the shim.
Result<std::string> shim_or_warn();

/// The CA directory (Settings::ca_dir): one the user named (--ca-dir, LANDJAIL_CA_DIR,
/// ca_dir) as it is; a default one ($XDG_CONFIG_HOME/landjail, ~/.config/landjail) when the
/// proxy can keep its CA there; when it cannot (a read-only home, as in a hardened pod),
/// TMPDIR/landjail-ca-UID (mode 0700, ours) with one warning naming both, or an error saying
/// what to set.
Result<std::string> choose_ca_dir(const policy::Setting<std::string>& dir);

}  // namespace lj::jail

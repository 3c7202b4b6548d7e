// SPDX-License-Identifier: Apache-2.0
// The file a user names as a CA bundle (--upstream-ca, tls.upstream_ca), checked without a TLS
// library: landjail checks it before it starts anything; the proxy checks it the same way
// before mbedTLS parses the certificates in it.
#pragma once

#include <string>

#include "policy/result.hpp"

namespace lj::proxy {

/// The file exists, can be read, is not a directory and holds a PEM certificate block
/// (-----BEGIN CERTIFICATE-----) or starts like a DER certificate (the proxy parses it). The
/// message says what is wrong and what the file should hold, without repeating the path.
Status check_ca_file(const std::string& path);

/// The message for a file whose certificates could not be used (`detail`: why, may be
/// empty), shared with the proxy's full parse.
std::string no_certificate_message(const std::string& detail);

}  // namespace lj::proxy

// SPDX-License-Identifier: Apache-2.0
// A Java trust store for the jail (issue 16): Java reads neither SSL_CERT_FILE nor a PEM
// bundle, only a key store named by -Djavax.net.ssl.trustStore. landjail writes the CA bundle
// it gives the command (system roots + the interception CA) as a PKCS#12 file of trusted
// certificates, with no password and no MAC (what `keytool` writes with
// keystore.pkcs12.macAlgorithm=NONE, readable since JDK 12), so no JVM has to run for it.
#pragma once

#include <string>
#include <vector>

#include "policy/result.hpp"

namespace lj::jail {

/// The DER certificates of a PEM text (each "-----BEGIN CERTIFICATE-----" block; other blocks
/// and text between them are ignored; a block that is not valid base64 is skipped).
std::vector<std::string> pem_certificates(const std::string& pem);

/// The PKCS#12 file (DER) holding `certs` (DER) as trusted certificate entries: one
/// unencrypted SafeContents of CertBags, each with a friendlyName ("landjail-N") and Java's
/// trustedKeyUsage attribute (OID 2.16.840.1.113894.746875.1.1 = anyExtendedKeyUsage),
/// without which Java ignores a certificate that has no key.
std::string pkcs12_trust_store(const std::vector<std::string>& certs);

/// Writes DIR/java-truststore.p12 from the PEM bundle `bundle_path`; returns its path.
Result<std::string> write_java_trust_store(const std::string& dir, const std::string& bundle_path);

}  // namespace lj::jail

// SPDX-License-Identifier: Apache-2.0
// mbedTLS configurations for both sides of an intercepted connection.
//  - TrustStore: the CA certificates upstream servers are verified against (the system bundle
//    plus --upstream-ca), parsed once and shared read-only by every thread.
//  - TlsContext: one per io_context thread (no shared mutable state): its RNG, the client
//    configuration (verification required, SNI, ALPN http/1.1 only) and the factory for the
//    per-connection server configuration (leaf for the CONNECT host by default, replaced by
//    the leaf for the SNI name in the SNI callback).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include "policy/request.hpp"
#include "policy/result.hpp"
#include "proxy/base/ca_file.hpp"
#include "proxy/tls/ca.hpp"

namespace lj::proxy {

inline constexpr const char* kSystemCaBundle = "/etc/ssl/certs/ca-certificates.crt";

class TrustStore {
  public:
    /// Loads `system_bundle` (skipped when empty or absent, with the count reported) and
    /// `extra` (an error when given and unreadable or empty; the error starts with
    /// `extra_label` and the path).
    static Result<std::shared_ptr<const TrustStore>> load(
        const std::string& system_bundle, const std::optional<std::string>& extra,
        const std::string& extra_label = "--upstream-ca");
    ~TrustStore();
    TrustStore(const TrustStore&) = delete;
    TrustStore& operator=(const TrustStore&) = delete;
    mbedtls_x509_crt* chain() const { return &chain_; }
    int count() const { return count_; }

  private:
    TrustStore();
    mutable mbedtls_x509_crt chain_;
    int count_ = 0;
};

/// A server-side configuration owned by one intercepted connection.
class ServerConfig {
  public:
    ServerConfig();
    ~ServerConfig();
    ServerConfig(const ServerConfig&) = delete;
    ServerConfig& operator=(const ServerConfig&) = delete;
    const mbedtls_ssl_config& get() const { return conf_; }

  private:
    friend class TlsContext;
    mbedtls_ssl_config conf_;
    std::shared_ptr<Leaf> leaf_;      ///< the default certificate (CONNECT host)
    std::shared_ptr<Leaf> sni_leaf_;  ///< the certificate chosen for the SNI name
    std::string* sni_out_ = nullptr;
    CertAuthority* ca_ = nullptr;
};

class TlsContext {
  public:
    static Result<std::unique_ptr<TlsContext>> create(std::shared_ptr<CertAuthority> ca,
                                                      std::shared_ptr<const TrustStore> trust);
    ~TlsContext();
    TlsContext(const TlsContext&) = delete;
    TlsContext& operator=(const TlsContext&) = delete;

    /// The configuration for upstream connections (verification required).
    const mbedtls_ssl_config& client() const { return client_; }

    /// A server configuration presenting a leaf for `host`; the SNI name the client sends is
    /// written to `*sni_out` and answered with a leaf for that name (so a mismatch can be
    /// answered with 421 over TLS instead of a certificate error).
    Result<std::unique_ptr<ServerConfig>> server_for(const policy::Host& host,
                                                     std::string* sni_out);

  private:
    TlsContext();
    static int on_sni(void* ctx, mbedtls_ssl_context* ssl, const unsigned char* name,
                      std::size_t len);

    std::shared_ptr<CertAuthority> ca_;
    std::shared_ptr<const TrustStore> trust_;
    mbedtls_entropy_context entropy_;
    mbedtls_ctr_drbg_context drbg_;
    mbedtls_ssl_config client_;
};

}  // namespace lj::proxy

// SPDX-License-Identifier: Apache-2.0
// The local certificate authority used for TLS interception (DESIGN §5): `ca.pem` (what
// clients trust) and `ca-key.pem` (mode 0600) in the CA directory, created on first use and
// reused until they expire; leaf certificates for the names clients ask for (SNI, or the
// CONNECT host when there is no SNI), signed on demand and kept in a bounded LRU cache.
// Keys are ECDSA P-256: minting a leaf costs one signature, no key generation.
#pragma once

#include <cstddef>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>

#include "policy/request.hpp"
#include "policy/result.hpp"

namespace lj::proxy {

/// One leaf certificate (the leaf followed by the CA certificate, ready for
/// mbedtls_ssl_set_hs_own_cert) and its private key. Immutable once built; shared by every
/// TLS session that presents it, which keeps it alive through the handshake.
class Leaf {
  public:
    Leaf();
    ~Leaf();
    Leaf(const Leaf&) = delete;
    Leaf& operator=(const Leaf&) = delete;

    mbedtls_x509_crt* chain() { return &chain_; }
    mbedtls_pk_context* key() { return key_; }

  private:
    friend class CertAuthority;
    mbedtls_x509_crt chain_;
    mbedtls_pk_context* key_ = nullptr;  ///< the CA's shared leaf key (owned by the CA)
    std::shared_ptr<void> keep_key_alive_;
};

class CertAuthority {
  public:
    struct Options {
        std::string dir;                    ///< CA directory (created 0700 if missing)
        std::size_t cache_capacity = 1024;  ///< leaves kept (LRU)
        int ca_validity_days = 3650;
        int leaf_validity_days = 30;  ///< leaves are also backdated by one day
    };

    /// Loads ca.pem + ca-key.pem from the directory, or creates both when neither exists, or
    /// when the certificate has expired or expires within a day (a new pair replaces it).
    /// Errors name the file and the step: a directory that cannot be created or read, only one
    /// of the two files present, a file that does not parse, a key that does not match the
    /// certificate, a key file readable by group or others (it is fixed to 0600 when we own
    /// it, else an error).
    static Result<std::shared_ptr<CertAuthority>> open(const Options& options);

    ~CertAuthority();
    CertAuthority(const CertAuthority&) = delete;
    CertAuthority& operator=(const CertAuthority&) = delete;

    /// Path of ca.pem (what clients must trust) and its PEM text.
    const std::string& cert_path() const { return cert_path_; }
    const std::string& cert_pem() const { return cert_pem_; }
    /// True when open() created a new CA (first use or expiry).
    bool created() const { return created_; }

    /// A leaf for `host`: subjectAltName dNSName for names, iPAddress for IPv4/IPv6 literals,
    /// CN = host, signed by the CA. Cached: the same host returns the same Leaf until it is
    /// evicted (least recently used beyond cache_capacity). Thread-safe.
    Result<std::shared_ptr<Leaf>> leaf_for(const policy::Host& host);

    /// Number of leaves in the cache (for tests).
    std::size_t cached() const;

  private:
    CertAuthority();
    Result<std::shared_ptr<Leaf>> mint(const policy::Host& host);

    Options options_;
    std::string cert_path_;
    std::string cert_pem_;
    bool created_ = false;
    mbedtls_x509_crt ca_cert_;
    mbedtls_pk_context ca_key_;
    std::shared_ptr<mbedtls_pk_context> leaf_key_;  ///< ECKEY: the certificates' public key
    std::shared_ptr<mbedtls_pk_context> sign_key_;  ///< the same key as ECDSA, for TLS
    mbedtls_entropy_context entropy_;
    mbedtls_ctr_drbg_context drbg_;

    mutable std::mutex mutex_;  ///< guards the cache, drbg_ and serial numbers
    std::list<std::pair<std::string, std::shared_ptr<Leaf>>> lru_;  ///< front = most recent
    std::unordered_map<std::string, decltype(lru_)::iterator> index_;
};

}  // namespace lj::proxy

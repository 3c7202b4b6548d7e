// SPDX-License-Identifier: Apache-2.0
// The local CA (ca.hpp): its lifecycle — loading or creating ca.pem + ca-key.pem under an
// flock on `ca.lock` — and the LRU cache of the leaf certificates it mints. The CA directory
// on disk is ca_store.cpp's and writing certificates is ca_x509.cpp's (ca_internal.hpp).
#include "proxy/tls/ca.hpp"

#include <ctime>
#include <string_view>
#include <utility>
#include <vector>

#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>

#include "proxy/tls/ca_internal.hpp"

namespace lj::proxy {

namespace ca_detail {
namespace {

constexpr const char* kCertFile = "ca.pem";
constexpr const char* kKeyFile = "ca-key.pem";
constexpr int kMaxValidityDays = 36500;  // keeps every date a 4-digit year

// ---- loading or creating the pair --------------------------------------------------------

/// True when the certificate has expired or expires within a day.
bool expiring(const mbedtls_x509_crt& cert) {
    return to_time_t(cert.valid_to) <= std::time(nullptr) + kDay;
}

/// Loads a pair that is not expiring: key mode, key parse, key matches certificate.
Status load_key_for(const CaFiles& files, const mbedtls_x509_crt& cert, mbedtls_pk_context* key) {
    if (auto st = load_key(files.key, key); !st) {
        return st;
    }
    const int rc = mbedtls_pk_check_pair(&cert.pk, key);
    if (rc != 0) {
        return fail(files.key, "check key",
                    "does not match " + files.cert + ": " + mbed_text(rc) + kHintRecreate);
    }
    return ok();
}

/// "ca-key.pem missing next to ca.pem in DIR; remove ca.pem to create a new CA" (or the
/// other way round) when exactly one of the two files exists.
Status check_both_or_neither(const CaFiles& files, bool have_cert, bool have_key) {
    if (have_cert == have_key) {
        return ok();
    }
    const std::string present = have_cert ? kCertFile : kKeyFile;
    const std::string missing = have_cert ? kKeyFile : kCertFile;
    return make_error(missing + " missing next to " + present + " in " + files.dir + "; remove " +
                      present + " to create a new CA (clients must then trust the new ca.pem)");
}

void reset(mbedtls_x509_crt* cert, mbedtls_pk_context* key) {
    mbedtls_x509_crt_free(cert);
    mbedtls_x509_crt_init(cert);
    mbedtls_pk_free(key);
    mbedtls_pk_init(key);
}

/// Creates a new CA: a P-256 key, its self-signed certificate, then both files.
/// `cert` and `key` must be freshly initialised; `cert_pem` receives ca.pem's text.
Status create_pair(const CaFiles& files, int days, mbedtls_ctr_drbg_context* drbg,
                   mbedtls_x509_crt* cert, mbedtls_pk_context* key, std::string& cert_pem) {
    Step s;
    std::vector<unsigned char> der;
    if (!(s("generate P-256 key", generate_p256(key, drbg)) &&
          sign_ca_cert(s, key, days, drbg, der) &&
          s("parse new certificate", mbedtls_x509_crt_parse_der(cert, der.data(), der.size())))) {
        return s.error(files.cert);
    }
    return write_pair(files, key, der, cert_pem);
}

/// Option values that make sense: a CA that outlives the one-day renewal margin, leaves
/// valid at least a day, a cache that holds something, dates with four-digit years.
Status check_options(const CertAuthority::Options& o) {
    if (o.dir.empty()) {
        return make_error("CA directory: empty path");
    }
    if (o.cache_capacity == 0 || o.ca_validity_days < 2 || o.ca_validity_days > kMaxValidityDays ||
        o.leaf_validity_days < 1 || o.leaf_validity_days > kMaxValidityDays) {
        return make_error(
            "CA options: need cache_capacity >= 1, ca_validity_days in 2..36500 and "
            "leaf_validity_days in 1..36500");
    }
    return ok();
}

/// Where load_or_create puts the CA: CertAuthority's members.
struct CaSlots {
    mbedtls_x509_crt* cert;
    mbedtls_pk_context* key;
    std::string* pem;
    bool* created;
};

/// Under the directory lock: loads the pair from `files`, or creates it when neither file
/// exists or the certificate is expiring. `ca.created` tells which.
Status load_or_create(const CaFiles& files, int days, mbedtls_ctr_drbg_context* drbg,
                      const CaSlots& ca) {
    auto lock = lock_dir(files.dir);
    if (!lock) {
        return lock.error();
    }
    auto have_cert = exists(files.cert);
    auto have_key = exists(files.key);
    if (!have_cert || !have_key) {
        return with_hint(!have_cert ? have_cert.error() : have_key.error(), kHintOwn);
    }
    if (auto st = check_both_or_neither(files, *have_cert, *have_key); !st) {
        return st;
    }
    if (*have_cert) {
        if (auto st = load_cert(files.cert, ca.cert, *ca.pem); !st) {
            return st;
        }
        if (!expiring(*ca.cert)) {
            return load_key_for(files, *ca.cert, ca.key);
        }
        reset(ca.cert, ca.key);
    }
    *ca.created = true;
    return with_hint(create_pair(files, days, drbg, ca.cert, ca.key, *ca.pem), kHintWritable);
}

// ---- the leaves' key and cache -----------------------------------------------------------

using PkBox = Mbed<mbedtls_pk_context, mbedtls_pk_init, mbedtls_pk_free>;

/// The key every leaf certifies, in the two forms CertAuthority keeps (ca.hpp).
struct LeafKeys {
    std::shared_ptr<mbedtls_pk_context> leaf;  ///< ECKEY, for x509write
    std::shared_ptr<mbedtls_pk_context> sign;  ///< the same key as ECDSA, for TLS
};

/// A new P-256 leaf key in both forms. Errors name `dir` and the mbedTLS step that failed.
Result<LeafKeys> make_leaf_keys(mbedtls_ctr_drbg_context* drbg, const std::string& dir) {
    Step s;
    auto leaf_key = std::make_shared<PkBox>();
    if (!s("generate leaf key", generate_p256(leaf_key->get(), drbg))) {
        return s.error(dir);
    }
    // TLS signs with an ECDSA-typed copy: signing through the generic ECKEY type sets up a
    // temporary ECDSA context each time and rebuilds the curve's precomputed table (measured
    // 0.7-0.95 ms against 0.32 ms a signature). The ECKEY form stays for x509write, which
    // cannot write an ECDSA-typed key.
    auto sign_key = std::make_shared<PkBox>();
    if (!(s("set up the signing key",
            mbedtls_pk_setup(sign_key->get(), mbedtls_pk_info_from_type(MBEDTLS_PK_ECDSA))) &&
          s("copy the signing key", mbedtls_ecdsa_from_keypair(mbedtls_pk_ec(*sign_key->get()),
                                                               mbedtls_pk_ec(*leaf_key->get()))))) {
        return s.error(dir);
    }
    return LeafKeys{std::shared_ptr<mbedtls_pk_context>(leaf_key, leaf_key->get()),
                    std::shared_ptr<mbedtls_pk_context>(sign_key, sign_key->get())};
}

/// The key of a leaf in the cache: the kind, then the canonical text.
std::string cache_key(const policy::Host& host) {
    return static_cast<char>('0' + static_cast<int>(host.kind)) + host.text;
}

}  // namespace
}  // namespace ca_detail

using ca_detail::bytes;
using ca_detail::cache_key;
using ca_detail::CaFiles;
using ca_detail::CaSlots;
using ca_detail::CertSpec;
using ca_detail::check_options;
using ca_detail::kCertFile;
using ca_detail::kKeyFile;
using ca_detail::leaf_spec;
using ca_detail::load_or_create;
using ca_detail::make_dirs;
using ca_detail::make_leaf_keys;
using ca_detail::sign_leaf;
using ca_detail::Step;

// ---- Leaf --------------------------------------------------------------------------------

Leaf::Leaf() {
    mbedtls_x509_crt_init(&chain_);
}

Leaf::~Leaf() {
    mbedtls_x509_crt_free(&chain_);
}

// ---- CertAuthority -----------------------------------------------------------------------

CertAuthority::CertAuthority() {
    mbedtls_x509_crt_init(&ca_cert_);
    mbedtls_pk_init(&ca_key_);
    mbedtls_entropy_init(&entropy_);
    mbedtls_ctr_drbg_init(&drbg_);
}

CertAuthority::~CertAuthority() {
    mbedtls_ctr_drbg_free(&drbg_);
    mbedtls_entropy_free(&entropy_);
    mbedtls_pk_free(&ca_key_);
    mbedtls_x509_crt_free(&ca_cert_);
}

Result<std::shared_ptr<CertAuthority>> CertAuthority::open(const Options& options) {
    if (auto st = check_options(options); !st) {
        return st.error();
    }
    std::shared_ptr<CertAuthority> ca(new CertAuthority());
    ca->options_ = options;
    const CaFiles files{options.dir, options.dir + "/" + kCertFile, options.dir + "/" + kKeyFile};
    ca->cert_path_ = files.cert;
    static constexpr std::string_view kPersonalization = "landjail CA";
    Step s;
    if (!s("seed random generator",
           mbedtls_ctr_drbg_seed(&ca->drbg_, mbedtls_entropy_func, &ca->entropy_,
                                 bytes(kPersonalization), kPersonalization.size()))) {
        return s.error(files.dir);
    }
    if (auto st = make_dirs(files.dir); !st) {
        return st.error();
    }
    const CaSlots slots{&ca->ca_cert_, &ca->ca_key_, &ca->cert_pem_, &ca->created_};
    if (auto st = load_or_create(files, options.ca_validity_days, &ca->drbg_, slots); !st) {
        return st.error();
    }
    auto keys = make_leaf_keys(&ca->drbg_, files.dir);
    if (!keys) {
        return keys.error();
    }
    ca->leaf_key_ = std::move(keys->leaf);
    ca->sign_key_ = std::move(keys->sign);
    return ca;
}

// The mutex is held while minting (one ECDSA signature, ~1 ms): it guards drbg_ too, and two
// sessions asking for the same new host get the same Leaf.
Result<std::shared_ptr<Leaf>> CertAuthority::leaf_for(const policy::Host& host) {
    const std::string key = cache_key(host);
    const std::lock_guard lock(mutex_);
    if (auto it = index_.find(key); it != index_.end()) {
        lru_.splice(lru_.begin(), lru_, it->second);
        return it->second->second;
    }
    auto leaf = mint(host);
    if (!leaf) {
        return leaf;
    }
    lru_.emplace_front(key, *leaf);
    index_[key] = lru_.begin();
    if (lru_.size() > options_.cache_capacity) {
        index_.erase(lru_.back().first);
        lru_.pop_back();
    }
    return leaf;
}

std::size_t CertAuthority::cached() const {
    const std::lock_guard lock(mutex_);
    return lru_.size();
}

Result<std::shared_ptr<Leaf>> CertAuthority::mint(const policy::Host& host) {
    CertSpec spec = leaf_spec(host, ca_cert_, options_.leaf_validity_days);
    spec.subject_key = leaf_key_.get();
    spec.issuer_key = &ca_key_;
    auto der = sign_leaf(host, spec, &drbg_);
    if (!der) {
        return der.error();
    }
    auto leaf = std::make_shared<Leaf>();
    Step s;
    if (!(s("parse leaf", mbedtls_x509_crt_parse_der(leaf->chain(), der->data(), der->size())) &&
          s("append CA certificate",
            mbedtls_x509_crt_parse_der(leaf->chain(), ca_cert_.raw.p, ca_cert_.raw.len)))) {
        return s.error("leaf certificate for " + host.text);
    }
    leaf->key_ = sign_key_.get();
    leaf->keep_key_alive_ = sign_key_;
    return leaf;
}

}  // namespace lj::proxy

// SPDX-License-Identifier: Apache-2.0
#include "proxy/tls/tls_config.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include <mbedtls/error.h>

#include "proxy/tls/stream.hpp"

namespace lj::proxy {
namespace {

const char* kAlpn[] = {"http/1.1", nullptr};  // offer and accept HTTP/1.1 only

// Key exchange preference: X25519 costs a fraction of a P-256 ECDHE in mbedTLS.
const mbedtls_ecp_group_id kCurves[] = {MBEDTLS_ECP_DP_CURVE25519, MBEDTLS_ECP_DP_SECP256R1,
                                        MBEDTLS_ECP_DP_SECP384R1, MBEDTLS_ECP_DP_NONE};

Error mbed_fail(const std::string& step, int code) {
    return make_error(step + ": " + mbedtls_category().message(code));
}

/// Settings both sides share: TLS 1.2 minimum, ALPN http/1.1, the thread's RNG.
int common_setup(mbedtls_ssl_config* conf, int endpoint, mbedtls_ctr_drbg_context* drbg) {
    if (const int r = mbedtls_ssl_config_defaults(conf, endpoint, MBEDTLS_SSL_TRANSPORT_STREAM,
                                                  MBEDTLS_SSL_PRESET_DEFAULT);
        r != 0) {
        return r;
    }
    mbedtls_ssl_conf_min_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_rng(conf, mbedtls_ctr_drbg_random, drbg);
    mbedtls_ssl_conf_curves(conf, kCurves);
    return mbedtls_ssl_conf_alpn_protocols(conf, kAlpn);
}

/// The certificates in `chain`.
int count_certs(const mbedtls_x509_crt* chain) {
    int n = 0;
    for (const mbedtls_x509_crt* c = chain; c && c->raw.len; c = c->next) {
        ++n;
    }
    return n;
}

/// Adds the certificates of the file `path` to `chain`; the error says what is wrong with the
/// file and what it should hold.
Status add_ca_file(mbedtls_x509_crt* chain, const std::string& path) {
    if (auto ok = check_ca_file(path); !ok) {
        return ok;
    }
    const int before = count_certs(chain);
    const int r = mbedtls_x509_crt_parse_file(chain, path.c_str());
    const int n = r < 0 ? r : count_certs(chain) - before;
    if (n <= 0) {
        return make_error(no_certificate_message(n < 0 ? mbedtls_category().message(n) : ""));
    }
    return {};
}

}  // namespace

TrustStore::TrustStore() {
    mbedtls_x509_crt_init(&chain_);
}
TrustStore::~TrustStore() {
    mbedtls_x509_crt_free(&chain_);
}

Result<std::shared_ptr<const TrustStore>> TrustStore::load(const std::string& system_bundle,
                                                           const std::optional<std::string>& extra,
                                                           const std::string& extra_label) {
    std::shared_ptr<TrustStore> store(new TrustStore());
    if (!system_bundle.empty() && ::access(system_bundle.c_str(), R_OK) == 0) {
        // A positive result counts certificates that failed to parse; the rest are loaded.
        if (const int r = mbedtls_x509_crt_parse_file(&store->chain_, system_bundle.c_str());
            r < 0) {
            return mbed_fail("reading " + system_bundle, r);
        }
    }
    if (extra) {
        if (auto ok = add_ca_file(&store->chain_, *extra); !ok) {
            return make_error(extra_label + " " + *extra + ": " + ok.error().message);
        }
    }
    store->count_ = count_certs(&store->chain_);
    if (store->count_ == 0) {
        return make_error("no CA certificates to verify upstream servers with (" + system_bundle +
                          " is missing and no --upstream-ca was given)");
    }
    return std::shared_ptr<const TrustStore>(std::move(store));
}

ServerConfig::ServerConfig() {
    mbedtls_ssl_config_init(&conf_);
}
ServerConfig::~ServerConfig() {
    mbedtls_ssl_config_free(&conf_);
}

TlsContext::TlsContext() {
    mbedtls_entropy_init(&entropy_);
    mbedtls_ctr_drbg_init(&drbg_);
    mbedtls_ssl_config_init(&client_);
}

TlsContext::~TlsContext() {
    mbedtls_ssl_config_free(&client_);
    mbedtls_ctr_drbg_free(&drbg_);
    mbedtls_entropy_free(&entropy_);
}

Result<std::unique_ptr<TlsContext>> TlsContext::create(std::shared_ptr<CertAuthority> ca,
                                                       std::shared_ptr<const TrustStore> trust) {
    std::unique_ptr<TlsContext> ctx(new TlsContext());
    ctx->ca_ = std::move(ca);
    ctx->trust_ = std::move(trust);
    static const unsigned char kPers[] = "landjail-proxy";
    if (const int r = mbedtls_ctr_drbg_seed(&ctx->drbg_, mbedtls_entropy_func, &ctx->entropy_,
                                            kPers, sizeof kPers - 1);
        r != 0) {
        return mbed_fail("seeding the TLS random generator", r);
    }
    if (const int r = common_setup(&ctx->client_, MBEDTLS_SSL_IS_CLIENT, &ctx->drbg_); r != 0) {
        return mbed_fail("TLS client configuration", r);
    }
    // Interception never weakens verification: the upstream chain and name must verify.
    mbedtls_ssl_conf_authmode(&ctx->client_, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(&ctx->client_, ctx->trust_->chain(), nullptr);
    return ctx;
}

Result<std::unique_ptr<ServerConfig>> TlsContext::server_for(const policy::Host& host,
                                                             std::string* sni_out) {
    auto leaf = ca_->leaf_for(host);
    if (!leaf) {
        return leaf.error();
    }
    auto sc = std::make_unique<ServerConfig>();
    if (const int r = common_setup(&sc->conf_, MBEDTLS_SSL_IS_SERVER, &drbg_); r != 0) {
        return mbed_fail("TLS server configuration", r);
    }
    sc->leaf_ = std::move(*leaf);
    if (const int r = mbedtls_ssl_conf_own_cert(&sc->conf_, sc->leaf_->chain(), sc->leaf_->key());
        r != 0) {
        return mbed_fail("TLS server certificate", r);
    }
    sc->sni_out_ = sni_out;
    sc->ca_ = ca_.get();
    mbedtls_ssl_conf_sni(&sc->conf_, &TlsContext::on_sni, sc.get());
    return sc;
}

int TlsContext::on_sni(void* ctx, mbedtls_ssl_context* ssl, const unsigned char* name,
                       std::size_t len) {
    auto* sc = static_cast<ServerConfig*>(ctx);
    const std::string raw(reinterpret_cast<const char*>(name), len);
    *sc->sni_out_ = raw;
    auto host = policy::canonical_host(raw);
    if (!host || host->kind != policy::HostKind::Name) {
        return -1;  // an SNI that is not a host name: abort the handshake
    }
    auto leaf = sc->ca_->leaf_for(*host);
    if (!leaf) {
        return -1;
    }
    sc->sni_leaf_ = std::move(*leaf);
    return mbedtls_ssl_set_hs_own_cert(ssl, sc->sni_leaf_->chain(), sc->sni_leaf_->key());
}

}  // namespace lj::proxy

// SPDX-License-Identifier: Apache-2.0
// Writing the local CA's certificates (ca_internal.hpp) with mbedTLS 2.28's x509write: the
// self-signed CA certificate and the leaves it signs. 2.28 has no setter for subjectAltName
// or extendedKeyUsage, so both are DER-encoded here with asn1write.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <ctime>
#include <string_view>
#include <vector>

#include <mbedtls/asn1write.h>
#include <mbedtls/ecp.h>
#include <mbedtls/oid.h>

#include "proxy/tls/ca_internal.hpp"

namespace lj::proxy::ca_detail {

namespace {

constexpr const char* kCaSubject = "CN=landjail local CA,O=landjail";
constexpr std::size_t kCertDerMax = 4096;   // ours are ~600 bytes
constexpr std::size_t kMaxCommonName = 64;  // ub-common-name, RFC 5280 appendix A

using CrtWriter =
    Mbed<mbedtls_x509write_cert, mbedtls_x509write_crt_init, mbedtls_x509write_crt_free>;
using Mpi = Mbed<mbedtls_mpi, mbedtls_mpi_init, mbedtls_mpi_free>;

/// "YYYYMMDDhhmmss" in UTC, the form mbedtls_x509write_crt_set_validity takes.
std::string x509_time(std::time_t t) {
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::array<char, 32> text{};
    std::strftime(text.data(), text.size(), "%Y%m%d%H%M%S", &tm);
    return text.data();
}

// ---- what every certificate has ----------------------------------------------------------

/// A random positive serial of exactly 16 bytes (RFC 5280 §4.1.2.2 allows up to 20).
int set_random_serial(mbedtls_x509write_cert* crt, mbedtls_ctr_drbg_context* drbg) {
    std::array<unsigned char, 16> raw{};
    int rc = mbedtls_ctr_drbg_random(drbg, raw.data(), raw.size());
    if (rc != 0) {
        return rc;
    }
    raw[0] = static_cast<unsigned char>((raw[0] & 0x7f) | 0x40);
    Mpi serial;
    rc = mbedtls_mpi_read_binary(serial.get(), raw.data(), raw.size());
    return rc != 0 ? rc : mbedtls_x509write_crt_set_serial(crt, serial.get());
}

/// What every certificate we write has: v3, SHA-256, names, keys, a random serial, the
/// validity and the subject and authority key identifiers.
bool set_common(Step& s, mbedtls_x509write_cert* crt, const CertSpec& spec,
                mbedtls_ctr_drbg_context* drbg) {
    mbedtls_x509write_crt_set_version(crt, MBEDTLS_X509_CRT_VERSION_3);
    mbedtls_x509write_crt_set_md_alg(crt, MBEDTLS_MD_SHA256);
    mbedtls_x509write_crt_set_subject_key(crt, spec.subject_key);
    mbedtls_x509write_crt_set_issuer_key(crt, spec.issuer_key);
    const std::string from = x509_time(spec.not_before);
    const std::string to = x509_time(spec.not_after);
    return s("set subject name",
             mbedtls_x509write_crt_set_subject_name(crt, spec.subject.c_str())) &&
           s("set issuer name", mbedtls_x509write_crt_set_issuer_name(crt, spec.issuer.c_str())) &&
           s("set serial number", set_random_serial(crt, drbg)) &&
           s("set validity", mbedtls_x509write_crt_set_validity(crt, from.c_str(), to.c_str())) &&
           s("set subjectKeyIdentifier", mbedtls_x509write_crt_set_subject_key_identifier(crt)) &&
           s("set authorityKeyIdentifier", mbedtls_x509write_crt_set_authority_key_identifier(crt));
}

/// Signs and DER-encodes `crt` into `out`. mbedtls_x509write_crt_der writes at the END of
/// its buffer and returns the length, so the certificate is the buffer's last `n` bytes.
bool sign_der(Step& s, mbedtls_x509write_cert* crt, mbedtls_ctr_drbg_context* drbg,
              std::vector<unsigned char>& out) {
    std::vector<unsigned char> buf(kCertDerMax);
    const int n =
        mbedtls_x509write_crt_der(crt, buf.data(), buf.size(), mbedtls_ctr_drbg_random, drbg);
    if (!s("sign certificate", n)) {
        return false;
    }
    out.assign(buf.end() - n, buf.end());
    return true;
}

// ---- DER for the extensions 2.28 cannot write --------------------------------------------

/// An ASN.1 buffer filled backwards, as mbedtls_asn1_write_* do: each call prepends. The
/// first error is kept (later writes are bounds-checked no-ops or harmless) and returned by
/// add_to instead of adding the extension.
class Der {
  public:
    explicit Der(std::size_t capacity) : buf_(capacity), p_(buf_.data() + buf_.size()) {}

    Der& raw(const unsigned char* data, std::size_t n) {
        return track(mbedtls_asn1_write_raw_buffer(&p_, buf_.data(), data, n));
    }
    Der& oid(const char* oid, std::size_t n) {
        return track(mbedtls_asn1_write_oid(&p_, buf_.data(), oid, n));
    }
    /// Wraps everything written so far in a TAG LENGTH header.
    Der& wrap(int tag) {
        track(mbedtls_asn1_write_len(&p_, buf_.data(), size()));
        return track(mbedtls_asn1_write_tag(&p_, buf_.data(), static_cast<unsigned char>(tag)));
    }
    /// Adds the content as the value of the non-critical extension `oid`.
    int add_to(mbedtls_x509write_cert* crt, const char* oid, std::size_t oid_len) const {
        return rc_ < 0 ? rc_
                       : mbedtls_x509write_crt_set_extension(crt, oid, oid_len, 0, p_, size());
    }

  private:
    Der& track(int rc) {
        rc_ = rc_ < 0 ? rc_ : rc;
        return *this;
    }
    std::size_t size() const { return static_cast<std::size_t>(buf_.data() + buf_.size() - p_); }

    std::vector<unsigned char> buf_;
    unsigned char* p_;
    int rc_ = 0;
};

/// extendedKeyUsage: ExtKeyUsageSyntax ::= SEQUENCE { id-kp-serverAuth } (RFC 5280 §4.2.1.12).
int set_server_auth(mbedtls_x509write_cert* crt) {
    Der der(32);
    return der.oid(MBEDTLS_OID_SERVER_AUTH, MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH))
        .wrap(MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)
        .add_to(crt, MBEDTLS_OID_EXTENDED_KEY_USAGE,
                MBEDTLS_OID_SIZE(MBEDTLS_OID_EXTENDED_KEY_USAGE));
}

/// subjectAltName: GeneralNames ::= SEQUENCE { name }, where name is dNSName [2] IMPLICIT
/// IA5String or iPAddress [7] IMPLICIT OCTET STRING (RFC 5280 §4.2.1.6). Not critical: the
/// subject is never empty.
int set_san(mbedtls_x509write_cert* crt, int tag, const unsigned char* value, std::size_t n) {
    Der der(n + 16);
    return der.raw(value, n)
        .wrap(MBEDTLS_ASN1_CONTEXT_SPECIFIC | tag)
        .wrap(MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)
        .add_to(crt, MBEDTLS_OID_SUBJECT_ALT_NAME, MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME));
}

constexpr int kSanDnsName = 2;
constexpr int kSanIpAddress = 7;

/// A name we can put in a dNSName and a DN string unescaped: 1..253 of [A-Za-z0-9._-]
/// (what policy::canonical_host produces).
bool plain_dns_name(std::string_view name) {
    return !name.empty() && name.size() <= 253 && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '-' || c == '_';
    });
}

/// The subjectAltName for `host`, or an error for a host that is not what its kind says.
Result<int> set_host_san(mbedtls_x509write_cert* crt, const policy::Host& host) {
    std::array<unsigned char, sizeof(in6_addr)> addr{};
    switch (host.kind) {
        case policy::HostKind::Name:
            if (!plain_dns_name(host.text)) {
                return make_error("leaf certificate: not a DNS name: " + host.text);
            }
            return set_san(crt, kSanDnsName, bytes(host.text), host.text.size());
        case policy::HostKind::IPv4:
        case policy::HostKind::IPv6: {
            const bool v4 = host.kind == policy::HostKind::IPv4;
            if (::inet_pton(v4 ? AF_INET : AF_INET6, host.text.c_str(), addr.data()) != 1) {
                return make_error("leaf certificate: not an IP address: " + host.text);
            }
            return set_san(crt, kSanIpAddress, addr.data(), v4 ? 4 : addr.size());
        }
    }
    return make_error("leaf certificate: unknown host kind for " + host.text);
}

/// The CA's subject as a DN string for mbedtls_x509write_crt_set_issuer_name (the same
/// attributes in the same order, so the leaf's issuer matches the CA's subject).
std::string dn_string(const mbedtls_x509_name& name) {
    std::array<char, 1024> text{};
    const int n = mbedtls_x509_dn_gets(text.data(), text.size(), &name);
    return n < 0 ? std::string() : std::string(text.data());
}

}  // namespace

std::time_t to_time_t(const mbedtls_x509_time& t) {
    std::tm tm{};
    tm.tm_year = t.year - 1900;
    tm.tm_mon = t.mon - 1;
    tm.tm_mday = t.day;
    tm.tm_hour = t.hour;
    tm.tm_min = t.min;
    tm.tm_sec = t.sec;
    return timegm(&tm);
}

int generate_p256(mbedtls_pk_context* pk, mbedtls_ctr_drbg_context* drbg) {
    const int rc = mbedtls_pk_setup(pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
    return rc != 0 ? rc
                   : mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(*pk),
                                         mbedtls_ctr_drbg_random, drbg);
}

bool sign_ca_cert(Step& s, mbedtls_pk_context* key, int days, mbedtls_ctr_drbg_context* drbg,
                  std::vector<unsigned char>& der) {
    const std::time_t now = std::time(nullptr);
    const CertSpec spec{kCaSubject, kCaSubject, now - kDay, now + days * kDay, key, key};
    CrtWriter crt;
    return set_common(s, crt.get(), spec, drbg) &&
           s("set basicConstraints",
             mbedtls_x509write_crt_set_basic_constraints(crt.get(), 1, 0)) &&
           s("set keyUsage",
             mbedtls_x509write_crt_set_key_usage(
                 crt.get(), MBEDTLS_X509_KU_KEY_CERT_SIGN | MBEDTLS_X509_KU_CRL_SIGN)) &&
           sign_der(s, crt.get(), drbg, der);
}

CertSpec leaf_spec(const policy::Host& host, const mbedtls_x509_crt& ca, int days) {
    const std::time_t now = std::time(nullptr);
    CertSpec spec;
    spec.subject = host.text.size() <= kMaxCommonName ? "CN=" + host.text : "O=landjail";
    spec.issuer = dn_string(ca.subject);
    spec.not_before = std::max(now - kDay, to_time_t(ca.valid_from));
    spec.not_after = std::min(now + days * kDay, to_time_t(ca.valid_to));
    return spec;
}

Result<std::vector<unsigned char>> sign_leaf(const policy::Host& host, const CertSpec& spec,
                                             mbedtls_ctr_drbg_context* drbg) {
    CrtWriter crt;
    auto san = set_host_san(crt.get(), host);
    if (!san) {
        return san.error();
    }
    Step s;
    std::vector<unsigned char> der;
    if (!(s("set subjectAltName", *san) && set_common(s, crt.get(), spec, drbg) &&
          s("set basicConstraints",
            mbedtls_x509write_crt_set_basic_constraints(crt.get(), 0, -1)) &&
          s("set keyUsage",
            mbedtls_x509write_crt_set_key_usage(crt.get(), MBEDTLS_X509_KU_DIGITAL_SIGNATURE)) &&
          s("set extendedKeyUsage", set_server_auth(crt.get())) &&
          sign_der(s, crt.get(), drbg, der))) {
        return s.error("leaf certificate for " + host.text);
    }
    return der;
}

}  // namespace lj::proxy::ca_detail

// SPDX-License-Identifier: Apache-2.0
// The local CA (ca.hpp): loading or creating ca.pem + ca-key.pem under an flock on
// `ca.lock`, and minting leaf certificates with mbedTLS 2.28's x509write. 2.28 has no setter
// for subjectAltName or extendedKeyUsage, so both are DER-encoded here with asn1write.
#include "proxy/ca.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

#include <mbedtls/asn1write.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/error.h>
#include <mbedtls/oid.h>
#include <mbedtls/pem.h>
#include <mbedtls/platform_util.h>

#include "proxy/raii.hpp"

namespace lj::proxy {

namespace {

constexpr const char* kCertFile = "ca.pem";
constexpr const char* kKeyFile = "ca-key.pem";
constexpr const char* kLockFile = "ca.lock";
constexpr const char* kCaSubject = "CN=landjail local CA,O=landjail";
constexpr std::time_t kDay = 24 * 60 * 60;
constexpr int kMaxValidityDays = 36500;      // keeps every date a 4-digit year
constexpr std::size_t kCertDerMax = 4096;    // ours are ~600 bytes
constexpr std::size_t kKeyPemMax = 1024;     // a P-256 key PEM is ~230 bytes
constexpr off_t kMaxFileSize = 1024 * 1024;  // a CA file is a few KiB
constexpr std::size_t kMaxCommonName = 64;   // ub-common-name, RFC 5280 appendix A
constexpr mode_t kKeyMode = 0600;
constexpr mode_t kCertMode = 0644;

using Status = Result<std::monostate>;

Status ok() {
    return std::monostate{};
}

// ---- errors ------------------------------------------------------------------------------

/// mbedtls_strerror text plus the code, e.g. "X509 - … (-0x2180)".
std::string mbed_text(int rc) {
    std::array<char, 256> text{};
    mbedtls_strerror(rc, text.data(), text.size());
    std::array<char, 16> code{};
    std::snprintf(code.data(), code.size(), "-0x%04X", static_cast<unsigned>(-rc));
    return std::string(text.data()) + " (" + code.data() + ")";
}

/// "subject: step: detail" — subject is usually a path.
Error fail(const std::string& subject, std::string_view step, const std::string& detail) {
    return make_error(subject + ": " + std::string(step) + ": " + detail);
}

Error errno_fail(const std::string& subject, std::string_view step, int err) {
    return fail(subject, step, std::generic_category().message(err));
}

/// errno_fail with the current errno; call it right after the failing call (its arguments
/// must not allocate, which could change errno).
Error errno_fail(const std::string& subject, std::string_view step) {
    const int err = errno;  // must be the first statement
    return errno_fail(subject, step, err);
}

/// Records the last mbedTLS call so that a chain `s("a", f()) && s("b", g())` stops at the
/// first failure (a negative code) and can say which step failed. Non-negative codes are
/// success (some calls return a length).
class Step {
  public:
    bool operator()(std::string_view step, int rc) {
        step_ = step;
        rc_ = rc;
        return rc >= 0;
    }
    Error error(const std::string& subject) const { return fail(subject, step_, mbed_text(rc_)); }

  private:
    std::string_view step_;
    int rc_ = 0;
};

// ---- RAII --------------------------------------------------------------------------------

using CrtWriter =
    Mbed<mbedtls_x509write_cert, mbedtls_x509write_crt_init, mbedtls_x509write_crt_free>;
using Mpi = Mbed<mbedtls_mpi, mbedtls_mpi_init, mbedtls_mpi_free>;
using PkBox = Mbed<mbedtls_pk_context, mbedtls_pk_init, mbedtls_pk_free>;

/// Wipes a string holding key material when it goes out of scope.
class Wipe {
  public:
    explicit Wipe(std::string& s) : s_(s) {}
    ~Wipe() { mbedtls_platform_zeroize(s_.data(), s_.size()); }
    Wipe(const Wipe&) = delete;
    Wipe& operator=(const Wipe&) = delete;

  private:
    std::string& s_;
};

const unsigned char* bytes(std::string_view s) {
    return reinterpret_cast<const unsigned char*>(s.data());
}

// ---- time --------------------------------------------------------------------------------

/// "YYYYMMDDhhmmss" in UTC, the form mbedtls_x509write_crt_set_validity takes.
std::string x509_time(std::time_t t) {
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::array<char, 32> text{};
    std::strftime(text.data(), text.size(), "%Y%m%d%H%M%S", &tm);
    return text.data();
}

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

// ---- files -------------------------------------------------------------------------------

/// The two files of a CA directory.
struct CaFiles {
    std::string dir;
    std::string cert;
    std::string key;
};

// What to do about a CA that cannot be used, appended to the errors below.
constexpr const char* kHintWritable = "; choose a CA directory you can write with --ca-dir";
constexpr const char* kHintOwn = "; use a CA directory of your own with --ca-dir";
constexpr const char* kHintRecreate =
    "; restore it, or remove ca.pem and ca-key.pem to create a new CA (clients must then "
    "trust the new ca.pem)";

/// `st` with `hint` appended to its message.
Status with_hint(Status st, const char* hint) {
    if (!st) {
        return make_error(st.error().message + hint);
    }
    return st;
}

/// mkdir -p: every directory it creates gets mode 0700 (before umask); existing ones are
/// left as they are. Errors name the directory and the component that could not be created.
Status make_dirs(const std::string& dir) {
    std::size_t end = 0;
    while (end != std::string::npos) {
        end = dir.find('/', end + 1);
        const std::string part = dir.substr(0, end);
        if (!part.empty() && part.back() != '/' && ::mkdir(part.c_str(), 0700) != 0 &&
            errno != EEXIST) {
            const int err = errno;
            return fail(dir, "create CA directory",
                        (part == dir ? "" : part + ": ") + std::generic_category().message(err) +
                            kHintWritable);
        }
    }
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) {
        return errno_fail(dir, "stat CA directory");
    }
    if (!S_ISDIR(st.st_mode)) {
        return fail(dir, "create CA directory",
                    "exists and is not a directory; give --ca-dir a directory");
    }
    return ok();
}

/// Whether `path` exists (lstat); errors other than ENOENT are reported.
Result<bool> exists(const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
        return true;
    }
    const int err = errno;
    if (err == ENOENT) {
        return false;
    }
    return errno_fail(path, "stat", err);
}

Result<UniqueFd> open_read(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) {
        return errno_fail(path, "open");
    }
    return fd;
}

/// Reads the whole file behind `fd` into a string allocated once (so key material is not
/// left behind in reallocated buffers). Files over 1 MiB are refused.
Result<std::string> read_all(int fd, const std::string& path) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        return errno_fail(path, "stat");
    }
    if (!S_ISREG(st.st_mode) || st.st_size > kMaxFileSize) {
        return fail(path, "read", "not a regular file of at most 1 MiB");
    }
    std::string out(static_cast<std::size_t>(st.st_size), '\0');
    std::size_t got = 0;
    while (got < out.size()) {
        const ssize_t n = ::read(fd, out.data() + got, out.size() - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return errno_fail(path, "read");
        }
        if (n == 0) {
            break;
        }
        got += static_cast<std::size_t>(n);
    }
    out.resize(got);
    return out;
}

Status write_all(int fd, const std::string& path, std::string_view data) {
    while (!data.empty()) {
        const ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return errno_fail(path, "write");
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return ok();
}

/// Gives the temporary file its final mode, writes it and flushes it to disk.
Status fill_temp(int fd, const std::string& tmp, std::string_view data, mode_t mode) {
    if (::fchmod(fd, mode) != 0) {
        return errno_fail(tmp, "chmod");
    }
    if (auto st = write_all(fd, tmp, data); !st) {
        return st;
    }
    if (::fsync(fd) != 0) {
        return errno_fail(tmp, "fsync");
    }
    return ok();
}

/// Replaces `path` atomically with `data`: a temporary file in the same directory, created
/// with O_CREAT|O_EXCL and mode 0600 (mkostemp, so key material is never readable by
/// others, even briefly), chmod'ed to `mode`, written, fsync'ed and renamed over `path`. A
/// crash leaves the old file or the new one, never half a file.
Status write_atomic(const CaFiles& files, const std::string& path, std::string_view data,
                    mode_t mode) {
    const std::size_t slash = path.rfind('/');
    std::string tmp = files.dir + "/." + path.substr(slash + 1) + ".XXXXXX";
    UniqueFd fd(::mkostemp(tmp.data(), O_CLOEXEC));
    if (!fd.valid()) {
        return errno_fail(files.dir, "create " + path.substr(slash + 1));
    }
    Status st = fill_temp(fd.get(), tmp, data, mode);
    if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
        const int err = errno;
        st = errno_fail(path, "rename " + tmp, err);
    }
    if (!st.ok()) {
        ::unlink(tmp.c_str());
    }
    return st;
}

/// Makes the renames durable.
Status sync_dir(const std::string& dir) {
    UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid() || ::fsync(fd.get()) != 0) {
        return errno_fail(dir, "fsync directory");
    }
    return ok();
}

/// Serializes load-or-create between processes sharing the directory: an exclusive flock on
/// dir/ca.lock, released when the returned UniqueFd closes. The lock file is never removed
/// (removing it would let two processes lock two different files). In a directory we cannot
/// write (EACCES, EROFS) there is no lock and nothing to race on: loading still works, and
/// creating fails later with its own error.
Result<UniqueFd> lock_dir(const std::string& dir) {
    const std::string path = dir + "/" + kLockFile;
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, kKeyMode));
    if (!fd.valid()) {
        const int err = errno;
        if (err == EACCES || err == EROFS) {
            return UniqueFd();
        }
        return errno_fail(path, "open lock file", err);
    }
    while (::flock(fd.get(), LOCK_EX) != 0) {
        const int err = errno;
        if (err != EINTR) {
            return errno_fail(path, "flock", err);
        }
    }
    return fd;
}

// ---- certificates ------------------------------------------------------------------------

/// Everything that differs between the certificates we write, apart from extensions.
struct CertSpec {
    std::string subject;
    std::string issuer;
    std::time_t not_before = 0;
    std::time_t not_after = 0;
    mbedtls_pk_context* subject_key = nullptr;
    mbedtls_pk_context* issuer_key = nullptr;
};

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

/// A new ECDSA P-256 key in `pk` (which must be freshly initialised).
int generate_p256(mbedtls_pk_context* pk, mbedtls_ctr_drbg_context* drbg) {
    const int rc = mbedtls_pk_setup(pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
    return rc != 0 ? rc
                   : mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(*pk),
                                         mbedtls_ctr_drbg_random, drbg);
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

// ---- the CA pair -------------------------------------------------------------------------

/// A certificate's DER as PEM text.
Result<std::string> der_to_pem(const std::vector<unsigned char>& der) {
    std::vector<unsigned char> buf(der.size() * 2 + 128);
    std::size_t len = 0;
    const int rc =
        mbedtls_pem_write_buffer("-----BEGIN CERTIFICATE-----\n", "-----END CERTIFICATE-----\n",
                                 der.data(), der.size(), buf.data(), buf.size(), &len);
    if (rc != 0) {
        return fail("certificate", "encode PEM", mbed_text(rc));
    }
    return std::string(reinterpret_cast<const char*>(buf.data()));
}

/// The self-signed CA certificate for `key`: CA:TRUE pathlen 0, keyCertSign|cRLSign, valid
/// from a day ago for `days` days.
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

/// The PEM text of the private key (to be wiped by the caller).
Result<std::string> key_to_pem(mbedtls_pk_context* key) {
    std::string pem(kKeyPemMax, '\0');
    const int rc =
        mbedtls_pk_write_key_pem(key, reinterpret_cast<unsigned char*>(pem.data()), pem.size());
    if (rc != 0) {
        mbedtls_platform_zeroize(pem.data(), pem.size());
        return fail("CA key", "encode PEM", mbed_text(rc));
    }
    pem.resize(pem.find('\0'));
    return pem;
}

/// Writes ca-key.pem (0600) and then ca.pem (0644), each atomically.
Status write_pair(const CaFiles& files, mbedtls_pk_context* key,
                  const std::vector<unsigned char>& der, std::string& cert_pem) {
    auto key_pem = key_to_pem(key);
    if (!key_pem) {
        return key_pem.error();
    }
    Wipe wipe(*key_pem);
    auto pem = der_to_pem(der);
    if (!pem) {
        return pem.error();
    }
    if (auto st = write_atomic(files, files.key, *key_pem, kKeyMode); !st) {
        return st;
    }
    if (auto st = write_atomic(files, files.cert, *pem, kCertMode); !st) {
        return st;
    }
    cert_pem = std::move(*pem);
    return sync_dir(files.dir);
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

/// Parses ca.pem into `cert` and checks that it is a CA certificate that may sign others.
Status load_cert(const std::string& path, mbedtls_x509_crt* cert, std::string& pem) {
    auto fd = open_read(path);
    if (!fd) {
        return with_hint(fd.error(), kHintOwn);
    }
    auto text = read_all(fd->get(), path);
    if (!text) {
        return with_hint(text.error(), kHintRecreate);
    }
    const int rc = mbedtls_x509_crt_parse(cert, bytes(*text), text->size() + 1);
    if (rc != 0) {
        return fail(
            path, "parse certificate",
            (rc < 0 ? mbed_text(rc) : std::to_string(rc) + " certificate(s) did not parse") +
                kHintRecreate);
    }
    if (cert->ca_istrue == 0 ||
        mbedtls_x509_crt_check_key_usage(cert, MBEDTLS_X509_KU_KEY_CERT_SIGN) != 0) {
        return fail(path, "check certificate",
                    std::string("not a CA certificate (needs basicConstraints CA:TRUE and "
                                "keyCertSign)") +
                        kHintRecreate);
    }
    pem = std::move(*text);
    return ok();
}

/// The private key file must not be readable by group or others: fixed to 0600 when we
/// own it, else an error.
Status check_key_mode(int fd, const std::string& path) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        return errno_fail(path, "stat");
    }
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) == 0) {
        return ok();
    }
    std::array<char, 8> mode{};
    std::snprintf(mode.data(), mode.size(), "%04o", st.st_mode & 07777U);
    if (st.st_uid != ::geteuid()) {
        return fail(path, "check mode",
                    std::string("mode ") + mode.data() +
                        " lets other users read the CA key, and it belongs to another user, so "
                        "landjail cannot fix it: its owner must run chmod 600 " +
                        path + std::string(kHintOwn).replace(0, 1, ", or"));
    }
    if (::fchmod(fd, kKeyMode) != 0) {
        const int err = errno;
        return errno_fail(path, std::string("chmod 0600 (was ") + mode.data() + ")", err);
    }
    return ok();
}

/// Parses ca-key.pem into `key` after checking its mode; the text is wiped afterwards.
Status load_key(const std::string& path, mbedtls_pk_context* key) {
    auto fd = open_read(path);
    if (!fd) {
        return with_hint(fd.error(), kHintOwn);
    }
    if (auto st = check_key_mode(fd->get(), path); !st) {
        return st;
    }
    auto text = read_all(fd->get(), path);
    if (!text) {
        return text.error();
    }
    Wipe wipe(*text);
    const int rc = mbedtls_pk_parse_key(key, bytes(*text), text->size() + 1, nullptr, 0);
    if (rc != 0) {
        return fail(path, "parse private key", mbed_text(rc) + kHintRecreate);
    }
    return ok();
}

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

/// Under the directory lock: loads the pair from `files`, or creates it when neither file
/// exists or the certificate is expiring. `ca.created` tells which.
struct CaSlots {
    mbedtls_x509_crt* cert;
    mbedtls_pk_context* key;
    std::string* pem;
    bool* created;
};

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

/// The CA's subject as a DN string for mbedtls_x509write_crt_set_issuer_name (the same
/// attributes in the same order, so the leaf's issuer matches the CA's subject).
std::string dn_string(const mbedtls_x509_name& name) {
    std::array<char, 1024> text{};
    const int n = mbedtls_x509_dn_gets(text.data(), text.size(), &name);
    return n < 0 ? std::string() : std::string(text.data());
}

/// Leaf names and validity: CN = host (omitted above 64 characters, the RFC 5280 bound;
/// the subjectAltName carries the name), valid from a day ago (not before the CA) for
/// `days` days (not after the CA).
CertSpec leaf_spec(const policy::Host& host, const mbedtls_x509_crt& ca, int days) {
    const std::time_t now = std::time(nullptr);
    CertSpec spec;
    spec.subject = host.text.size() <= kMaxCommonName ? "CN=" + host.text : "O=landjail";
    spec.issuer = dn_string(ca.subject);
    spec.not_before = std::max(now - kDay, to_time_t(ca.valid_from));
    spec.not_after = std::min(now + days * kDay, to_time_t(ca.valid_to));
    return spec;
}

/// The signed DER of a leaf for `host`: CA:FALSE, digitalSignature (all ECDHE_ECDSA
/// needs), serverAuth, and the host's subjectAltName.
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

/// The key of a leaf in the cache: the kind, then the canonical text.
std::string cache_key(const policy::Host& host) {
    return static_cast<char>('0' + static_cast<int>(host.kind)) + host.text;
}

}  // namespace

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
    auto leaf_key = std::make_shared<PkBox>();
    if (!s("generate leaf key", generate_p256(leaf_key->get(), &ca->drbg_))) {
        return s.error(files.dir);
    }
    ca->leaf_key_ = std::shared_ptr<mbedtls_pk_context>(leaf_key, leaf_key->get());
    // TLS signs with an ECDSA-typed copy: signing through the generic ECKEY type sets up a
    // temporary ECDSA context each time and rebuilds the curve's precomputed table (measured
    // 0.7-0.95 ms against 0.32 ms a signature). The ECKEY form stays for x509write, which
    // cannot write an ECDSA-typed key.
    auto sign_key = std::make_shared<PkBox>();
    if (!(s("set up the signing key",
            mbedtls_pk_setup(sign_key->get(), mbedtls_pk_info_from_type(MBEDTLS_PK_ECDSA))) &&
          s("copy the signing key", mbedtls_ecdsa_from_keypair(mbedtls_pk_ec(*sign_key->get()),
                                                               mbedtls_pk_ec(*leaf_key->get()))))) {
        return s.error(files.dir);
    }
    ca->sign_key_ = std::shared_ptr<mbedtls_pk_context>(sign_key, sign_key->get());
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

// SPDX-License-Identifier: Apache-2.0
// What the three parts of the local CA share, internal to libljproxy: ca.cpp (the CA's
// lifecycle and leaf cache), ca_store.cpp (the CA directory on disk: creation, the lock,
// atomic writes, reading the pair and checking the key's mode) and ca_x509.cpp (writing
// certificates with mbedTLS 2.28's x509write). Errors are "subject: step: detail" strings;
// none of this is thread-safe on its own (CertAuthority serializes what needs it).
#pragma once

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <ctime>
#include <string>
#include <string_view>
#include <system_error>
#include <variant>
#include <vector>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>

#include "policy/request.hpp"
#include "policy/result.hpp"
#include "proxy/base/fd.hpp"
#include "proxy/tls/mbed.hpp"

namespace lj::proxy::ca_detail {

constexpr std::time_t kDay = 24 * 60 * 60;



inline Status ok() {
    return {};
}

// ---- errors ------------------------------------------------------------------------------

/// mbedtls_strerror text plus the code, e.g. "X509 - … (-0x2180)".
inline std::string mbed_text(int rc) {
    std::array<char, 256> text{};
    mbedtls_strerror(rc, text.data(), text.size());
    std::array<char, 16> code{};
    std::snprintf(code.data(), code.size(), "-0x%04X", static_cast<unsigned>(-rc));
    return std::string(text.data()) + " (" + code.data() + ")";
}

/// "subject: step: detail" — subject is usually a path.
inline Error fail(const std::string& subject, std::string_view step, const std::string& detail) {
    return make_error(subject + ": " + std::string(step) + ": " + detail);
}

inline Error errno_fail(const std::string& subject, std::string_view step, int err) {
    return fail(subject, step, std::generic_category().message(err));
}

/// errno_fail with the current errno; call it right after the failing call (its arguments
/// must not allocate, which could change errno).
inline Error errno_fail(const std::string& subject, std::string_view step) {
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

// What to do about a CA that cannot be used, appended to the errors.
constexpr const char* kHintWritable = "; choose a CA directory you can write with --ca-dir";
constexpr const char* kHintOwn = "; use a CA directory of your own with --ca-dir";
constexpr const char* kHintRecreate =
    "; restore it, or remove ca.pem and ca-key.pem to create a new CA (clients must then "
    "trust the new ca.pem)";

/// `st` with `hint` appended to its message.
inline Status with_hint(Status st, const char* hint) {
    if (!st) {
        return make_error(st.error().message + hint);
    }
    return st;
}

/// `s` as the unsigned bytes mbedTLS takes.
inline const unsigned char* bytes(std::string_view s) {
    return reinterpret_cast<const unsigned char*>(s.data());
}

// ---- the CA directory (ca_store.cpp) -----------------------------------------------------

/// The two files of a CA directory.
struct CaFiles {
    std::string dir;
    std::string cert;
    std::string key;
};

/// mkdir -p: every directory it creates gets mode 0700 (before umask); existing ones are
/// left as they are. Errors name the directory and the component that could not be created.
Status make_dirs(const std::string& dir);

/// Whether `path` exists (lstat); errors other than ENOENT are reported.
Result<bool> exists(const std::string& path);

/// Serializes load-or-create between processes sharing the directory: an exclusive flock on
/// dir/ca.lock, released when the returned UniqueFd closes. The lock file is never removed
/// (removing it would let two processes lock two different files). In a directory we cannot
/// write (EACCES, EROFS) there is no lock and nothing to race on: loading still works, and
/// creating fails later with its own error.
Result<UniqueFd> lock_dir(const std::string& dir);

/// Parses ca.pem into `cert` and checks that it is a CA certificate that may sign others;
/// `pem` receives the file's text.
Status load_cert(const std::string& path, mbedtls_x509_crt* cert, std::string& pem);

/// Parses ca-key.pem into `key` after checking its mode (not readable by group or others:
/// fixed to 0600 when we own it, else an error); the text is wiped afterwards.
Status load_key(const std::string& path, mbedtls_pk_context* key);

/// Writes ca-key.pem (0600) and then ca.pem (0644, from the certificate's `der`), each
/// atomically, then syncs the directory. `cert_pem` receives ca.pem's text.
Status write_pair(const CaFiles& files, mbedtls_pk_context* key,
                  const std::vector<unsigned char>& der, std::string& cert_pem);

// ---- writing certificates (ca_x509.cpp) --------------------------------------------------

/// Everything that differs between the certificates we write, apart from extensions.
struct CertSpec {
    std::string subject;
    std::string issuer;
    std::time_t not_before = 0;
    std::time_t not_after = 0;
    mbedtls_pk_context* subject_key = nullptr;
    mbedtls_pk_context* issuer_key = nullptr;
};

/// A certificate date as a time_t (UTC).
std::time_t to_time_t(const mbedtls_x509_time& t);

/// A new ECDSA P-256 key in `pk` (which must be freshly initialised); an mbedTLS code.
int generate_p256(mbedtls_pk_context* pk, mbedtls_ctr_drbg_context* drbg);

/// The self-signed CA certificate for `key` as DER in `der`: CA:TRUE pathlen 0,
/// keyCertSign|cRLSign, valid from a day ago for `days` days. False after a failed step,
/// which `s` names.
bool sign_ca_cert(Step& s, mbedtls_pk_context* key, int days, mbedtls_ctr_drbg_context* drbg,
                  std::vector<unsigned char>& der);

/// Leaf names and validity: CN = host (omitted above 64 characters, the RFC 5280 bound;
/// the subjectAltName carries the name), valid from a day ago (not before the CA) for
/// `days` days (not after the CA). The keys are left for the caller to set.
CertSpec leaf_spec(const policy::Host& host, const mbedtls_x509_crt& ca, int days);

/// The signed DER of a leaf for `host`: CA:FALSE, digitalSignature (all ECDHE_ECDSA
/// needs), serverAuth, and the host's subjectAltName.
Result<std::vector<unsigned char>> sign_leaf(const policy::Host& host, const CertSpec& spec,
                                             mbedtls_ctr_drbg_context* drbg);

}  // namespace lj::proxy::ca_detail

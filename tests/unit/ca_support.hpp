// SPDX-License-Identifier: Apache-2.0
// Shared fixtures of the local CA's unit tests (test_ca_*.cpp): a temporary directory per
// test, opening the CA, parsing and verifying certificates with mbedTLS, running the openssl
// tool, and writing a handmade CA pair with chosen validity.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <initializer_list>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/oid.h>
#include <mbedtls/pem.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>

#include "policy/request.hpp"
#include "proxy/tls/ca.hpp"
#include "tests/unit/lj_test.hpp"

namespace lj::test::ca_support {

using lj::policy::canonical_host;
using lj::policy::Host;
using lj::proxy::CertAuthority;
using lj::proxy::Leaf;
using lj::test::contains_any;
using lj::test::describe;

inline constexpr std::time_t kDay = 24 * 60 * 60;

/// A fresh directory (mkdtemp) for one test, removed when the test passes (a failed
/// assertion ends the test process without running destructors, keeping it to look at).
class TempDir {
  public:
    TempDir() {
        char tmpl[] = "/tmp/lj_ca_test_XXXXXX";
        cr_assert_not_null(::mkdtemp(tmpl), "mkdtemp: %s", std::strerror(errno));
        path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }

  private:
    std::string path_;
};

inline CertAuthority::Options options_in(const std::string& dir, std::size_t capacity = 16) {
    CertAuthority::Options o;
    o.dir = dir;
    o.cache_capacity = capacity;
    return o;
}

inline std::shared_ptr<CertAuthority> open_ok(const CertAuthority::Options& o) {
    auto r = CertAuthority::open(o);
    cr_assert(r.ok(), "open(%s): %s", o.dir.c_str(), describe(r).c_str());
    return *r;
}

inline std::string open_error(const CertAuthority::Options& o) {
    auto r = CertAuthority::open(o);
    cr_assert(!r.ok(), "open(%s) should fail", o.dir.c_str());
    return r.error().what();
}

inline Host host(const char* text) {
    auto r = canonical_host(text);
    cr_assert(r.ok(), "canonical_host(%s): %s", text, describe(r).c_str());
    return *r;
}

inline std::shared_ptr<Leaf> leaf(CertAuthority& ca, const char* name) {
    auto r = ca.leaf_for(host(name));
    cr_assert(r.ok(), "leaf_for(%s): %s", name, describe(r).c_str());
    return *r;
}

inline mode_t mode_of(const std::string& path) {
    struct stat st {};
    cr_assert_eq(::stat(path.c_str(), &st), 0, "stat %s: %s", path.c_str(), std::strerror(errno));
    return st.st_mode & 07777;
}

inline std::string read_text(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    cr_assert_not_null(f, "open %s", path.c_str());
    std::string out;
    std::array<char, 4096> buf{};
    std::size_t n = 0;
    while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0) {
        out.append(buf.data(), n);
    }
    std::fclose(f);
    return out;
}

inline void write_text(const std::string& path, const std::string& text, mode_t mode) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    cr_assert(fd >= 0, "create %s: %s", path.c_str(), std::strerror(errno));
    cr_assert_eq(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    cr_assert_eq(::fchmod(fd, mode), 0);
    ::close(fd);
}

/// Runs a shell command; returns its stdout and sets `status` to its exit status.
inline std::string run(const std::string& cmd, int& status) {
    std::FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
    cr_assert_not_null(p, "popen %s", cmd.c_str());
    std::string out;
    std::array<char, 4096> buf{};
    std::size_t n = 0;
    while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) {
        out.append(buf.data(), n);
    }
    const int raw = ::pclose(p);
    status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    return out;
}

/// An mbedtls_x509_crt that frees itself.
struct Crt {
    mbedtls_x509_crt c;
    Crt() { mbedtls_x509_crt_init(&c); }
    ~Crt() { mbedtls_x509_crt_free(&c); }
    Crt(const Crt&) = delete;
    Crt& operator=(const Crt&) = delete;
};

inline void parse_pem(Crt& crt, const std::string& pem) {
    const int rc = mbedtls_x509_crt_parse(
        &crt.c, reinterpret_cast<const unsigned char*>(pem.c_str()), pem.size() + 1);
    cr_assert_eq(rc, 0, "parse PEM: -0x%04x", static_cast<unsigned>(-rc));
}

inline std::time_t to_time(const mbedtls_x509_time& t) {
    std::tm tm{};
    tm.tm_year = t.year - 1900;
    tm.tm_mon = t.mon - 1;
    tm.tm_mday = t.day;
    tm.tm_hour = t.hour;
    tm.tm_min = t.min;
    tm.tm_sec = t.sec;
    return timegm(&tm);
}

/// Verification flags of `chain` against the trust anchor `ca` for `name` (nullptr: none).
inline std::uint32_t verify(mbedtls_x509_crt* chain, mbedtls_x509_crt* ca, const char* name) {
    std::uint32_t flags = 0;
    const int rc = mbedtls_x509_crt_verify(chain, ca, nullptr, name, &flags, nullptr, nullptr);
    return rc == 0 ? 0 : (flags == 0 ? 0xffffffffU : flags);
}

inline bool has_bytes(const mbedtls_x509_buf& raw, std::initializer_list<unsigned char> needle) {
    const std::vector<unsigned char> n(needle);
    const unsigned char* begin = raw.p;
    const unsigned char* end = begin + raw.len;
    return std::search(begin, end, n.begin(), n.end()) != end;
}

inline std::string der_to_pem(const mbedtls_x509_buf& der) {
    std::vector<unsigned char> buf(der.len * 2 + 128);
    std::size_t len = 0;
    const int rc =
        mbedtls_pem_write_buffer("-----BEGIN CERTIFICATE-----\n", "-----END CERTIFICATE-----\n",
                                 der.p, der.len, buf.data(), buf.size(), &len);
    cr_assert_eq(rc, 0);
    return reinterpret_cast<const char*>(buf.data());
}

/// mbedTLS contexts for writing a CA pair by hand (expired, or not a CA).
struct Writer {
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_pk_context key;
    mbedtls_x509write_cert crt;
    mbedtls_mpi serial;
    Writer() {
        mbedtls_entropy_init(&entropy);
        mbedtls_ctr_drbg_init(&drbg);
        mbedtls_pk_init(&key);
        mbedtls_x509write_crt_init(&crt);
        mbedtls_mpi_init(&serial);
    }
    ~Writer() {
        mbedtls_mpi_free(&serial);
        mbedtls_x509write_crt_free(&crt);
        mbedtls_pk_free(&key);
        mbedtls_ctr_drbg_free(&drbg);
        mbedtls_entropy_free(&entropy);
    }
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;
};

inline std::string utc(std::time_t t) {
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::array<char, 32> text{};
    std::strftime(text.data(), text.size(), "%Y%m%d%H%M%S", &tm);
    return text.data();
}

/// Writes ca.pem + ca-key.pem (0600) valid from now+from to now+to seconds.
inline void write_ca(const std::string& dir, std::time_t from, std::time_t to, bool is_ca) {
    Writer w;
    cr_assert_eq(mbedtls_ctr_drbg_seed(&w.drbg, mbedtls_entropy_func, &w.entropy, nullptr, 0), 0);
    cr_assert_eq(mbedtls_pk_setup(&w.key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)), 0);
    cr_assert_eq(mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(w.key),
                                     mbedtls_ctr_drbg_random, &w.drbg),
                 0);
    const std::time_t now = std::time(nullptr);
    mbedtls_x509write_crt_set_subject_key(&w.crt, &w.key);
    mbedtls_x509write_crt_set_issuer_key(&w.crt, &w.key);
    mbedtls_x509write_crt_set_md_alg(&w.crt, MBEDTLS_MD_SHA256);
    cr_assert_eq(mbedtls_mpi_lset(&w.serial, 42), 0);
    cr_assert_eq(mbedtls_x509write_crt_set_serial(&w.crt, &w.serial), 0);
    cr_assert_eq(mbedtls_x509write_crt_set_subject_name(&w.crt, "CN=handmade,O=test"), 0);
    cr_assert_eq(mbedtls_x509write_crt_set_issuer_name(&w.crt, "CN=handmade,O=test"), 0);
    cr_assert_eq(
        mbedtls_x509write_crt_set_validity(&w.crt, utc(now + from).c_str(), utc(now + to).c_str()),
        0);
    cr_assert_eq(mbedtls_x509write_crt_set_basic_constraints(&w.crt, is_ca ? 1 : 0, -1), 0);
    std::vector<unsigned char> buf(4096);
    cr_assert_eq(
        mbedtls_x509write_crt_pem(&w.crt, buf.data(), buf.size(), mbedtls_ctr_drbg_random, &w.drbg),
        0);
    write_text(dir + "/ca.pem", reinterpret_cast<const char*>(buf.data()), 0644);
    cr_assert_eq(mbedtls_pk_write_key_pem(&w.key, buf.data(), buf.size()), 0);
    write_text(dir + "/ca-key.pem", reinterpret_cast<const char*>(buf.data()), 0600);
}

}  // namespace lj::test::ca_support

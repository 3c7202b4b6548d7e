// SPDX-License-Identifier: Apache-2.0
// The local CA (proxy/ca.hpp): creating and reusing ca.pem/ca-key.pem (modes, expiry,
// errors that name the file, concurrent first use), and the leaves it mints (chain, names,
// extensions, validity, LRU cache), checked with mbedTLS and with the openssl tool.
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

using lj::policy::canonical_host;
using lj::policy::Host;
using lj::proxy::CertAuthority;
using lj::proxy::Leaf;
using lj::test::contains_any;
using lj::test::describe;

namespace {

constexpr std::time_t kDay = 24 * 60 * 60;

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

CertAuthority::Options options_in(const std::string& dir, std::size_t capacity = 16) {
    CertAuthority::Options o;
    o.dir = dir;
    o.cache_capacity = capacity;
    return o;
}

std::shared_ptr<CertAuthority> open_ok(const CertAuthority::Options& o) {
    auto r = CertAuthority::open(o);
    cr_assert(r.ok(), "open(%s): %s", o.dir.c_str(), describe(r).c_str());
    return *r;
}

std::string open_error(const CertAuthority::Options& o) {
    auto r = CertAuthority::open(o);
    cr_assert(!r.ok(), "open(%s) should fail", o.dir.c_str());
    return r.error().what();
}

Host host(const char* text) {
    auto r = canonical_host(text);
    cr_assert(r.ok(), "canonical_host(%s): %s", text, describe(r).c_str());
    return *r;
}

std::shared_ptr<Leaf> leaf(CertAuthority& ca, const char* name) {
    auto r = ca.leaf_for(host(name));
    cr_assert(r.ok(), "leaf_for(%s): %s", name, describe(r).c_str());
    return *r;
}

mode_t mode_of(const std::string& path) {
    struct stat st {};
    cr_assert_eq(::stat(path.c_str(), &st), 0, "stat %s: %s", path.c_str(), std::strerror(errno));
    return st.st_mode & 07777;
}

std::string read_text(const std::string& path) {
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

void write_text(const std::string& path, const std::string& text, mode_t mode) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    cr_assert(fd >= 0, "create %s: %s", path.c_str(), std::strerror(errno));
    cr_assert_eq(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    cr_assert_eq(::fchmod(fd, mode), 0);
    ::close(fd);
}

/// Runs a shell command; returns its stdout and sets `status` to its exit status.
std::string run(const std::string& cmd, int& status) {
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

void parse_pem(Crt& crt, const std::string& pem) {
    const int rc = mbedtls_x509_crt_parse(
        &crt.c, reinterpret_cast<const unsigned char*>(pem.c_str()), pem.size() + 1);
    cr_assert_eq(rc, 0, "parse PEM: -0x%04x", static_cast<unsigned>(-rc));
}

std::time_t to_time(const mbedtls_x509_time& t) {
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
std::uint32_t verify(mbedtls_x509_crt* chain, mbedtls_x509_crt* ca, const char* name) {
    std::uint32_t flags = 0;
    const int rc = mbedtls_x509_crt_verify(chain, ca, nullptr, name, &flags, nullptr, nullptr);
    return rc == 0 ? 0 : (flags == 0 ? 0xffffffffU : flags);
}

bool has_bytes(const mbedtls_x509_buf& raw, std::initializer_list<unsigned char> needle) {
    const std::vector<unsigned char> n(needle);
    const unsigned char* begin = raw.p;
    const unsigned char* end = begin + raw.len;
    return std::search(begin, end, n.begin(), n.end()) != end;
}

std::string der_to_pem(const mbedtls_x509_buf& der) {
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

std::string utc(std::time_t t) {
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::array<char, 32> text{};
    std::strftime(text.data(), text.size(), "%Y%m%d%H%M%S", &tm);
    return text.data();
}

/// Writes ca.pem + ca-key.pem (0600) valid from now+from to now+to seconds.
void write_ca(const std::string& dir, std::time_t from, std::time_t to, bool is_ca) {
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

}  // namespace

// ---- creating and reusing the CA ---------------------------------------------------------

Test(ca, first_open_creates_then_reuses) {
    const TempDir tmp;
    const std::string dir = tmp.path() + "/nested/ca";
    auto first = open_ok(options_in(dir));
    cr_assert(first->created());
    cr_assert_eq(first->cert_path(), dir + "/ca.pem");
    cr_assert_eq(mode_of(dir), 0700U, "dir mode %o", mode_of(dir));
    cr_assert_eq(mode_of(dir + "/ca-key.pem"), 0600U, "key mode %o", mode_of(dir + "/ca-key.pem"));
    cr_assert_eq(mode_of(dir + "/ca.pem"), 0644U, "cert mode %o", mode_of(dir + "/ca.pem"));
    cr_assert_eq(read_text(dir + "/ca.pem"), first->cert_pem());
    cr_assert(contains_any(first->cert_pem(), "-----BEGIN CERTIFICATE-----"));
    auto second = open_ok(options_in(dir));
    cr_assert_not(second->created());
    cr_assert_eq(second->cert_pem(), first->cert_pem());
}

Test(ca, cert_is_a_self_signed_p256_ca) {
    const TempDir tmp;
    auto ca = open_ok(options_in(tmp.path()));
    Crt crt;
    parse_pem(crt, ca->cert_pem());
    cr_assert_null(crt.c.next, "one certificate in ca.pem");
    cr_assert_eq(crt.c.version, 3);
    cr_assert_eq(crt.c.ca_istrue, 1);
    cr_assert_eq(crt.c.max_pathlen, 1, "pathlen 0 (mbedTLS stores pathlen + 1)");
    cr_assert_eq(mbedtls_x509_crt_check_key_usage(&crt.c, MBEDTLS_X509_KU_KEY_CERT_SIGN), 0);
    cr_assert_eq(mbedtls_x509_crt_check_key_usage(&crt.c, MBEDTLS_X509_KU_CRL_SIGN), 0);
    cr_assert_eq(crt.c.serial.len, 16U);
    cr_assert_lt(crt.c.serial.p[0], 0x80, "serial is positive");
    cr_assert_eq(crt.c.sig_md, MBEDTLS_MD_SHA256);
    cr_assert_eq(mbedtls_pk_get_type(&crt.c.pk), MBEDTLS_PK_ECKEY);
    cr_assert_eq(mbedtls_pk_ec(crt.c.pk)->grp.id, MBEDTLS_ECP_DP_SECP256R1);
    cr_assert_eq(crt.c.subject_raw.len, crt.c.issuer_raw.len);
    cr_assert_eq(std::memcmp(crt.c.subject_raw.p, crt.c.issuer_raw.p, crt.c.subject_raw.len), 0);
    std::array<char, 256> dn{};
    cr_assert_gt(mbedtls_x509_dn_gets(dn.data(), dn.size(), &crt.c.subject), 0);
    cr_assert_str_eq(dn.data(), "CN=landjail local CA, O=landjail");
    cr_assert_eq(verify(&crt.c, &crt.c, nullptr), 0U, "self-signature verifies");
    const std::time_t now = std::time(nullptr);
    const std::time_t from = to_time(crt.c.valid_from);
    const std::time_t to = to_time(crt.c.valid_to);
    cr_assert(from <= now - kDay + 60 && from >= now - kDay - 60, "backdated one day");
    cr_assert(to >= now + 3650 * kDay - 60 && to <= now + 3650 * kDay + 60, "valid 3650 days");
}

// ---- leaves ------------------------------------------------------------------------------

Test(ca, leaf_verifies_for_its_name_only) {
    const TempDir tmp;
    auto ca = open_ok(options_in(tmp.path()));
    Crt root;
    parse_pem(root, ca->cert_pem());
    auto l = leaf(*ca, "origin.test");
    cr_assert_eq(verify(l->chain(), &root.c, "origin.test"), 0U);
    const std::uint32_t other = verify(l->chain(), &root.c, "other.test");
    cr_assert(other & MBEDTLS_X509_BADCERT_CN_MISMATCH, "flags 0x%x", other);
    // The TLS key is ECDSA-typed and the certificate's ECKEY-typed (same curve point), so
    // compare the EC key pairs themselves: mbedtls_pk_check_pair refuses mixed types.
    cr_assert_eq(mbedtls_pk_get_type(l->key()), MBEDTLS_PK_ECDSA);
    cr_assert_eq(
        mbedtls_ecp_check_pub_priv(mbedtls_pk_ec(l->chain()->pk), mbedtls_pk_ec(*l->key())), 0,
        "key matches leaf");
}

Test(ca, leaf_chain_extensions_and_validity) {
    const TempDir tmp;
    auto ca = open_ok(options_in(tmp.path()));
    Crt root;
    parse_pem(root, ca->cert_pem());
    auto l = leaf(*ca, "origin.test");
    mbedtls_x509_crt* cert = l->chain();
    cr_assert_not_null(cert->next, "chain: leaf then CA");
    cr_assert_null(cert->next->next, "exactly two certificates");
    cr_assert_eq(cert->next->raw.len, root.c.raw.len);
    cr_assert_eq(std::memcmp(cert->next->raw.p, root.c.raw.p, root.c.raw.len), 0);
    cr_assert_eq(cert->ca_istrue, 0);
    cr_assert_eq(cert->issuer_raw.len, root.c.subject_raw.len);
    cr_assert_eq(std::memcmp(cert->issuer_raw.p, root.c.subject_raw.p, cert->issuer_raw.len), 0);
    cr_assert_eq(mbedtls_x509_crt_check_key_usage(cert, MBEDTLS_X509_KU_DIGITAL_SIGNATURE), 0);
    cr_assert_eq(mbedtls_x509_crt_check_extended_key_usage(
                     cert, MBEDTLS_OID_SERVER_AUTH, MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH)),
                 0);
    cr_assert_neq(mbedtls_x509_crt_check_extended_key_usage(
                      cert, MBEDTLS_OID_CLIENT_AUTH, MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH)),
                  0, "serverAuth only");
    // subjectAltName: OID 2.5.29.17, OCTET STRING { SEQUENCE { [2] "origin.test" } }
    cr_assert(
        has_bytes(cert->raw, {0x06, 0x03, 0x55, 0x1d, 0x11, 0x04, 0x0f, 0x30, 0x0d, 0x82, 0x0b,
                              'o',  'r',  'i',  'g',  'i',  'n',  '.',  't',  'e',  's',  't'}));
    std::array<char, 256> dn{};
    cr_assert_gt(mbedtls_x509_dn_gets(dn.data(), dn.size(), &cert->subject), 0);
    cr_assert_str_eq(dn.data(), "CN=origin.test");
    const std::time_t now = std::time(nullptr);
    const std::time_t from = to_time(cert->valid_from);
    const std::time_t to = to_time(cert->valid_to);
    cr_assert(from >= to_time(root.c.valid_from) && to <= to_time(root.c.valid_to));
    cr_assert(from <= now - kDay + 60 && from >= now - kDay - 60, "backdated one day");
    cr_assert(to >= now + 30 * kDay - 60 && to <= now + 30 * kDay + 60, "valid 30 days");
    cr_assert_eq(cert->serial.len, 16U);
}

Test(ca, ip_leaves_carry_ip_address_san) {
    const TempDir tmp;
    auto ca = open_ok(options_in(tmp.path()));
    Crt root;
    parse_pem(root, ca->cert_pem());
    auto v4 = leaf(*ca, "127.0.0.1");
    cr_assert(has_bytes(v4->chain()->raw, {0x06, 0x03, 0x55, 0x1d, 0x11, 0x04, 0x08, 0x30, 0x06,
                                           0x87, 0x04, 127, 0, 0, 1}));
    cr_assert_eq(verify(v4->chain(), &root.c, nullptr), 0U);
    auto v6 = leaf(*ca, "[::1]");
    cr_assert(has_bytes(v6->chain()->raw,
                        {0x06, 0x03, 0x55, 0x1d, 0x11, 0x04, 0x14, 0x30, 0x12, 0x87, 0x10, 0, 0, 0,
                         0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0, 1}));
    cr_assert_eq(verify(v6->chain(), &root.c, nullptr), 0U);
    std::array<char, 256> dn{};
    cr_assert_gt(mbedtls_x509_dn_gets(dn.data(), dn.size(), &v6->chain()->subject), 0);
    cr_assert_str_eq(dn.data(), "CN=::1");
}

Test(ca, long_name_leaf_has_san_but_no_common_name) {
    const TempDir tmp;
    auto ca = open_ok(options_in(tmp.path()));
    Crt root;
    parse_pem(root, ca->cert_pem());
    const std::string name = std::string(60, 'a') + ".example.test";  // 73 > 64 characters
    auto l = leaf(*ca, name.c_str());
    cr_assert_eq(verify(l->chain(), &root.c, name.c_str()), 0U);
    std::array<char, 256> dn{};
    cr_assert_gt(mbedtls_x509_dn_gets(dn.data(), dn.size(), &l->chain()->subject), 0);
    cr_assert_str_eq(dn.data(), "O=landjail");
}

Test(ca, bad_hosts_are_refused) {
    const TempDir tmp;
    auto ca = open_ok(options_in(tmp.path()));
    const Host comma{"a,b.test", lj::policy::HostKind::Name};
    auto r1 = ca->leaf_for(comma);
    cr_assert(!r1.ok());
    cr_assert(contains_any(r1.error().what(), "a,b.test"), "%s", r1.error().what().c_str());
    const Host bad_ip{"999.0.0.1", lj::policy::HostKind::IPv4};
    auto r2 = ca->leaf_for(bad_ip);
    cr_assert(!r2.ok());
    cr_assert(contains_any(r2.error().what(), "999.0.0.1"), "%s", r2.error().what().c_str());
    cr_assert_eq(ca->cached(), 0U);
}

Test(ca, leaf_validity_capped_by_ca) {
    const TempDir tmp;
    CertAuthority::Options o = options_in(tmp.path());
    o.ca_validity_days = 10;
    o.leaf_validity_days = 30;
    auto ca = open_ok(o);
    Crt root;
    parse_pem(root, ca->cert_pem());
    auto l = leaf(*ca, "origin.test");
    cr_assert_eq(to_time(l->chain()->valid_to), to_time(root.c.valid_to));
    cr_assert_eq(verify(l->chain(), &root.c, "origin.test"), 0U);
}

Test(ca, same_host_same_leaf_and_shared_key) {
    const TempDir tmp;
    auto ca = open_ok(options_in(tmp.path()));
    auto a = leaf(*ca, "origin.test");
    auto b = leaf(*ca, "ORIGIN.test.");  // same canonical host
    cr_assert_eq(a.get(), b.get());
    auto c = leaf(*ca, "other.test");
    cr_assert_neq(a.get(), c.get());
    cr_assert_eq(a->key(), c->key(), "one leaf key per CA");
    cr_assert_eq(ca->cached(), 2U);
}

Test(ca, leaves_outlive_their_ca) {
    const TempDir tmp;
    auto ca = open_ok(options_in(tmp.path()));
    Crt root;
    parse_pem(root, ca->cert_pem());
    auto l = leaf(*ca, "origin.test");
    ca.reset();
    cr_assert_eq(
        mbedtls_ecp_check_pub_priv(mbedtls_pk_ec(l->chain()->pk), mbedtls_pk_ec(*l->key())), 0);
    cr_assert_eq(verify(l->chain(), &root.c, "origin.test"), 0U);
}

Test(ca, cache_is_a_bounded_lru) {
    const TempDir tmp;
    auto ca = open_ok(options_in(tmp.path(), 4));
    const std::shared_ptr<Leaf> first = leaf(*ca, "h0.test");
    for (int i = 1; i < 10; ++i) {
        leaf(*ca, ("h" + std::to_string(i) + ".test").c_str());
        cr_assert_leq(ca->cached(), 4U);
    }
    cr_assert_eq(ca->cached(), 4U);
    auto again = leaf(*ca, "h0.test");  // evicted long ago: minted anew
    cr_assert_neq(again.get(), first.get());
    // Now h0, h9, h8, h7 are cached (most recent first). Touch h7, add h10: h8 goes.
    auto h7 = leaf(*ca, "h7.test");
    leaf(*ca, "h10.test");
    cr_assert_eq(leaf(*ca, "h7.test").get(), h7.get(), "recently used h7 kept");
    cr_assert_eq(leaf(*ca, "h0.test").get(), again.get());
    cr_assert_eq(ca->cached(), 4U);
}

Test(ca, concurrent_leaf_for_from_threads) {
    const TempDir tmp;
    auto ca = open_ok(options_in(tmp.path(), 4));
    Crt root;
    parse_pem(root, ca->cert_pem());
    std::vector<std::thread> threads;
    std::array<int, 4> failures{};
    for (std::size_t t = 0; t < failures.size(); ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 40; ++i) {
                const std::string name =
                    "t" + std::to_string((i + static_cast<int>(t)) % 7) + ".test";
                auto r = ca->leaf_for(host(name.c_str()));
                if (!r.ok() || verify((*r)->chain(), &root.c, name.c_str()) != 0) {
                    ++failures[t];
                }
            }
        });
    }
    for (auto& th : threads) {
        th.join();
    }
    for (const int f : failures) {
        cr_assert_eq(f, 0);
    }
    cr_assert_eq(ca->cached(), 4U);
}

// ---- expiry and errors -------------------------------------------------------------------

Test(ca, expired_ca_is_replaced) {
    const TempDir tmp_dir;
    const std::string& dir = tmp_dir.path();
    write_ca(dir, -10 * kDay, -kDay, true);
    const std::string old_pem = read_text(dir + "/ca.pem");
    auto ca = open_ok(options_in(dir));
    cr_assert(ca->created());
    cr_assert_neq(ca->cert_pem(), old_pem);
    cr_assert_eq(read_text(dir + "/ca.pem"), ca->cert_pem());
    cr_assert_eq(mode_of(dir + "/ca-key.pem"), 0600U);
    Crt root;
    parse_pem(root, ca->cert_pem());
    cr_assert_eq(mbedtls_x509_time_is_past(&root.c.valid_to), 0);
    cr_assert_not(open_ok(options_in(dir))->created(), "the new pair is reused");
}

Test(ca, ca_expiring_within_a_day_is_replaced) {
    const TempDir tmp_dir;
    const std::string& dir = tmp_dir.path();
    write_ca(dir, -10 * kDay, kDay / 2, true);
    const std::string old_pem = read_text(dir + "/ca.pem");
    auto ca = open_ok(options_in(dir));
    cr_assert(ca->created());
    cr_assert_neq(ca->cert_pem(), old_pem);
}

Test(ca, handmade_valid_ca_is_used) {
    const TempDir tmp_dir;
    const std::string& dir = tmp_dir.path();
    write_ca(dir, -kDay, 100 * kDay, true);
    auto ca = open_ok(options_in(dir));
    cr_assert_not(ca->created());
    Crt root;
    parse_pem(root, ca->cert_pem());
    auto l = leaf(*ca, "origin.test");
    cr_assert_eq(verify(l->chain(), &root.c, "origin.test"), 0U);
}

Test(ca, only_cert_present_is_an_error) {
    const TempDir tmp_dir;
    const std::string& dir = tmp_dir.path();
    open_ok(options_in(dir));
    cr_assert_eq(::unlink((dir + "/ca-key.pem").c_str()), 0);
    const std::string e = open_error(options_in(dir));
    cr_assert(contains_any(e, "ca-key.pem missing next to ca.pem in " + dir), "%s", e.c_str());
    cr_assert(contains_any(e, "remove ca.pem"), "%s", e.c_str());
}

Test(ca, only_key_present_is_an_error) {
    const TempDir tmp_dir;
    const std::string& dir = tmp_dir.path();
    open_ok(options_in(dir));
    cr_assert_eq(::unlink((dir + "/ca.pem").c_str()), 0);
    const std::string e = open_error(options_in(dir));
    cr_assert(contains_any(e, "ca.pem missing next to ca-key.pem"), "%s", e.c_str());
}

Test(ca, garbage_cert_is_an_error_naming_it) {
    const TempDir tmp_dir;
    const std::string& dir = tmp_dir.path();
    open_ok(options_in(dir));
    write_text(dir + "/ca.pem", "not a certificate\n", 0644);
    const std::string e = open_error(options_in(dir));
    cr_assert(contains_any(e, dir + "/ca.pem: parse certificate: "), "%s", e.c_str());
}

Test(ca, garbage_key_is_an_error_naming_it) {
    const TempDir tmp_dir;
    const std::string& dir = tmp_dir.path();
    open_ok(options_in(dir));
    write_text(dir + "/ca-key.pem", "-----BEGIN EC PRIVATE KEY-----\nAAAA\n", 0600);
    const std::string e = open_error(options_in(dir));
    cr_assert(contains_any(e, dir + "/ca-key.pem: parse private key: "), "%s", e.c_str());
}

Test(ca, key_not_matching_cert_is_an_error) {
    const TempDir tmp_a;
    const std::string& a = tmp_a.path();
    const TempDir tmp_b;
    const std::string& b = tmp_b.path();
    open_ok(options_in(a));
    open_ok(options_in(b));
    write_text(a + "/ca-key.pem", read_text(b + "/ca-key.pem"), 0600);
    const std::string e = open_error(options_in(a));
    cr_assert(contains_any(e, "ca-key.pem: check key: does not match"), "%s", e.c_str());
}

Test(ca, non_ca_cert_is_an_error) {
    const TempDir tmp_dir;
    const std::string& dir = tmp_dir.path();
    write_ca(dir, -kDay, 100 * kDay, false);
    const std::string e = open_error(options_in(dir));
    cr_assert(contains_any(e, "ca.pem: check certificate: not a CA"), "%s", e.c_str());
}

Test(ca, loose_key_mode_is_fixed) {
    const TempDir tmp_dir;
    const std::string& dir = tmp_dir.path();
    open_ok(options_in(dir));
    cr_assert_eq(::chmod((dir + "/ca-key.pem").c_str(), 0644), 0);
    auto ca = open_ok(options_in(dir));
    cr_assert_not(ca->created());
    cr_assert_eq(mode_of(dir + "/ca-key.pem"), 0600U, "mode %o", mode_of(dir + "/ca-key.pem"));
}

Test(ca, directory_under_a_regular_file_is_an_error) {
    const TempDir tmp_base;
    const std::string& base = tmp_base.path();
    write_text(base + "/file", "x", 0644);
    const std::string e = open_error(options_in(base + "/file/ca"));
    cr_assert(contains_any(e, base + "/file/ca"), "%s", e.c_str());
    cr_assert(contains_any(e, "not a directory"), "%s", e.c_str());
    const std::string e2 = open_error(options_in(base + "/file"));
    cr_assert(contains_any(e2, base + "/file: create CA directory"), "%s", e2.c_str());
}

Test(ca, bad_options_are_errors) {
    const TempDir tmp_dir;
    const std::string& dir = tmp_dir.path();
    CertAuthority::Options o = options_in(dir, 0);
    cr_assert(contains_any(open_error(o), "cache_capacity"));
    o = options_in(dir);
    o.ca_validity_days = 1;
    cr_assert(contains_any(open_error(o), "ca_validity_days"));
    o = options_in(dir);
    o.leaf_validity_days = 0;
    cr_assert(contains_any(open_error(o), "leaf_validity_days"));
    cr_assert(contains_any(open_error(options_in("")), "empty"));
}

// ---- concurrency and interoperability ----------------------------------------------------

/// Four processes open the same empty directory at once: all succeed, exactly one creates
/// the CA, and all of them end up with the ca.pem on disk.
Test(ca, concurrent_first_open_from_processes) {
    const TempDir tmp_base;
    const std::string& base = tmp_base.path();
    const std::string dir = base + "/ca";
    std::array<int, 2> gate{};
    cr_assert_eq(::pipe(gate.data()), 0);
    std::array<pid_t, 4> pids{};
    for (std::size_t i = 0; i < pids.size(); ++i) {
        pids[i] = ::fork();
        cr_assert_geq(pids[i], 0);
        if (pids[i] == 0) {
            ::close(gate[1]);
            char c = 0;
            (void)!::read(gate[0], &c, 1);  // returns at EOF: all children start together
            auto r = CertAuthority::open(options_in(dir));
            if (!r.ok()) {
                ::_exit(1);
            }
            const std::string out = base + "/pem" + std::to_string(i);
            const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
            const std::string& pem = (*r)->cert_pem();
            const bool wrote =
                fd >= 0 && ::write(fd, pem.data(), pem.size()) == static_cast<ssize_t>(pem.size());
            ::_exit(!wrote ? 2 : ((*r)->created() ? 10 : 0));
        }
    }
    ::close(gate[0]);
    ::close(gate[1]);
    int creators = 0;
    for (const pid_t pid : pids) {
        int status = 0;
        cr_assert_eq(::waitpid(pid, &status, 0), pid);
        cr_assert(WIFEXITED(status), "child died");
        const int code = WEXITSTATUS(status);
        cr_assert(code == 0 || code == 10, "child exit %d", code);
        creators += code == 10 ? 1 : 0;
    }
    cr_assert_eq(creators, 1);
    const std::string pem = read_text(dir + "/ca.pem");
    for (std::size_t i = 0; i < pids.size(); ++i) {
        cr_assert_eq(read_text(base + "/pem" + std::to_string(i)), pem, "child %zu", i);
    }
    cr_assert_not(open_ok(options_in(dir))->created());
}

Test(ca, openssl_verifies_name_leaf) {
    const TempDir tmp_dir;
    const std::string& dir = tmp_dir.path();
    auto ca = open_ok(options_in(dir));
    auto l = leaf(*ca, "origin.test");
    write_text(dir + "/leaf.pem", der_to_pem(l->chain()->raw), 0644);
    int status = -1;
    const std::string verify_out =
        run("openssl verify -x509_strict -purpose sslserver -verify_hostname origin.test "
            "-CAfile " +
                ca->cert_path() + " " + dir + "/leaf.pem",
            status);
    cr_assert_eq(status, 0, "openssl verify: %s", verify_out.c_str());
    run("openssl verify -verify_hostname other.test -CAfile " + ca->cert_path() + " " + dir +
            "/leaf.pem",
        status);
    cr_assert_neq(status, 0, "other.test must not verify");
    const std::string text = run("openssl x509 -noout -text -in " + dir + "/leaf.pem", status);
    cr_assert_eq(status, 0, "%s", text.c_str());
    cr_assert(contains_any(text, "DNS:origin.test"), "%s", text.c_str());
    cr_assert(contains_any(text, "TLS Web Server Authentication"), "%s", text.c_str());
    cr_assert(contains_any(text, "CA:FALSE"), "%s", text.c_str());
    const std::string ca_text = run("openssl x509 -noout -text -in " + ca->cert_path(), status);
    cr_assert(contains_any(ca_text, "CA:TRUE, pathlen:0"), "%s", ca_text.c_str());
    cr_assert(contains_any(ca_text, "Certificate Sign, CRL Sign"), "%s", ca_text.c_str());
    cr_assert(contains_any(ca_text, "prime256v1"), "%s", ca_text.c_str());
}

Test(ca, openssl_verifies_ip_leaves) {
    const TempDir tmp_dir;
    const std::string& dir = tmp_dir.path();
    auto ca = open_ok(options_in(dir));
    const char* const ips[] = {"127.0.0.1", "[::1]"};
    const char* const verify_ips[] = {"127.0.0.1", "::1"};
    const char* const shown[] = {"IP Address:127.0.0.1", "IP Address:0:0:0:0:0:0:0:1"};
    for (int i = 0; i < 2; ++i) {
        auto l = leaf(*ca, ips[i]);
        write_text(dir + "/leaf.pem", der_to_pem(l->chain()->raw), 0644);
        int status = -1;
        const std::string out =
            run(std::string("openssl verify -x509_strict -verify_ip ") + verify_ips[i] +
                    " -CAfile " + ca->cert_path() + " " + dir + "/leaf.pem",
                status);
        cr_assert_eq(status, 0, "openssl verify %s: %s", ips[i], out.c_str());
        const std::string text = run("openssl x509 -noout -text -in " + dir + "/leaf.pem", status);
        cr_assert(contains_any(text, shown[i]), "%s", text.c_str());
    }
}

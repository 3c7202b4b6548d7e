// SPDX-License-Identifier: Apache-2.0
// The local CA (proxy/tls/ca.hpp), creation: the first open creates ca.pem/ca-key.pem and
// later ones reuse them, the cert is a self-signed P-256 CA, an expired or expiring CA is
// replaced and a handmade valid one is used, and concurrent first opens agree on one pair.
#include "tests/unit/ca_support.hpp"

using namespace lj::test::ca_support;

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

// ---- expiry ------------------------------------------------------------------------------

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

// ---- concurrency -------------------------------------------------------------------------

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

// SPDX-License-Identifier: Apache-2.0
// The local CA's leaves (proxy/tls/ca.hpp): chain, names (DNS and IP SANs), extensions,
// validity capped by the CA, the shared key and the bounded LRU cache, concurrent issuance,
// checked with mbedTLS and with the openssl tool.
#include "tests/unit/ca_support.hpp"

using namespace lj::test::ca_support;

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

// ---- interoperability --------------------------------------------------------------------

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

// SPDX-License-Identifier: Apache-2.0
// The local CA's files (proxy/tls/ca.hpp): a lone cert or key, garbage, a key not matching
// the cert and a non-CA cert are errors that name the file; a loose key mode is fixed; a
// directory under a regular file and bad options are errors.
#include "tests/unit/ca_support.hpp"

using namespace lj::test::ca_support;

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

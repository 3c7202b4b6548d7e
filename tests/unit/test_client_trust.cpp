// SPDX-License-Identifier: Apache-2.0
// What landjail writes so that clients trust its CA (issue 16): the PEM parsing and the
// PKCS#12 trust store for Java (checked against openssl's parser when it is installed), and
// the capability names doctor prints.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "landjail/jail/java_trust.hpp"
#include "landjail/jail/protection.hpp"
#include "tests/unit/lj_test.hpp"

using lj::jail::capability_names;
using lj::jail::pem_certificates;
using lj::jail::pkcs12_trust_store;

namespace {

// Two small certificates (base64 of arbitrary DER-like bytes is enough for the parser), text
// around them and a key block that must be skipped.
const char kPem[] =
    "subject=whatever\n"
    "-----BEGIN CERTIFICATE-----\nMIIBAQ==\n-----END CERTIFICATE-----\n"
    "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    "-----BEGIN CERTIFICATE-----\r\nAAEC\r\nAwQF\r\n-----END CERTIFICATE-----\n"
    "-----BEGIN CERTIFICATE-----\nnot base64 !\n-----END CERTIFICATE-----\n";

}  // namespace

Test(client_trust, pem_certificates_decodes_each_certificate_block) {
    const auto certs = pem_certificates(kPem);
    cr_assert_eq(certs.size(), 2U);
    cr_assert(certs[0] == std::string("\x30\x82\x01\x01", 4));
    cr_assert(certs[1] == std::string("\x00\x01\x02\x03\x04\x05", 6));
}

Test(client_trust, pkcs12_is_one_der_sequence_of_version_3) {
    const std::string p12 = pkcs12_trust_store({std::string("\x30\x00", 2)});
    cr_assert_eq(static_cast<unsigned char>(p12[0]), 0x30U);
    // SEQUENCE { INTEGER 3, ContentInfo { pkcs7-data … } }: the length covers the rest.
    cr_assert_eq(static_cast<unsigned char>(p12[1]), 0x81U);  // one length byte follows
    const std::size_t len = static_cast<unsigned char>(p12[2]);
    cr_assert_eq(len + 3, p12.size());
    cr_assert(p12.substr(3, 3) == std::string("\x02\x01\x03", 3));
    cr_assert(p12.find("landjail-1") == std::string::npos, "friendlyName is BMPString");
    cr_assert(p12.find(std::string("\0l\0a\0n\0d", 8)) != std::string::npos);
}

Test(client_trust, pkcs12_of_the_system_roots_parses_with_openssl) {
    const char* bundle = "/etc/ssl/certs/ca-certificates.crt";
    if (access(bundle, R_OK) != 0 || std::system("command -v openssl >/dev/null") != 0) {
        cr_skip_test("no %s or no openssl", bundle);
    }
    std::ifstream in(bundle);
    const std::string pem((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto certs = pem_certificates(pem);
    cr_assert_gt(certs.size(), 10U);
    char path[] = "/tmp/lj-p12-XXXXXX";
    const int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    std::ofstream(path, std::ios::binary) << pkcs12_trust_store(certs);
    // openssl lists one "-----BEGIN CERTIFICATE-----" per bag (no MAC, no password).
    const std::string cmd = std::string("openssl pkcs12 -in ") + path +
                            " -nokeys -passin pass: -nomacver 2>/dev/null | grep -c 'BEGIN "
                            "CERTIFICATE'";
    FILE* p = popen(cmd.c_str(), "r");
    unsigned long n = 0;
    cr_assert_eq(std::fscanf(p, "%lu", &n), 1);
    pclose(p);
    unlink(path);
    cr_assert_eq(n, certs.size());
}

Test(client_trust, capability_names) {
    cr_assert(capability_names(0) == "none");
    cr_assert(capability_names((1ULL << 13) | (1ULL << 0)) == "chown,net_raw");
    cr_assert(capability_names((1ULL << 41) - 1) == "all");
    const std::string but = capability_names(((1ULL << 41) - 1) & ~(1ULL << 24));
    cr_assert(but == "all but sys_resource", "%s", but.c_str());
}

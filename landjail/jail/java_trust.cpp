// SPDX-License-Identifier: Apache-2.0
#include "landjail/jail/java_trust.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

namespace lj::jail {
namespace {

// DER object identifiers, tag and length included.
constexpr char kOidData[] = "\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x01";  // pkcs7-data
constexpr char kOidCertBag[] = "\x06\x0b\x2a\x86\x48\x86\xf7\x0d\x01\x0c\x0a\x01\x03";
constexpr char kOidX509[] = "\x06\x0a\x2a\x86\x48\x86\xf7\x0d\x01\x09\x16\x01";
constexpr char kOidFriendlyName[] = "\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x09\x14";
// Oracle's trustedKeyUsage (2.16.840.1.113894.746875.1.1), what keytool -importcert writes.
constexpr char kOidTrustedKeyUsage[] = "\x06\x0c\x60\x86\x48\x01\x86\xf9\x66\xad\xca\x7b\x01\x01";
constexpr char kOidAnyExtendedKeyUsage[] = "\x06\x04\x55\x1d\x25\x00";  // 2.5.29.37.0

std::string oid(const char* der, std::size_t size_with_nul) {
    return std::string(der, size_with_nul - 1);
}

/// One DER TLV: `tag`, the definite length, `content`.
std::string tlv(unsigned char tag, const std::string& content) {
    std::string out(1, static_cast<char>(tag));
    const std::size_t n = content.size();
    if (n < 0x80) {
        out += static_cast<char>(n);
    } else {
        std::string len;
        for (std::size_t v = n; v > 0; v >>= 8) {
            len.insert(len.begin(), static_cast<char>(v & 0xff));
        }
        out += static_cast<char>(0x80 | len.size());
        out += len;
    }
    return out + content;
}

std::string seq(const std::string& c) {
    return tlv(0x30, c);
}
std::string set(const std::string& c) {
    return tlv(0x31, c);
}
std::string octets(const std::string& c) {
    return tlv(0x04, c);
}
std::string explicit0(const std::string& c) {
    return tlv(0xa0, c);
}

/// ContentInfo { pkcs7-data, [0] OCTET STRING content }.
std::string data_content(const std::string& content) {
    return seq(oid(kOidData, sizeof kOidData) + explicit0(octets(content)));
}

std::string bmp_string(const std::string& ascii) {
    std::string utf16;
    for (const char c : ascii) {
        utf16 += '\0';
        utf16 += c;
    }
    return tlv(0x1e, utf16);
}

/// SafeBag { certBag, [0] CertBag { x509Certificate, [0] OCTET STRING der }, attributes }.
std::string cert_bag(const std::string& der, std::size_t index) {
    const std::string bag = seq(oid(kOidX509, sizeof kOidX509) + explicit0(octets(der)));
    const std::string name = seq(oid(kOidFriendlyName, sizeof kOidFriendlyName) +
                                 set(bmp_string("landjail-" + std::to_string(index))));
    const std::string trusted =
        seq(oid(kOidTrustedKeyUsage, sizeof kOidTrustedKeyUsage) +
            set(oid(kOidAnyExtendedKeyUsage, sizeof kOidAnyExtendedKeyUsage)));
    return seq(oid(kOidCertBag, sizeof kOidCertBag) + explicit0(bag) + set(name + trusted));
}

int base64_value(char c) {
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/// Decodes base64, skipping whitespace; "" when it is not valid base64.
std::string base64_decode(std::string_view text) {
    std::string out;
    unsigned bits = 0;
    int nbits = 0;
    for (const char c : text) {
        if (c == '=' || c == '\n' || c == '\r' || c == ' ' || c == '\t') {
            continue;
        }
        const int v = base64_value(c);
        if (v < 0) {
            return "";
        }
        bits = (bits << 6) | static_cast<unsigned>(v);
        nbits += 6;
        if (nbits >= 8) {
            nbits -= 8;
            out += static_cast<char>((bits >> nbits) & 0xff);
        }
    }
    return out;
}

}  // namespace

std::vector<std::string> pem_certificates(const std::string& pem) {
    static const std::string kBegin = "-----BEGIN CERTIFICATE-----";
    static const std::string kEnd = "-----END CERTIFICATE-----";
    std::vector<std::string> certs;
    std::size_t pos = 0;
    while ((pos = pem.find(kBegin, pos)) != std::string::npos) {
        const std::size_t body = pos + kBegin.size();
        const std::size_t end = pem.find(kEnd, body);
        if (end == std::string::npos) {
            break;
        }
        std::string der = base64_decode(std::string_view(pem).substr(body, end - body));
        if (!der.empty()) {
            certs.push_back(std::move(der));
        }
        pos = end + kEnd.size();
    }
    return certs;
}

std::string pkcs12_trust_store(const std::vector<std::string>& certs) {
    std::string bags;
    for (std::size_t i = 0; i < certs.size(); ++i) {
        bags += cert_bag(certs[i], i + 1);
    }
    const std::string safe_contents = seq(bags);
    const std::string auth_safe = seq(data_content(safe_contents));
    return seq(tlv(0x02, std::string(1, '\x03')) + data_content(auth_safe));  // version 3
}

Result<std::string> write_java_trust_store(const std::string& dir, const std::string& bundle_path) {
    std::ifstream in(bundle_path);
    const std::string pem((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string path = dir + "/java-truststore.p12";
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << pkcs12_trust_store(pem_certificates(pem));
    if (!out.flush()) {
        return make_error("cannot write " + path + ": " + std::strerror(errno));
    }
    return path;
}

}  // namespace lj::jail

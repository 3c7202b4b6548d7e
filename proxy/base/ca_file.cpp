// SPDX-License-Identifier: Apache-2.0
#include "proxy/base/ca_file.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <iterator>
#include <system_error>

namespace lj::proxy {

std::string no_certificate_message(const std::string& detail) {
    return "holds no certificate" + (detail.empty() ? std::string() : " (" + detail + ")") +
           ": give a file of CA certificates in PEM form (-----BEGIN CERTIFICATE-----)";
}

Status check_ca_file(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || ::access(path.c_str(), R_OK) != 0) {
        const int err = errno;
        return make_error("cannot read it: " + std::generic_category().message(err));
    }
    if (S_ISDIR(st.st_mode)) {
        return make_error("is a directory: give a file of CA certificates (PEM)");
    }
    std::ifstream in(path, std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const bool der = !text.empty() && static_cast<unsigned char>(text[0]) == 0x30;  // SEQUENCE
    if (!der && text.find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
        return make_error(no_certificate_message(""));
    }
    return {};
}

}  // namespace lj::proxy

// SPDX-License-Identifier: Apache-2.0
#include "landjail/jail/environment.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>

#include "landjail/link/proxy_link.hpp"

extern char** environ;

namespace lj::jail {

/// The CA bundle the command trusts: the system roots (or the user's SSL_CERT_FILE) plus the
/// interception CA, written into the session directory.
Result<std::string> write_ca_bundle(const std::string& dir, const std::string& ca_pem) {
    std::vector<std::string> roots;
    if (const char* user = std::getenv("SSL_CERT_FILE"); user && *user) {
        roots.emplace_back(user);
    }
    roots.insert(roots.end(), {"/etc/ssl/certs/ca-certificates.crt",
                               "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"});
    std::string bundle;
    for (const std::string& r : roots) {
        std::ifstream in(r);
        if (in) {
            bundle.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
            break;
        }
    }
    std::ifstream ca(ca_pem);
    if (!ca) {
        std::cerr << "landjail: warning: the interception CA " << ca_pem
                  << " is missing: HTTPS clients in the jail will not trust the proxy\n";
    } else {
        if (!bundle.empty() && bundle.back() != '\n') {
            bundle += '\n';
        }
        bundle.append(std::istreambuf_iterator<char>(ca), std::istreambuf_iterator<char>());
    }
    const std::string path = dir + "/ca-bundle.pem";
    std::ofstream out(path, std::ios::trunc);
    out << bundle;
    if (!out.flush()) {
        return make_error("cannot write " + path + ": " + std::strerror(errno));
    }
    return path;
}

/// DESIGN §7: the proxy variables, the CA bundle variables, LANDJAIL=1, the shim.
std::vector<std::string> child_environment(const std::string& proxy_url, const std::string& bundle,
                                           const std::string& ca_pem, const std::string& shim) {
    static const char* const kProxyVars[] = {"HTTP_PROXY", "HTTPS_PROXY", "http_proxy",
                                             "https_proxy", "ALL_PROXY"};
    static const char* const kBundleVars[] = {
        "SSL_CERT_FILE", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "GIT_SSL_CAINFO",
        "PIP_CERT",      "AWS_CA_BUNDLE",  "CARGO_HTTP_CAINFO",  "DENO_CERT"};
    std::map<std::string, std::string> set;
    for (const char* v : kProxyVars) set[v] = proxy_url;
    for (const char* v : kBundleVars) set[v] = bundle;
    set["NODE_USE_ENV_PROXY"] = "1";
    set["NODE_EXTRA_CA_CERTS"] = ca_pem;
    set["LANDJAIL"] = "1";
    std::string preload;
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) {
        const std::string entry = *e;
        const std::string name = entry.substr(0, entry.find('='));
        if (name == "NO_PROXY" || name == "no_proxy" || name == "LANDJAIL_SHIM_TABLE" ||
            name == "LANDJAIL_SHIM_PROXY" || set.count(name)) {
            continue;
        }
        if (name == "LD_PRELOAD") {
            preload = entry.substr(entry.find('=') + 1);
            continue;
        }
        env.push_back(entry);
    }
    for (const auto& [k, v] : set) env.push_back(k + "=" + v);
    if (!shim.empty()) {
        env.push_back("LD_PRELOAD=" + shim + (preload.empty() ? "" : ":" + preload));
    } else if (!preload.empty()) {
        env.push_back("LD_PRELOAD=" + preload);
    }
    return env;
}

/// The shim (issue 5) when it is installed: next to the binary or in ../lib/landjail/.
std::string find_shim() {
    const std::string dir = own_directory();
    if (dir.empty()) {
        return "";
    }
    for (const std::string& c : {dir + "/liblandjail-shim.so", dir + "/../lib/liblandjail-shim.so",
                                 dir + "/../lib/landjail/liblandjail-shim.so"}) {
        if (access(c.c_str(), R_OK) == 0) {
            return std::filesystem::weakly_canonical(c).string();
        }
    }
    return "";
}

}  // namespace lj::jail

// SPDX-License-Identifier: Apache-2.0
#include "landjail/jail/environment.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <vector>

#include "landjail/jail/java_trust.hpp"
#include "proxy/base/config_loader.hpp"
#include "proxy/base/diag.hpp"

extern char** environ;

namespace lj::jail {
namespace {

std::string env_or_empty(const char* name) {
    const char* v = std::getenv(name);
    return v ? v : "";
}

}  // namespace

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
        diag::warn("the interception CA " + ca_pem +
                   " is missing: HTTPS clients in the jail will not trust the proxy");
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

namespace {

/// The wgetrc wget would read ($WGETRC, else ~/.wgetrc), copied, then our ca_certificate:
/// wget (GnuTLS) reads neither SSL_CERT_FILE nor CURL_CA_BUNDLE, and WGETRC replaces the
/// user's file, so the user's settings are kept by copying them. A later setting wins.
Result<std::string> write_wgetrc(const std::string& dir, const std::string& bundle) {
    std::string user = env_or_empty("WGETRC");
    if (user.empty() && !env_or_empty("HOME").empty()) {
        user = env_or_empty("HOME") + "/.wgetrc";
    }
    std::string text;
    if (std::ifstream in(user); !user.empty() && in) {
        text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
        if (!text.empty() && text.back() != '\n') {
            text += '\n';
        }
    }
    text += "# landjail: trust the interception CA (the settings above are " +
            (user.empty() ? std::string("none") : user) + ")\nca_certificate = " + bundle + "\n";
    const std::string path = dir + "/wgetrc";
    std::ofstream out(path, std::ios::trunc);
    out << text;
    if (!out.flush()) {
        return make_error("cannot write " + path + ": " + std::strerror(errno));
    }
    return path;
}

/// The user's JAVA_TOOL_OPTIONS with our trust store appended (a later -D wins).
std::string java_tool_options(const std::string& store) {
    std::string opts = env_or_empty("JAVA_TOOL_OPTIONS");
    if (!opts.empty()) {
        opts += ' ';
    }
    return opts + "-Djavax.net.ssl.trustStore=" + store + " -Djavax.net.ssl.trustStoreType=PKCS12";
}

}  // namespace

Result<ClientTrust> write_client_trust(const std::string& dir, const std::string& ca_pem) {
    ClientTrust t;
    t.ca_pem = ca_pem;
    auto bundle = write_ca_bundle(dir, ca_pem);
    if (!bundle) {
        return bundle.error();
    }
    t.bundle = *bundle;
    auto wgetrc = write_wgetrc(dir, t.bundle);
    if (!wgetrc) {
        return wgetrc.error();
    }
    t.wgetrc = *wgetrc;
    auto store = write_java_trust_store(dir, t.bundle);
    if (!store) {
        return store.error();
    }
    t.java_trust_store = *store;
    return t;
}

/// DESIGN §7: the proxy variables, the CA bundle variables, LANDJAIL=1, the shim; and for the
/// clients that read none of them (issue 16): npm's and pnpm's cafile, gcloud's CA file,
/// wget's wgetrc and Java's trust store.
std::vector<std::string> child_environment(const std::string& proxy_url, const ClientTrust& trust,
                                           const std::string& shim) {
    static const char* const kProxyVars[] = {"HTTP_PROXY", "HTTPS_PROXY", "http_proxy",
                                             "https_proxy", "ALL_PROXY"};
    static const char* const kBundleVars[] = {
        "SSL_CERT_FILE",      "CURL_CA_BUNDLE",
        "REQUESTS_CA_BUNDLE", "GIT_SSL_CAINFO",
        "PIP_CERT",           "AWS_CA_BUNDLE",
        "CARGO_HTTP_CAINFO",  "DENO_CERT",
        "NPM_CONFIG_CAFILE",  "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE"};
    std::map<std::string, std::string> set;
    for (const char* v : kProxyVars) set[v] = proxy_url;
    for (const char* v : kBundleVars) set[v] = trust.bundle;
    set["NODE_USE_ENV_PROXY"] = "1";
    set["NODE_EXTRA_CA_CERTS"] = trust.ca_pem;
    set["WGETRC"] = trust.wgetrc;
    set["JAVA_TOOL_OPTIONS"] = java_tool_options(trust.java_trust_store);
    set["LANDJAIL"] = "1";
    std::string preload;
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) {
        const std::string entry = *e;
        const std::string name = entry.substr(0, entry.find('='));
        if (name == "NO_PROXY" || name == "no_proxy" || name == "LANDJAIL_SHIM_TABLE" ||
            name == "LANDJAIL_SHIM_PROXY" || name == "npm_config_cafile" || set.count(name)) {
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

Result<std::string> find_shim(std::string* looked_in) {
    if (const std::string env = env_or_empty("LANDJAIL_SHIM"); !env.empty()) {
        if (access(env.c_str(), R_OK) != 0) {
            return make_error("LANDJAIL_SHIM=" + env + ": " + std::strerror(errno) +
                              "; set it to liblandjail-shim.so, or unset it to use the one "
                              "installed with landjail");
        }
        return std::filesystem::absolute(env).string();
    }
    looked_in->clear();
    for (const std::string& dir : proxy::install_bin_dirs()) {
        for (const char* rel : {"/liblandjail-shim.so", "/../lib/liblandjail-shim.so",
                                "/../lib/landjail/liblandjail-shim.so"}) {
            const std::string c = dir + rel;
            if (access(c.c_str(), R_OK) == 0) {
                return std::filesystem::weakly_canonical(c).string();
            }
            *looked_in += (looked_in->empty() ? "" : ", ") + c;
        }
    }
    return std::string();
}

Result<std::string> shim_or_warn() {
    std::string looked_in;
    auto shim = find_shim(&looked_in);
    if (shim && shim->empty()) {
        diag::warn("the shim (liblandjail-shim.so) was not found (looked for " + looked_in +
                   "): programs that ignore HTTP_PROXY cannot connect; set "
                   "LANDJAIL_SHIM=/path/to/liblandjail-shim.so, install landjail with its shim "
                   "(make install), or pass --no-shim to run without it silently");
    }
    return shim;
}

namespace {

constexpr const char* kCaDirHint =
    "set LANDJAIL_CA_DIR=DIR, ca_dir: DIR in the config file or --ca-dir DIR to keep it in a "
    "directory you can write";

/// Whether `origin` is a default location (not one the user named for the CA).
bool is_default_ca_dir(const std::string& origin) {
    return origin == "XDG_CONFIG_HOME" || origin.rfind("default", 0) == 0;
}

/// Whether the proxy can use `dir` as its CA directory: a CA is there to read, or the nearest
/// existing directory on the way to it can be written.
int ca_dir_error(const std::string& dir) {
    if (access((dir + "/ca.pem").c_str(), R_OK) == 0 &&
        access((dir + "/ca-key.pem").c_str(), R_OK) == 0) {
        return 0;
    }
    std::filesystem::path p(dir);
    std::error_code ec;
    while (!p.empty() && !std::filesystem::exists(p, ec) && p != p.root_path()) {
        p = p.parent_path();
    }
    return access(p.c_str(), W_OK | X_OK) == 0 ? 0 : errno;
}

/// TMPDIR/landjail-ca-UID, made 0700; refused unless it is our own private directory (another
/// user could have made it first, with a CA of theirs in it).
Result<std::string> private_tmp_ca_dir() {
    const std::string tmp = env_or_empty("TMPDIR").empty() ? "/tmp" : env_or_empty("TMPDIR");
    const std::string dir = tmp + "/landjail-ca-" + std::to_string(geteuid());
    if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
        return make_error(dir + ": " + std::strerror(errno));
    }
    struct stat st {};
    if (lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
        (st.st_mode & 077) != 0) {
        return make_error(dir + " is not a private directory of yours (a directory, owned by uid " +
                          std::to_string(geteuid()) + ", mode 0700)");
    }
    return dir;
}

}  // namespace

Result<std::string> choose_ca_dir(const policy::Setting<std::string>& dir) {
    if (!is_default_ca_dir(dir.origin)) {
        return dir.value;  // a directory the user named: the proxy's own error names it
    }
    const int err = ca_dir_error(dir.value);
    if (err == 0) {
        return dir.value;
    }
    auto fallback = private_tmp_ca_dir();
    if (!fallback) {
        return make_error("no CA directory can be written: " + dir.value + " (from " + dir.origin +
                          "): " + diag::errno_text(err) + "; " + fallback.error().message + "; " +
                          kCaDirHint);
    }
    diag::warn(dir.value + " (from " + dir.origin + ") cannot be written (" +
               diag::errno_text(err) + ", e.g. a read-only home): the interception CA is kept in " +
               *fallback + " instead (" + kCaDirHint + ")");
    return fallback;
}

}  // namespace lj::jail

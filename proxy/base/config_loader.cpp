// SPDX-License-Identifier: Apache-2.0
#include "proxy/base/config_loader.hpp"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <system_error>

extern char** environ;

namespace lj::proxy {
namespace {

std::string home_dir() {
    if (const char* home = std::getenv("HOME"); home && *home) {
        return home;
    }
    if (const passwd* pw = getpwuid(getuid()); pw && pw->pw_dir) {
        return pw->pw_dir;
    }
    return {};
}

bool exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

Result<std::string> read_file(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
        return make_error("config file '" + path +
                          "' is a directory: give the path of a YAML file, e.g. " + path +
                          (path.ends_with("/") ? "" : "/") + "config.yaml");
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        const int err = errno;
        std::string hint;
        if (err == EACCES) {
            hint = "; make it readable (chmod u+r " + path + ") or give another file";
        }
        return make_error("cannot read config file '" + path +
                          "': " + std::generic_category().message(err) + hint);
    }
    std::ostringstream buf;
    buf << in.rdbuf();
    return buf.str();
}

std::map<std::string, std::string> environment() {
    std::map<std::string, std::string> env;
    for (char** e = environ; e && *e; ++e) {
        const char* eq = std::strchr(*e, '=');
        if (eq) {
            env.emplace(std::string(*e, static_cast<std::size_t>(eq - *e)), std::string(eq + 1));
        }
    }
    return env;
}

/// A profile name: letters, digits, '.', '_' and '-', not starting with '.'.
bool valid_profile_name(const std::string& name) {
    return !name.empty() && name.front() != '.' &&
           std::all_of(name.begin(), name.end(), [](char c) {
               return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '_' || c == '-';
           });
}

std::string join(const std::vector<std::string>& items, const char* sep) {
    std::string out;
    for (const std::string& item : items) {
        out += (out.empty() ? "" : sep) + item;
    }
    return out;
}

/// Reads the --profile files in order; each rule's origin names the profile. A profile
/// given twice (by name or path) is read once. `read` gets each name and its file.
Result<std::vector<policy::FileConfig>> load_profiles(
    const std::vector<std::string>& names, std::vector<std::pair<std::string, std::string>>& read) {
    std::vector<policy::FileConfig> out;
    std::set<std::string> seen;
    for (const std::string& name : names) {
        auto path = find_profile(name);
        if (!path) {
            return path.error();
        }
        std::error_code ec;
        const std::string key = std::filesystem::weakly_canonical(*path, ec).string();
        if (!seen.insert(ec ? *path : key).second) {
            continue;
        }
        auto text = read_file(*path);
        if (!text) {
            return make_error("--profile " + name + ": " + text.error().what());
        }
        auto file = policy::parse_profile(*text, *path);
        if (!file) {
            return make_error("--profile " + name + ": " + file.error().what());
        }
        read.emplace_back(name, *path);
        for (auto* list : {&file->allowlist, &file->denylist}) {
            for (policy::RuleSource& rule : *list) {
                rule.origin = "profile " + name + ": " + rule.origin;
            }
        }
        out.push_back(std::move(*file));
    }
    return out;
}

}  // namespace

std::vector<std::string> profile_dirs() {
    std::vector<std::string> dirs;
    if (const std::string home = home_dir(); !home.empty()) {
        dirs.push_back(home + "/.config/landjail/profiles");
    }
    for (const std::string& bin : install_bin_dirs()) {
        std::error_code ec;
        const auto shared = std::filesystem::weakly_canonical(
            std::filesystem::path(bin) / "../share/landjail/profiles", ec);
        dirs.push_back(ec ? bin + "/../share/landjail/profiles" : shared.string());
    }
    return dirs;
}

std::vector<std::string> install_bin_dirs() {
    std::vector<std::string> dirs;
    if (std::string own = own_directory(); !own.empty()) {
        dirs.push_back(std::move(own));
    }
    const char* path = std::getenv("PATH");
    std::string_view rest = path ? path : "";
    while (!rest.empty()) {
        const std::size_t colon = rest.find(':');
        const std::string dir(rest.substr(0, colon));
        rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
        const std::string proxy = (dir.empty() ? "." : dir) + "/landjail-proxy";
        if (dir.empty() || dir.front() != '/' || access(proxy.c_str(), X_OK) != 0) {
            continue;
        }
        std::error_code ec;
        const auto real = std::filesystem::canonical(proxy, ec);  // through symlinks
        if (!ec && std::find(dirs.begin(), dirs.end(), real.parent_path().string()) == dirs.end()) {
            dirs.push_back(real.parent_path().string());
        }
        break;  // the landjail-proxy that PATH finds first, as find_proxy_binary does
    }
    return dirs;
}

std::vector<std::string> available_profiles() {
    std::set<std::string> names;
    for (const std::string& dir : profile_dirs()) {
        std::error_code ec;
        for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
            const auto& p = entry.path();
            if (p.extension() == ".yaml" && valid_profile_name(p.stem().string())) {
                names.insert(p.stem().string());
            }
        }
    }
    return {names.begin(), names.end()};
}

Result<std::string> find_profile(const std::string& name) {
    if (name.find('/') != std::string::npos) {
        if (!exists(name)) {
            return make_error("--profile " + name + ": no such file");
        }
        return name;
    }
    if (!valid_profile_name(name)) {
        return make_error("--profile '" + name +
                          "': a profile name has only letters, digits, '.', '_' and '-' (or "
                          "give the path of a YAML file, with a '/')");
    }
    const std::vector<std::string> dirs = profile_dirs();
    for (const std::string& dir : dirs) {
        if (std::string path = dir + "/" + name + ".yaml"; exists(path)) {
            return path;
        }
    }
    const std::vector<std::string> names = available_profiles();
    return make_error("unknown profile '" + name +
                      "' (available: " + (names.empty() ? std::string("none") : join(names, ", ")) +
                      "; looked for " + name + ".yaml in " + join(dirs, ", ") + ")");
}

Result<ConfigChoice> discover_config(const std::optional<std::string>& config_flag) {
    auto explicit_path = [](const std::string& path,
                            const std::string& how) -> Result<ConfigChoice> {
        if (path.empty()) {
            return make_error(how + " is empty: give the path of a config file");
        }
        if (!exists(path)) {
            return make_error("config file '" + path + "' (from " + how + ") does not exist");
        }
        return ConfigChoice{path, how, {}};
    };
    if (config_flag) {
        return explicit_path(*config_flag, "--config");
    }
    for (const char* var : {"LANDJAIL_CONFIG", "BOUNDARY_CONFIG"}) {
        if (const char* v = std::getenv(var)) {
            return explicit_path(v, var);
        }
    }
    const std::string home = home_dir();
    if (!home.empty()) {
        for (const char* rel :
             {"/.config/landjail/config.yaml", "/.config/coder_boundary/config.yaml"}) {
            if (std::string path = home + rel; exists(path)) {
                return ConfigChoice{path, "default location", {}};
            }
        }
    }
    return ConfigChoice{std::nullopt, "none found", {}};
}

Result<policy::Settings> load_settings(const std::optional<std::string>& config_flag,
                                       const policy::FlagInputs& flags, ConfigChoice* choice_out) {
    auto choice = discover_config(config_flag);
    if (!choice) {
        return choice.error();
    }
    policy::Inputs inputs;
    if (choice->path) {
        auto text = read_file(*choice->path);
        if (!text) {
            return text.error();
        }
        auto file = policy::parse_config(*text, *choice->path);
        if (!file) {
            return file.error();
        }
        inputs.file = std::move(*file);
    }
    auto profiles = load_profiles(flags.profiles, choice->profiles);
    if (!profiles) {
        return profiles.error();
    }
    inputs.profiles = std::move(*profiles);
    inputs.env = environment();
    inputs.flags = flags;
    if (choice_out) {
        *choice_out = *choice;
    }
    auto settings = policy::build_settings(inputs);
    if (settings && settings->ca_dir.value.empty()) {  // no HOME: the passwd entry's home
        settings->ca_dir = {default_ca_dir(), "default (passwd home)"};
    }
    return settings;
}

std::string default_ca_dir() {
    return home_dir() + "/.config/landjail";
}

std::string own_directory() {
    std::error_code ec;
    const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    return ec ? std::string() : exe.parent_path().string();
}

}  // namespace lj::proxy

// SPDX-License-Identifier: Apache-2.0
#include "proxy/config_loader.hpp"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
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
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        const int err = errno;
        return make_error("cannot read config file '" + path +
                          "': " + std::generic_category().message(err));
    }
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
        return make_error("config file '" + path + "' is a directory");
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

}  // namespace

Result<ConfigChoice> discover_config(const std::optional<std::string>& config_flag) {
    auto explicit_path = [](const std::string& path,
                            const std::string& how) -> Result<ConfigChoice> {
        if (path.empty()) {
            return make_error(how + " is empty: give the path of a config file");
        }
        if (!exists(path)) {
            return make_error("config file '" + path + "' (from " + how + ") does not exist");
        }
        return ConfigChoice{path, how};
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
                return ConfigChoice{path, "default location"};
            }
        }
    }
    return ConfigChoice{std::nullopt, "none found"};
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
    inputs.env = environment();
    inputs.flags = flags;
    if (choice_out) {
        *choice_out = *choice;
    }
    return policy::build_settings(inputs);
}

std::string default_ca_dir() {
    const char* home = std::getenv("HOME");
    std::string dir = home && *home ? home : "";
    if (dir.empty()) {
        if (const passwd* pw = getpwuid(getuid()); pw && pw->pw_dir) {
            dir = pw->pw_dir;
        }
    }
    return dir + "/.config/landjail";
}

}  // namespace lj::proxy

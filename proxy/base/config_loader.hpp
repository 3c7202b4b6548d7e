// SPDX-License-Identifier: Apache-2.0
// Finds and reads the config file, snapshots the environment, and builds the effective
// Settings once (DESIGN §4): the only place where landjail touches files and the environment
// for configuration. Shared by landjail and landjail-proxy.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "policy/settings.hpp"

namespace lj::proxy {

/// Where the config file came from, for `landjail check`.
struct ConfigChoice {
    std::optional<std::string> path;  ///< none found (not an error when nothing was asked for)
    std::string how;                  ///< "--config", "LANDJAIL_CONFIG", "default location", …
    /// Each --profile NAME and the file read for it, in order (set by load_settings).
    std::vector<std::pair<std::string, std::string>> profiles;
};

/// Discovery: --config, $LANDJAIL_CONFIG, $BOUNDARY_CONFIG, ~/.config/landjail/config.yaml,
/// ~/.config/coder_boundary/config.yaml. An explicit path that does not exist is an error.
Result<ConfigChoice> discover_config(const std::optional<std::string>& config_flag);

/// Discovers, reads and parses the config, then merges everything into Settings.
Result<policy::Settings> load_settings(const std::optional<std::string>& config_flag,
                                       const policy::FlagInputs& flags,
                                       ConfigChoice* choice = nullptr);

/// Where `--profile NAME` looks for NAME.yaml, in order: ~/.config/landjail/profiles, then
/// PREFIX/share/landjail/profiles for each of install_bin_dirs() (PREFIX/bin); from build/bin
/// that is build/share/landjail/profiles.
std::vector<std::string> profile_dirs();

/// The file of a profile: NAME when it contains '/' (a path), else the first NAME.yaml in
/// profile_dirs(). Errors name the profile, the profiles available and where they were sought.
Result<std::string> find_profile(const std::string& name);

/// The names of the profiles found in profile_dirs(), sorted, without duplicates.
std::vector<std::string> available_profiles();

/// The bin directories of landjail's installation, in order: the running binary's, then that
/// of the landjail-proxy PATH finds (through symlinks) when it differs. A copy of landjail
/// installed elsewhere (`boundary` in ~/.local/bin) so still finds the shim
/// (BIN/../lib/landjail) and the profiles of the installation.
std::vector<std::string> install_bin_dirs();

/// The directory of the running binary, from /proc/self/exe ("" when unknown): where the
/// install layout puts the other programs (BIN), the shim (BIN/../lib/landjail) and the
/// profiles (BIN/../share/landjail/profiles).
std::string own_directory();

/// ~/.config/landjail ($HOME, else the passwd entry's home): the last fallback of the CA
/// directory, which Settings::ca_dir resolves (--ca-dir, LANDJAIL_CA_DIR, ca_dir,
/// $XDG_CONFIG_HOME/landjail).
std::string default_ca_dir();

}  // namespace lj::proxy

// SPDX-License-Identifier: Apache-2.0
// build_settings, precedence: flag > environment > file > default with the origin of every
// value (log level, log directory, proxy port, max connections), errors that name the
// variable or flag they come from, and environment variables that are not landjail's ignored.
#include "tests/unit/settings_support.hpp"

using namespace lj::test::settings_support;

Test(settings, log_level_precedence) {
    const PrecedenceRow rows[] = {
        {nullptr, nullptr, nullptr, nullptr, "warn", "default"},
        {"log_level: info\n", nullptr, nullptr, nullptr, "info", "bad.yaml:1:12"},
        {"log_level: info\n", "LANDJAIL_LOG_LEVEL", "debug", nullptr, "debug",
         "LANDJAIL_LOG_LEVEL"},
        {"log_level: info\n", "BOUNDARY_LOG_LEVEL", "error", nullptr, "error",
         "BOUNDARY_LOG_LEVEL"},
        {nullptr, "LANDJAIL_LOG_LEVEL", "debug", nullptr, "debug", "LANDJAIL_LOG_LEVEL"},
        {"log_level: info\n", "LANDJAIL_LOG_LEVEL", "debug", "error", "error", "--log-level"},
        {nullptr, nullptr, nullptr, "debug", "debug", "--log-level"},
        {"log_level: info\n", nullptr, nullptr, "warn", "warn", "--log-level"},
    };
    for (const auto& row : rows) {
        Inputs in;
        if (row.yaml != nullptr) {
            in.file = file(row.yaml);
        }
        if (row.env_name != nullptr) {
            in.env[row.env_name] = row.env_value;
        }
        if (row.flag != nullptr) {
            in.flags.log_level = row.flag;
        }
        const Settings s = build(in);
        cr_expect(s.log_level.value == row.value && s.log_level.origin == row.origin,
                  "log_level (file %s, env %s, flag %s): \"%s\" from %s, expected \"%s\" from %s",
                  row.yaml ? "yes" : "no", row.env_name ? row.env_name : "-",
                  row.flag ? row.flag : "-", s.log_level.value.c_str(), s.log_level.origin.c_str(),
                  row.value, row.origin);
    }
    // LANDJAIL_ wins over BOUNDARY_ when both are set.
    Inputs both;
    both.env["LANDJAIL_LOG_LEVEL"] = "debug";
    both.env["BOUNDARY_LOG_LEVEL"] = "error";
    const Settings s = build(both);
    cr_expect(s.log_level.value == "debug" && s.log_level.origin == "LANDJAIL_LOG_LEVEL",
              "LANDJAIL_LOG_LEVEL over BOUNDARY_LOG_LEVEL: %s from %s", s.log_level.value.c_str(),
              s.log_level.origin.c_str());
}

Test(settings, log_dir_precedence) {
    const PrecedenceRow rows[] = {
        {"log_dir: /f\n", nullptr, nullptr, nullptr, "/f", "bad.yaml:1:10"},
        {"log_dir: /f\n", "LANDJAIL_LOG_DIR", "/e", nullptr, "/e", "LANDJAIL_LOG_DIR"},
        {"log_dir: /f\n", "BOUNDARY_LOG_DIR", "/b", nullptr, "/b", "BOUNDARY_LOG_DIR"},
        {"log_dir: /f\n", "LANDJAIL_LOG_DIR", "/e", "/c", "/c", "--log-dir"},
        {nullptr, nullptr, nullptr, "/c", "/c", "--log-dir"},
    };
    for (const auto& row : rows) {
        Inputs in;
        if (row.yaml != nullptr) {
            in.file = file(row.yaml);
        }
        if (row.env_name != nullptr) {
            in.env[row.env_name] = row.env_value;
        }
        if (row.flag != nullptr) {
            in.flags.log_dir = row.flag;
        }
        const Settings s = build(in);
        cr_assert(s.log_dir.has_value(), "log_dir unset, expected %s", row.value);
        cr_expect(s.log_dir->value == row.value && s.log_dir->origin == row.origin,
                  "log_dir: \"%s\" from %s, expected \"%s\" from %s", s.log_dir->value.c_str(),
                  s.log_dir->origin.c_str(), row.value, row.origin);
    }
    const Settings none = build(Inputs{});
    cr_expect(!none.log_dir.has_value(), "log_dir has no default");
}

Test(settings, proxy_port_precedence) {
    const PrecedenceRow rows[] = {
        {nullptr, nullptr, nullptr, nullptr, "0", "default"},
        {"proxy_port: 8080\n", nullptr, nullptr, nullptr, "8080", "bad.yaml:1:13"},
        {"proxy_port: 8080\n", "PROXY_PORT", "9090", nullptr, "9090", "PROXY_PORT"},
        {"proxy_port: 8080\n", "LANDJAIL_PROXY_PORT", "9191", nullptr, "9191",
         "LANDJAIL_PROXY_PORT"},
        {"proxy_port: 8080\n", "PROXY_PORT", "9090", "7070", "7070", "--proxy-port"},
        {nullptr, nullptr, nullptr, "7070", "7070", "--proxy-port"},
    };
    for (const auto& row : rows) {
        Inputs in;
        if (row.yaml != nullptr) {
            in.file = file(row.yaml);
        }
        if (row.env_name != nullptr) {
            in.env[row.env_name] = row.env_value;
        }
        if (row.flag != nullptr) {
            in.flags.proxy_port = row.flag;
        }
        const Settings s = build(in);
        const std::string got = std::to_string(s.proxy_port.value);
        cr_expect(got == row.value && s.proxy_port.origin == row.origin,
                  "proxy_port: %s from %s, expected %s from %s", got.c_str(),
                  s.proxy_port.origin.c_str(), row.value, row.origin);
    }
    Inputs both;
    both.env["LANDJAIL_PROXY_PORT"] = "1111";
    both.env["PROXY_PORT"] = "2222";
    const Settings s = build(both);
    cr_expect(s.proxy_port.value == 1111 && s.proxy_port.origin == "LANDJAIL_PROXY_PORT",
              "LANDJAIL_PROXY_PORT over PROXY_PORT: %u from %s",
              static_cast<unsigned>(s.proxy_port.value), s.proxy_port.origin.c_str());
}

Test(settings, invalid_values_name_their_source) {
    struct Row {
        const char* env_name;
        const char* env_value;
        const char* flag_log_level;
        const char* flag_port;
        const char* needle1;
        const char* needle2;
    };
    const Row rows[] = {
        {"PROXY_PORT", "abc", nullptr, nullptr, "PROXY_PORT", "abc"},
        {"PROXY_PORT", "70000", nullptr, nullptr, "PROXY_PORT", "70000"},
        {"LANDJAIL_PROXY_PORT", "-5", nullptr, nullptr, "LANDJAIL_PROXY_PORT", "-5"},
        {"LANDJAIL_LOG_LEVEL", "loud", nullptr, nullptr, "LANDJAIL_LOG_LEVEL", "loud"},
        {"BOUNDARY_LOG_LEVEL", "trace", nullptr, nullptr, "BOUNDARY_LOG_LEVEL", "trace"},
        {nullptr, nullptr, "loud", nullptr, "--log-level", "loud"},
        {nullptr, nullptr, nullptr, "99999", "--proxy-port", "99999"},
        {nullptr, nullptr, nullptr, "http", "--proxy-port", "http"},
        {"DISABLE_AUDIT_LOGS", "maybe", nullptr, nullptr, "DISABLE_AUDIT_LOGS", "maybe"},
        {"BOUNDARY_JAIL_TYPE", "docker", nullptr, nullptr, "BOUNDARY_JAIL_TYPE", "docker"},
    };
    for (const Row& row : rows) {
        Inputs in;
        if (row.env_name != nullptr) {
            in.env[row.env_name] = row.env_value;
        }
        if (row.flag_log_level != nullptr) {
            in.flags.log_level = row.flag_log_level;
        }
        if (row.flag_port != nullptr) {
            in.flags.proxy_port = row.flag_port;
        }
        const std::string what = build_error(in);
        cr_expect(what.find(row.needle1) != std::string::npos &&
                      what.find(row.needle2) != std::string::npos,
                  "error \"%s\" should name %s and %s", what.c_str(), row.needle1, row.needle2);
    }
}

Test(settings, other_environment_is_ignored) {
    Inputs in;
    in.env["HTTP_PROXY"] = "http://evil:1/";
    in.env["ALLOW"] = "domain=*";
    in.env["LOG_LEVEL"] = "debug";
    const Settings s = build(in);
    cr_expect(s.engine->allow_rules().empty(), "only the documented variables add rules");
    cr_expect(s.log_level.value == "warn" && s.log_level.origin == "default",
              "LOG_LEVEL is not a landjail variable: %s from %s", s.log_level.value.c_str(),
              s.log_level.origin.c_str());
}

Test(settings, max_connections_flag_over_file) {
    const Settings none = build(Inputs{});
    cr_expect(!none.max_connections.has_value(), "max_connections has no default here");

    Inputs in;
    in.file = file("max_connections: 300\n");
    Settings s = build(in);
    cr_assert(s.max_connections.has_value());
    cr_expect(s.max_connections->value == 300 && s.max_connections->origin == "bad.yaml:1:18",
              "file: %u from %s", s.max_connections->value, s.max_connections->origin.c_str());

    in.flags.max_connections = "7";
    s = build(in);
    cr_assert(s.max_connections.has_value());
    cr_expect(s.max_connections->value == 7 && s.max_connections->origin == "--max-connections",
              "flag: %u from %s", s.max_connections->value, s.max_connections->origin.c_str());
}

Test(settings, max_connections_flag_errors) {
    for (const char* bad : {"0", "-3", "abc", "12x", "1048577", " 5", ""}) {
        Inputs in;
        in.flags.max_connections = bad;
        const std::string what = build_error(in);
        cr_expect(what.find("--max-connections") != std::string::npos,
                  "--max-connections '%s': \"%s\" does not name the flag", bad, what.c_str());
    }
}

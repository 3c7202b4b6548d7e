// SPDX-License-Identifier: Apache-2.0
// Shared fixtures of build_settings' unit tests (test_settings_*.cpp): a parsed config file,
// settings that must build or must fail, and a request check against the built engine.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "policy/config.hpp"
#include "policy/request.hpp"
#include "policy/settings.hpp"
#include "tests/unit/lj_test.hpp"

namespace lj::test::settings_support {

using lj::policy::build_settings;
using lj::policy::FileConfig;
using lj::policy::Inputs;
using lj::policy::parse_config;
using lj::policy::parse_request;
using lj::policy::parse_rules;
using lj::policy::Reason;
using lj::policy::RuleSource;
using lj::policy::Settings;
using lj::test::contains_any;
using lj::test::describe;

inline FileConfig file(const char* text, const char* name = "bad.yaml") {
    auto r = parse_config(text, name);
    cr_assert(r.ok(), "config: %s", describe(r).c_str());
    return std::move(*r);
}

inline Settings build(const Inputs& in) {
    auto r = build_settings(in);
    cr_assert(r.ok(), "build_settings: %s", describe(r).c_str());
    return std::move(*r);
}

inline std::string build_error(const Inputs& in) {
    auto r = build_settings(in);
    cr_assert(!r.ok(), "build_settings should fail");
    return r.error().what();
}

inline bool allows(const Settings& s, const char* method, const char* url) {
    auto req = parse_request(method, url);
    cr_assert(req.ok(), "%s %s: %s", method, url, describe(req).c_str());
    cr_assert(s.engine != nullptr, "Settings::engine must be set");
    return s.engine->evaluate(*req).allowed;
}

/// One precedence case: which sources are present, and the expected value and origin.
struct PrecedenceRow {
    const char* yaml;      // nullptr: no config file
    const char* env_name;  // nullptr: no environment variable
    const char* env_value;
    const char* flag;  // nullptr: flag not given
    const char* value;
    const char* origin;
};

}  // namespace lj::test::settings_support

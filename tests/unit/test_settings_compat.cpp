// SPDX-License-Identifier: Apache-2.0
// build_settings, compatibility: nsjail keys and newer boundary keys are accepted with a
// warning, and boundary's defaults are silent.
#include "tests/unit/settings_support.hpp"

using namespace lj::test::settings_support;

Test(settings, nsjail_warns) {
    Inputs in;
    in.file = file("jail_type: nsjail\n");
    const Settings s = build(in);
    bool warned = false;
    for (const auto& w : s.jail_warnings) {
        warned = warned || contains_any(w, "nsjail");
    }
    cr_expect(warned, "jail_type nsjail must add a warning that names nsjail (%zu warnings)",
              s.jail_warnings.size());
    cr_expect(s.warnings.empty(), "the nsjail warning is the jail's, not the proxy's");

    Inputs env;
    env.env["BOUNDARY_JAIL_TYPE"] = "nsjail";
    const Settings e = build(env);
    bool env_warned = false;
    for (const auto& w : e.jail_warnings) {
        env_warned = env_warned || contains_any(w, "nsjail");
    }
    cr_expect(env_warned, "BOUNDARY_JAIL_TYPE=nsjail must warn too");

    const Settings plain = build(Inputs{});
    for (const auto& w : plain.jail_warnings) {
        cr_expect(!contains_any(w, "nsjail"), "no nsjail warning by default: %s", w.c_str());
    }
    cr_expect_eq(plain.jail_type.value, std::string("landjail"));
}

// Newer boundary keys: upstream_proxy is warned about (no effect); the Coder agent's socket
// and session correlation act (issue 15), so they are not warned about.
Test(settings, newer_boundary_keys_warn) {
    Inputs in;
    in.env["CODER_AGENT_URL"] = "https://coder.example.com";
    in.file = file(
        "upstream_proxy: http://proxy.corp:3128\n"
        "log_proxy_socket_path: /run/coder/boundary.sock\n"
        "session_correlation_enabled: true\n");
    const Settings s = build(in);
    cr_assert_eq(s.warnings.size(), 1U, "one warning, got %zu", s.warnings.size());
    cr_expect(contains_any(s.warnings[0], "upstream_proxy (bad.yaml:1:17) is not supported"), "%s",
              s.warnings[0].c_str());
    cr_expect_eq(s.coder.socket->value, "/run/coder/boundary.sock");
    cr_expect(s.correlation.enabled.value && s.correlation.enabled.origin == "bad.yaml:3:30");

    Inputs defaults;
    defaults.file = file(
        "upstream_proxy: \"\"\nlog_proxy_socket_path: \"\"\n"
        "session_correlation_enabled: false\n");
    const Settings d = build(defaults);
    cr_expect(d.warnings.empty(), "boundary's defaults are silent");
    cr_expect_eq(d.coder.socket->origin, "default");
    cr_expect(!d.correlation.enabled.value);
}

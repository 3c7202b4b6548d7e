// SPDX-License-Identifier: Apache-2.0
// The shim's proxy URL parser (shim/core.h): the only accepted form is http://ADDR:PORT[/]
// with a numeric IPv4 or bracketed IPv6 address; everything else is refused.
#include "tests/unit/shim_core_support.hpp"

using namespace lj::test::shim_core_support;

// ---- proxy URL --------------------------------------------------------------------------

namespace {

struct UrlCase {
    char* url;
    int family;  // 0: must fail
    char* addr;
    unsigned port;
};

struct UrlRow {
    const char* url;
    int family;
    const char* addr;
    unsigned port;
};

const UrlRow kUrlRows[] = {
    {"http://127.0.0.1:3128", AF_INET, "127.0.0.1", 3128},
    {"http://127.0.0.1:3128/", AF_INET, "127.0.0.1", 3128},
    {"http://127.0.0.1:1", AF_INET, "127.0.0.1", 1},
    {"http://127.0.0.1:65535", AF_INET, "127.0.0.1", 65535},
    {"http://10.1.2.3:8080", AF_INET, "10.1.2.3", 8080},
    {"http://[::1]:8080", AF_INET6, "::1", 8080},
    {"http://[::1]:8080/", AF_INET6, "::1", 8080},
    {"http://[2001:db8::5]:443", AF_INET6, "2001:db8::5", 443},
    {"", 0, "", 0},
    {"http://", 0, "", 0},
    {"127.0.0.1:3128", 0, "", 0},
    {"https://127.0.0.1:3128", 0, "", 0},
    {"socks5://127.0.0.1:3128", 0, "", 0},
    {"http://localhost:3128", 0, "", 0},
    {"http://proxy.example:3128", 0, "", 0},
    {"http://127.0.0.1:", 0, "", 0},
    {"http://127.0.0.1:65536", 0, "", 0},
    {"http://127.0.0.1:99999999999", 0, "", 0},
    {"http://127.0.0.1:-1", 0, "", 0},
    {"http://127.0.0.1:31x", 0, "", 0},
    {"http://127.0.0.1:3128 ", 0, "", 0},
    {"http://127.0.0.1:3128/path", 0, "", 0},
    {"http://127.0.0.1:3128?x", 0, "", 0},
    {"http://user:pw@127.0.0.1:3128", 0, "", 0},
    {"http://127.0.0.256:3128", 0, "", 0},
    {"http://1.2.3:3128", 0, "", 0},
    {"http://::1:8080", 0, "", 0},
    {"http://[::1:8080", 0, "", 0},
    {"http://[::1]8080", 0, "", 0},
    {"http://[127.0.0.1]:8080", 0, "", 0},
    {"http://[fe80::1%eth0]:8080", 0, "", 0},
};

}  // namespace

ParameterizedTestParameters(shim_url, parse_proxy_url) {
    static criterion::parameters<UrlCase> params;
    if (params.empty()) {
        for (const UrlRow& r : kUrlRows) {
            params.push_back(UrlCase{cr_str(r.url), r.family, cr_str(r.addr), r.port});
        }
    }
    return params;
}

ParameterizedTest(UrlCase* c, shim_url, parse_proxy_url) {
    sockaddr_storage ss;
    std::memset(&ss, 0xA5, sizeof ss);
    socklen_t len = 12345;
    const int rc = lj_parse_proxy_url(c->url, &ss, &len);
    const std::string url = printable(c->url);
    if (c->family == 0) {
        cr_expect_eq(rc, -1, "lj_parse_proxy_url(\"%s\") should fail", url.c_str());
        return;
    }
    cr_assert_eq(rc, 0, "lj_parse_proxy_url(\"%s\") failed", url.c_str());
    const Addr want = c->family == AF_INET ? v4(c->addr, static_cast<std::uint16_t>(c->port))
                                           : v6(c->addr, static_cast<std::uint16_t>(c->port));
    cr_expect_eq(ss.ss_family, c->family, "%s: family", url.c_str());
    cr_expect_eq(len, want.len, "%s: length %u, expected %u", url.c_str(), len, want.len);
    cr_expect_eq(lj_same_endpoint(reinterpret_cast<const sockaddr*>(&ss), len, want.sa(), want.len),
                 1, "%s: not %s port %u", url.c_str(), c->addr, c->port);
    cr_expect_eq(lj_port_of(reinterpret_cast<const sockaddr*>(&ss), len), c->port);
    if (c->family == AF_INET6) {
        const auto& in6 = reinterpret_cast<const sockaddr_in6&>(ss);
        cr_expect_eq(in6.sin6_flowinfo, 0u, "%s: flowinfo set", url.c_str());
        cr_expect_eq(in6.sin6_scope_id, 0u, "%s: scope set", url.c_str());
    } else {
        const auto& in = reinterpret_cast<const sockaddr_in&>(ss);
        const unsigned char zero[sizeof in.sin_zero] = {};
        cr_expect_arr_eq(in.sin_zero, zero, sizeof zero, "%s: sin_zero not cleared", url.c_str());
    }
}

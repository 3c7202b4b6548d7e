// SPDX-License-Identifier: Apache-2.0
// Absolute-form request parsing (parse_request, Request::url) and origin-form targets
// (parse_origin_request). One case per table line: method, URL, then either the expected
// canonical fields or, for errors, the words one of which the message must contain.
#include <string>

#include "policy/request.hpp"
#include "tests/unit/lj_test.hpp"

using lj::policy::canonical_host;
using lj::policy::HostKind;
using lj::policy::parse_origin_request;
using lj::policy::parse_request;
using lj::test::contains_any;
using lj::test::cr_str;
using lj::test::describe;
using lj::test::printable;

namespace {

/// kind: 'n'/'4'/'6' expected host kind, 'e' error (then `needle` is checked).
/// query: nullptr = no '?', else the query as sent.
struct ReqRow {
    const char* method;
    const char* url;
    char kind;
    const char* scheme;
    const char* host;
    unsigned port;
    const char* path;
    const char* query;
    const char* url_out;
    const char* needle;
};

struct ReqCase {
    char* method;
    char* url;
    char kind;
    char* scheme;
    char* host;
    unsigned port;
    char* path;
    char* query;
    char* url_out;
    char* needle;
};

#define LJ_REQ_OK(m, u, k, s, h, p, path, q, out) \
    { m, u, k, s, h, p, path, q, out, nullptr }
#define LJ_REQ_ERR(m, u, needle) \
    { m, u, 'e', nullptr, nullptr, 0, nullptr, nullptr, nullptr, needle }

const ReqRow kRows[] = {
    LJ_REQ_OK("GET", "http://example.com/", 'n', "http", "example.com", 80, "/", nullptr,
              "http://example.com/"),
    LJ_REQ_OK("GET", "https://example.com/", 'n', "https", "example.com", 443, "/", nullptr,
              "https://example.com/"),
    LJ_REQ_OK("GET", "https://example.com", 'n', "https", "example.com", 443, "/", nullptr,
              "https://example.com/"),
    LJ_REQ_OK("get", "http://example.com:8080/x", 'n', "http", "example.com", 8080, "/x", nullptr,
              "http://example.com:8080/x"),
    LJ_REQ_OK("GET", "https://EXAMPLE.com:443/a/../b?q=1", 'n', "https", "example.com", 443, "/b",
              "q=1", "https://example.com/b?q=1"),
    LJ_REQ_OK("GET", "https://example.com./", 'n', "https", "example.com", 443, "/", nullptr,
              "https://example.com/"),
    LJ_REQ_OK("GET", "HTTPS://Example.COM/", 'n', "https", "example.com", 443, "/", nullptr,
              "https://example.com/"),
    LJ_REQ_OK("GET", "https://example.com:443/", 'n', "https", "example.com", 443, "/", nullptr,
              "https://example.com/"),
    LJ_REQ_OK("GET", "http://example.com:80/", 'n', "http", "example.com", 80, "/", nullptr,
              "http://example.com/"),
    LJ_REQ_OK("GET", "http://example.com:443/", 'n', "http", "example.com", 443, "/", nullptr,
              "http://example.com:443/"),
    LJ_REQ_OK("GET", "https://example.com:80/", 'n', "https", "example.com", 80, "/", nullptr,
              "https://example.com:80/"),
    LJ_REQ_OK("GET", "http://[::1]:8080/x", '6', "http", "::1", 8080, "/x", nullptr,
              "http://[::1]:8080/x"),
    LJ_REQ_OK("GET", "http://[::1]/", '6', "http", "::1", 80, "/", nullptr, "http://[::1]/"),
    LJ_REQ_OK("GET", "http://[0:0::1]/", '6', "http", "::1", 80, "/", nullptr, "http://[::1]/"),
    LJ_REQ_OK("GET", "https://[::ffff:127.0.0.1]/", '4', "https", "127.0.0.1", 443, "/", nullptr,
              "https://127.0.0.1/"),
    LJ_REQ_OK("GET", "http://127.1/", '4', "http", "127.0.0.1", 80, "/", nullptr,
              "http://127.0.0.1/"),
    LJ_REQ_OK("GET", "http://0x7f.0.0.1:81/", '4', "http", "127.0.0.1", 81, "/", nullptr,
              "http://127.0.0.1:81/"),
    LJ_REQ_OK("GET", "https://example.com/a?b=1#frag", 'n', "https", "example.com", 443, "/a",
              "b=1", "https://example.com/a?b=1"),
    LJ_REQ_OK("GET", "https://example.com/a#frag", 'n', "https", "example.com", 443, "/a", nullptr,
              "https://example.com/a"),
    LJ_REQ_OK("GET", "https://example.com/a#frag?x=1", 'n', "https", "example.com", 443, "/a",
              nullptr, "https://example.com/a"),
    LJ_REQ_OK("GET", "https://example.com/?", 'n', "https", "example.com", 443, "/", "",
              "https://example.com/?"),
    LJ_REQ_OK("GET", "https://example.com?q=1", 'n', "https", "example.com", 443, "/", "q=1",
              "https://example.com/?q=1"),
    LJ_REQ_OK("GET", "https://example.com/api/x?a=/admin", 'n', "https", "example.com", 443,
              "/api/x", "a=/admin", "https://example.com/api/x?a=/admin"),
    LJ_REQ_OK("GET", "https://example.com/a?x=../../b", 'n', "https", "example.com", 443, "/a",
              "x=../../b", "https://example.com/a?x=../../b"),
    LJ_REQ_OK("GET", "https://example.com/a/%2e%2e/admin", 'n', "https", "example.com", 443,
              "/admin", nullptr, "https://example.com/admin"),
    LJ_REQ_OK("GET", "https://example.com/%7Euser/a%2fb", 'n', "https", "example.com", 443,
              "/~user/a%2Fb", nullptr, "https://example.com/~user/a%2Fb"),
    LJ_REQ_OK("POST", "https://api.example.com/v1/users", 'n', "https", "api.example.com", 443,
              "/v1/users", nullptr, "https://api.example.com/v1/users"),
    LJ_REQ_ERR("GET", "ftp://x/", "scheme"),
    LJ_REQ_ERR("GET", "file:///etc/passwd", "scheme"),
    LJ_REQ_ERR("GET", "ws://example.com/", "scheme"),
    LJ_REQ_ERR("GET", "example.com/", "scheme|absolute|url"),
    LJ_REQ_ERR("GET", "//example.com/", "scheme|absolute|url"),
    LJ_REQ_ERR("GET", "/path", "scheme|absolute|url"),
    LJ_REQ_ERR("GET", "", "empty|url"),
    LJ_REQ_ERR("GET", "https://", "host"),
    LJ_REQ_ERR("GET", "https:///path", "host"),
    LJ_REQ_ERR("GET", "https://user:pw@example.com/", "user info|userinfo|credential"),
    LJ_REQ_ERR("GET", "https://alice@example.com/", "user info|userinfo|credential"),
    LJ_REQ_ERR("GET", "https://@example.com/", "user info|userinfo|credential"),
    LJ_REQ_ERR("GET", "https://example.com:0/", "port"),
    LJ_REQ_ERR("GET", "https://example.com:99999/", "99999"),
    LJ_REQ_ERR("GET", "https://example.com:abc/", "abc"),
    LJ_REQ_ERR("GET", "https://exa mple.com/", "exa mple.com"),
    LJ_REQ_ERR("GET",
               "https://b\xc3\xbc"
               "cher.de/",
               "xn--"),
    LJ_REQ_ERR("GET", "https://[fe80::1%25eth0]/", "zone|fe80::1%25eth0"),
    LJ_REQ_ERR("GET", "https://::1/", "bracket|::1"),
    LJ_REQ_ERR("GET", "https://example.com/%zz", "escape|%zz"),
    LJ_REQ_ERR("GET", "https://example.com/a\\b", "backslash|\\"),
    LJ_REQ_ERR("GET", "https://example.com/a b", "space|character"),
    LJ_REQ_ERR("GET", "https://example.com/%00", "%00|nul"),
    LJ_REQ_ERR("G ET", "https://example.com/", "G ET"),
    LJ_REQ_ERR("", "https://example.com/", "empty|method"),
};

#undef LJ_REQ_OK
#undef LJ_REQ_ERR

}  // namespace

ParameterizedTestParameters(request, parse_request) {
    static criterion::parameters<ReqCase> params;
    if (params.empty()) {
        for (const ReqRow& r : kRows) {
            params.push_back(ReqCase{cr_str(r.method), cr_str(r.url), r.kind, cr_str(r.scheme),
                                     cr_str(r.host), r.port, cr_str(r.path), cr_str(r.query),
                                     cr_str(r.url_out), cr_str(r.needle)});
        }
    }
    return params;
}

ParameterizedTest(ReqCase* c, request, parse_request) {
    const std::string row = printable(std::string(c->method) + " " + c->url);
    auto r = parse_request(c->method, c->url);
    if (c->kind == 'e') {
        cr_assert(!r.ok(), "parse_request(%s) should fail, got %s", row.c_str(),
                  r.ok() ? r->url().c_str() : "");
        cr_expect(contains_any(r.error().what(), c->needle),
                  "parse_request(%s): message \"%s\" should mention %s", row.c_str(),
                  printable(r.error().what()).c_str(), c->needle);
        return;
    }
    cr_assert(r.ok(), "parse_request(%s): %s", row.c_str(), describe(r).c_str());
    const HostKind kind = c->kind == '4'   ? HostKind::IPv4
                          : c->kind == '6' ? HostKind::IPv6
                                           : HostKind::Name;
    std::string method_upper = c->method;
    for (char& ch : method_upper) {
        ch = static_cast<char>(ch >= 'a' && ch <= 'z' ? ch - 'a' + 'A' : ch);
    }
    cr_expect(r->method == method_upper, "%s: method \"%s\"", row.c_str(), r->method.c_str());
    cr_expect(r->scheme == c->scheme, "%s: scheme \"%s\", expected \"%s\"", row.c_str(),
              r->scheme.c_str(), c->scheme);
    cr_expect(r->host.text == c->host, "%s: host \"%s\", expected \"%s\"", row.c_str(),
              r->host.text.c_str(), c->host);
    cr_expect(r->host.kind == kind, "%s: wrong host kind", row.c_str());
    cr_expect(r->port == c->port, "%s: port %u, expected %u", row.c_str(),
              static_cast<unsigned>(r->port), c->port);
    cr_expect(r->path == c->path, "%s: path \"%s\", expected \"%s\"", row.c_str(), r->path.c_str(),
              c->path);
    if (c->query == nullptr) {
        cr_expect(!r->has_query && r->query.empty(), "%s: unexpected query \"%s\"", row.c_str(),
                  r->query.c_str());
    } else {
        cr_expect(r->has_query && r->query == c->query,
                  "%s: query \"%s\" (has_query %d), expected \"%s\"", row.c_str(), r->query.c_str(),
                  r->has_query ? 1 : 0, c->query);
    }
    cr_expect(r->url() == c->url_out, "%s: url() \"%s\", expected \"%s\"", row.c_str(),
              r->url().c_str(), c->url_out);
    // The normalized URL parses to itself.
    auto again = parse_request(r->method, r->url());
    cr_assert(again.ok(), "%s: url() does not parse again: %s", row.c_str(),
              describe(again).c_str());
    cr_expect(again->url() == r->url() && again->path == r->path && again->host == r->host &&
                  again->port == r->port,
              "%s: url() is not a fixed point (%s)", row.c_str(), again->url().c_str());
}

Test(request, userinfo_password_not_echoed) {
    auto r = parse_request("GET", "https://user:s3cr3t-pw@example.com/");
    cr_assert(!r.ok(), "user information must be rejected");
    cr_expect(contains_any(r.error().what(), "user info|userinfo|credential"), "message: %s",
              r.error().what().c_str());
    cr_expect(r.error().what().find("s3cr3t-pw") == std::string::npos,
              "the error message must not repeat the password: %s", r.error().what().c_str());
}

Test(request, origin_form) {
    auto host = canonical_host("Example.COM");
    cr_assert(host.ok());
    auto r = parse_origin_request("get", "https", *host, 443, "/api/../admin?x=1#f");
    cr_assert(r.ok(), "%s", describe(r).c_str());
    cr_expect_eq(r->method, std::string("GET"));
    cr_expect_eq(r->scheme, std::string("https"));
    cr_expect_eq(r->host.text, std::string("example.com"));
    cr_expect_eq(r->port, 443);
    cr_expect_eq(r->path, std::string("/admin"));
    cr_expect(r->has_query && r->query == "x=1", "query \"%s\"", r->query.c_str());
    cr_expect_eq(r->url(), std::string("https://example.com/admin?x=1"));

    auto v6 = canonical_host("[::1]");
    cr_assert(v6.ok());
    auto r6 = parse_origin_request("GET", "http", *v6, 8080, "/x");
    cr_assert(r6.ok(), "%s", describe(r6).c_str());
    cr_expect_eq(r6->url(), std::string("http://[::1]:8080/x"));

    auto bad = parse_origin_request("GET", "https", *host, 443, "/a%zz");
    cr_assert(!bad.ok(), "a malformed escape must be rejected");
    cr_expect(contains_any(bad.error().what(), "escape|%zz"), "message: %s",
              bad.error().what().c_str());

    auto not_origin = parse_origin_request("GET", "https", *host, 443, "admin");
    cr_assert(!not_origin.ok(), "a target not starting with '/' must be rejected");
    cr_expect(contains_any(not_origin.error().what(), "admin|start|/"), "message: %s",
              not_origin.error().what().c_str());

    auto bad_method = parse_origin_request("G T", "https", *host, 443, "/");
    cr_assert(!bad_method.ok(), "a bad method must be rejected");
    cr_expect(contains_any(bad_method.error().what(), "G T|method"), "message: %s",
              bad_method.error().what().c_str());
}

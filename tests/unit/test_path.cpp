// SPDX-License-Identifier: Apache-2.0
// Path and method normalization (normalize_path, normalize_method): one case per table line.
// Error rows give a '|'-separated list of words, one of which the message must contain.
#include <string>

#include "policy/request.hpp"
#include "tests/unit/lj_test.hpp"

using lj::policy::normalize_method;
using lj::policy::normalize_path;
using lj::test::contains_any;
using lj::test::cr_str;
using lj::test::describe;
using lj::test::printable;

namespace {

/// ok == false: `expect` is the needle list for the error message.
struct NormRow {
    const char* input;
    const char* expect;
    bool ok;
};

struct NormCase {
    char* input;
    char* expect;
    bool ok;
};

const NormRow kPathRows[] = {
    // RFC 3986 §5.2.4 dot-segment removal
    {"/a/b/../c", "/a/c", true},
    {"/a/./b", "/a/b", true},
    {"/../a", "/a", true},
    {"/a/..", "/", true},
    {"/a/b/..", "/a/", true},
    {"/a/.", "/a/", true},
    {"/.", "/", true},
    {"/..", "/", true},
    {"/a/b/c/./../../g", "/a/g", true},
    {"/a/b/c/../../../../g", "/g", true},
    {"/a/../../b/./c/", "/b/c/", true},
    {"/...", "/...", true},
    {"/a/..b", "/a/..b", true},
    {"/a/b..", "/a/b..", true},
    {"/a/.b/c", "/a/.b/c", true},
    // encoded dots are dots (decoded before dot removal)
    {"/a/%2e%2e/b", "/b", true},
    {"/a/%2E%2E/b", "/b", true},
    {"/a/%2E/b", "/a/b", true},
    {"/a/.%2e/b", "/b", true},
    {"/a/%2e./b", "/b", true},
    {"/a/%2e", "/a/", true},
    {"/%2e%2e", "/", true},
    {"/api/%2e%2e/admin", "/admin", true},
    // unreserved escapes decoded, others kept with upper-case hex
    {"/%7Euser", "/~user", true},
    {"/%7euser", "/~user", true},
    {"/%41", "/A", true},
    {"/%61%62%63", "/abc", true},
    {"/%2D%2E%5F%7E", "/-._~", true},
    {"/%30%39", "/09", true},
    {"/a%7e%7E", "/a~~", true},
    {"/a%2fb", "/a%2Fb", true},
    {"/a%2Fb", "/a%2Fb", true},
    {"/%3a", "/%3A", true},
    {"/caf%c3%a9", "/caf%C3%A9", true},
    {"/a%2f..%2fb", "/a%2F..%2Fb", true},
    {"/a/b%2F..", "/a/b%2F..", true},
    {"/a/%2e%2e%2fb", "/a/..%2Fb", true},
    {"/a/%2e%2e%2f../b", "/a/..%2F../b", true},
    // what stays as it is
    {"", "/", true},
    {"/", "/", true},
    {"/a/", "/a/", true},
    {"/a//b", "/a//b", true},
    {"//", "//", true},
    {"/a:b@c", "/a:b@c", true},
    {"/!$&'()*+,;=", "/!$&'()*+,;=", true},
    {"/API/X", "/API/X", true},
    // rejected
    {"/%", "escape|%", false},
    {"/%4", "escape|%4", false},
    {"/%zz", "escape|%zz", false},
    {"/%g0", "escape|%g0", false},
    {"/a%2", "escape|%2", false},
    {"/%00", "%00|nul", false},
    {"/a%00b", "%00|nul", false},
    {"/a\\b", "backslash|\\", false},
    {"/a b", "space|character", false},
    {"/a\tb", "control|character", false},
    {"/a\x01", "control|character", false},
    {"/a\x7f", "control|character", false},
    {"/a\r\nb", "control|character", false},
    {"/caf\xc3\xa9", "ascii|character|byte", false},
    {"a/b", "start|begin|absolute", false},
    {"*", "start|begin|absolute", false},
    {"a", "start|begin|absolute", false},
};

const NormRow kMethodRows[] = {
    {"get", "GET", true},
    {"GET", "GET", true},
    {"Post", "POST", true},
    {"delete", "DELETE", true},
    {"m-search", "M-SEARCH", true},
    {"PROPFIND", "PROPFIND", true},
    {"x!#$%&'*+-.^_`|~1", "X!#$%&'*+-.^_`|~1", true},
    {"GE T", "GE T", false},
    {"", "empty|method", false},
    {"G(ET", "G(ET", false},
    {"G:ET", "G:ET", false},
    {"G,ET", "G,ET", false},
    {"G@ET", "G@ET", false},
    {"GET/", "GET/", false},
    {"G\"ET", "G\"ET", false},
    {"GET\r", "method|token|character", false},
    {"G\xc3\x89T", "method|token|character", false},
};

std::vector<NormCase, criterion::allocator<NormCase>>& fill(criterion::parameters<NormCase>& params,
                                                            const NormRow* rows, std::size_t n) {
    if (params.empty()) {
        for (std::size_t i = 0; i < n; ++i) {
            params.push_back(NormCase{cr_str(rows[i].input), cr_str(rows[i].expect), rows[i].ok});
        }
    }
    return params;
}

template <class Fn>
void check(const char* fn_name, Fn fn, const NormCase* c) {
    const std::string in = printable(c->input);
    auto r = fn(c->input);
    if (!c->ok) {
        cr_assert(!r.ok(), "%s(\"%s\") should fail, got \"%s\"", fn_name, in.c_str(),
                  r.ok() ? printable(*r).c_str() : "");
        cr_expect(contains_any(r.error().what(), c->expect),
                  "%s(\"%s\"): message \"%s\" should mention %s", fn_name, in.c_str(),
                  printable(r.error().what()).c_str(), c->expect);
        return;
    }
    cr_assert(r.ok(), "%s(\"%s\") should give \"%s\", got %s", fn_name, in.c_str(), c->expect,
              describe(r).c_str());
    cr_expect(*r == c->expect, "%s(\"%s\") = \"%s\", expected \"%s\"", fn_name, in.c_str(),
              printable(*r).c_str(), c->expect);
}

}  // namespace

ParameterizedTestParameters(path, normalize) {
    static criterion::parameters<NormCase> params;
    return fill(params, kPathRows, std::size(kPathRows));
}

ParameterizedTest(NormCase* c, path, normalize) {
    check(
        "normalize_path", [](const char* s) { return normalize_path(s); }, c);
}

ParameterizedTestParameters(method, normalize) {
    static criterion::parameters<NormCase> params;
    return fill(params, kMethodRows, std::size(kMethodRows));
}

ParameterizedTest(NormCase* c, method, normalize) {
    check(
        "normalize_method", [](const char* s) { return normalize_method(s); }, c);
}

Test(path, normalization_is_idempotent) {
    for (const NormRow& row : kPathRows) {
        if (!row.ok) {
            continue;
        }
        auto once = normalize_path(row.input);
        cr_assert(once.ok(), "normalize_path(\"%s\"): %s", row.input, describe(once).c_str());
        auto twice = normalize_path(*once);
        cr_assert(twice.ok(), "normalize_path(\"%s\"): %s", once->c_str(), describe(twice).c_str());
        cr_expect(*twice == *once, "normalize_path is not idempotent on \"%s\": \"%s\" -> \"%s\"",
                  row.input, once->c_str(), twice->c_str());
    }
}

Test(path, long_paths) {
    // 64 KiB of ordinary segments: kept as they are.
    std::string plain;
    while (plain.size() < 64 * 1024) {
        plain += "/abcdefg";
    }
    auto r = normalize_path(plain);
    if (r.ok()) {
        cr_expect(*r == plain, "a long plain path must normalize to itself");
    } else {
        cr_expect(contains_any(r.error().what(), "long|length|limit|size"),
                  "a long path error must say it is too long: %s",
                  r.error().what().substr(0, 200).c_str());
    }

    // 100 KiB of dot segments, encoded dots and escapes: normalized or refused, never a crash.
    std::string dots = "/x";
    while (dots.size() < 100 * 1024) {
        dots += "/a/../%2e%2e/./%2E/b%2fc";
    }
    auto d = normalize_path(dots);
    if (d.ok()) {
        cr_expect(d->size() <= dots.size(), "normalization must not grow the path");
        cr_expect(d->find("/../") == std::string::npos, "no dot segment may remain");
        cr_expect(d->find("%2E") == std::string::npos && d->find("%2e") == std::string::npos,
                  "encoded dots must be decoded");
        auto again = normalize_path(*d);
        cr_expect(again.ok() && *again == *d, "the result must be a fixed point");
    } else {
        cr_expect(contains_any(d.error().what(), "long|length|limit|size"),
                  "a long path error must say it is too long: %s",
                  d.error().what().substr(0, 200).c_str());
    }

    // 64 KiB of ".." only: collapses to the root.
    std::string ups;
    while (ups.size() < 64 * 1024) {
        ups += "/..";
    }
    auto u = normalize_path(ups);
    if (u.ok()) {
        cr_expect(*u == "/", "a path of '..' segments is \"/\", got %zu bytes", u->size());
    } else {
        cr_expect(contains_any(u.error().what(), "long|length|limit|size"),
                  "a long path error must say it is too long");
    }
}

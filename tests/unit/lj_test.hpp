// SPDX-License-Identifier: Apache-2.0
// Shared helpers for the Criterion unit tests: copying table strings into Criterion's shared
// arena (parameterized cases run in worker processes, where only cr_malloc'd memory is valid
// and there is no cr_strdup), and message checks used by every error-case row.
#pragma once

// Criterion 2.4.1's Test()/ParameterizedTest() trampolines contain a C-style cast
// (internal/test.h: `(void (*)(void)) impl`) that expands into every test file; the tests
// themselves use only named casts.
#pragma GCC diagnostic ignored "-Wold-style-cast"

#include <cctype>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

namespace lj::test {

/// Copies `s` into Criterion's arena (NUL-terminated); nullptr stays nullptr.
inline char* cr_str(const char* s) {
    if (s == nullptr) {
        return nullptr;
    }
    const std::size_t n = std::strlen(s) + 1;
    char* p = static_cast<char*>(cr_malloc(n));
    std::memcpy(p, s, n);
    return p;
}

/// Copies arbitrary bytes (the string may contain NUL only at the end).
inline char* cr_str(const std::string& s) {
    return cr_str(s.c_str());
}

inline char lower(char c) {
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

/// Case-insensitive substring test.
inline bool contains_ci(std::string_view hay, std::string_view needle) {
    if (needle.empty()) {
        return true;
    }
    if (needle.size() > hay.size()) {
        return false;
    }
    for (std::size_t i = 0; i + needle.size() <= hay.size(); ++i) {
        std::size_t j = 0;
        while (j < needle.size() && lower(hay[i + j]) == lower(needle[j])) {
            ++j;
        }
        if (j == needle.size()) {
            return true;
        }
    }
    return false;
}

/// True when `hay` contains (case-insensitively) one of the '|'-separated alternatives.
inline bool contains_any(std::string_view hay, std::string_view alternatives) {
    std::size_t start = 0;
    while (true) {
        const std::size_t bar = alternatives.find('|', start);
        const std::string_view alt = alternatives.substr(start, bar - start);
        if (contains_ci(hay, alt)) {
            return true;
        }
        if (bar == std::string_view::npos) {
            return false;
        }
        start = bar + 1;
    }
}

/// `s` with control and non-ASCII bytes written as \xNN, for failure messages.
inline std::string printable(std::string_view s) {
    std::string out;
    for (const char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u >= 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(u));
            out += buf;
        } else {
            out += c;
        }
    }
    return out;
}

/// Either "ok" or the error text of a Result, for failure messages.
template <class R>
std::string describe(const R& r) {
    return r.ok() ? std::string("ok") : "error: " + r.error().what();
}

/// The lines of `data`, without their newlines.
inline std::vector<std::string> split_lines(const std::string& data) {
    std::vector<std::string> out;
    std::istringstream in(data);
    for (std::string line; std::getline(in, line);) {
        out.push_back(line);
    }
    return out;
}

/// True when `what` starts with "file:LINE:COL: " (LINE and COL positive integers).
inline bool has_location(std::string_view what, std::string_view file) {
    if (what.substr(0, file.size()) != file || what.size() <= file.size() ||
        what[file.size()] != ':') {
        return false;
    }
    std::size_t i = file.size() + 1;
    for (int field = 0; field < 2; ++field) {
        const std::size_t digits_start = i;
        while (i < what.size() && std::isdigit(static_cast<unsigned char>(what[i])) != 0) {
            ++i;
        }
        if (i == digits_start || i >= what.size() || what[i] != ':') {
            return false;
        }
        ++i;
    }
    return true;
}

}  // namespace lj::test

// SPDX-License-Identifier: Apache-2.0
// Small ASCII helpers shared by the policy sources (internal to policy/).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace lj::policy {

inline constexpr char kUpperHex[] = "0123456789ABCDEF";

constexpr bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
constexpr bool is_alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
constexpr bool is_alnum(char c) {
    return is_digit(c) || is_alpha(c);
}
constexpr bool is_hex(char c) {
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
constexpr int hex_value(char c) {
    if (is_digit(c)) {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}
/// RFC 3986 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~".
constexpr bool is_unreserved(char c) {
    return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}
/// RFC 9110 tchar.
constexpr bool is_tchar(char c) {
    return is_alnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}
constexpr bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

inline std::string to_lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return out;
}
inline std::string to_upper(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        if (c >= 'a' && c <= 'z') {
            c = static_cast<char>(c - 'a' + 'A');
        }
    }
    return out;
}
inline bool has_non_ascii(std::string_view s) {
    for (char c : s) {
        if (static_cast<unsigned char>(c) >= 0x80) {
            return true;
        }
    }
    return false;
}
inline std::string_view trim(std::string_view s) {
    while (!s.empty() && is_space(s.front())) {
        s.remove_prefix(1);
    }
    while (!s.empty() && is_space(s.back())) {
        s.remove_suffix(1);
    }
    return s;
}
/// Splits on `sep`, keeping empty fields ("a..b" -> a, "", b; "" -> one empty field).
inline std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> out;
    std::size_t start = 0;
    for (;;) {
        const std::size_t pos = s.find(sep, start);
        if (pos == std::string_view::npos) {
            out.push_back(s.substr(start));
            return out;
        }
        out.push_back(s.substr(start, pos - start));
        start = pos + 1;
    }
}
/// Text safe to quote in an error message: control bytes and non-ASCII shown as \xNN, and
/// cut at 200 characters.
inline std::string printable(std::string_view s) {
    std::string out;
    for (char ch : s.substr(0, 200)) {
        const auto c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c == 0x7f) {
            out += "\\x";
            out += kUpperHex[c >> 4];
            out += kUpperHex[c & 15];
        } else {
            out += ch;  // UTF-8 passes through: the user wrote it and can read it
        }
    }
    if (s.size() > 200) {
        out += "…";
    }
    return out;
}

// Shared between request.cpp and rule.cpp.
std::string idn_hint(std::string_view raw);
/// Empty when `name` (lower-case, no trailing dot) is a valid name pattern, else the reason.
std::string check_name_pattern(std::string_view name);
bool looks_numeric_host(std::string_view host);

}  // namespace lj::policy

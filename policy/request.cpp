// SPDX-License-Identifier: Apache-2.0
#include "policy/request.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <array>
#include <charconv>
#include <vector>

#include "policy/text.hpp"

namespace lj::policy {
namespace {

constexpr std::size_t kMaxHost = 253;
constexpr std::size_t kMaxLabel = 63;
constexpr std::size_t kMaxMethod = 64;

Error host_error(std::string_view raw, std::string_view why) {
    return make_error("invalid host '" + printable(raw) + "': " + std::string(why));
}

// WHATWG URL "ends in a number": the last label is all digits, or 0x followed by hex digits.
bool ends_in_number(std::string_view host) {
    const std::size_t dot = host.rfind('.');
    std::string_view last = dot == std::string_view::npos ? host : host.substr(dot + 1);
    if (last.empty()) {
        return false;
    }
    if (last.size() >= 2 && last[0] == '0' && (last[1] == 'x' || last[1] == 'X')) {
        for (char c : last.substr(2)) {
            if (!is_hex(c)) {
                return false;
            }
        }
        return true;
    }
    for (char c : last) {
        if (!is_digit(c)) {
            return false;
        }
    }
    return true;
}

// One part of a URL-style IPv4 address: decimal, 0x-hex or 0-octal. False on bad digits or
// overflow past 2^32.
bool parse_ipv4_part(std::string_view part, std::uint64_t& out) {
    int base = 10;
    if (part.size() >= 2 && part[0] == '0' && (part[1] == 'x' || part[1] == 'X')) {
        base = 16;
        part.remove_prefix(2);
    } else if (part.size() >= 2 && part[0] == '0') {
        base = 8;
        part.remove_prefix(1);
    }
    out = 0;
    for (char c : part) {
        const int digit = hex_value(c);
        if (digit < 0 || digit >= base) {
            return false;
        }
        out = out * static_cast<std::uint64_t>(base) + static_cast<std::uint64_t>(digit);
        if (out > 0xffffffffULL) {
            return false;
        }
    }
    return true;
}

Result<Host> parse_ipv4(std::string_view raw, std::string_view host) {
    std::vector<std::string_view> parts = split(host, '.');
    if (parts.size() > 4) {
        return host_error(raw, "an IPv4 address has at most 4 parts");
    }
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < parts.size(); ++i) {
        std::uint64_t part = 0;
        if (parts[i].empty() || !parse_ipv4_part(parts[i], part)) {
            return host_error(raw, "not a valid IPv4 address");
        }
        const bool last = i + 1 == parts.size();
        const unsigned bits = last ? 8u * static_cast<unsigned>(5 - parts.size()) : 8u;
        if (part >= (1ULL << bits)) {
            return host_error(raw, "IPv4 address part out of range");
        }
        value = last ? (value << bits) | part : (value << 8) | part;
    }
    std::string text;
    for (int shift = 24; shift >= 0; shift -= 8) {
        text += std::to_string((value >> shift) & 0xff);
        if (shift) {
            text += '.';
        }
    }
    return Host{std::move(text), HostKind::IPv4};
}

Result<Host> parse_ipv6(std::string_view raw, std::string_view inner) {
    if (inner.find('%') != std::string_view::npos) {
        return host_error(raw, "IPv6 zone identifiers are not supported");
    }
    std::string copy(inner);
    in6_addr addr{};
    if (inner.empty() || inet_pton(AF_INET6, copy.c_str(), &addr) != 1) {
        return host_error(raw, "not a valid IPv6 address");
    }
    char buf[INET6_ADDRSTRLEN];
    if (IN6_IS_ADDR_V4MAPPED(&addr)) {
        // ::ffff:a.b.c.d is the IPv4 host a.b.c.d: one address, one set of rules.
        inet_ntop(AF_INET, &addr.s6_addr[12], buf, sizeof buf);
        return Host{buf, HostKind::IPv4};
    }
    inet_ntop(AF_INET6, &addr, buf, sizeof buf);
    return Host{buf, HostKind::IPv6};
}

// Validates a lower-case name without trailing dot. `allow_star` admits whole-label '*'.
std::string check_name(std::string_view name, bool allow_star) {
    if (name.size() > kMaxHost) {
        return "the name is " + std::to_string(name.size()) + " characters long (at most 253)";
    }
    for (std::string_view label : split(name, '.')) {
        if (label.empty()) {
            return "empty label";
        }
        if (label.size() > kMaxLabel) {
            return "label '" + std::string(label.substr(0, 20)) + "…' is " +
                   std::to_string(label.size()) + " characters long (at most 63)";
        }
        if (allow_star && label == "*") {
            continue;
        }
        for (char c : label) {
            if (c == '*') {
                return allow_star ? "'*' must be a whole label" : "'*' is not a valid character";
            }
            if (!is_alnum(c) && c != '-' && c != '_') {
                return "character '" + printable(std::string_view(&c, 1)) + "' is not allowed";
            }
        }
    }
    return {};
}

}  // namespace

std::string idn_hint(std::string_view raw) {
    return "'" + printable(raw) +
           "' is an internationalized (non-ASCII) name: write it in its ASCII form "
           "(punycode, labels starting with xn--)";
}

std::string Host::authority() const {
    return kind == HostKind::IPv6 ? "[" + text + "]" : text;
}

Result<Host> canonical_host(std::string_view raw) {
    if (raw.empty()) {
        return make_error("empty host");
    }
    if (raw.front() == '[') {
        if (raw.back() != ']') {
            return host_error(raw, "missing ']' after an IPv6 address");
        }
        return parse_ipv6(raw, raw.substr(1, raw.size() - 2));
    }
    if (has_non_ascii(raw)) {
        return make_error("invalid host: " + idn_hint(raw));
    }
    if (raw.find(':') != std::string_view::npos) {
        return host_error(
            raw, "':' is not allowed (IPv6 addresses go in brackets, ports after the host)");
    }
    std::string host = to_lower(raw);
    if (host.back() == '.') {
        host.pop_back();
    }
    if (host.empty()) {
        return host_error(raw, "empty name");
    }
    if (ends_in_number(host)) {
        return parse_ipv4(raw, host);
    }
    if (std::string why = check_name(host, false); !why.empty()) {
        return host_error(raw, why);
    }
    return Host{std::move(host), HostKind::Name};
}

std::string check_name_pattern(std::string_view name) {
    return check_name(name, true);
}

bool looks_numeric_host(std::string_view host) {
    return ends_in_number(host);
}

Result<std::uint16_t> parse_port(std::string_view text, bool allow_zero) {
    unsigned value = 0;
    const char* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (text.empty() || ec != std::errc() || ptr != end || !is_digit(text.front()) ||
        value > 65535 || (value == 0 && !allow_zero)) {
        return make_error("invalid port '" + printable(text) + "' (expected " +
                          (allow_zero ? "0" : "1") + "..65535)");
    }
    return static_cast<std::uint16_t>(value);
}

Result<HostPort> parse_host_port(std::string_view authority, std::uint16_t default_port) {
    std::string_view host = authority;
    std::string_view port;
    bool has_port = false;
    if (!authority.empty() && authority.front() == '[') {
        const std::size_t close = authority.find(']');
        if (close == std::string_view::npos) {
            return host_error(authority, "missing ']' after an IPv6 address");
        }
        host = authority.substr(0, close + 1);
        std::string_view rest = authority.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') {
                return host_error(authority, "unexpected text after ']'");
            }
            port = rest.substr(1);
            has_port = true;
        }
    } else if (const std::size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
        host = authority.substr(0, colon);
        port = authority.substr(colon + 1);
        has_port = true;
    }
    auto h = canonical_host(host);
    if (!h) {
        return h.error();
    }
    if (!has_port || port.empty()) {
        if (default_port == 0) {
            return make_error("'" + printable(authority) + "' needs a port (host:port)");
        }
        return HostPort{std::move(*h), default_port};
    }
    auto p = parse_port(port, false);
    if (!p) {
        return p.error();
    }
    return HostPort{std::move(*h), *p};
}

Result<std::string> canonical_escapes(std::string_view path) {
    std::string out;
    out.reserve(path.size());
    for (std::size_t i = 0; i < path.size(); ++i) {
        const auto c = static_cast<unsigned char>(path[i]);
        if (c == '%') {
            if (i + 2 >= path.size() || !is_hex(path[i + 1]) || !is_hex(path[i + 2])) {
                return make_error("malformed percent-escape '" + printable(path.substr(i, 3)) +
                                  "' in path");
            }
            const int v = hex_value(path[i + 1]) * 16 + hex_value(path[i + 2]);
            const char decoded = static_cast<char>(v);
            if (v == 0) {
                return make_error("'%00' (NUL) in path");
            }
            if (is_unreserved(decoded)) {
                out += decoded;
            } else {
                out += '%';
                out += kUpperHex[v >> 4];
                out += kUpperHex[v & 15];
            }
            i += 2;
        } else if (c == '\\') {
            return make_error("backslash in path (percent-encode it as %5C)");
        } else if (c <= 0x20 || c == 0x7f) {
            return make_error("space or control character in path (percent-encode it)");
        } else if (c >= 0x80) {
            return make_error("non-ASCII byte in path (percent-encode it)");
        } else if (c == '?' || c == '#') {
            return make_error(std::string("'") + static_cast<char>(c) + "' inside a path");
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

namespace {

/// The length of the shortest-form UTF-8 sequence that starts with `lead`, 0 when `lead`
/// cannot start one (continuation bytes, C0/C1 overlong leads, F5..FF).
int utf8_length(unsigned lead) {
    if (lead >= 0xC2 && lead <= 0xDF) {
        return 2;
    }
    if (lead >= 0xE0 && lead <= 0xEF) {
        return 3;
    }
    if (lead >= 0xF0 && lead <= 0xF4) {
        return 4;
    }
    return 0;
}

/// Whether bytes[0..n) are one shortest-form UTF-8 character (no overlong form, surrogate or
/// code point above U+10FFFF).
bool valid_utf8(const unsigned* bytes, int n) {
    for (int i = 1; i < n; ++i) {
        if ((bytes[i] & 0xC0U) != 0x80U) {
            return false;
        }
    }
    const unsigned lead = bytes[0], second = bytes[1];
    if (lead == 0xE0 && second < 0xA0) {
        return false;  // overlong 3-byte form
    }
    if (lead == 0xED && second >= 0xA0) {
        return false;  // UTF-16 surrogate
    }
    if (lead == 0xF0 && second < 0x90) {
        return false;  // overlong 4-byte form
    }
    return !(lead == 0xF4 && second >= 0x90);  // above U+10FFFF
}

/// The escape at path[i] ('%' and two hex digits) as a byte value, or -1.
int escape_at(std::string_view path, std::size_t i) {
    if (i + 2 >= path.size() || path[i] != '%' || !is_hex(path[i + 1]) || !is_hex(path[i + 2])) {
        return -1;
    }
    return hex_value(path[i + 1]) * 16 + hex_value(path[i + 2]);
}

/// Percent-encoded non-ASCII starting at path[i]: "" when it is one valid character (and
/// `i` moves past it), else why not.
std::string check_encoded_utf8(std::string_view path, std::size_t& i) {
    unsigned bytes[4] = {};
    const int lead = escape_at(path, i);
    const int n = utf8_length(static_cast<unsigned>(lead));
    if (n == 0) {
        return "a percent-encoded byte that is not UTF-8 (an overlong form such as %C0%AE "
               "reads as '.' to some servers)";
    }
    for (int k = 0; k < n; ++k) {
        const int b = escape_at(path, i + 3 * static_cast<std::size_t>(k));
        if (b < 0) {
            return "a truncated percent-encoded UTF-8 character";
        }
        bytes[k] = static_cast<unsigned>(b);
    }
    if (!valid_utf8(bytes, n)) {
        return "a percent-encoded UTF-8 character in an overlong or invalid form";
    }
    i += 3 * static_cast<std::size_t>(n) - 1;
    return {};
}

}  // namespace

std::string path_ambiguity(std::string_view path) {
    for (std::size_t i = 0; i < path.size(); ++i) {
        const char c = path[i];
        if (c == ';') {
            return "a ';' parameter (some servers drop it: '..;' reads as '..')";
        }
        if (c == '/' && i + 1 < path.size() && path[i + 1] == '/') {
            return "an empty segment '//' (some servers merge slashes)";
        }
        const int v = escape_at(path, i);
        if (v < 0) {
            continue;
        }
        if (v == '/' || v == '\\') {
            return v == '/' ? "an encoded '/' (%2F)" : "an encoded '\\' (%5C)";
        }
        if (v == '%' && i + 4 < path.size() && is_hex(path[i + 3]) && is_hex(path[i + 4])) {
            return "double percent-encoding (%25 followed by an escape)";
        }
        if (v >= 0x80) {
            if (std::string why = check_encoded_utf8(path, i); !why.empty()) {
                return why;
            }
            continue;
        }
        i += 2;
    }
    return {};
}

Result<std::string> normalize_path(std::string_view path) {
    if (path.empty()) {
        return std::string("/");
    }
    if (path.front() != '/') {
        return make_error("path '" + printable(path.substr(0, 64)) + "' does not start with '/'");
    }
    auto decoded = canonical_escapes(path);
    if (!decoded) {
        return decoded.error();
    }
    // RFC 3986 §5.2.4 on an absolute path, as a segment stack: "." is dropped, ".." pops,
    // and either one as the last segment leaves a trailing slash ("/a/b/.." -> "/a/").
    std::vector<std::string_view> out;
    const std::vector<std::string_view> segments = split(std::string_view(*decoded).substr(1), '/');
    for (std::size_t i = 0; i < segments.size(); ++i) {
        const std::string_view seg = segments[i];
        const bool last = i + 1 == segments.size();
        if (seg == "." || seg == "..") {
            if (seg == ".." && !out.empty()) {
                out.pop_back();
            }
            if (last) {
                out.emplace_back();
            }
            continue;
        }
        out.push_back(seg);
    }
    std::string result;
    result.reserve(decoded->size());
    for (std::string_view seg : out) {
        result += '/';
        result += seg;
    }
    if (result.empty()) {
        result = "/";
    }
    return result;
}

Result<std::string> normalize_method(std::string_view method) {
    if (method.empty()) {
        return make_error("empty HTTP method");
    }
    if (method.size() > kMaxMethod) {
        return make_error("HTTP method longer than 64 characters");
    }
    for (char c : method) {
        if (!is_tchar(c)) {
            return make_error("invalid HTTP method '" + printable(method) + "'");
        }
    }
    return to_upper(method);
}

std::string Request::url() const {
    std::string out = scheme + "://" + host.authority();
    if (port != default_port(scheme)) {
        out += ':' + std::to_string(port);
    }
    out += path;
    if (has_query) {
        out += '?';
        out += query;
    }
    return out;
}

Result<Request> parse_origin_request(std::string_view method, std::string_view scheme,
                                     const Host& host, std::uint16_t port,
                                     std::string_view target) {
    Request req;
    auto m = normalize_method(method);
    if (!m) {
        return m.error();
    }
    req.method = std::move(*m);
    req.scheme = std::string(scheme);
    req.host = host;
    req.port = port;
    if (const std::size_t hash = target.find('#'); hash != std::string_view::npos) {
        target = target.substr(0, hash);
    }
    if (const std::size_t q = target.find('?'); q != std::string_view::npos) {
        req.query = std::string(target.substr(q + 1));
        req.has_query = true;
        target = target.substr(0, q);
    }
    auto p = normalize_path(target);
    if (!p) {
        return p.error();
    }
    req.path = std::move(*p);
    req.ambiguity = path_ambiguity(target);
    return req;
}

Result<Request> parse_request(std::string_view method, std::string_view url) {
    const std::size_t sep = url.find("://");
    if (sep == std::string_view::npos || sep == 0) {
        std::string hint;
        if (sep == std::string_view::npos && !url.empty() && url.size() < 200 &&
            url.find_first_of(" \t/:") != 0) {
            hint = "; did you mean https://" + printable(url) +
                   (url.find('/') == std::string_view::npos ? "/" : "") + "?";
        }
        return make_error("'" + printable(url.substr(0, 200)) +
                          "' is not an absolute URL (expected http://host/path or https://…" +
                          hint + ")");
    }
    const std::string scheme = to_lower(url.substr(0, sep));
    if (scheme != "http" && scheme != "https") {
        return make_error("unsupported URL scheme '" + printable(scheme) +
                          "' (only http and https)");
    }
    std::string_view rest = url.substr(sep + 3);
    const std::size_t end = rest.find_first_of("/?#");
    const std::string_view authority = rest.substr(0, end);
    const std::string_view target = end == std::string_view::npos ? "" : rest.substr(end);
    if (authority.find('@') != std::string_view::npos) {
        return make_error("user information ('…@') in the URL authority is refused");
    }
    if (authority.empty()) {
        return make_error("URL '" + printable(url.substr(0, 200)) + "' has no host");
    }
    auto hp = parse_host_port(authority, default_port(scheme));
    if (!hp) {
        return hp.error();
    }
    std::string origin_target(target);
    if (origin_target.empty() || origin_target.front() != '/') {
        origin_target.insert(0, "/");  // "http://h?q" has the empty path
    }
    return parse_origin_request(method, scheme, hp->host, hp->port, origin_target);
}

std::uint16_t default_port(std::string_view scheme) {
    return scheme == "https" ? 443 : 80;
}

}  // namespace lj::policy

// SPDX-License-Identifier: Apache-2.0
#include "policy/rule.hpp"

#include <algorithm>
#include <utility>

#include "policy/text.hpp"

namespace lj::policy {
namespace {

constexpr std::string_view kKeys[] = {"domain", "method", "path", "port", "upgrade"};

/// "a port does not belong in domain= (write domain=HOST port=PORT)" for HOST:PORT, with
/// the rule the user most likely meant when the port is a number.
std::string port_in_domain(std::string_view host, std::string_view port) {
    const bool number = !port.empty() && port.size() <= 5 &&
                        std::all_of(port.begin(), port.end(), [](char c) { return is_digit(c); });
    if (host.empty() || !number) {
        return "a port does not belong in domain= (use port=, e.g. port=8443)";
    }
    return "a port does not belong in domain= (write domain=" + printable(host) +
           " port=" + std::string(port) + ")";
}

/// The host of a `domain=` value written as a URL, e.g. "github.com" for
/// "https://github.com/x", for the suggestion in the error.
std::string_view url_host(std::string_view value) {
    value = value.substr(value.find("://") + 3);
    value = value.substr(0, value.find_first_of("/?#"));
    if (const std::size_t at = value.rfind('@'); at != std::string_view::npos) {
        value = value.substr(at + 1);
    }
    if (!value.empty() && value.front() != '[') {
        value = value.substr(0, value.find(':'));
    }
    return value;
}

/// Parses a `domain=` value into `out`; returns the reason it is malformed, or "".
std::string parse_domain(std::string_view value, HostPattern& out) {
    if (value == "*") {
        out.kind = HostPattern::Kind::Any;
        return {};
    }
    if (value.find("://") != std::string_view::npos) {
        const std::string_view host = url_host(value);
        return "a scheme does not belong in domain= (write the host only: domain=" +
               (host.empty() ? std::string("github.com") : printable(host)) + ")";
    }
    if (value.find('/') != std::string_view::npos) {
        return "a path does not belong in domain= (use path=)";
    }
    if (value.find('@') != std::string_view::npos) {
        return "user information does not belong in domain=";
    }
    if (value.find(',') != std::string_view::npos) {
        return "domain= takes one host pattern, not a list (write one rule for each host)";
    }
    if (value.front() == '[') {
        if (value.back() != ']') {
            const std::size_t close = value.find("]:");
            return close == std::string_view::npos
                       ? "a port does not belong in domain= (use port=)"
                       : port_in_domain(value.substr(0, close + 1), value.substr(close + 2));
        }
        auto host = canonical_host(value);
        if (!host) {
            return host.error().message;
        }
        out.kind = host->kind == HostKind::IPv6 ? HostPattern::Kind::IPv6 : HostPattern::Kind::IPv4;
        out.address = host->text;
        return {};
    }
    if (const std::size_t colon = value.find(':'); colon != std::string_view::npos) {
        return port_in_domain(value.substr(0, colon), value.substr(colon + 1));
    }
    if (has_non_ascii(value)) {
        return idn_hint(value);
    }
    std::string name = to_lower(value);
    if (name.back() == '.') {
        name.pop_back();
    }
    if (name.empty()) {
        return "empty domain";
    }
    const bool wild = name.find('*') != std::string::npos;
    if (looks_numeric_host(name)) {
        if (wild) {
            return "'*' is not allowed in an IP address";
        }
        auto host = canonical_host(name);
        if (!host) {
            return host.error().message;
        }
        out.kind = HostPattern::Kind::IPv4;
        out.address = host->text;
        return {};
    }
    if (std::string why = check_name_pattern(name); !why.empty()) {
        return why;
    }
    out.kind = HostPattern::Kind::Name;
    for (std::string_view label : split(name, '.')) {
        out.labels.emplace_back(label);
    }
    if (out.labels.back() == "*") {
        return "a domain pattern cannot end with '*' (only a bare domain=* matches every host)";
    }
    return {};
}

/// The IANA HTTP Method Registry (RFC 9110 and its updates).
constexpr std::string_view kRegisteredMethods[] = {"ACL",
                                                   "BASELINE-CONTROL",
                                                   "BIND",
                                                   "CHECKIN",
                                                   "CHECKOUT",
                                                   "CONNECT",
                                                   "COPY",
                                                   "DELETE",
                                                   "GET",
                                                   "HEAD",
                                                   "LABEL",
                                                   "LINK",
                                                   "LOCK",
                                                   "MERGE",
                                                   "MKACTIVITY",
                                                   "MKCALENDAR",
                                                   "MKCOL",
                                                   "MKREDIRECTREF",
                                                   "MKWORKSPACE",
                                                   "MOVE",
                                                   "OPTIONS",
                                                   "ORDERPATCH",
                                                   "PATCH",
                                                   "POST",
                                                   "PRI",
                                                   "PROPFIND",
                                                   "PROPPATCH",
                                                   "PUT",
                                                   "QUERY",
                                                   "REBIND",
                                                   "REPORT",
                                                   "SEARCH",
                                                   "TRACE",
                                                   "UNBIND",
                                                   "UNCHECKOUT",
                                                   "UNLINK",
                                                   "UNLOCK",
                                                   "UPDATE",
                                                   "UPDATEREDIRECTREF",
                                                   "VERSION-CONTROL"};

/// Whether `a` becomes `b` by one edit: a substitution, an insertion, a deletion or the
/// swap of two adjacent characters.
bool one_edit_apart(std::string_view a, std::string_view b) {
    if (a.size() > b.size()) {
        std::swap(a, b);
    }
    if (b.size() - a.size() > 1) {
        return false;
    }
    std::size_t i = 0;
    while (i < a.size() && a[i] == b[i]) {
        ++i;
    }
    if (a.size() < b.size()) {
        return a.substr(i) == b.substr(i + 1);
    }
    if (i == a.size()) {
        return false;  // equal
    }
    return a.substr(i + 1) == b.substr(i + 1) ||
           (i + 1 < a.size() && a[i] == b[i + 1] && a[i + 1] == b[i] &&
            a.substr(i + 2) == b.substr(i + 2));
}

/// Any token is a method (M-SEARCH, PURGE, …), but one that is a single typo away from a
/// registered method is almost certainly that typo: in a deny rule it would silently deny
/// nothing. Returns the registered method it is close to, or "".
std::string_view misspelled_method(std::string_view upper) {
    if (upper.size() < 3) {
        return {};
    }
    for (std::string_view m : kRegisteredMethods) {
        if (m == upper) {
            return {};
        }
    }
    for (std::string_view m : kRegisteredMethods) {
        if (one_edit_apart(upper, m)) {
            return m;
        }
    }
    return {};
}

std::string parse_methods(std::string_view value, std::vector<std::string>& out) {
    bool any = false;
    for (std::string_view item : split(value, ',')) {
        if (item.empty()) {
            return "empty method in the list";
        }
        if (item == "*") {
            any = true;  // any method; later items are still checked
            continue;
        }
        auto m = normalize_method(item);
        if (!m) {
            return m.error().message;
        }
        if (const std::string_view near = misspelled_method(*m); !near.empty()) {
            return "unknown method '" + printable(item) + "' (did you mean " + std::string(near) +
                   "?)";
        }
        if (std::find(out.begin(), out.end(), *m) == out.end()) {
            out.push_back(std::move(*m));
        }
    }
    if (any) {
        out.clear();
    }
    return {};
}

std::string parse_paths(std::string_view value, std::vector<PathPattern>& out) {
    for (std::string_view item : split(value, ',')) {
        if (item.empty()) {
            return "empty path in the list";
        }
        if (item.front() != '/') {
            return "path pattern '" + printable(item) + "' does not start with '/' (write /" +
                   printable(item) + ")";
        }
        if (item.find_first_of("?#") != std::string_view::npos) {
            return "path pattern '" + printable(item) +
                   "' contains a query or fragment (queries are never matched)";
        }
        auto canon = canonical_escapes(item);
        if (!canon) {
            return "path pattern '" + printable(item) + "': " + canon.error().message;
        }
        PathPattern pattern;
        for (std::string_view seg : split(std::string_view(*canon).substr(1), '/')) {
            if (seg == "." || seg == "..") {
                return "path pattern '" + printable(item) +
                       "' contains a '.' or '..' segment (requests are matched after these are "
                       "removed, so it could never match)";
            }
            if (seg != "*" && seg.find('*') != std::string_view::npos) {
                return "in path pattern '" + printable(item) + "', '*' must be a whole segment";
            }
            pattern.segments.emplace_back(seg);
        }
        out.push_back(std::move(pattern));
    }
    return {};
}

std::string parse_ports(std::string_view value, std::vector<std::uint16_t>& out) {
    bool any = false;
    for (std::string_view item : split(value, ',')) {
        if (item == "*") {
            any = true;  // any port; later items are still checked
            continue;
        }
        auto p = parse_port(item, false);
        if (!p) {
            return p.error().message;
        }
        if (std::find(out.begin(), out.end(), *p) == out.end()) {
            out.push_back(*p);
        }
    }
    if (any) {
        out.clear();
    }
    return {};
}

/// upgrade=: "none" (no Upgrade), protocol tokens (websocket) or "*" (any, as when absent).
std::string parse_upgrades(std::string_view value, std::vector<std::string>& out) {
    bool any = false;
    for (std::string_view item : split(value, ',')) {
        if (item.empty()) {
            return "empty value in the list";
        }
        if (item == "*") {
            any = true;  // any; later items are still checked
            continue;
        }
        for (char c : item) {
            if (!is_tchar(c)) {
                return "'" + printable(item) + "' is not a protocol name (none, websocket or *)";
            }
        }
        std::string token = to_lower(item);
        if (std::find(out.begin(), out.end(), token) == out.end()) {
            out.push_back(std::move(token));
        }
    }
    if (any) {
        out.clear();
    }
    return {};
}

std::string closest_key(std::string_view key) {
    for (std::string_view k : kKeys) {
        if (to_lower(key) == k) {
            return " (keys are lower-case: " + std::string(k) + "=)";
        }
    }
    if (key == "host" || key == "domains") {
        return " (did you mean domain=?)";
    }
    if (key == "methods") {
        return " (did you mean method=?)";
    }
    if (key == "paths") {
        return " (did you mean path=?)";
    }
    if (key == "ports") {
        return " (did you mean port=?)";
    }
    if (key == "upgrades" || key == "websocket") {
        return " (did you mean upgrade=?)";
    }
    return {};
}

}  // namespace

bool HostPattern::matches(std::string_view host, HostKind host_kind) const {
    switch (kind) {
        case Kind::Any:
            return true;
        case Kind::IPv4:
            return host_kind == HostKind::IPv4 && host == address;
        case Kind::IPv6:
            return host_kind == HostKind::IPv6 && host == address;
        case Kind::Name:
            break;
    }
    if (host_kind != HostKind::Name) {
        return false;
    }
    // Right-aligned label comparison; extra labels on the host's left are subdomains.
    std::size_t end = host.size();
    for (auto it = labels.rbegin(); it != labels.rend(); ++it) {
        if (end == std::string_view::npos) {
            return false;  // the host has fewer labels than the pattern
        }
        const std::size_t dot = end == 0 ? std::string_view::npos : host.rfind('.', end - 1);
        const std::size_t start = dot == std::string_view::npos ? 0 : dot + 1;
        const std::string_view label = host.substr(start, end - start);
        if (*it != "*" && *it != label) {
            return false;
        }
        end = dot;  // npos once the leftmost label has been consumed
    }
    return true;
}

std::string HostPattern::index_key() const {
    if (kind == Kind::IPv4 || kind == Kind::IPv6) {
        return address;
    }
    std::string key;
    for (auto it = labels.rbegin(); it != labels.rend() && *it != "*"; ++it) {
        key = key.empty() ? *it : *it + "." + key;
    }
    return key;
}

bool PathPattern::matches(std::string_view path) const {
    if (path.empty() || path.front() != '/') {
        return false;
    }
    std::size_t pos = 1;
    bool more = true;  // a segment starts at pos
    for (std::size_t i = 0; i < segments.size(); ++i) {
        if (!more) {
            return false;
        }
        const std::size_t end = path.find('/', pos);
        const std::string_view seg =
            path.substr(pos, end == std::string_view::npos ? end : end - pos);
        if (segments[i] == "*") {
            if (i + 1 == segments.size()) {
                return true;  // trailing '*': this and any further segments
            }
        } else if (seg != segments[i]) {
            return false;
        }
        more = end != std::string_view::npos;
        pos = end + 1;
    }
    return !more;
}

bool Rule::matches_host(std::string_view h, HostKind kind) const {
    return !host || host->matches(h, kind);
}

bool Rule::matches_port(std::uint16_t port) const {
    return ports.empty() || std::find(ports.begin(), ports.end(), port) != ports.end();
}

bool Rule::matches_method(std::string_view upper_method) const {
    return methods.empty() ||
           std::find(methods.begin(), methods.end(), upper_method) != methods.end();
}

bool Rule::matches_upgrade(std::string_view upgrade) const {
    if (upgrades.empty()) {
        return true;
    }
    const std::string_view want = upgrade.empty() ? std::string_view("none") : upgrade;
    return std::find(upgrades.begin(), upgrades.end(), want) != upgrades.end();
}

bool Rule::matches_path(std::string_view path) const {
    return paths.empty() || std::any_of(paths.begin(), paths.end(),
                                        [&](const PathPattern& p) { return p.matches(path); });
}

std::string suggested_rule(const Request& r) {
    std::string rule = "domain=" + r.host.authority() + " method=" + r.method;
    if (r.path.find_first_of(",*") == std::string::npos) {
        rule += " path=" + r.path;
    }
    if (r.port != default_port(r.scheme)) {
        rule += " port=" + std::to_string(r.port);
    }
    return rule;
}

Result<Rule> parse_rule(std::string_view text, std::string origin) {
    Rule rule;
    rule.text = std::string(trim(text));
    rule.origin = std::move(origin);
    auto fail = [&](const std::string& why) {
        return make_error("rule '" + printable(rule.text) + "': " + why);
    };
    if (rule.text.empty()) {
        return make_error(
            "empty rule: a rule needs at least one key=value (domain=*, written "
            "out, is the rule that allows every host)");
    }
    bool seen[std::size(kKeys)] = {};
    std::string_view rest = rule.text;
    while (!(rest = trim(rest)).empty()) {
        std::size_t end = 0;
        while (end < rest.size() && !is_space(rest[end])) {
            ++end;
        }
        const std::string_view token = rest.substr(0, end);
        rest.remove_prefix(end);
        const std::size_t eq = token.find('=');
        if (eq == std::string_view::npos) {
            return fail("'" + printable(token) + "' is not key=value" +
                        (token.find('.') != std::string_view::npos
                             ? " (did you mean domain=" + printable(token) + "?)"
                             : std::string()));
        }
        const std::string_view key = token.substr(0, eq);
        const std::string_view value = token.substr(eq + 1);
        const auto* k = std::find(std::begin(kKeys), std::end(kKeys), key);
        if (k == std::end(kKeys)) {
            return fail("unknown key '" + printable(key) + "'" + closest_key(key) +
                        "; the keys are domain, method, path, port and upgrade");
        }
        const auto index = static_cast<std::size_t>(k - std::begin(kKeys));
        if (seen[index]) {
            static const char* const kHint[] = {
                "write one rule for each host",                  // domain
                "list the methods once: method=GET,POST",        // method
                "list the paths once: path=/a/*,/b",             // path
                "list the ports once: port=443,8443",            // port
                "list the values once: upgrade=none,websocket",  // upgrade
            };
            return fail("key '" + std::string(key) + "' given twice (" + kHint[index] + ")");
        }
        seen[index] = true;
        if (value.empty()) {
            return fail("empty value for " + std::string(key) + "=");
        }
        std::string why;
        if (key == "domain") {
            why = parse_domain(value, rule.host.emplace());
        } else if (key == "method") {
            why = parse_methods(value, rule.methods);
        } else if (key == "path") {
            why = parse_paths(value, rule.paths);
        } else if (key == "port") {
            why = parse_ports(value, rule.ports);
        } else {
            why = parse_upgrades(value, rule.upgrades);
        }
        if (!why.empty()) {
            return fail(std::string(key) + "=" + printable(value) + ": " + why);
        }
    }
    // No domain= key: the rule matches every host, as boundary reads `path=/api/*` alone.
    // build_settings warns about each such allow rule and `check --strict` refuses them.
    return rule;
}

}  // namespace lj::policy

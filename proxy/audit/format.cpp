// SPDX-License-Identifier: Apache-2.0
// Rendering audit events (DESIGN §6): one JSON object per line (nlohmann, never by hand) and
// the logfmt denial lines of standard error.
#include <cstdio>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "proxy/audit/auditor.hpp"
#include "proxy/base/diag.hpp"

namespace lj::proxy {
namespace {

using Clock = std::chrono::system_clock;
using Json = nlohmann::ordered_json;

constexpr std::size_t kMaxQuery = 256;        // bytes of query string kept (STYLE)
constexpr char kEllipsis[] = "\xE2\x80\xA6";  // U+2026, marks a truncated query

std::string format_time(Clock::time_point t) {
    using namespace std::chrono;
    const auto day = floor<days>(t);
    const year_month_day ymd{day};
    const hh_mm_ss hms{floor<microseconds>(t - day)};
    char buf[48];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02lld:%02lld:%02lld.%06lldZ",
                  static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                  static_cast<unsigned>(ymd.day()), static_cast<long long>(hms.hours().count()),
                  static_cast<long long>(hms.minutes().count()),
                  static_cast<long long>(hms.seconds().count()),
                  static_cast<long long>(hms.subseconds().count()));
    return buf;
}

bool is_utf8_continuation(char c) {
    return (static_cast<unsigned char>(c) & 0xC0U) == 0x80U;
}

/// `url` with its query cut to kMaxQuery bytes (backing off to a UTF-8 character boundary)
/// and "…" appended; a URL without a longer query is returned unchanged.
std::string truncate_query(const std::string& url) {
    const std::size_t query = url.find('?');
    if (query == std::string::npos || url.size() - query - 1 <= kMaxQuery) {
        return url;
    }
    std::size_t end = query + 1 + kMaxQuery;  // < url.size()
    while (end > query + 1 && is_utf8_continuation(url[end])) {
        --end;
    }
    return url.substr(0, end) + kEllipsis;
}

/// One line, whatever the strings hold: control characters are escaped by the serializer
/// and invalid UTF-8 becomes U+FFFD instead of an exception.
std::string dump_line(const Json& j) {
    return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

template <class T>
Json nullable(const std::optional<T>& value) {
    return value ? Json(*value) : Json(nullptr);
}

void add_labels(Json& j, const policy::Labels& labels) {
    const auto add = [&j](const char* key, const std::optional<policy::Setting<std::string>>& v) {
        if (v) {
            j[key] = v->value;
        }
    };
    add("workspace_id", labels.workspace_id);
    add("workspace_name", labels.workspace_name);
    add("owner", labels.owner);
    add("template_id", labels.template_id);
    add("template_version_id", labels.template_version_id);
}

/// logfmt needs quotes for empty values and for anything but printable ASCII without
/// '=', '"' and '\'.
bool needs_quotes(std::string_view value) {
    if (value.empty()) {
        return true;
    }
    for (const char c : value) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u >= 0x7F || c == '=' || c == '"' || c == '\\') {
            return true;
        }
    }
    return false;
}

/// Appends ` key=value`, skipping empty values. Quoted values use JSON string escaping in
/// ASCII (\" \\ \n \u001b, invalid UTF-8 as \ufffd): nothing can start a new line or reach
/// the terminal as a control sequence.
void append_field(std::string& out, std::string_view key, const std::string& value) {
    if (value.empty()) {
        return;
    }
    out += ' ';
    out += key;
    out += '=';
    out += needs_quotes(value)
               ? nlohmann::json(value).dump(-1, ' ', true, nlohmann::json::error_handler_t::replace)
               : value;
}

}  // namespace

std::string Auditor::to_json(const AuditEvent& event, const std::string& session_id,
                             std::uint64_t seq, std::chrono::system_clock::time_point time,
                             const policy::Labels& labels) {
    Json j;
    j["time"] = format_time(time);
    j["session_id"] = session_id;
    j["seq"] = seq;
    j["event"] = event.event;
    j["decision"] = event.allowed ? "allow" : "deny";
    if (event.event == "http_request") {
        j["http_method"] = event.http_method;
        j["http_url"] = truncate_query(event.http_url);
        j["host"] = event.host;
        j["matched_rule"] = nullable(event.matched_rule);
    }
    j["reason"] = event.reason;
    j["pid"] = nullable(event.pid);
    j["exe"] = nullable(event.exe);
    if (event.destination) {
        j["destination"] = *event.destination;
    }
    if (event.status) {  // absent: no response reached the client (see outcome)
        j["status"] = *event.status;
    }
    if (event.outcome) {
        j["outcome"] = *event.outcome;
    }
    add_labels(j, labels);
    return dump_line(j);
}

std::string Auditor::to_logfmt(const AuditEvent& event) {
    std::string out =
        event.event == "http_request" ? std::string("landjail_request") : "landjail_" + event.event;
    append_field(out, "decision", event.allowed ? "allow" : "deny");
    append_field(out, "http_method", event.http_method);
    append_field(out, "http_url", truncate_query(event.http_url));
    append_field(out, "host", event.host);
    append_field(out, "reason", event.reason);
    append_field(out, "matched_rule", event.matched_rule.value_or(""));
    append_field(out, "destination", event.destination.value_or(""));
    append_field(out, "status", event.status ? std::to_string(*event.status) : "");
    if (event.outcome) {
        append_field(out, "outcome", *event.outcome);
    }
    append_field(out, "pid", event.pid ? std::to_string(*event.pid) : "");
    append_field(out, "exe", event.exe.value_or(""));
    return out;
}

std::string Auditor::dropped_json(const std::string& session_id, const AuditLoss& loss,
                                  const policy::Labels& labels) {
    Json j;
    j["time"] = format_time(Clock::now());
    j["session_id"] = session_id;
    j["event"] = "audit_dropped";
    j["count"] = loss.count;
    if (!loss.sink.empty()) {
        j["sink"] = loss.sink;
    }
    j["reason"] = loss.reason;
    if (loss.err != 0) {
        j["errno"] = diag::errno_name(loss.err);
    }
    if (loss.status != 0) {
        j["status"] = loss.status;
    }
    if (loss.cut) {
        j["partial_line"] = true;
    }
    add_labels(j, labels);
    return dump_line(j);
}

}  // namespace lj::proxy

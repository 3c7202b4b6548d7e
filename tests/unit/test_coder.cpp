// SPDX-License-Identifier: Apache-2.0
// landjail inside Coder: the agent's frames (CoderSink::frames, decoded back with the
// protobuf runtime: sizes, counts, tags, field values) and the settings of the agent's socket
// and of session correlation (precedence, defaults, errors that name their origin).
#include <string>
#include <utility>
#include <vector>

#include "policy/config.hpp"
#include "policy/request.hpp"
#include "policy/settings.hpp"
#include "proxy/audit/coder_sink.hpp"
#include "proxy/audit/proto/agent.pb.h"
#include "proxy/audit/proto/codec.pb.h"
#include "tests/unit/lj_test.hpp"

using lj::policy::build_settings;
using lj::policy::Inputs;
using lj::policy::parse_config;
using lj::policy::parse_request;
using lj::proxy::CoderSink;
using lj::test::describe;

namespace {

CoderSink::Log log_of(int seq, std::string url, bool allowed = true) {
    CoderSink::Log l;
    l.allowed = allowed;
    l.time = CoderSink::Clock::now();
    l.method = "GET";
    l.url = std::move(url);
    l.matched_rule = "domain=a.test";
    l.sequence = seq;
    return l;
}

CoderSink::Options options(bool envelope = false) {
    CoderSink::Options o;
    o.session_id = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
    o.confined_process_name = "claude";
    o.envelope = envelope;
    return o;
}

/// The request in one frame, checking its header.
coder::agent::v2::ReportBoundaryLogsRequest decode(const std::string& frame, bool envelope) {
    cr_assert(frame.size() >= 4, "frame of %zu bytes", frame.size());
    const auto* b = reinterpret_cast<const unsigned char*>(frame.data());
    const std::size_t len = (std::size_t{b[1]} << 16) | (std::size_t{b[2]} << 8) | b[3];
    cr_assert_eq(b[0], envelope ? 2 : 1, "tag %u", b[0]);
    cr_assert_eq(len, frame.size() - 4, "length field %zu, payload %zu", len, frame.size() - 4);
    cr_assert(len <= CoderSink::kMaxPayload, "payload of %zu bytes", len);
    if (!envelope) {
        coder::agent::v2::ReportBoundaryLogsRequest req;
        cr_assert(req.ParseFromString(frame.substr(4)));
        return req;
    }
    coder::boundarylogproxy::codec::v1::BoundaryMessage msg;
    cr_assert(msg.ParseFromString(frame.substr(4)));
    cr_assert(msg.has_logs());
    return msg.logs();
}

Inputs with_env(std::vector<std::pair<std::string, std::string>> env) {
    Inputs in;
    for (auto& [k, v] : env) {
        in.env[k] = v;
    }
    return in;
}

lj::policy::Settings build(const Inputs& in) {
    auto r = build_settings(in);
    cr_assert(r.ok(), "build_settings: %s", describe(r).c_str());
    return std::move(*r);
}

std::string build_error(const Inputs& in) {
    auto r = build_settings(in);
    cr_assert(!r.ok(), "build_settings succeeded");
    return r.error().message;
}

}  // namespace

Test(coder_frames, split_by_count_and_size_in_order) {
    std::vector<CoderSink::Log> logs;
    for (int i = 0; i < 2500; ++i) {
        logs.push_back(log_of(i, "https://a.test/" + std::string(i % 7 == 0 ? 3000 : 10, 'p')));
    }
    int next = 0;
    const auto frames = CoderSink::frames(logs, options());
    cr_assert(frames.size() >= 3, "%zu frames", frames.size());
    for (const auto& f : frames) {
        const auto req = decode(f.bytes, false);
        cr_assert(req.logs_size() <= 1000 && req.logs_size() > 0, "%d logs", req.logs_size());
        cr_assert_eq(static_cast<std::size_t>(req.logs_size()), f.logs);
        cr_assert_eq(req.session_id(), "3f2504e0-4f89-41d3-9a0c-0305e82c3301");
        cr_assert_eq(req.confined_process_name(), "claude");
        for (const auto& l : req.logs()) {
            cr_assert_eq(l.sequence_number(), next++);
        }
    }
    cr_assert_eq(next, 2500);
}

Test(coder_frames, fields_and_denied_logs_without_rule) {
    auto allowed = log_of(0, "https://a.test/p?q=1");
    auto denied = log_of(1, "https://b.test/x", false);
    denied.matched_rule = "domain=b.test";  // a deny rule: coderd would count it as allowed
    const auto frames = CoderSink::frames({allowed, denied}, options());
    cr_assert_eq(frames.size(), 1u);
    const auto req = decode(frames[0].bytes, false);
    cr_assert_eq(req.logs_size(), 2);
    const auto& a = req.logs(0);
    cr_assert(a.allowed() && a.has_http_request());
    cr_assert_eq(a.http_request().method(), "GET");
    cr_assert_eq(a.http_request().url(), "https://a.test/p?q=1");
    cr_assert_eq(a.http_request().matched_rule(), "domain=a.test");
    cr_assert(a.time().seconds() > 1700000000);
    const auto& d = req.logs(1);
    cr_assert(!d.allowed());
    cr_assert_eq(d.http_request().matched_rule(), "");
    cr_assert_eq(d.sequence_number(), 1);
}

Test(coder_frames, a_huge_url_is_cut_to_fit) {
    const auto frames =
        CoderSink::frames({log_of(0, "https://a.test/" + std::string(100000, 'u'))}, options());
    cr_assert_eq(frames.size(), 1u);
    const auto req = decode(frames[0].bytes, false);
    cr_assert(req.logs(0).http_request().url().size() < 9000);
    cr_assert(req.logs(0).http_request().url().rfind("https://a.test/uuu", 0) == 0);
}

Test(coder_frames, envelope_and_status) {
    const auto frames = CoderSink::frames({log_of(0, "https://a.test/")}, options(true));
    cr_assert_eq(decode(frames[0].bytes, true).logs_size(), 1);
    const std::string status = CoderSink::status_frame(3, 4);
    cr_assert_eq(static_cast<unsigned char>(status[0]), 2);
    coder::boundarylogproxy::codec::v1::BoundaryMessage msg;
    cr_assert(msg.ParseFromString(status.substr(4)));
    cr_assert(msg.has_status());
    cr_assert_eq(msg.status().dropped_channel_full(), 3);
    cr_assert_eq(msg.status().dropped_batch_full(), 4);
}

Test(coder_settings, socket_path_precedence) {
    auto d = build(with_env({{"TMPDIR", "/run/user/7/"}}));
    cr_assert_eq(d.coder.socket->value, "/run/user/7/boundary-audit.sock");
    cr_assert_eq(d.coder.socket->origin, "default");
    cr_assert_eq(build(Inputs{}).coder.socket->value, "/tmp/boundary-audit.sock");

    auto in = with_env({{"CODER_AGENT_BOUNDARY_LOG_PROXY_SOCKET_PATH", "/e.sock"}});
    in.file = *parse_config("log_proxy_socket_path: /f.sock\n", "c.yaml");
    cr_assert_eq(build(in).coder.socket->value, "/e.sock");
    cr_assert_eq(build(in).coder.socket->origin, "CODER_AGENT_BOUNDARY_LOG_PROXY_SOCKET_PATH");
    in.flags.log_proxy_socket_path = "/flag.sock";
    cr_assert_eq(build(in).coder.socket->origin, "--log-proxy-socket-path");
    in.flags.log_proxy_socket_path.reset();
    in.env.clear();
    cr_assert_eq(build(in).coder.socket->value, "/f.sock");
    cr_assert_eq(build(in).coder.socket->origin, "c.yaml:1:24");

    in.flags.disable_audit_logs = true;  // the forwarding only: the trail is kept
    cr_assert(!build(in).coder.socket.has_value());

    Inputs rel;
    rel.flags.log_proxy_socket_path = "agent.sock";
    cr_assert(build_error(rel).find("--log-proxy-socket-path: ") == 0, "%s",
              build_error(rel).c_str());
}

Test(coder_settings, correlation_targets) {
    Inputs none;
    none.flags.enable_session_correlation = true;
    const std::string e = build_error(none);
    cr_assert(e.find("--enable-session-correlation: ") == 0 && e.find("CODER_AGENT_URL") != e.npos,
              "%s", e.c_str());

    auto in = with_env({{"BOUNDARY_SESSION_CORRELATION_ENABLED", "TRUE"},
                        {"CODER_AGENT_URL", "https://coder.example.com/"}});
    const auto s = build(in);
    cr_assert(s.correlation.enabled.value);
    cr_assert_eq(s.correlation.targets.size(), 2u);
    cr_assert_eq(s.correlation.targets[0].text, "domain=coder.example.com path=/api/v2/aibridge/*");
    const auto yes = parse_request("POST", "https://coder.example.com/api/v2/ai-gateway/v1/x");
    const auto no = parse_request("POST", "https://coder.example.com/api/v2/users");
    cr_assert(s.correlation.engine->evaluate(*yes).allowed);
    cr_assert(!s.correlation.engine->evaluate(*no).allowed);
    cr_assert_eq(s.correlation.session_header.value, "X-Coder-Agent-Firewall-Session-Id");

    Inputs t;
    t.flags.enable_session_correlation = true;
    t.flags.session_id_inject_targets = {"domain=gw.test method=GET path=/v1/*"};
    const auto st = build(t);
    const auto post = parse_request("POST", "https://gw.test/v1/messages");
    cr_assert(st.correlation.engine->evaluate(*post).allowed, "the method is ignored");

    Inputs bad;
    bad.file = *parse_config(
        "session_correlation_enabled: true\nsession_id_header_name: 'a b'\n"
        "session_id_inject_targets: ['domain=x.test']\n",
        "c.yaml");
    cr_assert(build_error(bad).find("c.yaml:2:") == 0, "%s", build_error(bad).c_str());
}

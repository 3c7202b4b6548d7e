// SPDX-License-Identifier: Apache-2.0
// The test worker (beast::test::stream, a fake upstream pool) and the session's one
// instantiation for it; see session_harness.hpp.
#include "tests/unit/session_harness.hpp"

#include <unistd.h>

#include <cstdio>
#include <exception>
#include <fstream>
#include <list>
#include <memory>
#include <utility>

#include <boost/beast/_experimental/test/stream.hpp>

#include "policy/engine.hpp"
#include "policy/rule.hpp"
#include "proxy/audit/auditor.hpp"
#include "proxy/session/connection.hpp"
#include "proxy/session/loop.hpp"
#include "proxy/session/session.hpp"
#include "tests/unit/lj_test.hpp"

namespace lj::test {
namespace {

using proxy::awaitable;
using TestStream = boost::beast::test::stream;
namespace asio = boost::asio;

/// The upstream pool of the test worker: every connection is a new test stream pair whose
/// origin side answers as the case says.
struct FakeUpstream {
    FakeUpstream(asio::io_context& context, const SessionCase& sc,
                 boost::beast::test::fail_count* count)
        : io(context), c(sc), fc(count) {}

    asio::io_context& io;
    const SessionCase& c;
    boost::beast::test::fail_count* fc;
    std::vector<std::unique_ptr<TestStream>> origins;  ///< the origin's side of each
    std::vector<std::unique_ptr<TestStream>> pool;     ///< connections given back
    std::size_t made = 0;

    std::unique_ptr<TestStream> open(proxy::UpstreamFailure& failure) {
        if (c.upstream_failure) {
            failure = *c.upstream_failure;
            return nullptr;
        }
        auto up = fc ? std::make_unique<TestStream>(io, *fc) : std::make_unique<TestStream>(io);
        auto origin = std::make_unique<TestStream>(io);
        up->connect(*origin);
        const OriginReply reply = made < c.origins.size() ? c.origins[made] : OriginReply{};
        ++made;
        up->append(reply.bytes);
        if (reply.close) {
            origin->close();
        }
        origins.push_back(std::move(origin));
        return up;
    }

    awaitable<std::unique_ptr<TestStream>> acquire(const std::string&, const policy::Host&,
                                                   std::uint16_t, proxy::UpstreamFailure& failure,
                                                   bool& reused) {
        reused = false;
        co_return open(failure);
    }
    void release(const std::string&, const policy::Host&, std::uint16_t,
                 std::unique_ptr<TestStream> stream) {
        pool.push_back(std::move(stream));
    }
    awaitable<std::unique_ptr<TestStream>> connect_tcp(const policy::Host&, std::uint16_t,
                                                       proxy::UpstreamFailure& failure) {
        co_return open(failure);
    }
};

/// The worker the session runs on in the tests (see proxy/session/connection.hpp).
struct TestWorker {
    using Stream = TestStream;
    asio::io_context io{1};
    const proxy::ProxyShared* shared = nullptr;
    std::unique_ptr<FakeUpstream> upstream;
    std::list<proxy::Connection<TestWorker>*> sessions;
    bool draining = false;
};

std::vector<policy::Rule> rules(const std::vector<std::string>& texts) {
    std::vector<policy::Rule> out;
    for (const std::string& t : texts) {
        auto r = policy::parse_rule(t, "test");
        cr_assert(r.ok(), "rule %s: %s", t.c_str(), describe(r).c_str());
        out.push_back(std::move(*r));
    }
    return out;
}

std::vector<policy::HostPattern> patterns(const std::vector<std::string>& names) {
    std::vector<policy::HostPattern> out;
    for (const policy::Rule& r : rules([&] {
             std::vector<std::string> texts;
             for (const std::string& n : names) {
                 texts.push_back("domain=" + n);
             }
             return texts;
         }())) {
        out.push_back(*r.host);
    }
    return out;
}

/// Makes `a` refuse (audit.required, its socket unreachable): records one event, which the
/// socket cannot take, and waits (up to 10 s) for the writer to say so. Returns whether it
/// did; the event is the trail's first line.
bool make_refusing(proxy::Auditor& a) {
    proxy::AuditEvent e;
    e.http_method = "SETUP";
    a.record(e);
    for (int i = 0; i < 1000 && !a.must_refuse(); ++i) {
        ::usleep(10000);
    }
    return a.must_refuse();
}

/// An auditor writing to a fresh file; the path is returned in `file`.
std::unique_ptr<proxy::Auditor> file_auditor(const SessionCase& c, std::string& file) {
    char dir[] = "/tmp/lj-session-XXXXXX";
    cr_assert(::mkdtemp(dir) != nullptr, "mkdtemp failed");
    file = std::string(dir) + "/audit.jsonl";
    proxy::Auditor::Options o;
    o.file = file;
    o.stderr_denials = false;
    o.session_id = "unit";
    o.sequence_numbers = !c.correlation.empty();
    if (c.audit_refusing) {
        o.socket = std::string(dir) + "/nobody-listens.sock";
        o.required = true;
    }
    auto a = proxy::Auditor::start(std::move(o));
    cr_assert(a.ok(), "auditor: %s", describe(a).c_str());
    cr_assert(!c.audit_refusing || make_refusing(**a), "the auditor does not refuse");
    return std::move(*a);
}

/// Stops the auditor and returns its events; removes the file and its directory.
std::vector<nlohmann::json> trail(proxy::Auditor& auditor, const std::string& file) {
    auditor.stop();
    std::vector<nlohmann::json> events;
    std::ifstream in(file);
    for (std::string line; std::getline(in, line);) {
        events.push_back(nlohmann::json::parse(line));
    }
    std::remove(file.c_str());
    ::rmdir(file.substr(0, file.rfind('/')).c_str());
    return events;
}

/// Runs the connection on `w` to its end; what escaped it goes to `r`.
void serve(TestWorker& w, TestStream client, SessionResult& r) {
    asio::co_spawn(
        w.io,
        [&w, &r, client = std::move(client)]() mutable -> awaitable<void> {
            co_await proxy::serve_connection(w, std::move(client), 4242);
            r.finished = true;
        },
        [&r](std::exception_ptr e) {
            if (!e) {
                return;
            }
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& x) {
                r.exception = x.what();
            } catch (...) {
                r.exception = "unknown exception";
            }
        });
    w.io.run();
}

}  // namespace

SessionResult run_session(const SessionCase& c) {
    std::string file;
    auto auditor = file_auditor(c, file);
    proxy::ProxyShared shared;
    shared.engine = std::make_shared<const policy::Engine>(rules(c.allow), rules(c.deny));
    shared.passthrough = patterns(c.passthrough);
    shared.timeouts = {c.header_timeout, c.idle_timeout, c.upstream_timeout};
    shared.auditor = auditor.get();
    shared.intercept_denied = c.intercept_denied;
    if (!c.correlation.empty()) {
        std::vector<policy::Rule> targets = rules(c.correlation);
        for (policy::Rule& t : targets) {
            t.methods.clear();  // as policy::apply_coder_settings: a target ignores the method
        }
        shared.correlation =
            std::make_shared<const policy::Engine>(std::move(targets), std::vector<policy::Rule>{});
    }
    std::optional<boost::beast::test::fail_count> fc;
    if (c.fail_after) {
        fc.emplace(*c.fail_after, c.fail_with);
    }
    SessionResult r;
    {
        TestWorker w;
        w.shared = &shared;
        w.upstream = std::make_unique<FakeUpstream>(w.io, c, fc ? &*fc : nullptr);
        TestStream client = fc ? TestStream(w.io, *fc) : TestStream(w.io);
        TestStream peer(w.io);
        client.connect(peer);
        client.append(c.client);
        if (c.client_eof) {
            peer.close();
        }
        serve(w, std::move(client), r);
        r.to_client = std::string(peer.str());
        for (const auto& origin : w.upstream->origins) {
            r.to_origins.emplace_back(origin->str());
        }
        r.pooled = w.upstream->pool.size();
        r.live_sessions = w.sessions.size();
    }
    for (auto& e : trail(*auditor, file)) {
        // Not the session's: make_refusing()'s event, and the socket's audit_dropped notices.
        if (e.value("event", "") == "http_request" && e.value("http_method", "") != "SETUP") {
            r.events.push_back(std::move(e));
        }
    }
    return r;
}

namespace {

template <class Parser>
bool parse_into(Parser& p, const std::string& bytes) {
    p.eager(true);
    proxy::error_code ec;
    std::size_t used = 0;
    while (!ec && !p.is_done() && used < bytes.size()) {
        const std::size_t n =
            p.put(boost::asio::buffer(bytes.data() + used, bytes.size() - used), ec);
        if (n == 0 && !ec) {
            break;
        }
        used += n;
    }
    if (ec == proxy::http::error::need_more) {
        ec = {};
    }
    if (!ec && !p.is_done()) {
        p.put_eof(ec);
    }
    return !ec && p.is_done();
}

}  // namespace

std::optional<proxy::http::request<proxy::http::string_body>> parse_request(
    const std::string& bytes) {
    proxy::http::request_parser<proxy::http::string_body> p;
    if (!parse_into(p, bytes)) {
        return std::nullopt;
    }
    return p.release();
}

std::optional<proxy::http::response<proxy::http::string_body>> parse_response(
    const std::string& bytes) {
    proxy::http::response_parser<proxy::http::string_body> p;
    if (!parse_into(p, bytes)) {
        return std::nullopt;
    }
    return p.release();
}

std::string field(const nlohmann::json& event, const char* key) {
    const auto it = event.find(key);
    if (it == event.end() || it->is_null()) {
        return "";
    }
    return it->is_string() ? it->get<std::string>() : it->dump();
}

}  // namespace lj::test

// SPDX-License-Identifier: Apache-2.0
// Internal to the session_*.cpp files: the Session class behind serve_client(). Its members
// are defined by concern: session.cpp (lifetime, watchdog, request loop), session_http.cpp
// (plain requests: policy check and forwarding to the origin), session_connect.cpp (CONNECT:
// TLS interception and passthrough tunnels), session_relay.cpp (moving bodies and tunnel
// bytes) and session_respond.cpp (the proxy's own responses and the audit records).
//
// Thread-safety: a Session belongs to its Worker's io_context thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "policy/engine.hpp"
#include "policy/request.hpp"
#include "policy/result.hpp"
#include "proxy/audit/auditor.hpp"
#include "proxy/net.hpp"
#include "proxy/session/request_head.hpp"
#include "proxy/session/session.hpp"
#include "proxy/session/upstream.hpp"
#include "proxy/tls/stream.hpp"

namespace lj::proxy {

class Session {
  public:
    Session(tcp::socket socket, Worker& worker);
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    awaitable<void> run();

    /// Shutdown grace period over: close both sides now.
    void abort() {
        client_.close();
        if (upstream_) {
            upstream_->close();
        }
    }

    /// Shutdown: close now if waiting for a request; otherwise finish the current one.
    void drain() {
        if (waiting_for_request_) {
            client_.close();
        }
    }

  private:
    static constexpr std::size_t kHeaderLimit = 64 * 1024;
    static constexpr std::size_t kChunk = 16 * 1024;  ///< tunnel (splice) reads
    static constexpr std::size_t kRelayChunk =
        64 * 1024;  ///< body relay buffer, allocated per body
    static constexpr std::size_t kSpliceMin =
        256 * 1024;  ///< plain bodies this large use splice(2)

    using Clock = std::chrono::steady_clock;
    using Request = http::request<http::buffer_body>;
    using Response = http::response<http::buffer_body>;

    using Origin = TunnelOrigin;

    /// What a request handler tells the connection loop.
    enum class Next { KeepAlive, Close };

    enum class Phase { Request, Upstream, Relay };

    /// How a relay of one message ended: `ec` is empty when the message moved whole.
    struct RelayEnd {
        error_code ec;
        bool complete = false;     ///< the whole message moved
        bool read_side = false;    ///< the error came from the stream read (else: written)
        bool header_sent = false;  ///< the head reached the stream written
    };

    /// The audit record of one forwarded request, written exactly once, when the exchange
    /// ends, on whatever path it ends (the destructor writes it if nothing did before):
    /// `status` is what the client got (unset: no response reached it), `outcome` how the
    /// exchange ended when it did not end normally (the first cause is kept).
    class Exchange {
      public:
        Exchange(Session& session, const policy::Request& request, const policy::Decision& decision)
            : session_(session), request_(request), decision_(decision) {}
        ~Exchange() { record(); }
        Exchange(const Exchange&) = delete;
        Exchange& operator=(const Exchange&) = delete;

        void status(std::optional<int> code) { status_ = code; }
        void end(std::string_view outcome) {
            if (outcome_.empty()) {
                outcome_ = std::string(outcome);
            }
        }
        void record();

      private:
        Session& session_;
        const policy::Request& request_;
        const policy::Decision& decision_;
        std::optional<int> status_;
        std::string outcome_;
        bool recorded_ = false;
    };

    // ---- watchdog: one timer per session, re-armed by moving a deadline (no syscall) ----
    /// Shared with the watchdog coroutine, which may run once more after the session ends.
    struct Watch {
        asio::steady_timer timer;
        Clock::time_point deadline = Clock::time_point::max();
        Session* owner = nullptr;  ///< cleared when the session ends
        explicit Watch(asio::io_context& io) : timer(io, Clock::time_point::max()) {}
    };
    void arm(Phase phase, std::chrono::milliseconds timeout) {
        phase_ = phase;
        timed_out_ = false;
        extend(timeout);
    }
    void extend(std::chrono::milliseconds timeout) {
        watch_->deadline = Clock::now() + timeout;
        if (watch_->deadline < watch_->timer.expiry()) {
            watch_->timer.expires_at(watch_->deadline);  // wakes the watchdog to wait less
        }
    }
    static awaitable<void> watchdog(std::shared_ptr<Watch> watch);
    void on_timeout();

    // ---- request loop (session.cpp) ----
    awaitable<void> serve(const Origin* origin);

    // ---- plain requests (session_http.cpp) ----
    awaitable<Next> handle(http::request_parser<http::buffer_body>& parser, const Origin* origin);
    awaitable<Next> forward(http::request_parser<http::buffer_body>& parser,
                            const policy::Request& preq, const policy::Decision& decision);
    /// The request's body failed to reach the origin (`r`): the exchange's outcome, and a
    /// 400 (bad chunk) or 502 (the origin went away) when the client can still read one.
    awaitable<void> request_body_failed(Exchange& x, const RelayEnd& r,
                                        const policy::Request& preq);
    /// The response's head did not arrive: 504 on timeout, else 502; the client gone while
    /// 1xx responses were relayed (asio::error::shut_down) ends the exchange without one.
    awaitable<void> response_failed(Exchange& x, const error_code& ec, const policy::Request& preq);
    awaitable<std::unique_ptr<http::response_parser<http::buffer_body>>> read_response(
        Stream& up, beast::flat_buffer& up_buf, bool head, error_code& ec);
    /// After a 101 to a WebSocket upgrade: the head to the client, then bytes both ways.
    awaitable<void> relay_upgrade(Response& res, Stream& up, beast::flat_buffer& up_buf);
    /// The response's head and body to the client; `up` goes back to the pool when reusable.
    awaitable<Next> relay_response(Exchange& x, const policy::Request& preq,
                                   http::response_parser<http::buffer_body>& rp,
                                   std::unique_ptr<Stream>& up, beast::flat_buffer& up_buf,
                                   bool client_keep);
    /// The outcome name for a relay that failed (`client`: the client was the side read).
    std::string_view outcome_of(const RelayEnd& r, bool client_read) const;

    // ---- CONNECT (session_connect.cpp) ----
    awaitable<void> handle_connect(const Request& req);
    awaitable<void> intercept(const policy::Host& host, std::uint16_t port);
    awaitable<void> passthrough(const policy::Host& host, std::uint16_t port);

    // ---- moving bytes (session_relay.cpp) ----
    bool spliceable(Stream& up, const http::response_parser<http::buffer_body>& rp);
    awaitable<RelayEnd> splice_body(Stream& up, beast::flat_buffer& up_buf,
                                    http::response_parser<http::buffer_body>& rp, Stream& to);
    awaitable<error_code> drain_pipe(int pipe_r, std::size_t n, Stream& to);
    template <bool isRequest>
    awaitable<error_code> write_header(Stream& to,
                                       http::serializer<isRequest, http::buffer_body>& sr,
                                       http::message<isRequest, http::buffer_body>& msg);
    /// Instantiated for both directions in session_relay.cpp.
    template <bool isRequest>
    awaitable<RelayEnd> relay(Stream& from, beast::flat_buffer& from_buf,
                              http::parser<isRequest, http::buffer_body>& parser, Stream& to);
    awaitable<void> splice(Stream& a, beast::flat_buffer& a_buf, Stream& b,
                           beast::flat_buffer& b_buf);
    awaitable<void> pump(Stream& from, Stream& to, bool& done);

    // ---- responses and audit (session_respond.cpp) ----
    /// A response of our own (errors, 403, 100 Continue); no body for a HEAD request. False
    /// when it could not be written (the client is gone).
    awaitable<bool> respond(http::status status, const std::string& body, bool keep_alive,
                            bool deny = false);
    /// The 504 (`f.timed_out`) or 502 for an upstream that failed at `f.step`; the status
    /// and outcome go to the exchange's audit record.
    awaitable<void> respond_upstream_failure(Exchange& x, const std::string& target,
                                             const UpstreamFailure& f, bool keep_alive);
    /// audit.required and the trail cannot be written now: allowed requests get a 503.
    bool audit_unavailable() const { return shared_.auditor && shared_.auditor->must_refuse(); }
    static constexpr const char* kAuditUnavailableBody =
        "landjail: the audit trail cannot be written (audit.required): the request was not "
        "forwarded\n";
    /// Records one audit event now. `status`: what the client got (unset: nothing);
    /// `outcome`: how the exchange ended when not normally ("" otherwise).
    void audit(const std::string& method, const std::string& url, const std::string& host,
               const policy::Decision& d, std::string reason, std::optional<int> status,
               std::string outcome = {});
    std::string deny_body(const policy::Request& r, const policy::Decision& d) const;
    static std::string connect_deny_body(const std::string& target, const policy::Host& host,
                                         const policy::Decision& d);
    static std::string status_step_body(const std::string& target, const UpstreamFailure& f);

    std::uint16_t client_port_;          ///< the client's port (attribution)
    std::optional<ClientMap::Who> who_;  ///< the jailed process behind it, if known
    Stream client_;
    beast::flat_buffer client_buf_;
    Worker& worker_;
    const ProxyShared& shared_;
    std::list<Session*>::iterator self_;
    std::shared_ptr<Watch> watch_;
    Phase phase_ = Phase::Request;
    bool timed_out_ = false;
    bool waiting_for_request_ = false;
    bool head_request_ = false;   ///< the request being answered is HEAD
    Stream* upstream_ = nullptr;  ///< the upstream stream in use, for the watchdog
};

}  // namespace lj::proxy

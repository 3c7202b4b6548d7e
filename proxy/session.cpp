// SPDX-License-Identifier: Apache-2.0
#include "proxy/session.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <limits>
#include <optional>
#include <string>

#include <spdlog/spdlog.h>

#include "policy/request.hpp"
#include "policy/text.hpp"
#include "proxy/http_rules.hpp"
#include "proxy/raii.hpp"

namespace lj::proxy {
namespace {

constexpr std::size_t kHeaderLimit = 64 * 1024;
constexpr std::size_t kChunk = 16 * 1024;       ///< tunnel (splice) reads
constexpr std::size_t kRelayChunk = 64 * 1024;  ///< body relay buffer, allocated per body
constexpr std::size_t kSpliceMin = 256 * 1024;  ///< plain bodies this large use splice(2)

using Clock = std::chrono::steady_clock;
using Request = http::request<http::buffer_body>;
using Response = http::response<http::buffer_body>;

/// Where requests inside a CONNECT tunnel must go.
struct Origin {
    std::string scheme;  ///< "https" (intercepted) or "http" (plain HTTP in the tunnel)
    policy::Host host;
    std::uint16_t port = 0;
    bool misdirected = false;  ///< the TLS SNI named another host
};

/// What a request handler tells the connection loop.
enum class Next { KeepAlive, Close };

std::string status_step_body(const std::string& target, const UpstreamFailure& f) {
    return "landjail: could not reach " + target + "\n\nstep:   " + f.step +
           "\nerror:  " + f.detail + "\n";
}

}  // namespace

std::uint16_t client_port_of(const tcp::socket& socket) {
    error_code ec;
    const auto ep = socket.remote_endpoint(ec);
    return ec ? 0 : ep.port();
}

class Session {
  public:
    Session(tcp::socket socket, Worker& worker)
        : client_port_(client_port_of(socket)),
          client_(std::move(socket)),
          worker_(worker),
          shared_(*worker.shared),
          watch_(std::make_shared<Watch>(worker.io)) {
        watch_->owner = this;
        worker_.sessions.push_back(this);
        self_ = std::prev(worker_.sessions.end());
    }
    ~Session() {
        watch_->owner = nullptr;
        watch_->timer.cancel();
        worker_.sessions.erase(self_);
    }
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
    enum class Phase { Request, Upstream, Relay };

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

    // ---- request handling ----
    awaitable<void> serve(const Origin* origin);
    awaitable<Next> handle(http::request_parser<http::buffer_body>& parser, const Origin* origin);
    awaitable<void> handle_connect(const Request& req);
    awaitable<void> intercept(const policy::Host& host, std::uint16_t port);
    awaitable<void> passthrough(const policy::Host& host, std::uint16_t port);
    Result<policy::Request> to_policy_request(const Request& req, const Origin* origin,
                                              int& status);
    awaitable<Next> forward(http::request_parser<http::buffer_body>& parser,
                            const policy::Request& preq, const policy::Decision& decision);
    awaitable<std::unique_ptr<http::response_parser<http::buffer_body>>> read_response(
        Stream& up, beast::flat_buffer& up_buf, bool head, error_code& ec);
    bool spliceable(Stream& up, const http::response_parser<http::buffer_body>& rp);
    awaitable<error_code> splice_body(Stream& up, beast::flat_buffer& up_buf,
                                      http::response_parser<http::buffer_body>& rp, Stream& to);
    awaitable<error_code> drain_pipe(int pipe_r, std::size_t n, Stream& to);
    template <bool isRequest>
    awaitable<error_code> write_header(Stream& to,
                                       http::serializer<isRequest, http::buffer_body>& sr,
                                       http::message<isRequest, http::buffer_body>& msg);
    template <bool isRequest>
    awaitable<error_code> relay(Stream& from, beast::flat_buffer& from_buf,
                                http::parser<isRequest, http::buffer_body>& parser, Stream& to);
    awaitable<void> splice(Stream& a, beast::flat_buffer& a_buf, Stream& b,
                           beast::flat_buffer& b_buf);
    awaitable<void> pump(Stream& from, Stream& to, bool& done);

    // ---- responses and audit ----
    /// A response of our own (errors, 403, 100 Continue); no body for a HEAD request.
    awaitable<void> respond(http::status status, const std::string& body, bool keep_alive,
                            bool deny = false);
    void audit(const std::string& method, const std::string& url, const std::string& host,
               const policy::Decision& d, std::string reason, int status);
    std::string deny_body(const policy::Request& r, const policy::Decision& d) const;

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

void Worker::abort_all() {
    const std::list<Session*> copy = sessions;
    for (Session* s : copy) {
        s->abort();
    }
}

void Worker::drain() {
    draining = true;
    const std::list<Session*> copy = sessions;  // drain() may end sessions
    for (Session* s : copy) {
        s->drain();
    }
}

awaitable<void> Session::watchdog(std::shared_ptr<Watch> watch) {
    while (watch->owner) {
        watch->timer.expires_at(watch->deadline);
        error_code ec;
        co_await watch->timer.async_wait(asio::redirect_error(use_awaitable, ec));
        if (watch->owner && Clock::now() >= watch->deadline) {
            watch->deadline = Clock::time_point::max();
            watch->owner->on_timeout();
        }
    }
}

void Session::on_timeout() {
    timed_out_ = true;
    if (phase_ == Phase::Upstream) {
        // The client gets a 504. While connecting, Upstream's own deadline does the closing.
        if (upstream_) {
            upstream_->close();
        }
        return;
    }
    client_.close();
    if (upstream_) {
        upstream_->close();
    }
}

awaitable<void> Session::run() {
    asio::co_spawn(worker_.io, watchdog(watch_), asio::detached);
    error_code ec;
    client_.socket().set_option(tcp::no_delay(true), ec);
    co_await serve(nullptr);
    client_.close();
}

/// The request loop of a connection: on the listener (origin == null: absolute-form
/// requests and CONNECT) or inside a tunnel (origin-form requests for `origin`).
awaitable<void> Session::serve(const Origin* origin) {
    for (;;) {
        if (worker_.draining) {
            co_return;
        }
        http::request_parser<http::buffer_body> parser;
        parser.header_limit(kHeaderLimit);
        parser.body_limit(std::numeric_limits<std::uint64_t>::max());
        arm(Phase::Request, shared_.timeouts.header);
        waiting_for_request_ = true;
        error_code ec;
        co_await http::async_read_header(client_, client_buf_, parser,
                                         asio::redirect_error(use_awaitable, ec));
        waiting_for_request_ = false;
        if (ec == http::error::header_limit) {
            audit("", "", "", {}, "header_too_large", 431);
            const std::string body = "landjail: request headers larger than 64 KiB\n";
            co_await respond(http::status::request_header_fields_too_large, body, false);
            co_return;
        }
        if (ec) {
            const bool quiet = ec == http::error::end_of_stream || ec == asio::error::eof ||
                               ec == asio::error::operation_aborted || timed_out_ ||
                               ec == asio::error::connection_reset ||
                               ec == asio::error::bad_descriptor;
            if (!quiet) {
                audit("", "", "", {}, "bad_request", 400);
                const std::string body = "landjail: malformed request: " + ec.message() + "\n";
                co_await respond(http::status::bad_request, body, false);
            }
            co_return;
        }
        head_request_ = parser.get().method() == http::verb::head;
        if (!origin && parser.get().method() == http::verb::connect) {
            co_await handle_connect(parser.get());
            co_return;
        }
        if (co_await handle(parser, origin) == Next::Close) {
            co_return;
        }
    }
}

Result<policy::Request> Session::to_policy_request(const Request& req, const Origin* origin,
                                                   int& status) {
    const std::string method(req.method_string());
    const std::string target(req.target());
    status = 400;
    Result<policy::Request> r = make_error("");
    if (!target.empty() && target.front() == '/') {
        if (!origin) {
            return make_error(
                "landjail-proxy is a forward proxy: send the absolute URL "
                "(http://host/path) or use CONNECT");
        }
        r = policy::parse_origin_request(method, origin->scheme, origin->host, origin->port,
                                         target);
    } else {
        r = policy::parse_request(method, target);
    }
    if (!r) {
        return r;
    }
    const std::uint16_t dport = policy::default_port(r->scheme);
    if (origin && (r->host != origin->host || r->port != origin->port)) {
        status = 421;
        return make_error("the request names " + r->host.authority() + " inside a tunnel to " +
                          origin->host.authority());
    }
    auto host_field = req.find(http::field::host);
    if (host_field == req.end()) {
        if (origin) {
            return make_error("missing Host header");
        }
        return r;
    }
    auto hp = policy::parse_host_port(policy::trim(host_field->value()), dport);
    if (!hp || hp->host != r->host || hp->port != r->port) {
        status = origin ? 421 : 400;
        return make_error("Host header '" + policy::printable(host_field->value()) +
                          "' does not match " + r->host.authority());
    }
    if (origin && origin->misdirected) {
        status = 421;
        return make_error("the TLS server name (SNI) does not match the CONNECT host " +
                          origin->host.authority());
    }
    return r;
}

awaitable<Next> Session::handle(http::request_parser<http::buffer_body>& parser,
                                const Origin* origin) {
    const Request& req = parser.get();
    const bool has_body = !parser.is_done();
    const bool keep = req.keep_alive() && !has_body && !worker_.draining;
    if (std::string why = framing_problem(req); !why.empty()) {
        audit(std::string(req.method_string()), std::string(req.target()), "", {}, "bad_request",
              400);
        const std::string body = "landjail: bad request: " + why + "\n";
        co_await respond(http::status::bad_request, body, false);
        co_return Next::Close;
    }
    int status = 400;
    auto preq = to_policy_request(req, origin, status);
    if (!preq) {
        const bool misdirected = status == 421;
        audit(std::string(req.method_string()), std::string(req.target()), "", {},
              misdirected ? "misdirected" : "bad_request", status);
        const std::string body = "landjail: " + preq.error().message + "\n";
        const auto st = misdirected ? http::status::misdirected_request : http::status::bad_request;
        co_await respond(st, body, keep);
        co_return keep ? Next::KeepAlive : Next::Close;
    }
    const policy::Decision d = shared_.engine->evaluate(*preq);
    if (!d.allowed) {
        audit(preq->method, preq->url(), preq->host.text, d, {}, 403);
        const std::string body = deny_body(*preq, d);
        co_await respond(http::status::forbidden, body, keep, true);
        co_return keep ? Next::KeepAlive : Next::Close;
    }
    co_return co_await forward(parser, *preq, d);
}

awaitable<Next> Session::forward(http::request_parser<http::buffer_body>& parser,
                                 const policy::Request& preq, const policy::Decision& d) {
    Request& req = parser.get();
    const bool client_keep = req.keep_alive() && !worker_.draining;
    const bool websocket = is_websocket_upgrade(req);
    if (iequals(req[http::field::expect], "100-continue") && !parser.is_done()) {
        // Answer the client ourselves: the upstream never sees Expect, so no one waits.
        req.erase(http::field::expect);
        const std::string none;
        co_await respond(http::status::continue_, none, true);
    }
    UpstreamFailure failure;
    bool reused = false;
    arm(Phase::Upstream, shared_.timeouts.upstream);
    std::unique_ptr<Stream> up =
        co_await worker_.upstream->acquire(preq.scheme, preq.host, preq.port, failure, reused);
    if (!up) {
        const auto st =
            failure.timed_out ? http::status::gateway_timeout : http::status::bad_gateway;
        audit(preq.method, preq.url(), preq.host.text, d, {}, static_cast<int>(st));
        const std::string body =
            status_step_body(preq.host.authority() + ":" + std::to_string(preq.port), failure);
        co_await respond(st, body, client_keep && parser.is_done());
        co_return client_keep&& parser.is_done() ? Next::KeepAlive : Next::Close;
    }
    upstream_ = up.get();

    // The request as forwarded: origin-form target (the normalized path that was matched),
    // canonical Host, no hop-by-hop fields, keep-alive towards the origin.
    req.target(preq.path + (preq.has_query ? "?" + preq.query : std::string()));
    strip_hop_by_hop(req, websocket);
    req.set(http::field::host, preq.port == policy::default_port(preq.scheme)
                                   ? preq.host.authority()
                                   : preq.host.authority() + ":" + std::to_string(preq.port));
    if (websocket) {
        req.set(http::field::connection, "Upgrade");
    } else {
        req.keep_alive(true);
    }
    arm(Phase::Relay, shared_.timeouts.idle);
    error_code ec = co_await relay<true>(client_, client_buf_, parser, *up);
    if (ec) {
        upstream_ = nullptr;
        const bool client_side = !parser.is_done();
        if (!client_side) {
            audit(preq.method, preq.url(), preq.host.text, d, {}, 502);
            const UpstreamFailure f{"send", ec.message()};
            const std::string body = status_step_body(preq.host.authority(), f);
            co_await respond(http::status::bad_gateway, body, false);
        }
        co_return Next::Close;
    }

    beast::flat_buffer up_buf;
    auto rp = co_await read_response(*up, up_buf, req.method() == http::verb::head, ec);
    if (!rp) {
        upstream_ = nullptr;
        if (ec == asio::error::shut_down) {
            co_return Next::Close;  // the client went away while 1xx responses were relayed
        }
        const bool timeout = timed_out_;
        const auto st = timeout ? http::status::gateway_timeout : http::status::bad_gateway;
        audit(preq.method, preq.url(), preq.host.text, d, {}, static_cast<int>(st));
        const UpstreamFailure f{
            "response", timeout ? "timed out waiting for the response headers" : ec.message()};
        const std::string body = status_step_body(preq.host.authority(), f);
        co_await respond(st, body, false);
        co_return Next::Close;
    }
    Response& res = rp->get();
    const int code = static_cast<int>(res.result_int());
    audit(preq.method, preq.url(), preq.host.text, d, {}, code);

    if (code == 101 && websocket) {
        strip_hop_by_hop(res, true);
        res.set(http::field::connection, "Upgrade");
        http::response<http::empty_body> head{res.result(), 11};
        for (const auto& f : res) {
            head.set(f.name_string(), f.value());
        }
        co_await http::async_write(client_, head, asio::redirect_error(use_awaitable, ec));
        if (!ec) {
            co_await splice(client_, client_buf_, *up, up_buf);
        }
        upstream_ = nullptr;
        co_return Next::Close;
    }

    const bool upstream_keep = res.keep_alive();
    strip_hop_by_hop(res, false);
    const bool body_expected = !rp->is_done();
    if (body_expected && !res.chunked() && !res.has_content_length()) {
        res.chunked(true);  // the origin ends the body by closing: frame it for the client
    }
    res.keep_alive(client_keep);
    arm(Phase::Relay, shared_.timeouts.idle);
    bool complete = false;
    if (spliceable(*up, *rp)) {
        ec = co_await splice_body(*up, up_buf, *rp, client_);
        complete = !ec;
    } else {
        ec = co_await relay<false>(*up, up_buf, *rp, client_);
        complete = !ec && rp->is_done();
    }
    upstream_ = nullptr;
    if (complete && upstream_keep && up_buf.size() == 0) {
        worker_.upstream->release(preq.scheme, preq.host, preq.port, std::move(up));
    }
    co_return !ec && client_keep ? Next::KeepAlive : Next::Close;
}

/// A large plain-HTTP body of known length between two plain sockets moves with splice(2)
/// through a pipe, without being copied through user space.
bool Session::spliceable(Stream& up, const http::response_parser<http::buffer_body>& rp) {
    const auto& res = rp.get();
    return !up.is_tls() && !client_.is_tls() && !rp.is_done() && !res.chunked() &&
           rp.content_length_remaining() && *rp.content_length_remaining() >= kSpliceMin;
}

awaitable<error_code> Session::splice_body(Stream& up, beast::flat_buffer& up_buf,
                                           http::response_parser<http::buffer_body>& rp,
                                           Stream& to) {
    auto& res = rp.get();
    std::uint64_t remaining = *rp.content_length_remaining();
    http::serializer<false, http::buffer_body> sr{res};
    error_code ec = co_await write_header(to, sr, res);
    const std::size_t buffered =
        static_cast<std::size_t>(std::min<std::uint64_t>(up_buf.size(), remaining));
    if (!ec && buffered) {  // body bytes read together with the headers
        co_await asio::async_write(to, beast::buffers_prefix(buffered, up_buf.data()),
                                   asio::redirect_error(use_awaitable, ec));
        up_buf.consume(buffered);
        remaining -= buffered;
    }
    int fds[2];
    if (ec || ::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        co_return ec ? ec : error_code(errno, boost::system::system_category());
    }
    const UniqueFd pipe_r(fds[0]), pipe_w(fds[1]);
    ::fcntl(pipe_w.get(), F_SETPIPE_SZ, static_cast<int>(kSpliceMin));  // best effort
    up.socket().non_blocking(true, ec);
    to.socket().non_blocking(true, ec);
    ec = {};
    while (!ec && remaining > 0) {
        const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(remaining, kSpliceMin));
        const ssize_t n = ::splice(up.socket().native_handle(), nullptr, pipe_w.get(), nullptr,
                                   want, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n == 0) {
            ec = http::error::partial_message;  // the origin closed early
        } else if (n < 0 && errno == EAGAIN) {
            co_await up.socket().async_wait(tcp::socket::wait_read,
                                            asio::redirect_error(use_awaitable, ec));
        } else if (n < 0) {
            ec = error_code(errno, boost::system::system_category());
        } else {
            remaining -= static_cast<std::uint64_t>(n);
            ec = co_await drain_pipe(pipe_r.get(), static_cast<std::size_t>(n), to);
            extend(shared_.timeouts.idle);
        }
    }
    co_return ec;
}

/// Moves `n` bytes from the pipe to the socket.
awaitable<error_code> Session::drain_pipe(int pipe_r, std::size_t n, Stream& to) {
    error_code ec;
    while (!ec && n > 0) {
        const ssize_t m = ::splice(pipe_r, nullptr, to.socket().native_handle(), nullptr, n,
                                   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (m < 0 && errno == EAGAIN) {
            co_await to.socket().async_wait(tcp::socket::wait_write,
                                            asio::redirect_error(use_awaitable, ec));
        } else if (m <= 0) {
            ec = error_code(m < 0 ? errno : EPIPE, boost::system::system_category());
        } else {
            n -= static_cast<std::size_t>(m);
        }
    }
    co_return ec;
}

/// Reads response headers from the origin, passing 1xx interim responses (other than 101) on
/// to the client. Null with `ec` set on failure (asio::error::shut_down: the client is gone).
awaitable<std::unique_ptr<http::response_parser<http::buffer_body>>> Session::read_response(
    Stream& up, beast::flat_buffer& up_buf, bool head, error_code& ec) {
    for (;;) {
        auto rp = std::make_unique<http::response_parser<http::buffer_body>>();
        rp->header_limit(kHeaderLimit);
        rp->body_limit(std::numeric_limits<std::uint64_t>::max());
        rp->skip(head);
        arm(Phase::Upstream, shared_.timeouts.upstream);
        co_await http::async_read_header(up, up_buf, *rp, asio::redirect_error(use_awaitable, ec));
        if (ec) {
            co_return nullptr;
        }
        const unsigned code = rp->get().result_int();
        if (code < 100 || code >= 200 || code == 101) {
            co_return rp;
        }
        http::response<http::empty_body> interim{rp->get().result(), 11};
        for (const auto& f : rp->get()) {
            interim.set(f.name_string(), f.value());
        }
        co_await http::async_write(client_, interim, asio::redirect_error(use_awaitable, ec));
        if (ec) {
            ec = asio::error::shut_down;
            co_return nullptr;
        }
    }
}

template <bool isRequest>
awaitable<error_code> Session::relay(Stream& from, beast::flat_buffer& from_buf,
                                     http::parser<isRequest, http::buffer_body>& parser,
                                     Stream& to) {
    auto& msg = parser.get();
    http::serializer<isRequest, http::buffer_body> sr{msg};
    error_code ec;
    // Buffers sized for bulk transfer, held only while a body moves: an idle keep-alive
    // connection keeps none (Beast reads max(512, free capacity) bytes at a time).
    std::unique_ptr<char[]> chunk;
    if (!parser.is_done()) {
        chunk = std::make_unique_for_overwrite<char[]>(kRelayChunk);
        from_buf.reserve(kRelayChunk);
    }
    // Body bytes that arrived with the headers go out with them, in one write.
    if (parser.is_done() || from_buf.size() == 0) {
        ec = co_await write_header(to, sr, msg);
    }
    while (!ec && !parser.is_done()) {
        msg.body().data = chunk.get();
        msg.body().size = kRelayChunk;
        co_await http::async_read_some(from, from_buf, parser,
                                       asio::redirect_error(use_awaitable, ec));
        if (ec == http::error::need_buffer) {
            ec = {};
        }
        const std::size_t n = kRelayChunk - msg.body().size;
        if (ec || (n == 0 && !parser.is_done())) {
            if (!ec && !sr.is_header_done()) {
                ec = co_await write_header(to, sr, msg);
            }
            continue;
        }
        msg.body().data = n ? chunk.get() : nullptr;
        msg.body().size = n;
        msg.body().more = !parser.is_done();
        co_await http::async_write(to, sr, asio::redirect_error(use_awaitable, ec));
        if (ec == http::error::need_buffer) {
            ec = {};
        }
        extend(shared_.timeouts.idle);
    }
    if (!ec && !sr.is_done()) {
        msg.body().data = nullptr;
        msg.body().size = 0;
        msg.body().more = false;
        co_await http::async_write(to, sr, asio::redirect_error(use_awaitable, ec));
        if (ec == http::error::need_buffer) {
            ec = {};
        }
    }
    if (chunk) {
        from_buf.shrink_to_fit();  // keeps what is buffered (a pipelined request), frees the rest
    }
    co_return ec;
}

template <bool isRequest>
awaitable<error_code> Session::write_header(Stream& to,
                                            http::serializer<isRequest, http::buffer_body>& sr,
                                            http::message<isRequest, http::buffer_body>& msg) {
    msg.body().data = nullptr;
    msg.body().size = 0;
    msg.body().more = true;
    error_code ec;
    co_await http::async_write_header(to, sr, asio::redirect_error(use_awaitable, ec));
    co_return ec;
}

awaitable<void> Session::pump(Stream& from, Stream& to, bool& done) {
    std::array<char, kChunk> buf{};
    error_code ec;
    while (!done) {
        const std::size_t n = co_await from.async_read_some(
            asio::buffer(buf), asio::redirect_error(use_awaitable, ec));
        if (ec) {
            break;
        }
        co_await asio::async_write(to, asio::buffer(buf.data(), n),
                                   asio::redirect_error(use_awaitable, ec));
        if (ec) {
            break;
        }
        extend(shared_.timeouts.idle);
    }
    done = true;
    from.close();
    to.close();
}

/// Relays bytes both ways (WebSocket after 101, passthrough tunnels) until either side ends.
/// Bytes already buffered on either side are delivered first.
awaitable<void> Session::splice(Stream& a, beast::flat_buffer& a_buf, Stream& b,
                                beast::flat_buffer& b_buf) {
    error_code ec;
    if (a_buf.size()) {
        co_await asio::async_write(b, a_buf.data(), asio::redirect_error(use_awaitable, ec));
        a_buf.consume(a_buf.size());
    }
    if (!ec && b_buf.size()) {
        co_await asio::async_write(a, b_buf.data(), asio::redirect_error(use_awaitable, ec));
        b_buf.consume(b_buf.size());
    }
    if (ec) {
        co_return;
    }
    arm(Phase::Relay, shared_.timeouts.idle);
    // Each direction ends by closing both streams, which ends the other direction too; the
    // streams must outlive both, so this waits until the spawned direction has finished.
    struct Both {
        bool done = false;
        bool other_finished = false;
        asio::steady_timer wake;
        explicit Both(asio::io_context& io) : wake(io, Clock::time_point::max()) {}
    };
    auto both = std::make_shared<Both>(worker_.io);
    asio::co_spawn(
        worker_.io,
        [this, &a, &b, both]() -> awaitable<void> {
            co_await pump(b, a, both->done);
            both->other_finished = true;
            both->wake.cancel();
        },
        asio::detached);
    co_await pump(a, b, both->done);
    while (!both->other_finished) {
        co_await both->wake.async_wait(asio::redirect_error(use_awaitable, ec));
    }
}

awaitable<void> Session::handle_connect(const Request& req) {
    const std::string target(req.target());
    auto hp = policy::parse_host_port(target, 0);
    if (!hp) {
        audit("CONNECT", target, "", {}, "bad_request", 400);
        const std::string body = "landjail: bad CONNECT target: " + hp.error().message + "\n";
        co_await respond(http::status::bad_request, body, false);
        co_return;
    }
    const policy::Host host = hp->host;
    const std::uint16_t port = hp->port;
    const policy::Decision d = shared_.engine->decide_connect(host.text, host.kind, port);
    if (!d.allowed) {
        const std::string target_text = host.authority() + ":" + std::to_string(port);
        audit("CONNECT", target_text, host.text, d, {}, 403);
        std::string body = "landjail: CONNECT " + target_text + " refused: ";
        if (d.rule) {
            body += "it is denied by the rule '" + d.rule->text + "' (" + d.rule->origin + ").\n";
        } else {
            body +=
                "no rule allows any request to this host and port.\n"
                "To allow it, add for example:\n\n  --allow 'domain=" +
                host.authority() + "'\n";
        }
        co_await respond(http::status::forbidden, body, false, true);
        co_return;
    }
    for (const policy::HostPattern& p : shared_.passthrough) {
        if (p.matches(host.text, host.kind)) {
            co_await passthrough(host, port);
            co_return;
        }
    }
    http::response<http::empty_body> ok{http::status::ok, 11};
    ok.reason("Connection established");
    error_code ec;
    http::response_serializer<http::empty_body> sr{ok};
    sr.split(true);
    co_await http::async_write_header(client_, sr, asio::redirect_error(use_awaitable, ec));
    if (ec) {
        co_return;
    }
    co_await intercept(host, port);
}

awaitable<void> Session::intercept(const policy::Host& host, std::uint16_t port) {
    error_code ec;
    arm(Phase::Request, shared_.timeouts.header);
    if (client_buf_.size() == 0) {
        const std::size_t n = co_await client_.async_read_some(
            client_buf_.prepare(kChunk), asio::redirect_error(use_awaitable, ec));
        if (ec) {
            co_return;
        }
        client_buf_.commit(n);
    }
    const auto first =
        static_cast<unsigned char>(*static_cast<const char*>(client_buf_.data().data()));
    Origin origin{"https", host, port, false};
    if (first != 0x16) {  // not a TLS handshake record: plain HTTP inside the tunnel
        origin.scheme = "http";
        co_await serve(&origin);
        co_return;
    }
    std::string sni;
    auto conf = worker_.tls->server_for(host, &sni);
    if (!conf) {
        spdlog::warn("TLS for {}: {}", host.text, conf.error().message);
        co_return;
    }
    const auto prefix = client_buf_.data();
    std::string bytes(static_cast<const char*>(prefix.data()), prefix.size());
    client_buf_.consume(client_buf_.size());
    ec = co_await client_.handshake_server((*conf)->get(), bytes);
    if (ec) {
        spdlog::debug("TLS handshake with the client for {} failed: {}", host.text, ec.message());
        co_return;
    }
    if (!sni.empty()) {
        auto named = policy::canonical_host(sni);
        origin.misdirected = !named || *named != host;
    }
    co_await serve(&origin);
}

awaitable<void> Session::passthrough(const policy::Host& host, std::uint16_t port) {
    UpstreamFailure failure;
    auto up = co_await worker_.upstream->connect_tcp(host, port, failure);
    policy::Decision d;
    d.allowed = up != nullptr;
    d.reason = policy::Reason::AllowRule;
    const std::string url = host.authority() + ":" + std::to_string(port);
    if (!up) {
        audit("CONNECT", url, host.text, d, "passthrough", 502);
        const std::string body = status_step_body(url, failure);
        co_await respond(http::status::bad_gateway, body, false);
        co_return;
    }
    audit("CONNECT", url, host.text, d, "passthrough", 200);
    http::response<http::empty_body> ok{http::status::ok, 11};
    http::response_serializer<http::empty_body> sr{ok};
    sr.split(true);
    error_code ec;
    co_await http::async_write_header(client_, sr, asio::redirect_error(use_awaitable, ec));
    if (ec) {
        co_return;
    }
    upstream_ = up.get();
    beast::flat_buffer none;
    co_await splice(client_, client_buf_, *up, none);
    upstream_ = nullptr;
}

awaitable<void> Session::respond(http::status status, const std::string& body, bool keep_alive,
                                 bool deny) {
    http::response<http::string_body> res{status, 11};
    if (status != http::status::continue_) {
        res.set(http::field::content_type, "text/plain; charset=utf-8");
        res.set(http::field::server, "landjail-proxy");
        if (deny) {
            res.set("X-Landjail-Decision", "deny");
        }
        res.keep_alive(keep_alive);
        res.content_length(body.size());
        if (!head_request_) {
            res.body() = body;
        }
    }
    error_code ec;
    co_await http::async_write(client_, res, asio::redirect_error(use_awaitable, ec));
}

std::string Session::deny_body(const policy::Request& r, const policy::Decision& d) const {
    std::string body =
        "landjail: request denied by policy\n\n  " + r.method + " " + r.url() + "\n\n";
    if (d.reason == policy::Reason::DenyRule && d.rule) {
        body += "It is denied by the rule '" + d.rule->text + "' (" + d.rule->origin + ").\n";
    } else {
        body += "No allow rule matches it. To allow it, add the rule:\n\n  --allow '" +
                policy::suggested_rule(r) +
                "'\n\n(or the same line under allowlist: in the config file)\n";
    }
    return body;
}

void Session::audit(const std::string& method, const std::string& url, const std::string& host,
                    const policy::Decision& d, std::string reason, int status) {
    if (!shared_.auditor) {
        return;
    }
    AuditEvent e;
    e.allowed = d.allowed;
    e.http_method = method;
    e.http_url = url;
    e.host = host;
    if (d.rule) {
        e.matched_rule = d.rule->text;
    }
    e.reason = reason.empty() ? std::string(policy::to_string(d.reason)) : std::move(reason);
    e.status = status;
    if (!who_ && shared_.clients && client_port_ != 0) {
        who_ = shared_.clients->take(client_port_);
    }
    if (who_) {
        e.pid = who_->pid;
        e.exe = who_->exe;
    }
    if (shared_.sync_events) {
        shared_.sync_events();
    }
    shared_.auditor->record(std::move(e));
}

awaitable<void> serve_client(tcp::socket socket, Worker& worker) {
    Session session(std::move(socket), worker);
    co_await session.run();
}

}  // namespace lj::proxy

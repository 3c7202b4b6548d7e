// SPDX-License-Identifier: Apache-2.0
#include "proxy/audit/coder_sink.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "proxy/audit/proto/agent.pb.h"
#include "proxy/audit/proto/codec.pb.h"
#include "proxy/base/diag.hpp"

namespace lj::proxy {
namespace {

using Steady = std::chrono::steady_clock;
namespace pb = coder::agent::v2;
namespace codec = coder::boundarylogproxy::codec::v1;

constexpr unsigned char kTagLogs = 1;
constexpr unsigned char kTagEnvelope = 2;
constexpr std::size_t kMaxUrl = 8192;  ///< longer URLs are cut (with "…") to fit a frame

void report(const std::string& message) {
    diag::note("audit: coder agent: " + message);
}

std::string frame_of(unsigned char tag, const std::string& payload) {
    const std::size_t n = payload.size();
    std::string out;
    out.reserve(4 + n);
    out += static_cast<char>(tag);
    out += static_cast<char>((n >> 16) & 0xff);
    out += static_cast<char>((n >> 8) & 0xff);
    out += static_cast<char>(n & 0xff);
    out += payload;
    return out;
}

void fill(pb::BoundaryLog* out, const CoderSink::Log& log, std::size_t max_url) {
    out->set_allowed(log.allowed);
    const auto since = log.time.time_since_epoch();
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(since);
    out->mutable_time()->set_seconds(secs.count());
    out->mutable_time()->set_nanos(static_cast<std::int32_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(since - secs).count()));
    auto* req = out->mutable_http_request();
    req->set_method(log.method);
    req->set_url(log.url.size() > max_url ? log.url.substr(0, max_url) + "\xE2\x80\xA6" : log.url);
    if (log.allowed) {
        req->set_matched_rule(log.matched_rule);  // coderd: allowed exactly when it is set
    }
    out->set_sequence_number(log.sequence);
}

/// The payload of one request in the frame's form (bare, or in the tag-2 envelope).
std::string payload_of(const pb::ReportBoundaryLogsRequest& req, bool envelope) {
    if (!envelope) {
        return req.SerializeAsString();
    }
    codec::BoundaryMessage msg;
    *msg.mutable_logs() = req;
    return msg.SerializeAsString();
}

}  // namespace

std::vector<CoderSink::Frame> CoderSink::frames(const std::vector<Log>& logs, const Options& o) {
    std::vector<Frame> out;
    pb::ReportBoundaryLogsRequest req;
    const auto reset = [&] {
        req.Clear();
        req.set_session_id(o.session_id);
        req.set_confined_process_name(o.confined_process_name);
    };
    const auto emit = [&] {
        if (req.logs_size() > 0) {
            out.push_back(
                {frame_of(o.envelope ? kTagEnvelope : kTagLogs, payload_of(req, o.envelope)),
                 static_cast<std::size_t>(req.logs_size())});
        }
        reset();
    };
    reset();
    for (const Log& log : logs) {
        fill(req.add_logs(), log, kMaxUrl);
        // The envelope adds at most a few bytes of tag and length around the request.
        const std::size_t size = req.ByteSizeLong() + (o.envelope ? 8 : 0);
        if (size <= kMaxPayload && static_cast<std::size_t>(req.logs_size()) <= kMaxLogs) {
            continue;
        }
        req.mutable_logs()->RemoveLast();
        emit();
        fill(req.add_logs(), log, kMaxUrl);
        if (req.ByteSizeLong() + (o.envelope ? 8 : 0) > kMaxPayload) {  // alone too large
            req.mutable_logs()->RemoveLast();
            fill(req.add_logs(), log, 1024);
        }
    }
    emit();
    return out;
}

std::string CoderSink::status_frame(std::int64_t channel_full, std::int64_t batch_full) {
    codec::BoundaryMessage msg;
    msg.mutable_status()->set_dropped_channel_full(channel_full);
    msg.mutable_status()->set_dropped_batch_full(batch_full);
    return frame_of(kTagEnvelope, msg.SerializeAsString());
}

Result<std::unique_ptr<CoderSink>> CoderSink::start(Options options) {
    if (options.socket_path.size() >= sizeof sockaddr_un{}.sun_path) {
        return make_error("log_proxy_socket_path: path too long for a unix socket: " +
                          options.socket_path);
    }
    if (options.batch_logs == 0 || options.batch_logs > kMaxLogs) {
        options.batch_logs = kMaxLogs;
    }
    std::unique_ptr<CoderSink> sink(new CoderSink(std::move(options)));
    try {
        sink->sender_ = std::thread(&CoderSink::run, sink.get());
    } catch (const std::system_error& e) {
        return make_error(std::string("audit: cannot start the coder agent sender: ") + e.what());
    }
    return sink;
}

CoderSink::~CoderSink() {
    stop();
}

void CoderSink::push(std::vector<Log> logs) {
    try {
        std::lock_guard lock(mutex_);
        if (queue_.empty()) {
            first_queued_ = Steady::now();
        }
        for (Log& log : logs) {
            if (stopping_ || queue_.size() >= options_.queue_capacity) {
                ++channel_full_;
                lose("queue_full", 1);
                continue;
            }
            queue_.push_back(std::move(log));
        }
    } catch (const std::exception&) {  // bad_alloc: counted, never thrown to the writer
        std::lock_guard lock(mutex_);
        lose("queue_full", logs.size());
    }
    wake_.notify_one();
}

/// Under mutex_.
void CoderSink::lose(const std::string& reason, std::uint64_t n) {
    if (n == 0) {
        return;
    }
    dropped_ += n;
    if (!losses_.empty() && losses_.back().reason == reason) {
        losses_.back().count += n;
    } else {
        losses_.push_back({reason, n});
    }
    if (!std::exchange(drop_reported_, true)) {
        report(reason == "queue_full" ? "the agent does not keep up: logs are dropped (and counted)"
                                      : "logs could not be delivered before exit");
    }
}

void CoderSink::stop() {
    {
        std::lock_guard lock(mutex_);
        if (stopping_) {
            return;
        }
        stopping_ = true;
        deadline_ = Steady::now() + options_.grace;
    }
    wake_.notify_all();
    if (sender_.joinable()) {
        sender_.join();
    }
    std::lock_guard lock(mutex_);
    if (!queue_.empty()) {
        batch_full_ += queue_.size();
        lose("undelivered", queue_.size());
        queue_.clear();
    }
    if (dropped_ > 0) {
        report(std::to_string(dropped_) + " logs were not delivered to " + options_.socket_path +
               " (" + std::to_string(delivered_) + " were)");
    }
}

std::vector<CoderSink::Loss> CoderSink::take_losses() {
    std::lock_guard lock(mutex_);
    return std::exchange(losses_, {});
}

std::uint64_t CoderSink::delivered() const {
    std::lock_guard lock(mutex_);
    return delivered_;
}

std::uint64_t CoderSink::dropped() const {
    std::lock_guard lock(mutex_);
    return dropped_;
}

void CoderSink::run() {
    std::vector<Log> batch;
    int failures_at_stop = 0;  // after stop(): one retry (a reconnect), then what is left is lost
    while (take_batch(batch)) {
        const std::size_t sent = deliver(batch);
        std::lock_guard lock(mutex_);
        delivered_ += sent;
        if (sent == batch.size()) {
            batch.clear();
            continue;
        }
        // The rest back to the head of the queue, in order, for the next attempt.
        queue_.insert(queue_.begin(),
                      std::make_move_iterator(batch.begin() + static_cast<std::ptrdiff_t>(sent)),
                      std::make_move_iterator(batch.end()));
        batch.clear();
        if (stopping_ && (++failures_at_stop >= 2 || Steady::now() >= deadline_)) {
            return;
        }
    }
}

/// Waits for a batch: batch_logs logs, or the oldest waiting flush_interval, or stop(). While
/// the agent is away, waits for the next connection attempt instead.
bool CoderSink::take_batch(std::vector<Log>& batch) {
    std::unique_lock lock(mutex_);
    for (;;) {
        const auto now = Steady::now();
        if (stopping_ && (queue_.empty() || now >= deadline_)) {
            return false;
        }
        if (queue_.empty()) {
            wake_.wait(lock);
            continue;
        }
        const bool due = stopping_ || queue_.size() >= options_.batch_logs ||
                         now - first_queued_ >= options_.flush_interval;
        if (due && (now >= next_try_ || stopping_)) {  // at stop(): no waiting for a retry
            break;
        }
        auto until = due ? next_try_ : std::max(next_try_, first_queued_ + options_.flush_interval);
        wake_.wait_until(lock, stopping_ ? std::min(until, deadline_) : until);
    }
    const std::size_t n = std::min(queue_.size(), options_.batch_logs);
    batch.assign(std::make_move_iterator(queue_.begin()),
                 std::make_move_iterator(queue_.begin() + static_cast<std::ptrdiff_t>(n)));
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
    return true;
}

std::size_t CoderSink::deliver(const std::vector<Log>& batch) {
    if (!connected()) {
        return 0;
    }
    if (options_.envelope) {
        std::int64_t channel = 0, lost = 0;
        {
            std::lock_guard lock(mutex_);
            channel = static_cast<std::int64_t>(channel_full_);
            lost = static_cast<std::int64_t>(batch_full_);
        }
        if (channel + lost != status_sent_) {
            if (!send_frame(status_frame(channel, lost))) {
                return 0;
            }
            status_sent_ = channel + lost;
        }
    }
    std::size_t sent = 0;
    for (const Frame& frame : frames(batch, options_)) {
        if (!send_frame(frame.bytes)) {
            return sent;
        }
        sent += frame.logs;
    }
    failing_reported_ = false;
    return sent;
}

/// (Re)connects at most every reconnect_interval (at once after stop()); true when a
/// connection is open.
bool CoderSink::connected() {
    if (socket_.valid()) {
        return true;
    }
    bool stopping = false;
    {
        std::lock_guard lock(mutex_);
        stopping = stopping_;
    }
    if (Steady::now() < next_try_ && !stopping) {
        return false;
    }
    next_try_ = Steady::now() + options_.reconnect_interval;
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, options_.socket_path.data(), options_.socket_path.size());
    if (!fd.valid() ||
        ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        const int err = errno;
        if (!std::exchange(failing_reported_, true)) {
            report("connect(" + options_.socket_path + "): " + diag::errno_text(err) +
                   "; logs wait (and are kept up to the queue's bound) until it accepts them");
        }
        return false;
    }
    socket_ = std::move(fd);
    status_sent_ = -1;  // a new agent has not heard our counts
    return true;
}

/// Writes one frame whole within send_timeout; on failure the connection is closed.
bool CoderSink::send_frame(const std::string& frame) {
    std::size_t done = 0;
    auto deadline = Steady::now() + options_.send_timeout;
    {
        std::lock_guard lock(mutex_);
        if (stopping_) {  // stop()'s grace bounds a stalled agent too
            deadline = std::min(deadline, deadline_);
        }
    }
    while (done < frame.size()) {
        const ssize_t n =
            ::send(socket_.get(), frame.data() + done, frame.size() - done, MSG_NOSIGNAL);
        if (n > 0) {
            done += static_cast<std::size_t>(n);
            continue;
        }
        const int err = n < 0 ? errno : EIO;
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Steady::now());
        if ((err == EAGAIN || err == EINTR) && left.count() > 0) {
            pollfd p{socket_.get(), POLLOUT, 0};
            (void)::poll(&p, 1, static_cast<int>(left.count()));
            continue;
        }
        if (!std::exchange(failing_reported_, true)) {
            report(
                "send: " +
                (err == EAGAIN ? std::string("the agent stopped reading") : diag::errno_text(err)) +
                "; reconnecting, the logs are sent again");
        }
        socket_.reset();
        return false;
    }
    return true;
}

}  // namespace lj::proxy

// SPDX-License-Identifier: Apache-2.0
// The audit trail (DESIGN §6): the Auditor's life (start, record, stop) and the writer
// thread's loop that drains the bounded queue; record() only takes the lock and pushes. The
// writer's I/O, one write per batch and sink, is in audit_writer.cpp.
#include "proxy/audit/auditor.hpp"

#include <signal.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <iterator>
#include <system_error>
#include <utility>

#include "proxy/base/diag.hpp"

namespace lj::proxy {
namespace {

using Clock = std::chrono::system_clock;

// While a sink fails, the writer tries again this often (with no events to write): the
// audit_dropped notice is written, and writable() recovers, soon after the sink does.
constexpr auto kRetryInterval = std::chrono::seconds(1);

using diag::errno_text;

Result<std::string> random_uuid_v4() {
    unsigned char b[16];
    std::size_t got = 0;
    while (got < sizeof b) {
        const ssize_t n = ::getrandom(b + got, sizeof b - got, 0);
        if (n < 0) {
            const int err = errno;
            if (err == EINTR) {
                continue;
            }
            return make_error("audit: getrandom: " + errno_text(err));
        }
        got += static_cast<std::size_t>(n);
    }
    b[6] = static_cast<unsigned char>((b[6] & 0x0FU) | 0x40U);  // version 4
    b[8] = static_cast<unsigned char>((b[8] & 0x3FU) | 0x80U);  // variant 10 (RFC 4122)
    char out[37];
    std::snprintf(out, sizeof out,
                  "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
                  b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
                  b[14], b[15]);
    return std::string(out);
}

/// The writer does all sink I/O; a SIGPIPE it causes must not kill the process.
void block_sigpipe() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

}  // namespace

Result<std::unique_ptr<Auditor>> Auditor::start(Options options) {
    if (options.session_id.empty()) {
        auto id = new_session_id();
        if (!id.ok()) {
            return id.error();
        }
        options.session_id = std::move(*id);
    }
    if (options.queue_capacity == 0) {
        return make_error("audit: queue_capacity must be at least 1");
    }
    if (options.socket && options.socket->size() >= sizeof sockaddr_un{}.sun_path) {
        return make_error("audit socket: path too long for a unix socket: " + *options.socket);
    }
    std::unique_ptr<Auditor> self(new Auditor(std::move(options)));
    if (auto opened = self->open_sinks(); !opened) {
        return opened.error();
    }
    if (auto http = self->start_http(); !http) {
        return http.error();
    }
    if (self->options_.coder) {
        auto coder = CoderSink::start(*self->options_.coder);
        if (!coder) {
            return coder.error();
        }
        self->coder_ = std::move(*coder);
    }
    try {
        self->writer_ = std::thread(&Auditor::run, self.get());
    } catch (const std::system_error& e) {
        return make_error(std::string("audit: cannot start the writer thread: ") + e.what());
    }
    return self;
}

Auditor::Auditor(Options options) : options_(std::move(options)) {}

Status Auditor::start_http() {
    if (!options_.http) {
        return {};
    }
    HttpSink::Options o = *options_.http;
    if (o.spool.run_name.empty()) {
        o.spool.run_name = options_.session_id + "-" + std::to_string(::getpid());
    }
    auto sink = HttpSink::start(std::move(o));
    if (!sink) {
        return sink.error();
    }
    http_ = std::move(*sink);
    return {};
}

Auditor::~Auditor() {
    stop();
}

void Auditor::attach_jail_events(UniqueFd fd) {
    jail_ = std::make_unique<JailEventReader>(
        std::move(fd), [this](AuditEvent&& e) { (void)enqueue(std::move(e)); });
    (void)jail_->start();  // without the thread, record() still takes what the pipe holds
}

bool Auditor::record(AuditEvent event) {
    if (jail_) {
        (void)jail_->drain();
    }
    return enqueue(std::move(event));
}

bool Auditor::enqueue(AuditEvent event) {
    bool was_empty = false;
    try {
        {
            std::lock_guard lock(mutex_);
            if (stopping_ || queue_.size() >= options_.queue_capacity) {
                dropped_.fetch_add(1);
                if (!stopping_) {
                    problems_.fetch_or(kQueueFull);  // until the writer takes the queue
                }
                return false;
            }
            // seq and time are taken under the lock that orders the queue, so file order is
            // seq order.
            const std::uint64_t seq = seq_.load() + 1;
            if (!event.sequence && numbered() && coder_visible(event)) {
                event.sequence = reserve_sequence();
            }
            was_empty = queue_.empty();
            queue_.push_back(Queued{std::move(event), seq, Clock::now()});
            seq_.store(seq);
        }
        if (was_empty) {
            wake_.notify_one();  // the writer sleeps only on an empty queue
        }
        return true;
    } catch (const std::exception&) {  // bad_alloc (or a failed lock): count it, never throw
        dropped_.fetch_add(1);
        return false;
    }
}

void Auditor::reopen() {
    {
        std::lock_guard lock(mutex_);
        reopen_ = true;
    }
    wake_.notify_one();
}

void Auditor::stop() {
    if (jail_) {
        jail_->stop();  // the jail's last events go in before the queue closes
    }
    {
        std::lock_guard lock(mutex_);
        if (stopping_) {
            return;
        }
        stopping_ = true;
    }
    wake_.notify_all();
    if (writer_.joinable()) {
        writer_.join();
    }
    close_sinks();
}

void Auditor::run() {
    block_sigpipe();
    std::vector<Queued> batch;
    for (bool last = false; !last;) {
        bool reopen = false;
        {
            std::deque<Queued> taken;  // freed outside the lock, at the end of this block
            {
                std::unique_lock lock(mutex_);
                if (!wait_for_work(lock)) {
                    continue;  // the periodic retry: only notices to write
                }
                // Gather for up to 1 ms so a busy proxy is written in batches, not per event.
                wake_.wait_for(lock, std::chrono::milliseconds(1), [this] { return stopping_; });
                taken.swap(queue_);
                problems_.fetch_and(~static_cast<unsigned>(kQueueFull));
                reopen = std::exchange(reopen_, false);
                last = stopping_;  // record() refuses from now on: nothing comes after these
            }
            batch.assign(std::make_move_iterator(taken.begin()),
                         std::make_move_iterator(taken.end()));
        }
        if (reopen) {
            reopen_file();  // before the batch: events recorded after the signal go there
        }
        write_batch(batch);
        batch.clear();
    }
}

/// Sleeps until there are events, a reopen request or stop(); false when it woke for the
/// periodic retry instead (every second while a notice waits or an HTTP sink may report a
/// loss), after which write_batch() runs with no events.
bool Auditor::wait_for_work(std::unique_lock<std::mutex>& lock) {
    const auto work = [this] { return stopping_ || reopen_ || !queue_.empty(); };
    bool pending = http_ != nullptr;
    for (const auto& p : pending_) {
        pending = pending || !p.empty();
    }
    if (!pending) {
        wake_.wait(lock, work);
        return true;
    }
    if (wake_.wait_for(lock, kRetryInterval, work)) {
        return true;
    }
    lock.unlock();
    std::vector<Queued> none;
    write_batch(none);
    return false;
}

Status make_log_dir(const policy::Settings& s) {
    if (!s.log_dir) {
        return {};
    }
    // boundary creates its log_dir; so does landjail (mode 0700: the audit names URLs).
    namespace fs = std::filesystem;
    const fs::path dir = s.log_dir->value;
    std::error_code ec;
    if (fs::is_directory(dir, ec)) {
        return {};
    }
    fs::create_directories(dir.parent_path(), ec);
    if (!ec && ::mkdir(dir.c_str(), 0700) != 0) {
        ec = std::error_code(errno, std::generic_category());
    }
    if (ec) {
        return make_error("log_dir " + s.log_dir->value + " (from " + s.log_dir->origin +
                          "): cannot create it: " + ec.message());
    }
    return {};
}

namespace {

/// The Coder agent's sink options when its socket exists now; a warning when a socket that
/// was asked for is not there (a note at info for the default path, outside Coder).
std::optional<CoderSink::Options> coder_options(const policy::Settings& s, const AuditRole& role,
                                                const std::string& session_id) {
    if (!role.coder || !s.coder.socket) {
        return std::nullopt;
    }
    const policy::Setting<std::string>& path = *s.coder.socket;
    struct stat st {};
    if (::stat(path.value.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) {
        const std::string why =
            errno == ENOENT || errno == ENOTDIR ? "does not exist" : "is not a unix socket";
        const std::string line = "the Coder agent's audit socket " + path.value + " (from " +
                                 path.origin + ") " + why +
                                 ": audit events are not forwarded to Coder";
        if (path.origin == "default") {
            if (s.log_level.value == "info" || s.log_level.value == "debug") {
                diag::note(line);
            }
        } else {
            diag::warn(line);
        }
        return std::nullopt;
    }
    CoderSink::Options o;
    o.socket_path = path.value;
    o.session_id = session_id;
    o.confined_process_name = role.command_name;
    o.envelope = s.coder.drop_counts.value;
    return o;
}

}  // namespace

Result<std::unique_ptr<Auditor>> start_auditor(const policy::Settings& s, const AuditRole& role) {
    if (auto made = make_log_dir(s); !made) {
        return made.error();
    }
    Auditor::Options o;
    if (s.audit_file) {
        o.file = s.audit_file->value;
    }
    if (s.audit.socket) {
        o.socket = s.audit.socket->value;
    }
    // The logfmt denial lines are warnings: shown unless the log level is error, or the
    // config says audit.stderr: false (or true, whatever the level).
    o.stderr_denials =
        s.audit.stderr_denials ? s.audit.stderr_denials->value : s.log_level.value != "error";
    o.labels = s.labels;
    o.session_id = role.session_id;
    if (o.session_id.empty()) {
        auto id = new_session_id();
        if (!id) {
            return id.error();
        }
        o.session_id = std::move(*id);
    }
    o.required = s.audit.required && s.audit.required->value;
    if (s.audit.http) {
        o.http = http_sink_options(s, role.extra_ca);
    }
    o.coder = coder_options(s, role, o.session_id);
    o.sequence_numbers = s.correlation.enabled.value;
    return Auditor::start(std::move(o));
}

Result<std::string> new_session_id() {
    return random_uuid_v4();
}

}  // namespace lj::proxy

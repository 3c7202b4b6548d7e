// SPDX-License-Identifier: Apache-2.0
// The audit trail (DESIGN §6): the writer thread that drains the bounded queue into the file,
// unix-socket and stderr sinks. record() only takes the lock and pushes; all I/O happens on
// the writer thread, one write per batch and sink.
#include "proxy/audit.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <iterator>
#include <string_view>
#include <system_error>
#include <utility>

#include <nlohmann/json.hpp>

namespace lj::proxy {
namespace {

using Clock = std::chrono::system_clock;
using Json = nlohmann::ordered_json;

constexpr auto kReconnectInterval = std::chrono::seconds(1);
constexpr timeval kSocketTimeout{1, 0};  // a stalled collector costs at most this

std::string errno_text(int err) {
    return std::generic_category().message(err);
}

/// RFC 3339 UTC with microseconds, e.g. 2026-11-23T10:00:00.123456Z.
/// A SIGPIPE raised by our write() to a FIFO or pipe whose reader went away stays pending
/// (the writer thread blocks it); consume it so it is never delivered later.
void discard_sigpipe() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    const timespec zero{0, 0};
    (void)sigtimedwait(&set, nullptr, &zero);
}

/// Writes all of `data`, retrying after EINTR and partial writes; sockets use
/// send(MSG_NOSIGNAL). Returns 0 or the errno of the call that failed.
int write_all(int fd, std::string_view data, bool is_socket) {
    while (!data.empty()) {
        const ssize_t n = is_socket ? ::send(fd, data.data(), data.size(), MSG_NOSIGNAL)
                                    : ::write(fd, data.data(), data.size());
        if (n < 0) {
            const int err = errno;
            if (err == EINTR) {
                continue;
            }
            if (err == EPIPE && !is_socket) {
                discard_sigpipe();
            }
            return err;
        }
        if (n == 0) {
            return EIO;  // no progress on a non-empty write: give up rather than spin
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return 0;
}

/// A diagnostic line on stderr, written by the writer thread or stop() only.
void report(const std::string& message) {
    (void)write_all(STDERR_FILENO, "landjail: audit: " + message + "\n", false);
}

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

/// Opens (creating 0600) the JSON-lines file for appending. O_APPEND keeps each batch's
/// single write() contiguous even when another process appends to the same file.
Result<int> open_file(const std::string& path) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0) {
        const int err = errno;
        return make_error("cannot open the audit file " + path + ": " + errno_text(err) +
                          "; choose a file in a directory you can write");
    }
    return fd;
}

/// A unix stream socket connected to `path`, or -1 with errno set. SO_SNDTIMEO bounds both
/// connect() (full backlog) and send() (a collector that stopped reading).
int connect_unix(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());  // length checked in start()
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    if (::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &kSocketTimeout, sizeof kSocketTimeout) != 0 ||
        ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        const int err = errno;
        ::close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

/// The start-up connection to the collector: a socket, or -1 when the collector is not there
/// yet (no such file, or nobody listening: the writer retries), or an error for anything
/// else (e.g. EACCES), which is a configuration mistake worth failing start-up for.
Result<int> first_connect(const std::string& path) {
    const int fd = connect_unix(path);
    if (fd < 0) {
        const int err = errno;
        if (err != ENOENT && err != ECONNREFUSED) {
            return make_error("audit socket: connect(" + path + "): " + errno_text(err));
        }
    }
    return fd;
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
    if (self->options_.file) {
        auto fd = open_file(*self->options_.file);
        if (!fd.ok()) {
            return fd.error();
        }
        self->file_fd_ = *fd;
    }
    if (self->options_.socket) {
        auto fd = first_connect(*self->options_.socket);
        if (!fd.ok()) {
            return fd.error();
        }
        self->socket_fd_ = *fd;
        self->next_connect_ = std::chrono::steady_clock::now() + kReconnectInterval;
    }
    if (auto http = self->start_http(); !http) {
        return http.error();
    }
    try {
        self->writer_ = std::thread(&Auditor::run, self.get());
    } catch (const std::system_error& e) {
        return make_error(std::string("audit: cannot start the writer thread: ") + e.what());
    }
    return self;
}

Auditor::Auditor(Options options) : options_(std::move(options)) {}

Result<bool> Auditor::start_http() {
    if (!options_.http) {
        return true;
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
    return true;
}

Auditor::~Auditor() {
    stop();
}

bool Auditor::record(AuditEvent event) {
    bool was_empty = false;
    try {
        {
            std::lock_guard lock(mutex_);
            if (stopping_ || queue_.size() >= options_.queue_capacity) {
                dropped_.fetch_add(1);
                return false;
            }
            // seq and time are taken under the lock that orders the queue, so file order is
            // seq order.
            const std::uint64_t seq = seq_.load() + 1;
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

void Auditor::stop() {
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
    if (file_fd_ >= 0) {
        // Nothing written by us: nothing of ours to make durable (and fsync can take
        // milliseconds, on every landjail run that made no denied connect).
        if (written_.load() > 0 && ::fsync(file_fd_) != 0) {
            const int err = errno;
            if (err != EINVAL) {  // EINVAL: a FIFO or character device, nothing to sync
                report("fsync(" + *options_.file + "): " + errno_text(err));
            }
        }
        ::close(file_fd_);
        file_fd_ = -1;
    }
    if (socket_fd_ >= 0) {
        ::close(socket_fd_);
        socket_fd_ = -1;
    }
    if (http_) {
        http_->stop();  // delivers within its grace period; the rest stays in the spool
    }
    if (const std::uint64_t n = dropped_.load(); n > 0) {
        report(std::to_string(n) + " events were dropped because the audit queue was full");
    }
}

void Auditor::run() {
    block_sigpipe();
    std::vector<Queued> batch;
    for (;;) {
        {
            std::deque<Queued> taken;  // freed outside the lock, at the end of this block
            {
                std::unique_lock lock(mutex_);
                wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
                // Gather for up to 1 ms so a busy proxy is written in batches, not per event.
                wake_.wait_for(lock, std::chrono::milliseconds(1), [this] { return stopping_; });
                if (queue_.empty()) {
                    break;  // stopping, and everything accepted has been written
                }
                taken.swap(queue_);
            }
            batch.assign(std::make_move_iterator(taken.begin()),
                         std::make_move_iterator(taken.end()));
        }
        write_batch(batch);
        batch.clear();
    }
    write_batch(batch);  // empty: only an audit_dropped notice for drops since the last batch
}

void Auditor::write_batch(std::vector<Queued>& batch) {
    try {
        const std::string lines = render(batch);
        if (lines.empty()) {
            return;
        }
        const bool in_file = write_file(lines);
        write_socket(lines);
        if (http_) {
            http_->push(lines);  // only queued: the sink's thread posts
        }
        write_denials(batch);
        if (in_file) {
            written_.fetch_add(batch.size());
        }
    } catch (const std::exception& e) {  // bad_alloc while rendering: the batch is lost
        dropped_.fetch_add(batch.size());
        report(std::string(e.what()) + "; " + std::to_string(batch.size()) + " events lost");
    }
}

std::string Auditor::render(const std::vector<Queued>& batch) {
    std::string out;
    if (const std::uint64_t dropped = dropped_.load(); dropped > dropped_reported_) {
        out += dropped_json(options_.session_id, dropped - dropped_reported_, options_.labels);
        out += '\n';
        dropped_reported_ = dropped;
    }
    for (const Queued& q : batch) {
        out += to_json(q.event, options_.session_id, q.seq, q.time, options_.labels);
        out += '\n';
    }
    return out;
}

bool Auditor::write_file(const std::string& lines) {
    if (file_fd_ < 0) {
        return true;
    }
    if (const int err = write_all(file_fd_, lines, false); err != 0) {
        if (!file_failing_) {
            report("write(" + *options_.file + "): " + errno_text(err) + "; events are lost");
        }
        file_failing_ = true;
        return false;
    }
    file_failing_ = false;
    return true;
}

void Auditor::write_socket(const std::string& lines) {
    if (!options_.socket) {
        return;
    }
    if (socket_fd_ < 0) {
        const auto now = std::chrono::steady_clock::now();
        if (now < next_connect_) {
            return;  // events written while the collector is away are not re-sent
        }
        next_connect_ = now + kReconnectInterval;
        socket_fd_ = connect_unix(*options_.socket);
        if (socket_fd_ < 0) {
            return;
        }
    }
    if (write_all(socket_fd_, lines, true) != 0) {
        ::close(socket_fd_);
        socket_fd_ = -1;
    }
}

void Auditor::write_denials(const std::vector<Queued>& batch) const {
    if (!options_.stderr_denials) {
        return;
    }
    for (const Queued& q : batch) {
        if (!q.event.allowed) {
            // One write per line, so that lines from other stderr writers never split it.
            (void)write_all(STDERR_FILENO, to_logfmt(q.event) + "\n", false);
        }
    }
}

Result<bool> make_log_dir(const policy::Settings& s) {
    if (!s.log_dir || s.disable_audit_logs.value) {
        return true;
    }
    // boundary creates its log_dir; so does landjail (mode 0700: the audit names URLs).
    namespace fs = std::filesystem;
    const fs::path dir = s.log_dir->value;
    std::error_code ec;
    if (fs::is_directory(dir, ec)) {
        return true;
    }
    fs::create_directories(dir.parent_path(), ec);
    if (!ec && ::mkdir(dir.c_str(), 0700) != 0) {
        ec = std::error_code(errno, std::generic_category());
    }
    if (ec) {
        return make_error("log_dir " + s.log_dir->value + " (from " + s.log_dir->origin +
                          "): cannot create it: " + ec.message());
    }
    return true;
}

Result<bool> check_audit_file(const std::string& path, bool missing_dir_ok) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            return make_error("is a directory: name a file in it, e.g. " + path +
                              (path.back() == '/' ? "" : "/") + "audit.jsonl");
        }
        if (::access(path.c_str(), W_OK) != 0) {
            const int err = errno;
            return make_error("cannot write the audit file: " + errno_text(err) +
                              "; choose a file you can write");
        }
        return true;
    }
    const std::size_t slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "."
                            : slash == 0               ? "/"
                                                       : path.substr(0, slash);
    const bool found = ::stat(dir.c_str(), &st) == 0;
    if (!found || !S_ISDIR(st.st_mode)) {
        if (missing_dir_ok && !found) {
            return true;
        }
        return make_error("cannot create the audit file: " + dir +
                          (found ? " is not a directory; choose another place"
                                 : " does not exist; create it first, or choose another place"));
    }
    if (::access(dir.c_str(), W_OK | X_OK) != 0) {
        const int err = errno;
        return make_error("cannot create the audit file in " + dir + ": " + errno_text(err) +
                          "; choose a directory you can write");
    }
    return true;
}

Result<std::unique_ptr<Auditor>> start_auditor(const policy::Settings& s,
                                               const std::string& session_id,
                                               const std::optional<std::string>& extra_ca) {
    if (s.disable_audit_logs.value) {
        return std::unique_ptr<Auditor>();
    }
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
    o.session_id = session_id;
    if (s.audit.http) {
        o.http = http_sink_options(s, extra_ca);
    }
    return Auditor::start(std::move(o));
}

Result<std::string> new_session_id() {
    return random_uuid_v4();
}

}  // namespace lj::proxy

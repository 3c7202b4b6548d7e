// SPDX-License-Identifier: Apache-2.0
// The Auditor's writer thread: one write per batch and sink (the file, the unix socket, the
// HTTP sink's spool, stderr's denial lines), and the bookkeeping of what a sink could not
// write. A loss is added to every sink's pending notices; each sink writes its pending
// audit_dropped lines before its next events, and forgets them only once they are written.
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <string_view>
#include <system_error>
#include <utility>

#include "proxy/audit/auditor.hpp"
#include "proxy/base/diag.hpp"

namespace lj::proxy {
namespace {

constexpr auto kReconnectInterval = std::chrono::seconds(1);
constexpr timeval kSocketTimeout{1, 0};  // a stalled collector costs at most this

using diag::errno_text;

/// A diagnostic line on stderr, written by the writer thread or stop() only.
void report(const std::string& message) {
    const std::string line = "landjail: audit: " + message + "\n";
    (void)!::write(STDERR_FILENO, line.data(), line.size());
}

/// Sends all of `data` (MSG_NOSIGNAL), retrying after EINTR and partial sends. Returns 0 or
/// the errno of the call that failed.
int send_all(int fd, std::string_view data) {
    while (!data.empty()) {
        const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return n < 0 ? errno : EIO;
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return 0;
}

/// A unix stream socket connected to `path`, or -1 with errno set. SO_SNDTIMEO bounds both
/// connect() (full backlog) and send() (a collector that stopped reading).
UniqueFd connect_unix(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());  // length checked in start()
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (fd.valid() &&
        (::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &kSocketTimeout, sizeof kSocketTimeout) !=
             0 ||
         ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)) {
        const int err = errno;
        fd.reset();
        errno = err;
    }
    return fd;
}

bool same_cause(const AuditLoss& a, const AuditLoss& b) {
    return a.sink == b.sink && a.reason == b.reason && a.err == b.err && a.status == b.status;
}

std::string why(int err) {
    return diag::errno_name(err) + ": " + errno_text(err);
}

}  // namespace

Status Auditor::open_sinks() {
    if (options_.file) {
        std::string notice;
        auto file = AuditFile::open(*options_.file, &notice);
        if (!file) {
            return file.error();
        }
        file_ = std::move(*file);
        if (!notice.empty()) {
            report(notice);
        }
    }
    if (options_.socket) {
        // Not there yet (no such file, nobody listening): the writer retries. Anything else
        // (e.g. EACCES) is a configuration mistake worth failing start-up for.
        socket_ = connect_unix(*options_.socket);
        const int err = errno;
        if (!socket_.valid() && err != ENOENT && err != ECONNREFUSED) {
            return make_error("audit socket: connect(" + *options_.socket +
                              "): " + errno_text(err));
        }
        next_connect_ = std::chrono::steady_clock::now() + kReconnectInterval;
        if (!socket_.valid()) {
            socket_error_ = "connect: " + errno_text(err);
            set_problem(kSocketFailing, true);
        }
    }
    return {};
}

void Auditor::write_batch(std::vector<Queued>& batch) {
    try {
        collect_losses();
        const std::string lines = render(batch);
        write_file(lines, batch.size());
        write_socket(lines, batch.size());
        write_http(lines);
        write_denials(batch);
        collect_losses();                // the HTTP sink's, from this push: in the next notices
    } catch (const std::exception& e) {  // bad_alloc while rendering: the batch is lost
        dropped_.fetch_add(batch.size());
        report(std::string(e.what()) + "; " + std::to_string(batch.size()) + " events lost");
    }
}

std::string Auditor::render(const std::vector<Queued>& batch) const {
    std::string out;
    for (const Queued& q : batch) {
        out += to_json(q.event, options_.session_id, q.seq, q.time, options_.labels);
        out += '\n';
    }
    return out;
}

std::string Auditor::notices(Sink sink) const {
    std::string out;
    for (const AuditLoss& loss : pending_[sink]) {
        out += dropped_json(options_.session_id, loss, options_.labels);
        out += '\n';
    }
    return out;
}

void Auditor::collect_losses() {
    if (const std::uint64_t d = dropped_.load(); d > dropped_seen_) {
        lose(AuditLoss{"", "queue_full", 0, 0, false, d - dropped_seen_});
        dropped_seen_ = d;
        if (!std::exchange(queue_reported_, true)) {
            report("the audit queue is full (" + std::to_string(options_.queue_capacity) +
                   " events): events are dropped (and counted) until the writer catches up");
        }
    } else if (queue_.empty()) {
        queue_reported_ = false;  // a batch without new drops: the next drop is a new series
    }
    if (http_) {
        for (const HttpSink::Loss& l : http_->take_losses()) {
            lose(AuditLoss{"http", l.reason, l.err, l.status, false, l.count});
        }
    }
}

/// Every sink will say so: its next write starts with the audit_dropped line.
void Auditor::lose(const AuditLoss& loss) {
    const bool has[kSinks] = {file_ != nullptr, options_.socket.has_value(), http_ != nullptr};
    for (std::size_t s = 0; s < kSinks; ++s) {
        if (!has[s]) {
            continue;
        }
        auto same = std::find_if(pending_[s].begin(), pending_[s].end(),
                                 [&](const AuditLoss& p) { return same_cause(p, loss); });
        if (same == pending_[s].end()) {
            pending_[s].push_back(loss);
        } else {
            same->count += loss.count;
            same->cut = same->cut || loss.cut;
        }
    }
}

void Auditor::reopen_file() {
    if (!file_) {
        return;
    }
    auto reopened = file_->reopen();
    report(reopened ? "reopened " + file_->path() + (reopened->empty() ? "" : "; " + *reopened)
                    : reopened.error().what() + "; still writing to the file open before");
}

void Auditor::write_file(const std::string& lines, std::size_t events) {
    if (!file_) {
        written_.fetch_add(events);
        return;
    }
    const std::string notes = notices(kFile);
    if (notes.empty() && lines.empty()) {
        return;
    }
    bool usable = true;
    if (auto message = file_->follow(&usable)) {
        report(*message);
    }
    if (!usable) {  // our file was deleted: what we wrote would be invisible
        file_failed(AuditLoss{"file", "file_deleted", 0, 0, false, events},
                    file_->path() + " was deleted and cannot be created again");
        return;
    }
    const std::size_t noted_lines = pending_[kFile].size();  // one line per notice
    const AuditFile::Written w = notes.empty() ? file_->write(lines, events)
                                               : file_->write(notes + lines, noted_lines + events);
    const std::size_t noted = std::min(w.lines, pending_[kFile].size());
    pending_[kFile].erase(pending_[kFile].begin(),
                          pending_[kFile].begin() + static_cast<std::ptrdiff_t>(noted));
    const std::size_t done = w.lines - noted;
    written_.fetch_add(done);
    if (w.err != 0) {
        file_failed(AuditLoss{"file", "write_failed", w.err, 0, w.cut, events - done},
                    "write(" + file_->path() + "): " + errno_text(w.err));
        return;
    }
    if (!file_error_.empty()) {
        report(file_->path() + ": writing works again; " + std::to_string(file_lost_.load()) +
               " events lost so far (an audit_dropped event in the file says so)");
        file_error_.clear();
    }
    set_problem(kFileFailing, false);
}

/// Counts the events the file missed; says so on stderr at the start of a failure series.
void Auditor::file_failed(const AuditLoss& loss, const std::string& what) {
    set_problem(kFileFailing, true);
    if (loss.count > 0) {
        file_lost_.fetch_add(loss.count);
        lose(loss);
    }
    if (file_error_.empty()) {
        report(what + "; events are dropped (and counted) until the file can be written again" +
               (options_.required ? "; requests are refused meanwhile (audit.required)" : ""));
        file_first_err_ = loss.err;
    }
    file_error_ = what;
}

void Auditor::write_socket(const std::string& lines, std::size_t events) {
    if (!options_.socket) {
        return;
    }
    if (!socket_.valid() && !connect_socket()) {
        if (events > 0) {
            socket_failed(AuditLoss{"socket", "disconnected", 0, 0, false, events});
        }
        return;
    }
    const std::string data = notices(kSocket) + lines;
    if (data.empty()) {
        return;
    }
    if (const int err = send_all(socket_.get(), data); err != 0) {
        socket_.reset();  // a cut line ends with the connection: the collector drops it
        socket_error_ = "send: " + errno_text(err);
        socket_failed(AuditLoss{"socket", "write_failed", err, 0, false, events});
        return;
    }
    pending_[kSocket].clear();
    socket_error_.clear();
    if (std::exchange(socket_reported_, false)) {
        report("audit socket " + *options_.socket + ": sending again; " +
               std::to_string(socket_lost_.load()) +
               " events were not sent so far (an audit_dropped event says so)");
    }
    set_problem(kSocketFailing, false);
}

/// A new connection, at most once per kReconnectInterval.
bool Auditor::connect_socket() {
    const auto now = std::chrono::steady_clock::now();
    if (now < next_connect_) {
        return false;
    }
    next_connect_ = now + kReconnectInterval;
    socket_ = connect_unix(*options_.socket);
    if (!socket_.valid()) {
        const int err = errno;
        socket_error_ = "connect: " + errno_text(err);
        set_problem(kSocketFailing, true);
        return false;
    }
    return true;
}

/// Counts the events the socket missed; says so on stderr at the start of a series.
void Auditor::socket_failed(const AuditLoss& loss) {
    set_problem(kSocketFailing, true);
    socket_lost_.fetch_add(loss.count);
    lose(loss);
    if (!std::exchange(socket_reported_, true)) {
        report("audit socket " + *options_.socket + ": " + socket_error_ +
               "; events are dropped (and counted) until it accepts them again" +
               (options_.required ? "; requests are refused meanwhile (audit.required)" : ""));
    }
}

void Auditor::write_http(const std::string& lines) {
    if (!http_) {
        return;
    }
    // Notices that do not fit stay pending; they are not counted as lost events.
    if (!pending_[kHttp].empty() && http_->push(notices(kHttp), false) == 0) {
        pending_[kHttp].clear();
    }
    if (!lines.empty()) {
        set_problem(kHttpLosing, http_->push(lines) > 0);
    }
}

void Auditor::write_denials(const std::vector<Queued>& batch) const {
    if (!options_.stderr_denials) {
        return;
    }
    for (const Queued& q : batch) {
        if (!q.event.allowed) {
            // One write per line, so that lines from other stderr writers never split it.
            const std::string line = to_logfmt(q.event) + "\n";
            (void)!::write(STDERR_FILENO, line.data(), line.size());
        }
    }
}

void Auditor::set_problem(Problem p, bool on) {
    if (on) {
        problems_.fetch_or(p);
    } else {
        problems_.fetch_and(~static_cast<unsigned>(p));
    }
}

void Auditor::close_sinks() {
    // Nothing written by us: nothing of ours to make durable (and fsync can take
    // milliseconds, on every landjail run that made no denied connect).
    if (file_ && written_.load() > 0) {
        if (auto error = file_->sync()) {
            report(*error);
        }
    }
    if (http_) {
        http_->stop();  // delivers within its grace period; the rest stays in the spool
    }
    if (const std::uint64_t n = dropped_.load(); n > 0) {
        report(std::to_string(n) + " events were dropped because the audit queue was full");
    }
    if (const std::uint64_t n = file_lost_.load(); n > 0) {
        report(std::to_string(n) + " events could not be written to " + *options_.file +
               (file_first_err_ != 0 ? " (" + why(file_first_err_) + ")" : std::string()) +
               (pending_[kFile].empty() ? ""
                                        : "; the file does not say so (the audit_dropped "
                                          "event could not be written either)"));
    }
    if (const std::uint64_t n = socket_lost_.load(); n > 0) {
        report(std::to_string(n) + " events were not sent to the audit socket " + *options_.socket);
    }
    file_.reset();
    socket_.reset();
}

}  // namespace lj::proxy

// SPDX-License-Identifier: Apache-2.0
// The HTTP collector's backlog: batch files in a per-run directory (or batches in memory),
// appended to by the Auditor's writer and removed oldest first by the HTTP sink's sender
// thread, both under the sink's lock. See audit_spool.hpp.
#include "proxy/audit/spool.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>

#include "proxy/base/diag.hpp"

namespace lj::proxy {
namespace {

namespace fs = std::filesystem;

constexpr char kLockName[] = "lock";
constexpr char kSuffix[] = ".ndjson";
constexpr char kRejected[] = "rejected";  // batches the collector refused for good

using diag::errno_text;

void report(const std::string& message) {
    const std::string line = "landjail: audit: http: " + message + "\n";
    (void)!::write(STDERR_FILENO, line.data(), line.size());
}

/// Reads the whole file into `out`. Returns 0 or an errno.
int read_file(const std::string& path, std::string& out) {
    const UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd.valid()) {
        return errno;
    }
    char buf[65536];
    for (;;) {
        const ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return errno;
        }
        if (n == 0) {
            return 0;
        }
        out.append(buf, static_cast<std::size_t>(n));
    }
}

/// Drops an incomplete last line (a write cut short by a crash) and returns the line count.
std::size_t complete_lines(std::string& body) {
    const std::size_t last = body.rfind('\n');
    body.resize(last == std::string::npos ? 0 : last + 1);
    return static_cast<std::size_t>(std::count(body.begin(), body.end(), '\n'));
}

/// mkdir(path, 0700) with its parents; an existing directory is fine. Returns 0 or an errno.
int make_dir(const std::string& path) {
    std::error_code ec;
    const fs::path parent = fs::path(path).parent_path();
    if (!parent.empty()) {
        fs::create_directories(parent, ec);
    }
    if (::mkdir(path.c_str(), 0700) == 0) {
        return 0;
    }
    const int err = errno;
    struct stat st {};
    if (err == EEXIST && ::stat(path.c_str(), &st) == 0) {
        return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
    }
    return ec && err == ENOENT ? ec.value() : err;
}

/// Opens `path` and takes its flock without waiting: an invalid fd when another process
/// (a running landjail) holds it, or on any error.
UniqueFd try_lock(const std::string& path, bool create) {
    const int flags = O_RDWR | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT : 0);
    UniqueFd fd(::open(path.c_str(), flags, 0600));
    if (fd.valid() && ::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
        fd.reset();
    }
    return fd;
}

/// The regular *.ndjson files of `dir`, sorted by name (which is the order they were made).
std::vector<std::string> batch_files(const std::string& dir) {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        const std::string name = e.path().filename().string();
        if (e.is_regular_file(ec) && !e.is_symlink(ec) && name.ends_with(kSuffix)) {
            out.push_back(e.path().string());
        }
    }
    std::sort(out.begin(), out.end());
    return out;
}

void remove_run_dir(const std::string& dir) {
    (void)::unlink((dir + "/" + kLockName).c_str());
    (void)::rmdir(dir.c_str());
}

}  // namespace

Result<std::unique_ptr<Spool>> Spool::open(Options options) {
    if (options.batch_size == 0) {
        return make_error("audit: spool batch_size must be at least 1");
    }
    std::unique_ptr<Spool> self(new Spool(std::move(options)));
    if (!self->options_.dir) {
        self->runs_.emplace_back();  // the in-memory "run": ours
        return self;
    }
    if (auto made = self->create_run(); !made) {
        return made.error();
    }
    return self;
}

Status Spool::create_run() {
    const std::string& dir = *options_.dir;
    if (const int err = make_dir(dir); err != 0) {
        return make_error(options_.key + ": cannot create " + dir + ": " + errno_text(err));
    }
    // A name left by an earlier run (same session id and pid) gets a suffix.
    int err = EEXIST;
    for (int i = 1; i <= 100 && err == EEXIST; ++i) {
        run_dir_ = dir + "/" + options_.run_name + (i == 1 ? "" : "." + std::to_string(i));
        err = ::mkdir(run_dir_.c_str(), 0700) == 0 ? 0 : errno;
    }
    if (err != 0) {
        return make_error(options_.key + ": cannot create " + run_dir_ + ": " + errno_text(err));
    }
    UniqueFd lock = try_lock(run_dir_ + "/" + kLockName, true);
    if (!lock.valid()) {
        err = errno;
        (void)::rmdir(run_dir_.c_str());
        return make_error(options_.key + ": cannot lock " + run_dir_ + "/" + kLockName + ": " +
                          errno_text(err));
    }
    adopt_runs();
    runs_.push_back(Run{run_dir_, std::move(lock), 0});
    return {};
}

void Spool::adopt_runs() {
    struct Found {
        std::int64_t sec, nsec;  // when the run's lock file was made: the run's start
        std::string dir;
        UniqueFd lock;
    };
    std::vector<Found> found;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(*options_.dir, ec)) {
        const std::string dir = e.path().string();
        if (dir == run_dir_ || e.is_symlink(ec) || !e.is_directory(ec)) {
            continue;
        }
        UniqueFd lock = try_lock(dir + "/" + kLockName, false);
        struct stat st {};
        if (lock.valid() && ::fstat(lock.get(), &st) == 0) {
            found.push_back({st.st_mtim.tv_sec, st.st_mtim.tv_nsec, dir, std::move(lock)});
        }
    }
    std::sort(found.begin(), found.end(), [](const Found& a, const Found& b) {
        return std::tie(a.sec, a.nsec, a.dir) < std::tie(b.sec, b.nsec, b.dir);
    });
    for (Found& f : found) {
        adopt(f.dir, std::move(f.lock));
    }
}

void Spool::adopt(const std::string& dir, UniqueFd lock) {
    Run run{dir, std::move(lock), 0};
    for (const std::string& path : batch_files(dir)) {
        std::string body;
        if (read_file(path, body) != 0) {
            continue;  // left in place; front() would fail on it the same way
        }
        const std::size_t events = complete_lines(body);
        if (events == 0) {
            (void)::unlink(path.c_str());
            continue;
        }
        segments_.push_back(
            Segment{runs_.size(), path, {}, events, body.size(), true, Steady::time_point::min()});
        events_ += events;
        bytes_ += body.size();
        ++run.segments;
    }
    if (run.segments == 0) {
        remove_run_dir(dir);
        return;
    }
    runs_.push_back(std::move(run));
}

Spool::~Spool() {
    if (on_disk() && !runs_.empty() && runs_.back().segments == 0) {
        remove_run_dir(run_dir_);
    }
}

bool Spool::tail_has_room() const {
    return !segments_.empty() && segments_.back().run + 1 == runs_.size() &&
           !segments_.back().sealed && segments_.back().events < options_.batch_size;
}

/// Whether `bytes` more in `lines` more lines would pass the bound.
bool Spool::over_bound(std::size_t bytes, std::size_t lines) const {
    return on_disk() ? bytes_ + bytes > options_.max_bytes
                     : events_ + lines > options_.max_memory_lines;
}

Spool::Appended Spool::append(std::string_view lines) {
    Appended out;
    while (!lines.empty()) {
        const std::size_t room =
            tail_has_room() ? options_.batch_size - segments_.back().events : options_.batch_size;
        std::size_t size = 0;  // bytes of the first n lines
        std::size_t n = 0;
        while (n < room && size < lines.size()) {
            const std::size_t end = lines.find('\n', size);
            const std::size_t next = end == std::string_view::npos ? lines.size() : end + 1;
            if (over_bound(next, n + 1)) {
                break;
            }
            size = next;
            ++n;
        }
        if (n == 0) {  // full: the rest waits for nothing
            out.full += static_cast<std::size_t>(std::count(lines.begin(), lines.end(), '\n'));
            break;
        }
        int err = 0;
        if (const std::size_t failed = append_group(lines.substr(0, size), n, err); failed > 0) {
            out.failed += failed;
            out.err = err;
        }
        lines.remove_prefix(size);
    }
    return out;
}

/// Appends `events` lines (at most the tail's room, or one batch) to the tail batch, or to a
/// new one. Returns the number of lines dropped (0 or `events`), with `err` set.
std::size_t Spool::append_group(std::string_view chunk, std::size_t events, int& err) {
    if (!tail_has_room()) {
        Segment s{runs_.size() - 1, {}, {}, 0, 0, false, Steady::now()};
        if (on_disk()) {
            char name[32];
            std::snprintf(name, sizeof name, "%010llu%s",
                          static_cast<unsigned long long>(next_name_++), kSuffix);
            s.path = run_dir_ + "/" + name;
        }
        segments_.push_back(std::move(s));
        ++runs_.back().segments;
    }
    Segment& tail = segments_.back();
    if ((err = write_segment(tail, chunk)) != 0) {
        if (tail.events == 0) {
            segments_.pop_back();
            --runs_.back().segments;
        }
        return events;
    }
    tail.events += events;
    tail.bytes += chunk.size();
    events_ += events;
    bytes_ += chunk.size();
    return 0;
}

/// Appends `chunk` to the batch's file (or its memory). A failed write is rolled back, so
/// the file only ever holds whole lines. Returns 0 or an errno.
int Spool::write_segment(Segment& s, std::string_view chunk) {
    if (!on_disk()) {
        s.body += chunk;
        return 0;
    }
    const UniqueFd fd(
        ::open(s.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600));
    const int err = fd.valid() ? write_all(fd.get(), chunk) : errno;
    if (err != 0) {
        if (fd.valid() && ::ftruncate(fd.get(), static_cast<off_t>(s.bytes)) != 0) {
            const int trunc_err = errno;
            report("ftruncate(" + s.path + "): " + errno_text(trunc_err));
        }
        if (s.bytes == 0) {
            (void)::unlink(s.path.c_str());
        }
        write_failed(s.path, err);
        return err;
    }
    write_failing_ = false;
    return 0;
}

void Spool::write_failed(const std::string& what, int err) {
    if (!write_failing_) {
        report("cannot spool to " + what + ": " + errno_text(err) + "; events are dropped");
    }
    write_failing_ = true;
}

std::optional<Spool::Steady::time_point> Spool::ready_at(std::chrono::milliseconds flush) const {
    if (segments_.empty()) {
        return std::nullopt;
    }
    const Segment& s = segments_.front();
    if (s.sealed || s.events >= options_.batch_size || segments_.size() > 1) {
        return Steady::time_point::min();
    }
    return s.first + flush;
}

std::optional<Spool::Batch> Spool::front() {
    while (!segments_.empty()) {
        Segment& s = segments_.front();
        s.sealed = true;  // sent as it is now, and again as it is after a failure
        if (!on_disk()) {
            return Batch{s.body, s.events};
        }
        Batch batch;
        const int err = read_file(s.path, batch.body);
        if (err == 0) {
            batch.events = complete_lines(batch.body);
            if (batch.events > 0) {
                return batch;
            }
        } else {
            report("cannot read " + s.path + ": " + errno_text(err) + "; " +
                   std::to_string(s.events) + " spooled events are lost");
            lost_ += s.events;
        }
        drop_front();
    }
    return std::nullopt;
}

std::string Spool::reject_front() {
    if (segments_.empty()) {
        return "";
    }
    const Segment& s = segments_.front();
    std::string to;
    if (on_disk()) {
        const std::string dir = *options_.dir + "/" + kRejected;
        to = dir + "/" + fs::path(runs_[s.run].dir).filename().string() + "-" +
             fs::path(s.path).filename().string();
        int err = make_dir(dir);
        if (err == 0 && ::rename(s.path.c_str(), to.c_str()) != 0) {
            err = errno;
        }
        if (err != 0) {
            report("cannot move " + s.path + " to " + dir + ": " + errno_text(err) +
                   "; the refused batch is deleted");
            to.clear();
        }
    }
    drop_front();  // its file is gone (moved): only the bookkeeping
    return to;
}

bool Spool::split_front() {
    if (segments_.empty() || segments_.front().events < 2) {
        return false;
    }
    const Segment s = segments_.front();
    std::string body = s.body;
    if (on_disk() && read_file(s.path, body) != 0) {
        return false;
    }
    const std::size_t lines = complete_lines(body);
    std::size_t cut = 0;
    for (std::size_t i = 0; i < lines / 2; ++i) {
        cut = body.find('\n', cut) + 1;
    }
    Segment first = s;
    Segment second = s;
    if (lines < 2 || !write_halves(s, body, cut, first, second)) {
        return false;
    }
    events_ = events_ - s.events + first.events + second.events;
    bytes_ = bytes_ - s.bytes + first.bytes + second.bytes;
    ++runs_[s.run].segments;
    segments_.pop_front();
    segments_.push_front(std::move(second));
    segments_.push_front(std::move(first));
    return true;
}

/// The two halves of `s` (its lines are `body`, cut at `cut`): in memory, or in the files
/// STEM.0.ndjson and STEM.1.ndjson, which sort where `s` was; `s`'s file is then removed.
bool Spool::write_halves(const Segment& s, const std::string& body, std::size_t cut, Segment& first,
                         Segment& second) {
    const std::string parts[2] = {body.substr(0, cut), body.substr(cut)};
    Segment* halves[2] = {&first, &second};
    const std::string stem = s.path.substr(0, s.path.size() - (sizeof kSuffix - 1));
    for (int i = 0; i < 2; ++i) {
        Segment& h = *halves[i];
        h.events = static_cast<std::size_t>(std::count(parts[i].begin(), parts[i].end(), '\n'));
        h.bytes = parts[i].size();
        h.body = on_disk() ? std::string() : parts[i];
        h.path = on_disk() ? stem + "." + std::to_string(i) + kSuffix : std::string();
    }
    for (int i = 0; on_disk() && i < 2; ++i) {
        const Segment& h = *halves[i];
        const UniqueFd fd(
            ::open(h.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
        if (const int err = fd.valid() ? write_all(fd.get(), parts[i]) : errno; err != 0) {
            write_failed(h.path, err);
            (void)::unlink(first.path.c_str());
            (void)::unlink(second.path.c_str());
            return false;
        }
    }
    if (on_disk()) {
        (void)::unlink(s.path.c_str());
    }
    return true;
}

void Spool::pop() {
    if (!segments_.empty()) {
        drop_front();
    }
}

void Spool::drop_front() {
    const Segment& s = segments_.front();
    if (on_disk() && ::unlink(s.path.c_str()) != 0) {
        const int err = errno;
        if (err != ENOENT) {
            report("unlink(" + s.path + "): " + errno_text(err) + "; it may be sent again");
        }
    }
    events_ -= s.events;
    bytes_ -= s.bytes;
    Run& run = runs_[s.run];
    const bool adopted = s.run + 1 != runs_.size();
    segments_.pop_front();
    if (--run.segments == 0 && adopted) {
        remove_run_dir(run.dir);
        run.lock.reset();
    }
}

}  // namespace lj::proxy

// SPDX-License-Identifier: Apache-2.0
// The audit trail's file: the open-time checks (symlink, owner, mode), whole-line writes and
// following the path across rotation and deletion. See audit_file.hpp.
#include "proxy/audit/file.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <system_error>
#include <utility>

#include "proxy/base/diag.hpp"

namespace lj::proxy {
namespace {

constexpr int kOpenFlags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW;

using diag::errno_text;

std::string octal_mode(mode_t mode) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04o", mode & 07777U);
    return buf;
}

/// A SIGPIPE raised by our write() to a FIFO whose reader went away stays pending (the
/// writer thread blocks it); consume it so it is never delivered later.
void discard_sigpipe() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    const timespec zero{0, 0};
    (void)sigtimedwait(&set, nullptr, &zero);
}

/// Writes as much of `data` as it can, retrying after EINTR and short writes. Returns 0 or
/// the errno of the call that failed; `done` is the number of bytes written.
int write_all(int fd, std::string_view data, std::size_t& done) {
    done = 0;
    while (done < data.size()) {
        const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0) {
            const int err = errno;
            if (err == EINTR) {
                continue;
            }
            if (err == EPIPE) {
                discard_sigpipe();
            }
            return err;
        }
        if (n == 0) {
            return EIO;  // no progress on a non-empty write: give up rather than spin
        }
        done += static_cast<std::size_t>(n);
    }
    return 0;
}

/// Why the file behind `st` must not hold the trail, or "" when it may. The fix is named.
std::string refusal(const struct stat& st, const std::string& path) {
    const auto type = st.st_mode & S_IFMT;
    if (type == S_IFDIR) {
        return "is a directory: name a file in it, e.g. " + path +
               (path.ends_with('/') ? "" : "/") + "audit.jsonl";
    }
    if (type == S_IFCHR) {
        return "";  // /dev/null, a terminal: nobody plants those
    }
    if (type != S_IFREG && type != S_IFIFO) {
        return "is not a regular file, a FIFO or a character device; choose a file";
    }
    if (st.st_uid != ::geteuid()) {
        return "belongs to uid " + std::to_string(st.st_uid) + ", not to uid " +
               std::to_string(::geteuid()) +
               " who writes the audit trail: its owner could read and change the trail; "
               "remove it, or choose a file of your own";
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        return "is writable by other users (mode " + octal_mode(st.st_mode) +
               "): they could add or change lines; run chmod 600 " + path +
               ", or choose another file";
    }
    return "";
}

constexpr char kLinkRefusal[] =
    "is a symbolic link: the audit file is never opened through a link (whoever can change "
    "the link decides where the trail goes); name the file itself";

/// The message for a failed open(2) of the audit file.
std::string open_failure(const std::string& path, int err) {
    struct stat st {};
    if (err == ELOOP && ::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
        return "the audit file " + path + " " + kLinkRefusal;
    }
    return "cannot open the audit file " + path + ": " + errno_text(err) +
           "; choose a file in a directory you can write";
}

/// The directory part of `path` ("." or "/" when it has none).
std::string dir_of(const std::string& path) {
    const std::size_t slash = path.rfind('/');
    return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

AuditFile::AuditFile(std::string path, UniqueFd fd, const struct stat& st)
    : path_(std::move(path)),
      fd_(std::move(fd)),
      dev_(st.st_dev),
      ino_(st.st_ino),
      regular_(S_ISREG(st.st_mode)) {}

Result<std::unique_ptr<AuditFile>> AuditFile::open(const std::string& path, std::string* notice) {
    UniqueFd fd(::open(path.c_str(), kOpenFlags, 0600));
    if (!fd.valid()) {
        const int err = errno;
        return make_error(open_failure(path, err));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        const int err = errno;
        return make_error("the audit file " + path + ": fstat: " + errno_text(err));
    }
    if (const std::string why = refusal(st, path); !why.empty()) {
        return make_error("the audit file " + path + " " + why);
    }
    if (S_ISREG(st.st_mode) && (st.st_mode & 077) != 0) {
        // The trail names every URL: a file that others may read is made private.
        if (::fchmod(fd.get(), 0600) != 0) {
            const int err = errno;
            return make_error("the audit file " + path + " is readable by other users (mode " +
                              octal_mode(st.st_mode) + ") and chmod failed: " + errno_text(err));
        }
        if (notice != nullptr) {
            *notice = path + " was readable by other users (mode " + octal_mode(st.st_mode) +
                      "): its mode is now 0600";
        }
    }
    return std::unique_ptr<AuditFile>(new AuditFile(path, std::move(fd), st));
}

AuditFile::Written AuditFile::write(std::string_view data, std::size_t lines) {
    std::string joined;
    std::size_t prefix = 0;
    if (terminate_next_) {  // the cut line of an earlier failure ends here, on its own line
        joined.reserve(data.size() + 1);
        joined = "\n";
        joined += data;
        data = joined;
        prefix = 1;
    }
    std::size_t done = 0;
    Written w;
    w.err = write_all(fd_.get(), data, done);
    if (done >= prefix) {
        terminate_next_ = false;
    }
    const std::string_view body = data.substr(prefix);
    const std::size_t body_done = done - std::min(done, prefix);
    if (w.err == 0) {
        w.lines = lines;
        return w;
    }
    const std::size_t last_nl =
        body_done == 0 ? std::string_view::npos : body.rfind('\n', body_done - 1);
    const std::size_t keep = last_nl == std::string_view::npos ? 0 : last_nl + 1;
    w.lines = static_cast<std::size_t>(std::count(body.begin(), body.begin() + keep, '\n'));
    if (const std::size_t cut = body_done - keep; cut > 0 && !remove_tail(cut)) {
        terminate_next_ = true;
        w.cut = true;
    }
    return w;
}

/// Truncates the last `bytes` of the file (a cut line of ours), only when they are still
/// the end of the file: nobody appended after them. Regular files only.
bool AuditFile::remove_tail(std::size_t bytes) {
    if (!regular_) {
        return false;
    }
    const off_t end = ::lseek(fd_.get(), 0, SEEK_CUR);  // O_APPEND: the end of our last write
    struct stat st {};
    if (end < 0 || ::fstat(fd_.get(), &st) != 0 || st.st_size != end ||
        static_cast<std::size_t>(end) < bytes) {
        return false;
    }
    return ::ftruncate(fd_.get(), end - static_cast<off_t>(bytes)) == 0;
}

Result<std::string> AuditFile::reopen() {
    if (!regular_) {
        return std::string();
    }
    return switch_to_path();
}

/// Opens the path (with every check of open()) and makes it the file written to.
Result<std::string> AuditFile::switch_to_path() {
    std::string notice;
    auto next = open(path_, &notice);
    if (!next) {
        return next.error();
    }
    AuditFile& n = **next;
    // A cut line stays where it was: the new file starts clean.
    fd_ = std::move(n.fd_);
    dev_ = n.dev_;
    ino_ = n.ino_;
    regular_ = n.regular_;
    terminate_next_ = false;
    last_follow_error_.clear();
    return notice;
}

std::optional<std::string> AuditFile::follow(bool* usable) {
    *usable = true;
    if (!regular_) {
        return std::nullopt;
    }
    struct stat own {};
    struct stat named {};
    const bool deleted = ::fstat(fd_.get(), &own) == 0 && own.st_nlink == 0;
    const bool replaced = !deleted && ::lstat(path_.c_str(), &named) == 0 &&
                          (named.st_dev != dev_ || named.st_ino != ino_);
    if (!deleted && !replaced) {
        return std::nullopt;
    }
    auto switched = switch_to_path();
    if (switched) {
        const std::string what = deleted ? " was deleted: created it again"
                                         : " names a new file (rotated): writing to it";
        return path_ + what + (switched->empty() ? "" : "; " + *switched);
    }
    // Our file is deleted and cannot be made again: writing to it would hide the events.
    *usable = !deleted;
    const std::string error =
        switched.error().what() + (deleted ? "; the file was deleted, events are dropped until it "
                                             "can be created again"
                                           : "; still writing to the file that was renamed");
    if (error == last_follow_error_) {
        return std::nullopt;
    }
    last_follow_error_ = error;
    return error;
}

std::optional<std::string> AuditFile::sync() {
    if (::fsync(fd_.get()) != 0) {
        const int err = errno;
        if (err != EINVAL) {  // EINVAL: a FIFO or character device, nothing to sync
            return "fsync(" + path_ + "): " + errno_text(err);
        }
    }
    return std::nullopt;
}

Status check_audit_file(const std::string& path, bool missing_dir_ok) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
        if (S_ISLNK(st.st_mode)) {
            return make_error(kLinkRefusal);
        }
        if (const std::string why = refusal(st, path); !why.empty()) {
            return make_error(why);
        }
        if (::access(path.c_str(), W_OK) != 0) {
            const int err = errno;
            return make_error("cannot write the audit file: " + errno_text(err) +
                              "; choose a file you can write");
        }
        return {};
    }
    const std::string dir = dir_of(path);
    const bool found = ::stat(dir.c_str(), &st) == 0;
    if (!found || !S_ISDIR(st.st_mode)) {
        if (missing_dir_ok && !found) {
            return {};
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
    return {};
}

}  // namespace lj::proxy

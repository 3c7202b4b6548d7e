// SPDX-License-Identifier: Apache-2.0
// The audit trail's JSON-lines file (DESIGN §6). Opened for appending without following a
// symlink (O_NOFOLLOW), created with mode 0600, and refused when another user owns it or
// could write to it; a file of ours that others could read is tightened to 0600. Written
// in whole lines only: when a write is cut short (a full disk), the cut line is truncated
// away, or, when that is not safe (another writer appended after it, a FIFO), the next
// write starts with a newline so that the cut line never merges with the next one. The
// file follows its path: it is reopened on request (SIGHUP after logrotate), when the path
// names another file (renamed away and replaced) and when it was deleted. Used by one
// thread at a time (the Auditor's writer); not thread-safe.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "policy/result.hpp"
#include "proxy/base/fd.hpp"

namespace lj::proxy {

class AuditFile {
  public:
    /// Opens `path` (O_WRONLY|O_APPEND|O_CREAT|O_NOFOLLOW|O_CLOEXEC, mode 0600) and checks
    /// what it opened: a regular file or FIFO owned by this user and not writable by group
    /// or others, or a character device (/dev/null, a terminal). Errors name the path, the
    /// problem and the fix. A regular file that group or others may read is set to 0600;
    /// `notice` (when given) then says so.
    static Result<std::unique_ptr<AuditFile>> open(const std::string& path,
                                                   std::string* notice = nullptr);

    struct Written {
        std::size_t lines = 0;  ///< complete lines of the data now in the file (a prefix)
        int err = 0;            ///< 0, or the errno of the write that failed
        bool cut = false;       ///< a cut line stays in the file, terminated (not removed)
    };
    /// Appends `data`: `lines` whole lines, each ending with '\n'. On failure the first
    /// Written::lines of them are in the file and nothing after them is (see `cut`).
    Written write(std::string_view data, std::size_t lines);

    /// Opens the path again (SIGHUP), creating the file when it is gone, and switches to it.
    /// On error the current file stays in use. Regular files only (a FIFO or device stays
    /// open as it is). Returns a notice for standard error, if any.
    Result<std::string> reopen();

    /// Called before each write: when the file was deleted, or the path now names another
    /// file (logrotate renamed ours and created a new one), reopens it. Returns what to
    /// report, once per change: a notice ("was deleted: created it again"), or an error;
    /// `usable` is false when the events must not be written (our file is deleted and
    /// cannot be recreated: they would be written invisibly).
    std::optional<std::string> follow(bool* usable);

    /// fsync(); errors other than EINVAL (a FIFO or device) are returned as a message.
    std::optional<std::string> sync();

    const std::string& path() const { return path_; }

  private:
    AuditFile(std::string path, UniqueFd fd, const struct stat& st);
    bool remove_tail(std::size_t bytes);
    Result<std::string> switch_to_path();

    std::string path_;
    UniqueFd fd_;
    dev_t dev_ = 0;
    ino_t ino_ = 0;
    bool regular_ = false;
    bool terminate_next_ = false;  ///< a cut line is in the file: start with '\n'
    std::string last_follow_error_;
};

/// What AuditFile::open() would refuse, checked without creating anything: an existing
/// path must be a file open() accepts and writable; a new file needs a directory it can be
/// created in. A directory that does not exist is an error unless `missing_dir_ok` (a
/// log_dir that will be created). The message does not repeat `path`.
Status check_audit_file(const std::string& path, bool missing_dir_ok = false);

}  // namespace lj::proxy

// SPDX-License-Identifier: Apache-2.0
// The HTTP collector's backlog (DESIGN §6): every audit line the collector has not taken yet,
// oldest first, in batches; the HTTP sink's only queue. With a directory, each batch is one
// file (NNNNNNNNNN.ndjson, the JSON lines exactly as posted) in a per-run subdirectory that
// holds a flock()ed `lock` file. A line is in its batch file when append() returns (written,
// not fsynced: it survives a crash of the process, not of the machine), and a batch file is
// removed only once the collector answered 2xx for it, so a run that ends (or is killed)
// leaves its undelivered batches, and the next run that opens the directory adopts every
// subdirectory whose lock it can take and sends those batches first. A batch the collector
// refuses for good is moved to the `rejected` subdirectory. Without a directory the backlog
// is a bounded number of lines in memory. Either way, lines beyond the bound are dropped and
// counted, never blocking.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/result.hpp"
#include "proxy/base/fd.hpp"

namespace lj::proxy {

class Spool {
  public:
    using Steady = std::chrono::steady_clock;

    struct Options {
        std::optional<std::string> dir;            ///< none: keep batches in memory only
        std::string key = "audit.http.spool_dir";  ///< named in errors (the config key)
        std::string run_name;                      ///< this run's subdirectory (unique)
        std::size_t batch_size = 100;              ///< lines per batch file at most
        std::uint64_t max_bytes = 256ULL << 20;    ///< bound on the files' total size
        std::size_t max_memory_lines = 65536;      ///< bound without a directory
    };
    struct Batch {
        std::string body;  ///< JSON lines, each ending with '\n'
        std::size_t events = 0;
    };
    struct Appended {
        std::size_t full = 0;    ///< lines dropped: the bound was reached
        std::size_t failed = 0;  ///< lines dropped: writing the batch file failed
        int err = 0;             ///< the errno of that failure
    };

    /// Creates the directory (0700, with its parents) and this run's subdirectory, and adopts
    /// the batches of earlier runs that are no longer running (oldest run first). Errors name
    /// the key and the path, e.g. "audit.http.spool_dir: cannot create /x: Permission denied".
    static Result<std::unique_ptr<Spool>> open(Options options);

    /// Removes this run's subdirectory when it holds nothing. Not thread-safe: the HTTP sink
    /// calls every member under its lock.
    ~Spool();
    Spool(const Spool&) = delete;
    Spool& operator=(const Spool&) = delete;

    /// Appends `lines` (each ending with '\n') after everything spooled: to the newest batch
    /// while it has room and was not taken by front(), then to new ones. The first write
    /// failure of a series is reported on stderr.
    Appended append(std::string_view lines);

    /// When the oldest batch is ready to be sent: at once (time_point::min()) when it is
    /// full, taken before, adopted, or followed by others; else when its first line has
    /// waited `flush`. nullopt when the spool is empty.
    std::optional<Steady::time_point> ready_at(std::chrono::milliseconds flush) const;

    /// The oldest batch, or nullopt when the spool is empty; nothing is appended to it
    /// afterwards. A batch file that cannot be read is reported, counted in lost() and
    /// skipped.
    std::optional<Batch> front();
    /// Removes the oldest batch (call it after the collector accepted it).
    void pop();
    /// Moves the oldest batch to DIR/rejected/ (the collector refused it for good) and
    /// returns where it went ("" in memory, where it is dropped, or when moving failed).
    std::string reject_front();
    /// Splits the oldest batch (more than one line) into two, in order (HTTP 413).
    bool split_front();

    bool empty() const { return segments_.empty(); }
    bool on_disk() const { return options_.dir.has_value(); }
    std::uint64_t events() const { return events_; }  ///< lines held
    std::uint64_t bytes() const { return bytes_; }    ///< bytes held
    std::uint64_t lost() const { return lost_; }      ///< lines lost to unreadable files
    const std::string& run_dir() const { return run_dir_; }

  private:
    struct Run {
        std::string dir;
        UniqueFd lock;
        std::size_t segments = 0;  ///< batch files of this run still in the spool
    };
    struct Segment {
        std::size_t run = 0;  ///< index in runs_
        std::string path;     ///< empty in memory
        std::string body;     ///< the lines, in memory only
        std::size_t events = 0;
        std::uint64_t bytes = 0;
        bool sealed = false;       ///< taken by front() or adopted: nothing more is added
        Steady::time_point first;  ///< when its first line came
    };

    explicit Spool(Options options) : options_(std::move(options)) {}
    Status create_run();
    void adopt_runs();
    void adopt(const std::string& dir, UniqueFd lock);
    std::size_t append_group(std::string_view chunk, std::size_t events, int& err);
    int write_segment(Segment& s, std::string_view chunk);
    bool tail_has_room() const;
    bool over_bound(std::size_t bytes, std::size_t lines) const;
    void drop_front();
    bool write_halves(const Segment& s, const std::string& body, std::size_t cut, Segment& first,
                      Segment& second);
    void write_failed(const std::string& what, int err);

    Options options_;
    std::string run_dir_;
    std::vector<Run> runs_;  ///< adopted runs, oldest first; ours is last
    std::deque<Segment> segments_;
    std::uint64_t next_name_ = 1;
    std::uint64_t events_ = 0;
    std::uint64_t bytes_ = 0;
    std::uint64_t lost_ = 0;
    bool write_failing_ = false;
};

}  // namespace lj::proxy

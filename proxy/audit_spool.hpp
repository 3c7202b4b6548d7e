// SPDX-License-Identifier: Apache-2.0
// The HTTP collector's backlog (DESIGN §6): audit lines that the collector has not taken yet,
// oldest first, in batches. With a directory, each batch is one file (NNNNNNNNNN.ndjson, the
// JSON lines exactly as posted) in a per-run subdirectory that holds a flock()ed `lock` file;
// a batch file is removed only once the collector answered 2xx for it, so a run that ends
// (or dies) leaves its undelivered batches, and the next run that opens the directory adopts
// every subdirectory whose lock it can take and sends those batches first. Without a
// directory the backlog is a bounded number of batches in memory. Either way, lines beyond
// the bound are dropped and counted, never blocking.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "policy/result.hpp"
#include "proxy/raii.hpp"

namespace lj::proxy {

class Spool {
  public:
    struct Options {
        std::optional<std::string> dir;            ///< none: keep batches in memory only
        std::string key = "audit.http.spool_dir";  ///< named in errors (the config key)
        std::string run_name;                      ///< this run's subdirectory (unique)
        std::size_t batch_size = 100;              ///< lines per batch file at most
        std::uint64_t max_bytes = 256ULL << 20;    ///< bound on the files' total size
        std::size_t max_memory_batches = 100;      ///< bound without a directory
    };
    struct Batch {
        std::string body;  ///< JSON lines, each ending with '\n'
        std::size_t events = 0;
    };

    /// Creates the directory (0700, with its parents) and this run's subdirectory, and adopts
    /// the batches of earlier runs that are no longer running (oldest run first). Errors name
    /// the key and the path, e.g. "audit.http.spool_dir: cannot create /x: Permission denied".
    static Result<std::unique_ptr<Spool>> open(Options options);

    /// Removes this run's subdirectory when it holds nothing. Not thread-safe (the sink's
    /// sender thread owns the spool).
    ~Spool();
    Spool(const Spool&) = delete;
    Spool& operator=(const Spool&) = delete;

    /// Appends `lines` (each ending with '\n') after everything spooled: to the newest batch
    /// while it has room, then to new ones. Returns the number of lines dropped because the
    /// bound was reached or a write failed (the first failure is reported on stderr).
    std::size_t append(const std::vector<std::string>& lines);

    /// The oldest batch, or nullopt when the spool is empty. A batch file that cannot be read
    /// is reported, counted in lost() and skipped.
    std::optional<Batch> front();
    /// Removes the oldest batch (call it after the collector accepted it).
    void pop();

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
    };

    explicit Spool(Options options) : options_(std::move(options)) {}
    Result<bool> create_run();
    void adopt_runs();
    void adopt(const std::string& dir, UniqueFd lock);
    std::size_t append_group(const std::string& chunk, std::size_t events);
    bool write_segment(Segment& s, const std::string& chunk);
    bool tail_has_room() const;
    void drop_front();
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

// SPDX-License-Identifier: Apache-2.0
// The audit trail's file (proxy::AuditFile and the Auditor's file sink, DESIGN §6, issue 13
// items 6 and 7): a full file system (RLIMIT_FSIZE here: no root needed) never leaves a cut
// or merged line, every event not written is counted, said on stderr at once, in an
// audit_dropped event once writing works again and at exit, and writable() follows it; a
// cut line that cannot be removed is terminated; the file is never opened through a
// symlink, refused when another user owns it or may write it, made 0600 when others may
// read it, created again when deleted, and follows rotation (rename + create, SIGHUP).
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "proxy/audit/auditor.hpp"
#include "proxy/audit/file.hpp"
#include "tests/unit/lj_test.hpp"

using lj::proxy::AuditEvent;
using lj::proxy::AuditFile;
using lj::proxy::Auditor;
using lj::test::contains_any;
using lj::test::describe;
using lj::test::split_lines;
using nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

std::string temp_dir() {
    char templ[] = "/tmp/lj-afile-XXXXXX";
    cr_assert(::mkdtemp(templ) != nullptr, "mkdtemp: %s", std::strerror(errno));
    return templ;
}

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

/// Standard error goes to a file while it lives.
class StderrCapture {
  public:
    explicit StderrCapture(std::string path) : path_(std::move(path)) {
        const int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        cr_assert(fd >= 0 && saved_ >= 0 && ::dup2(fd, STDERR_FILENO) == STDERR_FILENO);
        ::close(fd);
    }
    ~StderrCapture() { restore(); }
    void restore() {
        if (saved_ >= 0) {
            ::dup2(saved_, STDERR_FILENO);
            ::close(saved_);
            saved_ = -1;
        }
    }
    std::vector<std::string> lines() const { return split_lines(slurp(path_)); }

  private:
    std::string path_;
    int saved_ = ::dup(STDERR_FILENO);
};

AuditEvent event(int i) {
    AuditEvent e;
    e.allowed = true;
    e.http_method = "GET";
    e.http_url = "https://api.example.com/v1/items/" + std::to_string(i) + "/" +
                 std::string(150, 'x');  // ~330 bytes a line
    e.host = "api.example.com";
    e.matched_rule = "domain=api.example.com";
    e.reason = "allow_rule_matched";
    return e;
}

Auditor::Options file_options(const std::string& path) {
    Auditor::Options o;
    o.file = path;
    o.stderr_denials = false;
    o.session_id = "s-file";
    return o;
}

std::unique_ptr<Auditor> must_start(Auditor::Options o) {
    auto r = Auditor::start(std::move(o));
    cr_assert(r.ok(), "start: %s", describe(r).c_str());
    return std::move(*r);
}

bool eventually(const std::function<bool()>& done, std::chrono::milliseconds limit = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() >= deadline) {
            return false;
        }
        std::this_thread::sleep_for(2ms);
    }
    return true;
}

/// Every line of `text` parsed; fails on a line that is not one JSON object, or on text
/// that does not end with a newline (a cut line).
std::vector<json> parse_all(const std::string& text) {
    cr_assert(text.empty() || text.back() == '\n', "the file ends in a cut line: ...%s",
              text.substr(text.size() > 80 ? text.size() - 80 : 0).c_str());
    std::vector<json> out;
    for (const std::string& line : split_lines(text)) {
        json j = json::parse(line, nullptr, false);
        cr_assert(!j.is_discarded() && j.is_object(), "not one JSON object: %.120s", line.c_str());
        out.push_back(std::move(j));
    }
    return out;
}

void set_fsize_limit(rlim_t bytes) {
    rlimit r{};
    cr_assert_eq(::getrlimit(RLIMIT_FSIZE, &r), 0);
    r.rlim_cur = bytes;
    cr_assert_eq(::setrlimit(RLIMIT_FSIZE, &r), 0, "setrlimit: %s", std::strerror(errno));
}

}  // namespace

// ---- item 6: a full disk ----------------------------------------------------------------

// RLIMIT_FSIZE makes the kernel cut a write at the limit and fail the next with EFBIG, as a
// full file system cuts it with ENOSPC: the same path through the writer.
Test(audit_file, a_full_disk_leaves_whole_lines_counts_and_recovers, .timeout = 60) {
    ::signal(SIGXFSZ, SIG_IGN);
    const std::string dir = temp_dir();
    const std::string path = dir + "/audit.jsonl";
    StderrCapture err(dir + "/stderr.txt");
    set_fsize_limit(10000);  // ~30 lines of ~330 bytes
    auto a = must_start(file_options(path));
    cr_assert(a->writable());
    for (int i = 1; i <= 100; ++i) {
        cr_assert(a->record(event(i)));
        if (i % 7 == 0) {  // several batches, so that one is cut in the middle of a line
            cr_assert(
                eventually([&] { return a->written() + a->file_lost() == std::uint64_t(i); }));
        }
    }
    cr_assert(eventually([&] { return a->written() + a->file_lost() == 100; }));
    const std::uint64_t lost = a->file_lost();
    cr_assert(lost > 0 && a->written() > 0, "written %llu lost %llu",
              static_cast<unsigned long long>(a->written()), static_cast<unsigned long long>(lost));
    cr_assert_not(a->writable(), "writable() while the file cannot be written");
    std::vector<json> lines = parse_all(slurp(path));  // whole lines only
    cr_assert_eq(lines.size(), a->written());
    for (std::size_t i = 0; i < lines.size(); ++i) {
        cr_assert_eq(lines[i]["seq"].get<std::uint64_t>(), i + 1);
    }

    set_fsize_limit(RLIM_INFINITY);  // space again: the writer's retry writes the notice
    cr_assert(eventually([&] { return a->writable(); }, 5s), "writable() did not recover");
    cr_assert(a->record(event(101)));
    a->stop();
    err.restore();
    lines = parse_all(slurp(path));
    const json& notice = lines[a->written() - 1];  // the notice, then event 101
    cr_assert(notice["event"] == "audit_dropped" && notice["sink"] == "file" &&
                  notice["reason"] == "write_failed" && notice["errno"] == "EFBIG" &&
                  notice["count"].get<std::uint64_t>() == lost && !notice.contains("seq"),
              "%s", notice.dump().c_str());
    cr_assert_eq(lines.back()["seq"], 101);
    cr_assert_eq(lines.size(), a->written() + 1);
    const auto said = err.lines();
    cr_assert_eq(said.size(), 3u, "one line at the failure, one at recovery, one at exit");
    cr_assert(contains_any(said[0], "File too large") && contains_any(said[0], path), "%s",
              said[0].c_str());
    cr_assert(contains_any(said[1], "writing works again"), "%s", said[1].c_str());
    cr_assert(contains_any(said[2], std::to_string(lost) + " events could not be written to " +
                                        path + " (EFBIG"),
              "%s", said[2].c_str());
    fs::remove_all(dir);
}

// A cut line that cannot be truncated away (a FIFO whose reader left in the middle of a
// line) is ended by the next write, so that it never merges with the next line.
Test(audit_file, a_cut_line_that_stays_is_terminated, .timeout = 30) {
    ::signal(SIGPIPE, SIG_IGN);
    const std::string dir = temp_dir();
    const std::string fifo = dir + "/audit.fifo";
    cr_assert_eq(::mkfifo(fifo.c_str(), 0600), 0);
    int rd = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    cr_assert(rd >= 0);
    (void)::fcntl(rd, F_SETPIPE_SZ, 4096);
    auto file = AuditFile::open(fifo);
    cr_assert(file.ok(), "%s", describe(file).c_str());
    const std::string line = "{\"a\":\"" + std::string(20000, 'x') + "\"}\n";
    AuditFile::Written w;
    std::thread writer([&] { w = (*file)->write(line, 1); });
    (void)::fcntl(rd, F_SETFL, 0);
    char buf[100];
    cr_assert(::read(rd, buf, sizeof buf) > 0);  // the writer is in the middle of the line
    ::close(rd);
    writer.join();
    cr_assert(w.err == EPIPE && w.lines == 0 && w.cut, "err %d lines %zu cut %d", w.err, w.lines,
              w.cut);
    rd = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    std::string got;  // what the pipe still holds of the cut line, then the next write
    const auto drain = [&] {
        for (ssize_t n; (n = ::read(rd, buf, sizeof buf)) > 0;) {
            got.append(buf, static_cast<std::size_t>(n));
        }
    };
    drain();
    const AuditFile::Written next = (*file)->write("{\"b\":1}\n", 1);
    cr_assert(next.err == 0 && next.lines == 1);
    drain();
    ::close(rd);
    cr_assert(got.ends_with("x\n{\"b\":1}\n"), "the next line merged: ...%s",
              got.substr(got.size() > 40 ? got.size() - 40 : 0).c_str());
    cr_assert_eq(std::count(got.begin(), got.end(), '\n'), 2);
    fs::remove_all(dir);
}

// The queue full is "not writable" too, until the writer has taken it.
Test(audit_file, a_full_queue_is_not_writable_until_drained, .timeout = 30) {
    const std::string dir = temp_dir();
    const std::string fifo = dir + "/audit.fifo";
    cr_assert_eq(::mkfifo(fifo.c_str(), 0600), 0);
    const int rd = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    (void)::fcntl(rd, F_SETPIPE_SZ, 4096);
    auto o = file_options(fifo);
    o.queue_capacity = 4;
    o.required = true;
    auto a = must_start(o);
    cr_assert(a->required() && !a->must_refuse());
    for (int i = 0; i < 100 && a->writable(); ++i) {
        (void)a->record(event(i));  // the pipe fills, the writer blocks, the queue fills
    }
    cr_assert_not(a->writable());
    cr_assert(a->must_refuse());
    (void)::fcntl(rd, F_SETFL, 0);
    std::thread reader([rd] {
        char buf[65536];
        while (::read(rd, buf, sizeof buf) > 0) {
        }
    });
    cr_assert(eventually([&] { return a->writable(); }), "writable() after the queue drained");
    a->stop();
    reader.join();
    ::close(rd);
    fs::remove_all(dir);
}

// ---- item 7: what the file may be ------------------------------------------------------

Test(audit_file, a_symlink_is_never_followed) {
    const std::string dir = temp_dir();
    const std::string target = dir + "/elsewhere.jsonl";
    std::ofstream(target) << "";
    ::chmod(target.c_str(), 0600);
    const std::string link = dir + "/audit.jsonl";
    cr_assert_eq(::symlink(target.c_str(), link.c_str()), 0);
    const auto r = Auditor::start(file_options(link));
    cr_assert_not(r.ok());
    const std::string what = r.error().what();
    cr_assert(contains_any(what, link + " is a symbolic link"), "%s", what.c_str());
    const auto checked = lj::proxy::check_audit_file(link);
    cr_assert(!checked.ok() && contains_any(checked.error().message, "symbolic link"), "%s",
              describe(checked).c_str());
    // A dangling link (where the target would be created) is refused the same way.
    const std::string dangling = dir + "/dangling.jsonl";
    cr_assert_eq(::symlink((dir + "/new.jsonl").c_str(), dangling.c_str()), 0);
    cr_assert_not(Auditor::start(file_options(dangling)).ok());
    cr_assert(!fs::exists(dir + "/new.jsonl"), "created through the link");
    cr_assert_eq(fs::file_size(target), 0u);
    fs::remove_all(dir);
}

Test(audit_file, a_file_others_may_write_is_refused) {
    const std::string dir = temp_dir();
    const std::string path = dir + "/audit.jsonl";
    std::ofstream(path) << "";
    for (const mode_t mode : {0666U, 0620U, 0602U}) {
        cr_assert_eq(::chmod(path.c_str(), mode), 0);
        const auto r = Auditor::start(file_options(path));
        cr_assert_not(r.ok(), "mode %o accepted", mode);
        cr_assert(contains_any(r.error().what(), "writable by other users") &&
                      contains_any(r.error().what(), "chmod 600 " + path),
                  "%s", r.error().what().c_str());
        cr_assert_not(lj::proxy::check_audit_file(path).ok(), "check_audit_file, mode %o", mode);
    }
    cr_assert_eq(fs::file_size(path), 0u, "nothing was written");
    fs::remove_all(dir);
}

Test(audit_file, a_file_of_another_user_is_refused) {
    if (::geteuid() != 0) {
        cr_skip_test("needs root to give a file to another user (uid %u)", ::geteuid());
    }
    const std::string dir = temp_dir();
    const std::string path = dir + "/audit.jsonl";
    std::ofstream(path) << "";
    cr_assert_eq(::chmod(path.c_str(), 0644), 0);
    cr_assert_eq(::chown(path.c_str(), 65534, 65534), 0);  // planted by "nobody"
    const auto r = Auditor::start(file_options(path));
    cr_assert_not(r.ok());
    cr_assert(contains_any(r.error().what(), "belongs to uid 65534"), "%s",
              r.error().what().c_str());
    const auto checked = lj::proxy::check_audit_file(path);
    cr_assert(!checked.ok() && contains_any(checked.error().message, "belongs to uid 65534"), "%s",
              describe(checked).c_str());
    cr_assert_eq(fs::file_size(path), 0u);
    fs::remove_all(dir);
}

Test(audit_file, a_file_others_may_read_is_made_0600) {
    const std::string dir = temp_dir();
    const std::string path = dir + "/audit.jsonl";
    std::ofstream(path) << "";
    cr_assert_eq(::chmod(path.c_str(), 0644), 0);
    StderrCapture err(dir + "/stderr.txt");
    auto a = must_start(file_options(path));
    a->stop();
    err.restore();
    struct stat st {};
    cr_assert_eq(::stat(path.c_str(), &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600u, "mode %o", st.st_mode & 0777);
    const auto said = err.lines();
    cr_assert(said.size() == 1 && contains_any(said[0], "(mode 0644): its mode is now 0600"), "%s",
              said.empty() ? "(nothing)" : said[0].c_str());
    // A new file is created 0600, whatever the umask allows.
    const mode_t old = ::umask(0);
    auto b = must_start(file_options(dir + "/new.jsonl"));
    ::umask(old);
    cr_assert_eq(::stat((dir + "/new.jsonl").c_str(), &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600u, "mode %o", st.st_mode & 0777);
    fs::remove_all(dir);
}

Test(audit_file, a_deleted_file_is_created_again, .timeout = 30) {
    const std::string dir = temp_dir();
    const std::string path = dir + "/audit.jsonl";
    StderrCapture err(dir + "/stderr.txt");
    auto a = must_start(file_options(path));
    cr_assert(a->record(event(1)));
    cr_assert(eventually([&] { return a->written() == 1; }));
    cr_assert_eq(::unlink(path.c_str()), 0);
    cr_assert(a->record(event(2)));
    cr_assert(eventually([&] { return a->written() == 2; }));
    a->stop();
    err.restore();
    const auto lines = parse_all(slurp(path));
    cr_assert(lines.size() == 1 && lines[0]["seq"] == 2, "%s", slurp(path).c_str());
    const auto said = err.lines();
    cr_assert(said.size() == 1 && contains_any(said[0], path + " was deleted: created it again"),
              "%s", said.empty() ? "(nothing)" : said[0].c_str());
    fs::remove_all(dir);
}

// logrotate's default: rename the file, create a new one, then (postrotate) SIGHUP. The
// writer follows the new file by itself; reopen() (SIGHUP) also makes a file that was only
// renamed (nocreate).
Test(audit_file, rotation_by_rename_and_by_reopen, .timeout = 30) {
    const std::string dir = temp_dir();
    const std::string path = dir + "/audit.jsonl";
    StderrCapture err(dir + "/stderr.txt");
    auto a = must_start(file_options(path));
    cr_assert(a->record(event(1)));
    cr_assert(eventually([&] { return a->written() == 1; }));
    cr_assert_eq(::rename(path.c_str(), (path + ".1").c_str()), 0);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);  // "create"
    ::close(fd);
    cr_assert(a->record(event(2)));
    cr_assert(eventually([&] { return a->written() == 2; }));
    cr_assert_eq(::rename(path.c_str(), (path + ".2").c_str()), 0);  // "nocreate"
    cr_assert(a->record(event(3)));
    cr_assert(eventually([&] { return a->written() == 3; }));
    a->reopen();
    cr_assert(eventually([&] { return fs::exists(path); }), "reopen() did not create the file");
    cr_assert(a->record(event(4)));
    a->stop();
    err.restore();
    const auto seqs = [&](const std::string& p) {
        std::vector<std::uint64_t> out;
        for (const json& j : parse_all(slurp(p))) {
            out.push_back(j["seq"].get<std::uint64_t>());
        }
        return out;
    };
    cr_assert(seqs(path + ".1") == std::vector<std::uint64_t>{1});
    cr_assert(seqs(path + ".2") == (std::vector<std::uint64_t>{2, 3}));
    cr_assert(seqs(path) == std::vector<std::uint64_t>{4});
    fs::remove_all(dir);
}

// SPDX-License-Identifier: Apache-2.0
#include "landjail/supervisor/procfs.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string_view>

#include "proxy/base/fd.hpp"

namespace lj::jail {
namespace {

/// Reads a small /proc file whole (one read(2): they are generated at once).
std::optional<std::string> read_small(int fd) {
    if (fd < 0) {
        return std::nullopt;
    }
    char buf[4096];
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) {
        return std::nullopt;
    }
    return std::string(buf, static_cast<std::size_t>(n));
}

/// "PID (COMM) STATE PPID PGRP SESSION ...": COMM may hold spaces and parentheses, so the
/// fields are counted from the last ')'.
std::optional<ProcStat> parse_stat(const std::string& text) {
    const std::size_t close = text.rfind(')');
    if (close == std::string::npos) {
        return std::nullopt;
    }
    ProcStat s;
    s.pid = static_cast<pid_t>(std::atol(text.c_str()));
    std::istringstream rest(text.substr(close + 1));
    std::string state, skip;
    long ppid = -1, pgrp = -1, session = -1;
    if (!(rest >> state >> ppid >> pgrp >> session)) {
        return std::nullopt;
    }
    for (int field = 7; field < 22 && rest >> skip; ++field) {  // tty_nr … itrealvalue
    }
    if (!(rest >> s.start)) {
        return std::nullopt;  // field 22: starttime
    }
    s.ppid = static_cast<pid_t>(ppid);
    s.pgrp = static_cast<pid_t>(pgrp);
    s.session = static_cast<pid_t>(session);
    return s;
}

}  // namespace

std::string proc_path(pid_t pid, const char* leaf) {
    return "/proc/" + std::to_string(pid) + "/" + leaf;
}

std::string exe_of(pid_t pid) {
    char buf[4096];
    const ssize_t n = readlink(proc_path(pid, "exe").c_str(), buf, sizeof buf - 1);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

std::optional<std::string> proc_field(const std::string& path, const std::string& key) {
    const UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    const auto all = read_small(fd.get());
    if (!all) {
        return std::nullopt;
    }
    const std::string_view text(*all);
    std::size_t at = 0;
    while (at < text.size()) {
        const std::size_t end = std::min(text.find('\n', at), text.size());
        const std::string_view line = text.substr(at, end - at);
        if (line.substr(0, key.size()) == key) {
            std::size_t i = key.size();
            while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) {
                ++i;
            }
            return std::string(line.substr(i));
        }
        at = end + 1;
    }
    return std::nullopt;
}

std::optional<ProcStat> read_stat(pid_t pid) {
    const UniqueFd fd(open(proc_path(pid, "stat").c_str(), O_RDONLY | O_CLOEXEC));
    const auto text = read_small(fd.get());
    return text ? parse_stat(*text) : std::nullopt;
}

std::optional<ProcStat> read_stat_at(int dirfd) {
    const UniqueFd fd(openat(dirfd, "stat", O_RDONLY | O_CLOEXEC));
    const auto text = read_small(fd.get());
    return text ? parse_stat(*text) : std::nullopt;
}

std::vector<pid_t> group_members(pid_t pgrp) {
    std::vector<pid_t> out;
    const std::unique_ptr<DIR, int (*)(DIR*)> dir(opendir("/proc"), closedir);
    if (!dir) {
        return out;
    }
    while (const dirent* e = readdir(dir.get())) {
        const auto pid = static_cast<pid_t>(std::atol(e->d_name));
        if (pid <= 0) {
            continue;
        }
        if (const auto s = read_stat(pid); s && s->pgrp == pgrp) {
            out.push_back(pid);
        }
    }
    return out;
}

std::optional<pid_t> tgid_of(pid_t tid) {
    const auto tgid = proc_field(proc_path(tid, "status"), "Tgid:");
    return tgid ? std::optional<pid_t>(std::atoi(tgid->c_str())) : std::nullopt;
}

std::optional<long> fd_flags(pid_t pid, int fd) {
    const auto text =
        proc_field(proc_path(pid, ("fdinfo/" + std::to_string(fd)).c_str()), "flags:");
    return text ? std::optional<long>(std::strtol(text->c_str(), nullptr, 8)) : std::nullopt;
}

std::optional<int> unix_socket_type(pid_t tid, int fd) {
    char link[64];
    const ssize_t n = readlink(proc_path(tid, ("fd/" + std::to_string(fd)).c_str()).c_str(), link,
                               sizeof link - 1);
    if (n <= 0) {
        return std::nullopt;
    }
    const std::string target(link, static_cast<std::size_t>(n));
    if (target.rfind("socket:[", 0) != 0) {
        return std::nullopt;
    }
    const std::string inode = target.substr(8, target.size() - 9);
    std::ifstream in(proc_path(tid, "net/unix"));
    std::string line;
    std::getline(in, line);  // header: Num RefCount Protocol Flags Type St Inode Path
    while (std::getline(in, line)) {
        std::istringstream f(line);
        std::string num, refs, proto, flags, type, state, ino;
        f >> num >> refs >> proto >> flags >> type >> state >> ino;
        if (ino == inode) {
            return static_cast<int>(std::strtol(type.c_str(), nullptr, 16));
        }
    }
    return std::nullopt;
}

pid_t pidfd_target(int fd) {
    const auto pid =
        proc_field(proc_path(getpid(), ("fdinfo/" + std::to_string(fd)).c_str()), "Pid:");
    if (pid) {
        return std::atoi(pid->c_str());  // "-1" once it has exited
    }
    const auto stat = read_stat_at(fd);
    return stat ? stat->pid : 0;
}

}  // namespace lj::jail

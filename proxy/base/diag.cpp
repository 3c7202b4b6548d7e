// SPDX-License-Identifier: Apache-2.0
#include "proxy/base/diag.hpp"

#include <unistd.h>

#include <atomic>
#include <cstring>
#include <system_error>

#include "proxy/base/fd.hpp"

namespace lj::diag {
namespace {

std::string& program_name() {
    static std::string name = "landjail";
    return name;
}

/// 0 error, 1 warn, 2 info, 3 debug.
std::atomic<int> g_level{1};

void line(std::string_view kind, std::string_view message) {
    std::string text = program_name() + ": ";
    text += kind;
    text += message;
    text += '\n';
    (void)write_all(STDERR_FILENO, text);
}

}  // namespace

void set_program(std::string_view name) {
    program_name() = std::string(name);
}

const std::string& program() {
    return program_name();
}

void error(std::string_view message) {
    line("", message);
}

void set_level(std::string_view level) {
    constexpr std::string_view kNames[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; ++i) {
        if (level == kNames[i]) {
            g_level = i;
        }
    }
}

void warn(std::string_view message) {
    if (g_level >= 1) {
        line("warning: ", message);
    }
}

void info(std::string_view message) {
    if (g_level >= 2) {
        line("", message);
    }
}

void note(std::string_view message) {
    line("", message);
}

void bug(std::string_view message) {
    line("internal error: ", std::string(message) + " (please report)");
}

std::string errno_name(int err) {
    const char* name = ::strerrorname_np(err);
    return name != nullptr ? std::string(name) : std::to_string(err);
}

std::string errno_text(int err) {
    return std::generic_category().message(err);
}

std::string syscall_error(std::string_view what, int err) {
    return std::string(what) + ": " + errno_text(err);
}

}  // namespace lj::diag

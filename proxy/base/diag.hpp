// SPDX-License-Identifier: Apache-2.0
// Diagnostics both programs print (bubblewrap's die_with_error, go-landlock's bug()): one
// line each, written with one write(2) so that lines from other writers never split it, and
// prefixed with the program's name. errno is named the same way everywhere.
//
// Thread-safety: every function may be called from any thread after set_program().
#pragma once

#include <string>
#include <string_view>

namespace lj::diag {

/// The prefix of every line: "landjail" or "landjail-proxy". Call once, first thing in main.
void set_program(std::string_view name);
const std::string& program();

/// The log level (error, warn, info, debug; the Settings' log_level) below which warn() and
/// info() print nothing. Before it is set: warn. Unknown names leave it unchanged.
void set_level(std::string_view level);

/// "PROGRAM: MESSAGE".
void error(std::string_view message);
/// "PROGRAM: warning: MESSAGE", unless the level is error.
void warn(std::string_view message);
/// "PROGRAM: MESSAGE" at level info or debug only (a fact worth knowing, not a problem).
void info(std::string_view message);
/// "PROGRAM: MESSAGE" for what is neither (a notice the user should see).
void note(std::string_view message);
/// "PROGRAM: internal error: MESSAGE (please report)": a broken invariant.
void bug(std::string_view message);

/// The symbolic name of an errno value ("ENOSPC"), or its number when it has none.
std::string errno_name(int err);
/// Its description ("No space left on device"), thread-safe.
std::string errno_text(int err);
/// "WHAT: description" for the errno value `err` (read errno first, then call this).
std::string syscall_error(std::string_view what, int err);

}  // namespace lj::diag

// Private to the CLI: shared helpers for subcommands (error reporting, exit codes, output).
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>

#include "quiver/core/result.h"

namespace quiver::cli {

/// Exit codes: 0 ok, 1 runtime failure (I/O, corrupt data), 2 bad usage or input, 70 internal error.
int exit_code(ErrorCode code) noexcept;

/// Prints "quiver <command>: error: <message>" to stderr and returns the exit code for it.
int report(std::string_view command, const Error& error);

/// Runs `body` as the action of subcommand `sub`; its exit code becomes the process's.
/// Each subcommand file calls this once from its add_*_command function.
void set_action(CLI::App* sub, std::function<int()> body);

/// The exit code chosen by the subcommand that ran (set by set_action).
int action_exit_code() noexcept;

/// Writes `text` to `path`, or to stdout when path is "-".
Status write_text(const std::string& path, const std::string& text);

/// `quiver bench`: forwards to the quiver-bench driver (the only subcommand not self-registered,
/// since it needs argv[0]).
void add_bench_command(CLI::App& app, const std::string& argv0);

}  // namespace quiver::cli

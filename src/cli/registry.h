// Private to the CLI: subcommands register themselves, so adding one touches only its own file.
//
//   static const quiver::cli::CommandRegistrar kRegister{40, &add_eval_command};
//
// `order` sorts the subcommands in `quiver --help`.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

namespace quiver::cli {

using AddCommandFn = void (*)(CLI::App& app);

struct CommandRegistrar {
    CommandRegistrar(int order, AddCommandFn add);
};

/// Adds every registered subcommand to `app`, in order.
void add_registered_commands(CLI::App& app);

}  // namespace quiver::cli

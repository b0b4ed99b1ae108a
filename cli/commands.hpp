// The subcommands of the `barrage` tool. Each registers its flags on the
// parent CLI::App and hands back what to run once parsing succeeded, so
// main.cpp stays a switchboard and no command runs inside CLI11's callbacks
// (where an exception would be reported as a parse error).
#pragma once

#include <functional>

namespace CLI {
class App;
}

namespace barrage::cli {

struct Command {
  CLI::App* app = nullptr;   // the parsed() flag tells main which one was chosen
  std::function<int()> run;  // returns the process exit code
};

Command add_demo_command(CLI::App& parent);
Command add_mock_server_command(CLI::App& parent);
Command add_run_command(CLI::App& parent);
Command add_stats_command(CLI::App& parent);
Command add_merge_command(CLI::App& parent);
Command add_version_command(CLI::App& parent);

}  // namespace barrage::cli

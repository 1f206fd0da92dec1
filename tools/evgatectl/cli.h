// evgatectl: the command line for operators, installers and integrators.
// kubectl-like: `evgatectl [--server HOST:PORT] [-o table|json] COMMAND ...`.
//
// Every command is one or a few gRPC calls to an evgate server; the CLI holds
// no state. Exit codes: 0 ok, 1 the server refused or reported a failure,
// 2 usage error, 3 server unreachable, 4 the server does not host the service
// the command needs.
#ifndef EVGATE_TOOLS_EVGATECTL_CLI_H_
#define EVGATE_TOOLS_EVGATECTL_CLI_H_

#include <map>
#include <ostream>
#include <string>
#include <vector>

namespace evgate::ctl {

enum ExitCode : int {
  kExitOk = 0,
  kExitFailure = 1,
  kExitUsage = 2,
  kExitUnreachable = 3,
  kExitNotHosted = 4,
};

// Runs one evgatectl invocation; `argv` excludes the program name. Output
// goes to `out`, diagnostics (one line each) to `err`. Thread-compatible.
int RunCli(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err);
// The same, with EVGATECTL_* values from `env` where no flag is given.
int RunCli(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
           std::ostream& out, std::ostream& err);
// Flag name -> the environment variable that provides it.
const std::map<std::string, std::string>& EnvironmentFlags();

}  // namespace evgate::ctl

#endif  // EVGATE_TOOLS_EVGATECTL_CLI_H_

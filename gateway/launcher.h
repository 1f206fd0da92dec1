// Runs evgate services as a process: loads and validates site.yaml, builds
// the selected services, hosts them on one gRPC server (health + reflection),
// and shuts down gracefully on SIGTERM/SIGINT.
//
// Used by `evgate run` (any subset of services in one process) and by each
// service's own binary (one service, for containers).
#ifndef EVGATE_GATEWAY_LAUNCHER_H_
#define EVGATE_GATEWAY_LAUNCHER_H_

#include <ostream>
#include <string>
#include <vector>

namespace evgate::gateway {

// Process exit codes, the same for `evgate` and every service binary.
enum ExitCode : int {
  kExitOk = 0,
  kExitInvalidConfig = 1,  // site.yaml has errors (all of them are printed)
  kExitUsage = 2,          // bad command line or unknown / unavailable service
  kExitCannotListen = 3,   // the gRPC address is taken or cannot be bound
  kExitStartFailed = 4,    // a service failed to start
};

struct RunOptions {
  std::string site_path;
  std::string services;  // comma-separated; "" = every service in this build
  std::string listen;    // overrides services.api_listen when not empty
};

// Runs until SIGTERM/SIGINT. Blocks those signals in the calling thread first,
// so call it from main() before starting any thread.
int Run(const RunOptions& options);

// `evgate validate FILE`: prints "OK" or every error, one per line.
int Validate(const std::string& site_path, std::ostream& out);

// The command line shared by `evgate run` and the service binaries:
// `--site FILE [--services a,b] [--listen HOST:PORT] [--log-level LEVEL]`.
// `fixed_service` (for a service binary) forbids --services.
int RunFromArgs(const std::vector<std::string>& argv, const std::string& fixed_service);

}  // namespace evgate::gateway

#endif  // EVGATE_GATEWAY_LAUNCHER_H_

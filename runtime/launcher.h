// Runs evgate services as a process: loads and validates site.yaml, builds
// the selected services of a catalog, hosts them on one gRPC server (health +
// reflection, TLS and authorization outside the demo), and shuts down
// gracefully on SIGTERM/SIGINT.
//
// Used by each service's own binary (a catalog of one, for containers) and by
// `evgate run` (gateway/: every service, any subset in one process).
#ifndef EVGATE_RUNTIME_LAUNCHER_H_
#define EVGATE_RUNTIME_LAUNCHER_H_

#include <ostream>
#include <string>
#include <vector>

#include "runtime/service_catalog.h"

namespace evgate {

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
  std::string services;  // comma-separated; "" = every service of the catalog
  std::string listen;    // overrides services.api_listen when not empty
};

// Runs until SIGTERM/SIGINT. Blocks those signals in the calling thread first,
// so call it from main() before starting any thread.
int Run(const RunOptions& options, const ServiceCatalog& catalog);

// `evgate validate FILE`: prints "OK" or every error, one per line.
int Validate(const std::string& site_path, std::ostream& out);

// The command line shared by `evgate run` and the service binaries:
// `--site FILE [--services a,b] [--listen HOST:PORT] [--log-level LEVEL]`.
// `fixed_service` (for a service binary) forbids --services.
int RunFromArgs(const std::vector<std::string>& argv, const ServiceCatalog& catalog,
                const std::string& fixed_service);

}  // namespace evgate

#endif  // EVGATE_RUNTIME_LAUNCHER_H_

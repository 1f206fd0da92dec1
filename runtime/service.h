// A service that the evgate process host can run: the load balancer, the
// session service, a bus owner, ... Each is built once from the site config
// and then hosted either alone (its own binary / container) or together with
// others in `evgate run`, on one gRPC server.
#ifndef EVGATE_RUNTIME_SERVICE_H_
#define EVGATE_RUNTIME_SERVICE_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace grpc {
class Service;
}  // namespace grpc

namespace evgate {

// Thread-compatible: the host calls these methods from one thread, in order:
// grpc_services(), health_names(), Start(), Stop().
class Service {
 public:
  virtual ~Service() = default;

  // Short name used on the command line, in site.yaml and in logs, e.g.
  // "load_balancer".
  virtual std::string_view name() const = 0;

  // gRPC services to register on the host's server. Owned by this Service and
  // valid until it is destroyed.
  virtual std::vector<grpc::Service*> grpc_services() = 0;

  // Fully qualified names reported by grpc.health.v1, e.g.
  // "evgate.v1.LoadBalancer".
  virtual std::vector<std::string> health_names() const = 0;

  // Called once after the server listens: start background work. An error
  // stops the whole process with that message.
  virtual absl::Status Start() { return absl::OkStatus(); }

  // Called once at shutdown, before the server stops accepting calls. Must
  // return promptly (within a second) and leave devices in a safe state.
  virtual void Stop() {}
};

}  // namespace evgate

#endif  // EVGATE_RUNTIME_SERVICE_H_

// A service that the evgate process host can run: the load balancer, the
// session service, a bus owner, ... Each is built once from the site config
// and then hosted either alone (its own binary / container) or together with
// others in `evgate run`, on one gRPC server.
#ifndef EVGATE_RUNTIME_SERVICE_H_
#define EVGATE_RUNTIME_SERVICE_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace grpc {
class Channel;
class Service;
}  // namespace grpc

namespace evgate {

// What a hosted service may know about the process that hosts it.
struct HostInfo {
  int port = 0;  // the port actually bound (useful with port 0)
  // Health names of every service in this process, e.g.
  // "evgate.v1.DeviceDriver": a service that needs another one uses it
  // in-process when it is here.
  std::vector<std::string> hosted;
  // A channel to this process's own server that bypasses the network.
  std::function<std::shared_ptr<grpc::Channel>()> in_process_channel;

  bool Hosts(const std::string& health_name) const {
    for (const std::string& name : hosted) {
      if (name == health_name) return true;
    }
    return false;
  }
};

// Thread-compatible: the host calls these methods from one thread, in order:
// grpc_services(), health_names(), OnHosted(), Start(), Stop().
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

  // Called once after the server listens, before any Start(): where the
  // service runs, and with whom.
  virtual void OnHosted(const HostInfo& /*host*/) {}

  // Called once after the server listens: start background work. An error
  // stops the whole process with that message.
  virtual absl::Status Start() { return absl::OkStatus(); }

  // Called once at shutdown, before the server stops accepting calls. Must
  // return promptly (within a second) and leave devices in a safe state.
  virtual void Stop() {}
};

}  // namespace evgate

#endif  // EVGATE_RUNTIME_SERVICE_H_

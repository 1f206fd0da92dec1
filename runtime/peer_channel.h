// The channel from one evgate service to another it needs (the load balancer
// to the drivers and the session service, the OCPP bridge to the session
// service): site.yaml `services.endpoints.<service>.endpoint` when set (TLS
// and client certificate from `services.tls`, plaintext on insecure demo
// sites), else the service in this process when it is hosted here, else
// none. Thread-safe.
#ifndef EVGATE_RUNTIME_PEER_CHANNEL_H_
#define EVGATE_RUNTIME_PEER_CHANNEL_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/channel.h"
#include "runtime/service.h"
#include "site_controller/config/site_config.h"

namespace evgate {

struct PeerChannel {
  // nullptr when the peer is neither configured nor in this process.
  std::shared_ptr<grpc::Channel> channel;
  // "host:port", "in-process" or "" (none), for logs.
  std::string where;
};

// `service` is the site.yaml name ("session"), `health_name` its gRPC
// service ("evgate.v1.SessionService"). Fails with the file's name when the
// TLS material of `services.tls` cannot be read.
absl::StatusOr<PeerChannel> ChannelToPeer(const site::SiteConfig& config, const HostInfo& host,
                                          const std::string& service,
                                          const std::string& health_name);

}  // namespace evgate

#endif  // EVGATE_RUNTIME_PEER_CHANNEL_H_

// Hosts one or more evgate Services on one gRPC server, with the standard
// grpc.health.v1 service and server reflection.
//
// Outside the demo every call is authorized against ServerOptions::authorizer
// (docs/security.md); health and reflection stay open.
//
// Health: the empty service name and each hosted service's health names are
// SERVING once Start() succeeded, NOT_SERVING from the start of Shutdown().
// Thread-safe after Start() returns.
#ifndef EVGATE_RUNTIME_SERVER_HOST_H_
#define EVGATE_RUNTIME_SERVER_HOST_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/server.h"
#include "runtime/auth.h"
#include "runtime/service.h"

namespace evgate {

struct ServerTls {
  std::string cert_file;  // PEM server certificate chain
  std::string key_file;   // PEM private key
  // Optional: the CA that signs client certificates. A client that presents a
  // certificate must chain to it (the handshake fails otherwise); a client
  // without one may still authenticate with a bearer token.
  std::string client_ca_file;
};

struct ServerOptions {
  // host:port; port 0 picks a free port (see ServerHost::port()).
  std::string listen;
  // Plaintext is only for the demo and tests (site.yaml `insecure_demo`).
  bool insecure = false;
  ServerTls tls;
  // Decides every call when TLS is on (runtime/auth_grpc.h); required then.
  // Not owned; must outlive the ServerHost. Ignored with `insecure`: the demo
  // is open to anyone who reaches the port.
  const Authorizer* authorizer = nullptr;
};

class ServerHost {
 public:
  // Builds the server, listens, marks every service SERVING and calls each
  // service's Start(). Fails with a message a person can act on when the
  // address is taken (kUnavailable), TLS files cannot be read or TLS has no
  // authorizer (kFailedPrecondition) or a service fails to start.
  static absl::StatusOr<std::unique_ptr<ServerHost>> Start(const ServerOptions& options,
                                                           std::vector<Service*> services);

  ~ServerHost();

  // The port actually bound (useful with port 0).
  int port() const { return port_; }

  // Marks everything NOT_SERVING, stops the services, then the server, giving
  // in-flight calls up to `grace` to finish. Idempotent.
  void Shutdown(absl::Duration grace);

 private:
  ServerHost() = default;

  std::unique_ptr<grpc::Server> server_;
  std::vector<Service*> services_;
  int port_ = 0;
  bool shut_down_ = false;
};

// Checks that `listen` (host:port) can be bound, so that "address already in
// use" is reported as such before gRPC's generic failure.
absl::Status CheckCanListen(const std::string& listen);

}  // namespace evgate

#endif  // EVGATE_RUNTIME_SERVER_HOST_H_

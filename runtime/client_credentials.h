// Channel credentials for one evgate service calling another (load balancer
// -> drivers, session -> drivers) over the network, as site.yaml
// services.tls says. The in-process channel of `evgate run` does not use
// these. Stateless; thread-safe.
#ifndef EVGATE_RUNTIME_CLIENT_CREDENTIALS_H_
#define EVGATE_RUNTIME_CLIENT_CREDENTIALS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/security/credentials.h"

namespace evgate {

struct ClientTls {
  std::string ca_file;    // PEM roots the server's certificate must chain to
  std::string cert_file;  // optional PEM client certificate chain
  std::string key_file;   // its private key (with cert_file)
};

// Plaintext when `insecure` (insecure_demo); TLS trusting `tls.ca_file`,
// presenting the client certificate when one is given, otherwise. Fails with
// the file's name when one cannot be read (kFailedPrecondition).
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeClientCredentials(
    bool insecure, const ClientTls& tls);

}  // namespace evgate

#endif  // EVGATE_RUNTIME_CLIENT_CREDENTIALS_H_

// evgate-probe: the gRPC health check every evgate image carries, for
// Kubernetes / podman exec probes (scratch images have no curl or
// grpc_health_probe). Asks grpc.health.v1.Health/Check of one server.
#ifndef EVGATE_TOOLS_PROBE_PROBE_H_
#define EVGATE_TOOLS_PROBE_PROBE_H_

#include <ostream>
#include <string>
#include <vector>

namespace evgate::probe {

// Exit codes: what a probe's caller (kubelet, podman, a script) acts on.
enum ProbeExit : int {
  kServing = 0,      // the server (or the named service) answers SERVING
  kNotServing = 1,   // it answered NOT_SERVING, or does not host that service
  kUsage = 2,        // bad command line or unreadable TLS files
  kUnreachable = 3,  // no answer within the timeout (not listening, TLS refused)
};

// `evgate-probe [--address HOST:PORT] [--service NAME] [--timeout-ms N]
//  [--ca FILE [--cert FILE --key FILE]]`; prints one line on failure to
// `err`. Without --ca / --cert / --key the environment's EVGATE_PROBE_CA,
// EVGATE_PROBE_CERT, EVGATE_PROBE_KEY are used (TLS when a CA is given,
// plaintext otherwise).
int RunProbe(const std::vector<std::string>& argv, std::ostream& err);

}  // namespace evgate::probe

#endif  // EVGATE_TOOLS_PROBE_PROBE_H_

// absl::Status <-> grpc::Status. Both use the canonical codes with the same
// numbers, so the code and the message pass through unchanged; the one place
// every service and client converts at its RPC boundary.
//
// Thread-safety: pure functions; thread-safe.
#ifndef EVGATE_RUNTIME_GRPC_STATUS_H_
#define EVGATE_RUNTIME_GRPC_STATUS_H_

#include <string>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace evgate {

inline grpc::Status ToGrpc(const absl::Status& status) {
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

inline absl::Status FromGrpc(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

}  // namespace evgate

#endif  // EVGATE_RUNTIME_GRPC_STATUS_H_

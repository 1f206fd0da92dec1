// Reading a secret (a bearer token, an OCPP AuthorizationKey) from the file
// site.yaml names, so that site.yaml itself never holds one. Surrounding
// whitespace (the newline an editor adds) is not part of the secret.
// Thread-safe.
#ifndef EVGATE_RUNTIME_SECRET_FILE_H_
#define EVGATE_RUNTIME_SECRET_FILE_H_

#include <string>

#include "absl/status/statusor.h"

namespace evgate {

// FAILED_PRECONDITION naming the file (never its content) when it cannot be
// read or holds nothing but whitespace.
absl::StatusOr<std::string> ReadSecretFile(const std::string& path);

}  // namespace evgate

#endif  // EVGATE_RUNTIME_SECRET_FILE_H_

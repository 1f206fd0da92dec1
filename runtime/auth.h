// Who may call which RPC of an evgate server (docs/security.md).
//
// Every RPC of every service in proto/evgate/v1 needs one Access level
// (RpcAccessTable()); a caller is a Principal from site.yaml `services.auth`,
// identified by its mTLS client certificate (subject CN or a SAN, the chain
// verified against the site CA by the TLS layer) or by a bearer token whose
// expected value is read from a file. Roles grant access levels:
//
//   viewer      read: List/Get/Watch and the allocation dry run
//   integrator  read + integrate: dynamic limits, session start/stop and
//               card checks (a building-management or fleet system)
//   operator    read + integrate + operate: cards, priorities, device and
//               charger commands, V2X and grid mode, the simulator
//   controller  control only: ApplySetpoints, GetControllerSequence (the
//               load balancer's identity; give it viewer too to read)
//
// Health and reflection are open to anyone who completes the TLS handshake.
//
// Authorizer is immutable after Create() apart from its counters: Check() is
// thread-safe.
#ifndef EVGATE_RUNTIME_AUTH_H_
#define EVGATE_RUNTIME_AUTH_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace evgate {

enum class Role { kViewer, kIntegrator, kOperator, kController };

// What an RPC requires of its caller.
enum class Access {
  kOpen,       // health, reflection
  kRead,       // List/Get/Watch and dry runs
  kIntegrate,  // what a building-management or fleet system does
  kOperate,    // what the site's operator does
  kControl,    // the load balancer commanding the drivers
};

// "viewer", "integrator", "operator", "controller"; nullopt otherwise.
std::optional<Role> ParseRole(absl::string_view name);
absl::string_view RoleName(Role role);
absl::string_view AccessName(Access access);
// The names ParseRole accepts, for error messages.
const std::vector<std::string>& RoleNames();

// Whether `role` may call an RPC that requires `access`.
bool RoleGrants(Role role, Access access);

// Full method name ("/evgate.v1.DeviceDriver/ApplySetpoints") -> Access, for
// every RPC of proto/evgate/v1 (auth_test checks it against the generated
// descriptors). Methods of grpc.health.v1 and grpc.reflection are open by
// service prefix; any other method is refused.
const std::map<std::string, Access>& RpcAccessTable();
// The Access `method` requires; nullopt for a method evgate does not know.
std::optional<Access> RequiredAccess(absl::string_view method);

// A caller as site.yaml describes it: exactly one of certificate and
// token_file.
struct PrincipalSpec {
  std::string name;
  std::string certificate;  // matches the client certificate's CN or a SAN
  std::string token_file;   // the file holding the bearer token
  std::vector<Role> roles;
};

// What a call presented. Certificate identities only when the TLS layer
// verified the chain.
struct CallerCredentials {
  std::vector<std::string> certificate_identities;  // CN and SANs
  // The value of the `authorization` metadata, if any.
  std::optional<std::string> authorization;
};

struct AuthVerdict {
  // OK, UNAUTHENTICATED or PERMISSION_DENIED with a message that names the
  // principal and the role needed, never a secret.
  absl::Status status;
  std::string principal;  // the principal it was identified as, if any
};

// Totals since start, for the metrics exporter.
struct AuthCounts {
  uint64_t allowed = 0;
  uint64_t unauthenticated = 0;
  uint64_t permission_denied = 0;
};

class Authorizer {
 public:
  // Reads each principal's token file (trailing whitespace trimmed; only its
  // SHA-256 is kept). Fails with the file's name when one cannot be read, is
  // empty, or two principals share a name, certificate identity or token.
  static absl::StatusOr<std::unique_ptr<Authorizer>> Create(std::vector<PrincipalSpec> principals);

  // Decides one call and counts the result. Denials are logged (method,
  // principal or "unknown caller", reason; never the token).
  AuthVerdict Check(absl::string_view method, const CallerCredentials& caller) const;

  AuthCounts counts() const;

 private:
  struct Principal {
    std::string name;
    std::string certificate;
    std::optional<std::array<uint8_t, 32>> token_sha256;
    std::vector<Role> roles;
  };
  explicit Authorizer(std::vector<Principal> principals) : principals_(std::move(principals)) {}
  AuthVerdict Decide(absl::string_view method, const CallerCredentials& caller) const;

  const std::vector<Principal> principals_;
  mutable std::atomic<uint64_t> allowed_{0};
  mutable std::atomic<uint64_t> unauthenticated_{0};
  mutable std::atomic<uint64_t> permission_denied_{0};
};

}  // namespace evgate

#endif  // EVGATE_RUNTIME_AUTH_H_

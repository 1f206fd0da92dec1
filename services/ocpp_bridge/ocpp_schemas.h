// The OCA's OCPP JSON schemas, one request and one response schema per
// action, compiled once with JsonSchema.
//
// The OCPP 1.6J set (`Ocpp16()`) is compiled into the binary from the pinned
// npm package ocpp-rpc 2.2.1 (`lib/schemas/ocpp1_6.json`, installed by
// tools/setup.sh; the build checks the version), so a deployed bridge needs
// no schema files and validates against exactly the schemas it was tested
// with. The file holds the 1.6 core and its security extension (e.g.
// SignCertificate, LogStatusNotification).
//
// Thread-safety: immutable after Parse; Ocpp16() is initialised once,
// thread-safely.
#ifndef EVGATE_SERVICES_OCPP_BRIDGE_OCPP_SCHEMAS_H_
#define EVGATE_SERVICES_OCPP_BRIDGE_OCPP_SCHEMAS_H_

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "services/ocpp_bridge/json_schema.h"

namespace evgate::ocpp {

class OcppSchemas {
 public:
  // Parses an ocpp-rpc schema file: a JSON array of schemas whose "$id" is
  // "urn:<Action>.req" / "urn:<Action>.conf" (1.6, 2.0.1) or
  // "urn:<Action>Request" / "urn:<Action>Response" (2.1), or "urn:<Action>"
  // for a 2.1 SEND message, which has no response. Every schema must compile
  // and every other action must have both.
  static absl::StatusOr<OcppSchemas> Parse(absl::string_view text);

  // The OCPP 1.6J set compiled into the binary.
  static const OcppSchemas& Ocpp16();

  // The schema of an action's CALL payload / CALLRESULT payload, or nullptr
  // for an action the set does not have (Response: or that has no response).
  // Action names are case-sensitive.
  const JsonSchema* Request(absl::string_view action) const;
  const JsonSchema* Response(absl::string_view action) const;

  // Every action, sorted.
  std::vector<std::string> Actions() const;

 private:
  struct Pair {
    std::optional<JsonSchema> request, response;
    bool send_only = false;
  };
  absl::flat_hash_map<std::string, Pair> actions_;
};

}  // namespace evgate::ocpp

#endif  // EVGATE_SERVICES_OCPP_BRIDGE_OCPP_SCHEMAS_H_

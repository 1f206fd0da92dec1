// A JSON Schema validator for the draft-07 subset the OCA's OCPP schemas use
// (1.6, 2.0.1 and 2.1 as shipped in npm ocpp-rpc 2.2.1), on nlohmann-json.
// No validator library is packaged by Debian that fits (see
// ARCHITECTURE.md), and the subset is small:
//
//   type (a name or a list), properties, required, additionalProperties
//   (false, true or a schema), items (one schema; additionalItems is then
//   meaningless and ignored, as draft-07 says), minItems, maxItems,
//   minLength, maxLength (in Unicode code points), minimum, maximum,
//   exclusiveMinimum, exclusiveMaximum (numbers, draft-07 style), multipleOf,
//   enum, const, format "date-time" (RFC 3339 section 5.6) and "uri"
//   (RFC 3986 absolute URI), $ref to "#" or "#/definitions/<name>".
//   Annotations ($schema, $id, $comment, comment, title, description,
//   default, examples, javaType) are accepted and have no effect.
//
// Anything else in a schema (another keyword, another format, a remote $ref)
// makes Compile fail, naming the keyword and where it is: a constraint this
// validator does not know is never silently skipped.
//
// multipleOf is checked on the quotient with a tolerance, so a decimal
// multipleOf works as a person reads it: 9.1 is a multiple of 0.1 although
// 9.1 / 0.1 is 90.99999999999999 in binary floating point.
//
// "integer" accepts any number without a fractional part (5 and 5.0), as
// draft-07 says.
//
// Thread-safety: a compiled JsonSchema is immutable; Validate is thread-safe.
#ifndef EVGATE_SERVICES_OCPP_BRIDGE_JSON_SCHEMA_H_
#define EVGATE_SERVICES_OCPP_BRIDGE_JSON_SCHEMA_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace evgate::ocpp {

// The keyword a value broke. The OCPP layer maps it to an OCPP-J error code.
enum class SchemaRule {
  kType,
  kRequired,
  kAdditionalProperty,
  kEnum,
  kConst,
  kMinLength,
  kMaxLength,
  kMinimum,
  kMaximum,
  kExclusiveMinimum,
  kExclusiveMaximum,
  kMultipleOf,
  kMinItems,
  kMaxItems,
  kFormat,
};

// The keyword's name as written in a schema ("maxLength").
const char* SchemaRuleName(SchemaRule rule);

struct SchemaViolation {
  SchemaRule rule;
  // JSON Pointer (RFC 6901) of the offending value; "" is the whole value.
  // For kRequired it is the object missing the property.
  std::string pointer;
  // What is wrong, for a person: "must be at most 20 characters, has 25".
  std::string message;
};

class JsonSchema {
 public:
  // Compiles `schema` (a draft-07 schema object of the subset above).
  static absl::StatusOr<JsonSchema> Compile(const nlohmann::json& schema);

  // The first violation found, depth first in the value's order, or nullopt
  // when `value` is valid.
  std::optional<SchemaViolation> Validate(const nlohmann::json& value) const;

 private:
  // One compiled schema object. `ref` >= 0 makes it an alias of another node
  // (draft-07 ignores a $ref's siblings; Compile refuses constraints beside
  // one rather than ignore them).
  struct Node {
    int ref = -1;
    uint8_t types = 0;  // bit set of Type; 0 = any type
    std::map<std::string, int, std::less<>> properties;
    std::vector<std::string> required;
    bool additional_allowed = true;
    int additional_schema = -1;
    int items = -1;
    std::optional<uint64_t> min_items, max_items, min_length, max_length;
    std::optional<double> minimum, maximum, exclusive_minimum, exclusive_maximum, multiple_of;
    std::vector<nlohmann::json> enum_values;
    std::optional<nlohmann::json> const_value;
    enum class Format { kNone, kDateTime, kUri } format = Format::kNone;
  };
  class Compiler;

  void Check(int node, const nlohmann::json& value, std::string& pointer,
             std::optional<SchemaViolation>& out) const;

  std::vector<Node> nodes_;  // nodes_[0] is the root
};

// RFC 3339 date-time ("2026-12-05T19:30:00Z", "...T19:30:00.5+01:00").
bool IsRfc3339DateTime(absl::string_view text);
// RFC 3986 absolute URI ("wss://csms.example/ocpp/CP1", "urn:x").
bool IsRfc3986Uri(absl::string_view text);

}  // namespace evgate::ocpp

#endif  // EVGATE_SERVICES_OCPP_BRIDGE_JSON_SCHEMA_H_

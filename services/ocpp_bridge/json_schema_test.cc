#include "services/ocpp_bridge/json_schema.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace evgate::ocpp {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

JsonSchema MustCompile(const char* text) {
  absl::StatusOr<JsonSchema> schema = JsonSchema::Compile(json::parse(text));
  EXPECT_TRUE(schema.ok()) << schema.status();
  return *std::move(schema);
}

// The violation of `value` (JSON text), or a placeholder saying it is valid.
SchemaViolation Violation(const JsonSchema& schema, const char* value) {
  std::optional<SchemaViolation> v = schema.Validate(json::parse(value));
  if (!v) return SchemaViolation{SchemaRule::kConst, "<valid>", "<valid>"};
  return *v;
}

bool Valid(const JsonSchema& schema, const char* value) {
  return !schema.Validate(json::parse(value)).has_value();
}

TEST(JsonSchemaTest, Types) {
  const JsonSchema integer = MustCompile(R"({"type": "integer"})");
  EXPECT_TRUE(Valid(integer, "5"));
  EXPECT_TRUE(Valid(integer, "-5"));
  EXPECT_TRUE(Valid(integer, "5.0"));  // draft-07: no fractional part
  const SchemaViolation v = Violation(integer, "5.5");
  EXPECT_EQ(v.rule, SchemaRule::kType);
  EXPECT_EQ(v.message, "must be integer, is number");
  EXPECT_EQ(Violation(integer, R"("5")").rule, SchemaRule::kType);
  EXPECT_EQ(Violation(integer, "true").rule, SchemaRule::kType);
  EXPECT_EQ(Violation(integer, "null").rule, SchemaRule::kType);

  const JsonSchema number = MustCompile(R"({"type": "number"})");
  EXPECT_TRUE(Valid(number, "5"));
  EXPECT_TRUE(Valid(number, "5.25"));
  EXPECT_EQ(Violation(number, R"("5.25")").rule, SchemaRule::kType);

  const JsonSchema either = MustCompile(R"({"type": ["string", "null"]})");
  EXPECT_TRUE(Valid(either, R"("x")"));
  EXPECT_TRUE(Valid(either, "null"));
  EXPECT_EQ(Violation(either, "1").message, "must be null or string, is integer");

  const JsonSchema any = MustCompile("{}");
  for (const char* value : {"1", "\"x\"", "[]", "{}", "null", "false"}) {
    EXPECT_TRUE(Valid(any, value)) << value;
  }
  EXPECT_EQ(Violation(MustCompile(R"({"type": "object"})"), "[]").rule, SchemaRule::kType);
  EXPECT_EQ(Violation(MustCompile(R"({"type": "array"})"), "{}").rule, SchemaRule::kType);
  EXPECT_EQ(Violation(MustCompile(R"({"type": "boolean"})"), "0").rule, SchemaRule::kType);
}

TEST(JsonSchemaTest, ObjectsRequiredAndAdditionalProperties) {
  const JsonSchema schema = MustCompile(R"({
    "type": "object",
    "properties": {"idTag": {"type": "string", "maxLength": 20}, "n": {"type": "integer"}},
    "required": ["idTag"],
    "additionalProperties": false})");
  EXPECT_TRUE(Valid(schema, R"({"idTag": "04D4E5F6071829"})"));
  EXPECT_TRUE(Valid(schema, R"({"idTag": "a", "n": 3})"));

  SchemaViolation missing = Violation(schema, R"({"n": 3})");
  EXPECT_EQ(missing.rule, SchemaRule::kRequired);
  EXPECT_EQ(missing.pointer, "");
  EXPECT_EQ(missing.message, "misses required property 'idTag'");

  SchemaViolation extra = Violation(schema, R"({"idTag": "a", "color": "red"})");
  EXPECT_EQ(extra.rule, SchemaRule::kAdditionalProperty);
  EXPECT_THAT(extra.message, HasSubstr("'color'"));

  SchemaViolation wrong = Violation(schema, R"({"idTag": "a", "n": "3"})");
  EXPECT_EQ(wrong.rule, SchemaRule::kType);
  EXPECT_EQ(wrong.pointer, "/n");

  // Without additionalProperties, other members are anything; with a schema
  // they must match it.
  EXPECT_TRUE(Valid(MustCompile(R"({"properties": {"a": {"type": "string"}}})"),
                    R"({"a": "x", "b": [1]})"));
  const JsonSchema typed_extra = MustCompile(R"({"additionalProperties": {"type": "integer"}})");
  EXPECT_TRUE(Valid(typed_extra, R"({"a": 1})"));
  SchemaViolation typed = Violation(typed_extra, R"({"a": 1, "b/c~d": "x"})");
  EXPECT_EQ(typed.rule, SchemaRule::kType);
  EXPECT_EQ(typed.pointer, "/b~1c~0d");  // RFC 6901 escapes
}

TEST(JsonSchemaTest, StringLengthsCountCodePoints) {
  const JsonSchema schema = MustCompile(R"({"type": "string", "minLength": 2, "maxLength": 4})");
  EXPECT_TRUE(Valid(schema, R"("ab")"));
  EXPECT_TRUE(
      Valid(schema, "\"\xC3\xBC\xC3\xBC\xC3\xBC\xC3\xBC\""));  // "üüüü": 8 bytes, 4 characters
  EXPECT_TRUE(Valid(schema, "\"\xF0\x9F\x94\x8C!\""));  // "🔌!": one code point beyond the BMP + 1
  const SchemaViolation longer = Violation(schema, R"("abcde")");
  EXPECT_EQ(longer.rule, SchemaRule::kMaxLength);
  EXPECT_EQ(longer.message, "must be at most 4 characters, has 5");
  EXPECT_EQ(Violation(schema, R"("a")").rule, SchemaRule::kMinLength);
}

TEST(JsonSchemaTest, NumberBounds) {
  const JsonSchema schema = MustCompile(
      R"({"minimum": 0, "maximum": 10, "exclusiveMinimum": -1, "exclusiveMaximum": 10.5})");
  EXPECT_TRUE(Valid(schema, "0"));
  EXPECT_TRUE(Valid(schema, "10"));
  EXPECT_EQ(Violation(schema, "-0.5").message, "must be at least 0, is -0.5");
  EXPECT_EQ(Violation(schema, "10.25").rule, SchemaRule::kMaximum);
  const JsonSchema exclusive = MustCompile(R"({"exclusiveMinimum": 0, "exclusiveMaximum": 1})");
  EXPECT_TRUE(Valid(exclusive, "0.5"));
  EXPECT_EQ(Violation(exclusive, "0").rule, SchemaRule::kExclusiveMinimum);
  EXPECT_EQ(Violation(exclusive, "1").rule, SchemaRule::kExclusiveMaximum);
  // Bounds apply to numbers only; other types pass unless `type` says.
  EXPECT_TRUE(Valid(schema, R"("100")"));
}

TEST(JsonSchemaTest, MultipleOfIsToleratedForDecimals) {
  // OCPP 1.6 limits: "limit": {"type": "number", "multipleOf": 0.1}.
  const JsonSchema tenth = MustCompile(R"({"type": "number", "multipleOf": 0.1})");
  for (const char* value : {"9.1", "0.3", "16", "32.0", "0.7", "1234.5", "-6.6", "0"}) {
    EXPECT_TRUE(Valid(tenth, value)) << value;
  }
  for (const char* value : {"9.15", "0.01", "16.05"}) {
    const SchemaViolation v = Violation(tenth, value);
    EXPECT_EQ(v.rule, SchemaRule::kMultipleOf) << value;
  }
  EXPECT_EQ(Violation(tenth, "9.15").message, "must be a multiple of 0.1, is 9.15");
  const JsonSchema three = MustCompile(R"({"multipleOf": 3})");
  EXPECT_TRUE(Valid(three, "9"));
  EXPECT_EQ(Violation(three, "10").rule, SchemaRule::kMultipleOf);
  // A quotient beyond double range is not a multiple.
  EXPECT_EQ(Violation(MustCompile(R"({"multipleOf": 1e-300})"), "1e300").rule,
            SchemaRule::kMultipleOf);
}

TEST(JsonSchemaTest, EnumAndConst) {
  const JsonSchema status = MustCompile(R"({"type": "string", "enum": ["Accepted", "Rejected"]})");
  EXPECT_TRUE(Valid(status, R"("Accepted")"));
  const SchemaViolation v = Violation(status, R"("accepted")");
  EXPECT_EQ(v.rule, SchemaRule::kEnum);
  EXPECT_EQ(v.message, R"("accepted" is not one of "Accepted", "Rejected")");
  const JsonSchema one = MustCompile(R"({"const": 1})");
  EXPECT_TRUE(Valid(one, "1"));
  EXPECT_TRUE(Valid(one, "1.0"));  // the same number
  EXPECT_EQ(Violation(one, "2").rule, SchemaRule::kConst);
}

TEST(JsonSchemaTest, ArraysAndItemPointers) {
  const JsonSchema schema = MustCompile(R"({
    "type": "array", "minItems": 1, "maxItems": 3,
    "items": {"type": "object", "properties": {"value": {"type": "string"}},
              "required": ["value"]},
    "additionalItems": false})");
  EXPECT_TRUE(Valid(schema, R"([{"value": "1"}])"));
  EXPECT_EQ(Violation(schema, "[]").rule, SchemaRule::kMinItems);
  EXPECT_EQ(Violation(schema, R"([{"value":"1"},{"value":"1"},{"value":"1"},{"value":"1"}])").rule,
            SchemaRule::kMaxItems);
  const SchemaViolation v = Violation(schema, R"([{"value": "1"}, {"value": 2}])");
  EXPECT_EQ(v.rule, SchemaRule::kType);
  EXPECT_EQ(v.pointer, "/1/value");
  EXPECT_EQ(Violation(schema, R"([{"value": "1"}, {}])").pointer, "/1");
}

TEST(JsonSchemaTest, ReferencesToDefinitionsIncludingRecursion) {
  const JsonSchema schema = MustCompile(R"({
    "definitions": {
      "Node": {"type": "object", "properties": {
          "name": {"$ref": "#/definitions/Name"},
          "children": {"type": "array", "items": {"$ref": "#/definitions/Node"}}},
        "additionalProperties": false},
      "Name": {"type": "string", "maxLength": 3}},
    "$ref": "#/definitions/Node"})");
  EXPECT_TRUE(Valid(schema, R"({"name": "a", "children": [{"name": "b", "children": []}]})"));
  const SchemaViolation v =
      Violation(schema, R"({"name": "a", "children": [{"name": "toolong"}]})");
  EXPECT_EQ(v.rule, SchemaRule::kMaxLength);
  EXPECT_EQ(v.pointer, "/children/0/name");
  EXPECT_EQ(Violation(schema, R"({"children": [{"x": 1}]})").rule, SchemaRule::kAdditionalProperty);
  // "#" is the root; a cycle of bare aliases constrains nothing.
  EXPECT_TRUE(Valid(MustCompile(R"({"properties": {"self": {"$ref": "#"}}})"),
                    R"({"self": {"self": {}}})"));
  EXPECT_TRUE(Valid(MustCompile(R"({"definitions": {"a": {"$ref": "#/definitions/b"},
                                                    "b": {"$ref": "#/definitions/a"}},
                                   "$ref": "#/definitions/a"})"),
                    "42"));
}

TEST(JsonSchemaTest, Formats) {
  const JsonSchema date_time = MustCompile(R"({"type": "string", "format": "date-time"})");
  EXPECT_TRUE(Valid(date_time, R"("2026-12-05T19:30:00Z")"));
  EXPECT_EQ(Violation(date_time, R"("yesterday")").rule, SchemaRule::kFormat);
  const JsonSchema uri = MustCompile(R"({"format": "uri"})");
  EXPECT_TRUE(Valid(uri, R"("https://fw.example/ds60/1.2.bin")"));
  EXPECT_EQ(Violation(uri, R"("/relative/path")").rule, SchemaRule::kFormat);
  EXPECT_TRUE(Valid(uri, "17"));  // formats apply to strings only
}

TEST(JsonSchemaTest, Rfc3339DateTimes) {
  for (const char* ok :
       {"2026-12-05T19:30:00Z", "2026-12-05t19:30:00z", "2026-12-05T19:30:00.123456Z",
        "2026-12-05T19:30:00+01:00", "2026-12-05T19:30:00-09:30", "2024-02-29T00:00:00Z",
        "2016-12-31T23:59:60Z"}) {
    EXPECT_TRUE(IsRfc3339DateTime(ok)) << ok;
  }
  for (const char* bad :
       {"2026-12-05T19:30:00", "2026-12-05 19:30:00Z", "2026-13-05T19:30:00Z",
        "2026-02-29T19:30:00Z", "2026-04-31T00:00:00Z", "2026-12-05T24:00:00Z",
        "2026-12-05T19:60:00Z", "2026-12-05T19:30:61Z", "2026-12-05T19:30:00.Z",
        "2026-12-05T19:30:00+0100", "2026-12-05T19:30:00+24:00", "2026-12-05T19:30:00Zjunk",
        "26-12-05T19:30:00Z", "2026-1-05T19:30:00Z", "", "2026-12-05"}) {
    EXPECT_FALSE(IsRfc3339DateTime(bad)) << bad;
  }
}

TEST(JsonSchemaTest, Rfc3986Uris) {
  for (const char* ok :
       {"ws://10.0.0.5:9000/ocpp/DS60-1", "urn:Authorize.req", "ftp://user:pw@host/diag%20logs/",
        "https://h/p?q=1&r=2#frag", "mailto:ops@example.com", "http://[::1]:8080/"}) {
    EXPECT_TRUE(IsRfc3986Uri(ok)) << ok;
  }
  for (const char* bad : {"", "no-scheme", "1http://x", "http://a b", "http://x/%zz", "http://x/%4",
                          "http://x/#a#b", "://x", "http://x/\"q\""}) {
    EXPECT_FALSE(IsRfc3986Uri(bad)) << bad;
  }
}

TEST(JsonSchemaTest, UnsupportedSchemasAreRefusedNotIgnored) {
  struct Case {
    const char* schema;
    const char* message;
  };
  for (const Case& c : std::vector<Case>{
           {R"({"pattern": "^[0-9]+$"})", "schema #: pattern is not supported"},
           {R"({"properties": {"a": {"oneOf": []}}})",
            "schema #/properties/a: oneOf is not supported"},
           {R"({"format": "email"})", "format \"email\" is not supported"},
           {R"({"type": "text"})", "\"text\" is not a JSON Schema type"},
           {R"({"$ref": "other.json#/x"})", "remote references are not supported"},
           {R"({"$ref": "#/definitions/Missing"})", "'#/definitions/Missing' is not defined"},
           {R"({"$ref": "#", "maxLength": 3})", "maxLength beside $ref would be ignored"},
           {R"({"items": [{"type": "string"}]})", "items as a list of schemas is not supported"},
           {R"({"additionalItems": false})", "additionalItems without a single-schema items"},
           {R"({"maxLength": -1})", "maxLength must be a non-negative integer"},
           {R"({"maxLength": 2.5})", "maxLength must be a non-negative integer"},
           {R"({"multipleOf": 0})", "multipleOf must be greater than 0"},
           {R"({"minimum": "0"})", "minimum must be a number"},
           {R"({"enum": []})", "enum must be a non-empty array"},
           {R"({"required": "idTag"})", "required must be an array"},
           {R"({"properties": {"a": 3}})", "schema must be an object"},
           {"[]", "schema must be an object"},
       }) {
    absl::StatusOr<JsonSchema> schema = JsonSchema::Compile(json::parse(c.schema));
    ASSERT_FALSE(schema.ok()) << c.schema;
    EXPECT_THAT(schema.status().message(), HasSubstr(c.message)) << c.schema;
  }
}

}  // namespace
}  // namespace evgate::ocpp

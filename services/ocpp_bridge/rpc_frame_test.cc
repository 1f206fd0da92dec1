#include "services/ocpp_bridge/rpc_frame.h"

#include <string>
#include <variant>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace evgate::ocpp {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

RpcMessage MustParse(absl::string_view text) {
  auto parsed = ParseFrame(text);
  EXPECT_TRUE(std::holds_alternative<RpcMessage>(parsed))
      << text << ": " << std::get<FrameError>(parsed).description;
  return std::holds_alternative<RpcMessage>(parsed) ? std::get<RpcMessage>(parsed)
                                                    : RpcMessage(CallResult{});
}

FrameError MustFail(absl::string_view text) {
  auto parsed = ParseFrame(text);
  EXPECT_TRUE(std::holds_alternative<FrameError>(parsed)) << text;
  return std::holds_alternative<FrameError>(parsed) ? std::get<FrameError>(parsed) : FrameError{};
}

TEST(RpcFrameTest, ParsesTheThreeMessageTypes) {
  const RpcMessage call = MustParse(R"([2, "19223201", "Heartbeat", {}])");
  ASSERT_TRUE(std::holds_alternative<Call>(call));
  EXPECT_EQ(std::get<Call>(call).message_id, "19223201");
  EXPECT_EQ(std::get<Call>(call).action, "Heartbeat");
  EXPECT_EQ(std::get<Call>(call).payload, json::object());

  const RpcMessage result = MustParse(R"([3,"19223201",{"currentTime":"2026-12-05T19:30:00Z"}])");
  ASSERT_TRUE(std::holds_alternative<CallResult>(result));
  EXPECT_EQ(std::get<CallResult>(result).payload["currentTime"], "2026-12-05T19:30:00Z");

  const RpcMessage error =
      MustParse(R"([4,"162376037","NotSupported","SetDisplayMessageRequest not implemented",{}])");
  ASSERT_TRUE(std::holds_alternative<CallError>(error));
  EXPECT_EQ(std::get<CallError>(error).code, RpcErrorCode::kNotSupported);
  EXPECT_EQ(std::get<CallError>(error).description, "SetDisplayMessageRequest not implemented");

  // A code this version does not define is kept by name, as GenericError.
  const RpcMessage foreign = MustParse(R"([4,"1","RpcFrameworkError","x",{"a":1}])");
  EXPECT_EQ(std::get<CallError>(foreign).code, RpcErrorCode::kGenericError);
  EXPECT_EQ(std::get<CallError>(foreign).code_name, "RpcFrameworkError");
  EXPECT_EQ(std::get<CallError>(foreign).details["a"], 1);
}

TEST(RpcFrameTest, SerializesExactlyAsTheSpecShows) {
  EXPECT_EQ(
      SerializeFrame(Call{"19223201", "BootNotification",
                          json{{"chargePointVendor", "DS"}, {"chargePointModel", "DS60"}}}),
      R"([2,"19223201","BootNotification",{"chargePointModel":"DS60","chargePointVendor":"DS"}])");
  EXPECT_EQ(SerializeFrame(CallResult{"19223201", json{{"status", "Accepted"}}}),
            R"([3,"19223201",{"status":"Accepted"}])");
  EXPECT_EQ(SerializeFrame(MakeCallError("7", RpcErrorCode::kOccurenceConstraintViolation, "x")),
            R"([4,"7","OccurenceConstraintViolation","x",{}])");
  // Bytes from a peer echoed in a description are never a crash.
  EXPECT_EQ(SerializeFrame(MakeCallError("7", RpcErrorCode::kGenericError, "bad \xff byte")),
            "[4,\"7\",\"GenericError\",\"bad \xEF\xBF\xBD byte\",{}]");
}

TEST(RpcFrameTest, ErrorCodeNamesRoundTrip) {
  for (const char* name :
       {"NotImplemented", "NotSupported", "InternalError", "ProtocolError", "SecurityError",
        "FormationViolation", "PropertyConstraintViolation", "OccurenceConstraintViolation",
        "TypeConstraintViolation", "GenericError"}) {
    const std::optional<RpcErrorCode> code = ParseRpcErrorCode(name);
    ASSERT_TRUE(code.has_value()) << name;
    EXPECT_STREQ(RpcErrorCodeName(*code), name);
  }
  EXPECT_EQ(ParseRpcErrorCode("OccurrenceConstraintViolation"), std::nullopt);  // 2.0 spelling
}

// Bad frames tried: not JSON, empty, a JSON object / string / number, an array
// too short, a non-number type, a non-string or empty or 37-character id,
// a CALL with 3 or 5 elements, a non-string or empty action, a non-object
// payload, a malformed CALLRESULT and CALLERROR, message types 0, 5 and 1.5.
TEST(RpcFrameTest, FramesThatCannotBeAnsweredAreOnlyReported) {
  for (const char* text :
       {"", "not json", "[2, \"1\", \"Heartbeat\", {}", "{\"a\": 1}", "\"x\"", "17", "[]", "[2]",
        "[\"2\", \"1\", \"Heartbeat\", {}]", "[2, 1, \"Heartbeat\", {}]",
        "[2, \"\", \"Heartbeat\", {}]", "[1.5, \"1\", \"Heartbeat\", {}]", "[3, \"1\"]",
        "[3, \"1\", []]", "[3, \"1\", {}, {}]", "[4, \"1\", \"GenericError\", \"x\"]",
        "[4, \"1\", 5, \"x\", {}]", "[3, \"0123456789012345678901234567890123456\", {}]"}) {
    const FrameError error = MustFail(text);
    EXPECT_FALSE(error.reply.has_value()) << text;
    EXPECT_FALSE(error.description.empty()) << text;
  }
}

TEST(RpcFrameTest, MalformedCallsAreAnsweredWithTheirId) {
  struct Case {
    const char* text;
    RpcErrorCode code;
    const char* description;
  };
  for (const Case& c : std::vector<Case>{
           {R"([2, "1", "Heartbeat"])", RpcErrorCode::kFormationViolation,
            "4 elements, this one 3"},
           {R"([2, "1", "Heartbeat", {}, {}])", RpcErrorCode::kFormationViolation, "this one 5"},
           {R"([2, "1", 7, {}])", RpcErrorCode::kFormationViolation, "non-empty string"},
           {R"([2, "1", "", {}])", RpcErrorCode::kFormationViolation, "non-empty string"},
           {R"([2, "1", "Heartbeat", []])", RpcErrorCode::kFormationViolation,
            "must be an object, is array"},
           {R"([2, "0123456789012345678901234567890123456", "Heartbeat", {}])",
            RpcErrorCode::kFormationViolation, "1 to 36 characters, has 37"},
           {R"([5, "1", {}])", RpcErrorCode::kProtocolError, "message type 5 is not 2"},
           {R"([0, "1"])", RpcErrorCode::kProtocolError, "message type 0"},
       }) {
    const FrameError error = MustFail(c.text);
    ASSERT_TRUE(error.reply.has_value()) << c.text;
    EXPECT_EQ(error.reply->code, c.code) << c.text;
    EXPECT_THAT(error.reply->description, HasSubstr(c.description)) << c.text;
    const bool long_id = absl::string_view(c.text).find("0123456789") != absl::string_view::npos;
    EXPECT_EQ(error.reply->message_id, long_id ? "0123456789012345678901234567890123456" : "1")
        << c.text;
  }
}

TEST(RpcFrameTest, SchemaViolationsMapToTheOcpp16ErrorCodes) {
  const OcppSchemas& schemas = OcppSchemas::Ocpp16();
  struct Case {
    const char* frame;
    std::optional<RpcErrorCode> code;
    const char* description;
  };
  for (
      const Case& c : std::vector<Case>{
          {R"([2,"1","Heartbeat",{}])", std::nullopt, ""},
          {R"([2,"1","Authorize",{"idTag":"04D4E5F6071829"}])", std::nullopt, ""},
          {R"([2,"1","FlyToTheMoon",{}])", RpcErrorCode::kNotImplemented,
           "'FlyToTheMoon' is not an OCPP 1.6 action"},
          {R"([2,"1","Authorize",{}])", RpcErrorCode::kOccurenceConstraintViolation,
           "Authorize: payload misses required property 'idTag'"},
          {R"([2,"1","Authorize",{"idTag":"A","x":1}])", RpcErrorCode::kFormationViolation,
           "property 'x'"},
          {R"([2,"1","Authorize",{"idTag":12}])", RpcErrorCode::kTypeConstraintViolation,
           "/idTag must be string, is integer"},
          {R"([2,"1","Authorize",{"idTag":"012345678901234567890"}])",
           RpcErrorCode::kPropertyConstraintViolation, "/idTag must be at most 20 characters"},
          {R"([2,"1","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Plugged"}])",
           RpcErrorCode::kPropertyConstraintViolation, "/status \"Plugged\" is not one of"},
          {R"([2,"1","StartTransaction",{"connectorId":1,"idTag":"A","meterStart":0,"timestamp":"now"}])",
           RpcErrorCode::kPropertyConstraintViolation, "RFC 3339"},
      }) {
    const RpcMessage message = MustParse(c.frame);
    ASSERT_TRUE(std::holds_alternative<Call>(message)) << c.frame;
    const std::optional<CallError> error = ValidateCall(schemas, std::get<Call>(message));
    if (!c.code) {
      EXPECT_EQ(error, std::nullopt) << c.frame << ": " << (error ? error->description : "");
      continue;
    }
    ASSERT_TRUE(error.has_value()) << c.frame;
    EXPECT_EQ(error->code, *c.code) << c.frame << ": " << error->description;
    EXPECT_EQ(error->message_id, "1");
    EXPECT_THAT(error->description, HasSubstr(c.description)) << c.frame;
  }
}

TEST(RpcFrameTest, ResponsesAreValidatedAgainstTheActionTheyAnswer) {
  const OcppSchemas& schemas = OcppSchemas::Ocpp16();
  const CallResult accepted{"9", json{{"status", "Accepted"}}};
  EXPECT_EQ(ValidateCallResult(schemas, "SetChargingProfile", accepted), std::nullopt);
  // The same payload does not answer a Heartbeat, which needs currentTime.
  const std::optional<CallError> error = ValidateCallResult(schemas, "Heartbeat", accepted);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->code, RpcErrorCode::kOccurenceConstraintViolation);
  EXPECT_THAT(error->description, HasSubstr("Heartbeat response"));
  const CallResult weird{"9", json{{"status", "Maybe"}}};
  EXPECT_EQ(ValidateCallResult(schemas, "SetChargingProfile", weird)->code,
            RpcErrorCode::kPropertyConstraintViolation);
}

}  // namespace
}  // namespace evgate::ocpp

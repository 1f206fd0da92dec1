#include "services/ocpp_bridge/rpc_endpoint.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace evgate::ocpp {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class RpcEndpointTest : public ::testing::Test {
 protected:
  RpcEndpointTest() { Reset(RpcEndpointOptions{absl::Seconds(30), 2, 3, "cs-"}); }

  void Reset(RpcEndpointOptions options) {
    endpoint_ = std::make_unique<RpcEndpoint>(
        OcppSchemas::Ocpp16(), clock_, std::move(options),
        [this](std::string frame) { sent_.push_back(std::move(frame)); },
        [this](int code, std::string reason) {
          closes_.push_back(absl::StrCat(code, " ", reason));
        },
        [this](const Call& call) -> std::variant<json, CallError> {
          handled_.push_back(call.action);
          return answer_;
        });
  }

  // Queues a CALL whose outcome lands in outcomes_.
  absl::Status CallReset(const char* type = "Soft") {
    return endpoint_->Call("Reset", json{{"type", type}}, [this](CallOutcome outcome) {
      outcomes_.push_back(std::move(outcome));
    });
  }

  FakeClock clock_;
  std::vector<std::string> sent_;
  std::vector<std::string> closes_;
  std::vector<std::string> handled_;
  std::vector<CallOutcome> outcomes_;
  std::variant<json, CallError> answer_ = json{{"currentTime", "2026-12-05T19:30:00Z"}};
  std::unique_ptr<RpcEndpoint> endpoint_;
};

TEST_F(RpcEndpointTest, OneCallInFlightTheRestQueuedInOrder) {
  ASSERT_TRUE(CallReset("Soft").ok());
  ASSERT_TRUE(CallReset("Hard").ok());
  EXPECT_THAT(sent_, ElementsAre(R"([2,"cs-1","Reset",{"type":"Soft"}])"));
  EXPECT_EQ(endpoint_->queued_calls(), 1u);

  endpoint_->OnFrame(R"([3,"cs-1",{"status":"Accepted"}])");
  ASSERT_EQ(outcomes_.size(), 1u);
  EXPECT_EQ(outcomes_[0].result, (json{{"status", "Accepted"}}));
  EXPECT_TRUE(outcomes_[0].status.ok());
  ASSERT_EQ(sent_.size(), 2u);
  EXPECT_EQ(sent_[1], R"([2,"cs-2","Reset",{"type":"Hard"}])");

  endpoint_->OnFrame(R"([4,"cs-2","NotSupported","no hard resets here",{}])");
  ASSERT_EQ(outcomes_.size(), 2u);
  ASSERT_TRUE(outcomes_[1].error.has_value());
  EXPECT_EQ(outcomes_[1].error->code, RpcErrorCode::kNotSupported);
  EXPECT_EQ(endpoint_->bad_frames(), 0);
}

TEST_F(RpcEndpointTest, AnUnansweredCallTimesOutOnTheMonotonicClockAndTheNextGoes) {
  ASSERT_TRUE(CallReset("Soft").ok());
  ASSERT_TRUE(CallReset("Hard").ok());
  clock_.StepWall(absl::Hours(1));  // NTP: must not fire the timeout
  endpoint_->Tick();
  clock_.Advance(absl::Seconds(29));
  endpoint_->Tick();
  EXPECT_TRUE(outcomes_.empty());
  clock_.Advance(absl::Seconds(1));
  endpoint_->Tick();
  ASSERT_EQ(outcomes_.size(), 1u);
  EXPECT_EQ(outcomes_[0].status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(sent_, ElementsAre(HasSubstr("cs-1"), HasSubstr("cs-2")));
  // The late answer to the timed-out CALL is stray; cs-2 still waits.
  endpoint_->OnFrame(R"([3,"cs-1",{"status":"Accepted"}])");
  EXPECT_EQ(outcomes_.size(), 1u);
  EXPECT_EQ(endpoint_->bad_frames(), 1);
}

TEST_F(RpcEndpointTest, InvalidOrTooManyOutgoingCallsAreRefusedAndNothingIsSent) {
  absl::Status invalid = endpoint_->Call("Reset", json{{"type", "Sideways"}}, nullptr);
  EXPECT_EQ(invalid.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(invalid.message(), HasSubstr("/type \"Sideways\" is not one of"));
  EXPECT_EQ(endpoint_->Call("Teleport", json::object(), nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(sent_.empty());

  ASSERT_TRUE(CallReset().ok());  // in flight
  ASSERT_TRUE(CallReset().ok());  // queued 1
  ASSERT_TRUE(CallReset().ok());  // queued 2 = max_queued_calls
  EXPECT_EQ(CallReset().code(), absl::StatusCode::kResourceExhausted);
  // The refused ones used no id: the next answered CALL is cs-2.
  endpoint_->OnFrame(R"([3,"cs-1",{"status":"Accepted"}])");
  EXPECT_EQ(sent_.back(), R"([2,"cs-2","Reset",{"type":"Soft"}])");
}

TEST_F(RpcEndpointTest, ValidCallsOfThePeerReachTheHandlerInvalidOnesDoNot) {
  endpoint_->OnFrame(R"([2,"hb-1","Heartbeat",{}])");
  EXPECT_THAT(handled_, ElementsAre("Heartbeat"));
  EXPECT_EQ(sent_.back(), R"([3,"hb-1",{"currentTime":"2026-12-05T19:30:00Z"}])");

  endpoint_->OnFrame(R"([2,"a-1","Authorize",{"idTag":7}])");
  EXPECT_THAT(handled_, ElementsAre("Heartbeat"));
  EXPECT_THAT(sent_.back(), HasSubstr(R"([4,"a-1","TypeConstraintViolation",)"));

  endpoint_->OnFrame(R"([2,"x-1","Dance",{}])");
  EXPECT_THAT(sent_.back(), HasSubstr(R"([4,"x-1","NotImplemented",)"));
  endpoint_->OnFrame(R"([2,"x-2","Heartbeat"])");
  EXPECT_THAT(sent_.back(), HasSubstr(R"([4,"x-2","FormationViolation",)"));
  EXPECT_THAT(handled_, ElementsAre("Heartbeat"));
}

TEST_F(RpcEndpointTest, TheHandlersErrorsAreSentAndItsInvalidAnswersNever) {
  answer_ = MakeCallError("", RpcErrorCode::kNotSupported, "a Central System takes no RemoteStart");
  endpoint_->OnFrame(R"([2,"r-1","RemoteStartTransaction",{"idTag":"A"}])");
  EXPECT_EQ(sent_.back(), R"([4,"r-1","NotSupported","a Central System takes no RemoteStart",{}])");

  answer_ = json{{"currentTime", "five past seven"}};  // not a date-time: our bug
  endpoint_->OnFrame(R"([2,"hb-2","Heartbeat",{}])");
  EXPECT_EQ(sent_.back(),
            R"([4,"hb-2","InternalError","the Central System could not answer this call",{}])");
}

TEST_F(RpcEndpointTest, ARetransmittedCallGetsTheSameAnswerAndRunsOnce) {
  const char* stop =
      R"([2,"st-9","StopTransaction",{"transactionId":3,"meterStop":10,"timestamp":"2026-12-05T19:30:00Z"}])";
  answer_ = json::object();
  endpoint_->OnFrame(stop);
  // Were the handler asked again, it would answer with this error.
  answer_ = MakeCallError("", RpcErrorCode::kGenericError, "asked twice");
  endpoint_->OnFrame(stop);
  EXPECT_THAT(handled_, ElementsAre("StopTransaction"));
  ASSERT_EQ(sent_.size(), 2u);
  EXPECT_EQ(sent_[0], R"([3,"st-9",{}])");
  EXPECT_EQ(sent_[1], sent_[0]);
}

TEST_F(RpcEndpointTest, StrayAndInvalidResponsesNeverCrashAndNeverEndTheWrongCall) {
  endpoint_->OnFrame(R"([3,"nobody",{"status":"Accepted"}])");  // libocpp #1137
  endpoint_->OnFrame(R"([4,"nobody","GenericError","",{}])");
  EXPECT_EQ(endpoint_->bad_frames(), 2);
  EXPECT_TRUE(sent_.empty());  // a response is never answered

  ASSERT_TRUE(CallReset().ok());
  endpoint_->OnFrame(R"([3,"cs-999",{"status":"Accepted"}])");
  EXPECT_TRUE(outcomes_.empty());
  endpoint_->OnFrame(R"([3,"cs-1",{"status":"Maybe"}])");
  ASSERT_EQ(outcomes_.size(), 1u);
  ASSERT_TRUE(outcomes_[0].error.has_value());
  EXPECT_EQ(outcomes_[0].error->code, RpcErrorCode::kPropertyConstraintViolation);
  EXPECT_THAT(outcomes_[0].error->description, HasSubstr("Reset response"));
}

TEST_F(RpcEndpointTest, TooManyBadFramesInARowCloseWith1002) {
  for (int i = 0; i < 3; ++i) endpoint_->OnFrame("garbage");
  EXPECT_TRUE(closes_.empty());
  endpoint_->OnFrame(R"([2,"hb","Heartbeat",{}])");  // a good one resets the count
  for (int i = 0; i < 3; ++i) endpoint_->OnFrame("[]");
  EXPECT_TRUE(closes_.empty());
  endpoint_->OnFrame("{}");
  EXPECT_THAT(closes_, ElementsAre("1002 4 bad frames in a row"));
  EXPECT_EQ(endpoint_->bad_frames(), 7);
}

TEST_F(RpcEndpointTest, ShutdownFailsEveryPendingCallOnceAndRefusesNewOnes) {
  ASSERT_TRUE(CallReset().ok());
  ASSERT_TRUE(CallReset().ok());
  endpoint_->Shutdown();
  endpoint_->Shutdown();
  ASSERT_EQ(outcomes_.size(), 2u);
  for (const CallOutcome& outcome : outcomes_) {
    EXPECT_EQ(outcome.status.code(), absl::StatusCode::kUnavailable);
  }
  EXPECT_EQ(CallReset().code(), absl::StatusCode::kUnavailable);
  endpoint_->OnFrame(R"([3,"cs-1",{"status":"Accepted"}])");
  EXPECT_EQ(outcomes_.size(), 2u);
}

TEST_F(RpcEndpointTest, ACallbackMayCallAgain) {
  ASSERT_TRUE(endpoint_
                  ->Call("Reset", json{{"type", "Soft"}},
                         [this](CallOutcome) { ASSERT_TRUE(CallReset("Hard").ok()); })
                  .ok());
  endpoint_->OnFrame(R"([3,"cs-1",{"status":"Accepted"}])");
  EXPECT_EQ(sent_.back(), R"([2,"cs-2","Reset",{"type":"Hard"}])");
}

}  // namespace
}  // namespace evgate::ocpp

#include "runtime/server_host.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"

namespace evgate {
namespace {

using ::grpc::health::v1::Health;
using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class FakeService : public Service {
 public:
  FakeService(std::string name, std::vector<std::string>* events, absl::Status start_result = {})
      : name_(std::move(name)), events_(events), start_result_(std::move(start_result)) {}
  std::string_view name() const override { return name_; }
  std::vector<grpc::Service*> grpc_services() override { return {}; }
  std::vector<std::string> health_names() const override { return {"test." + name_}; }
  absl::Status Start() override {
    events_->push_back("start " + name_);
    return start_result_;
  }
  void Stop() override { events_->push_back("stop " + name_); }

 private:
  std::string name_;
  std::vector<std::string>* events_;
  absl::Status start_result_;
};

grpc::Status Check(int port, const std::string& service, HealthCheckResponse* response) {
  auto channel =
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
  auto stub = Health::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  HealthCheckRequest request;
  request.set_service(service);
  return stub->Check(&context, request, response);
}

ServerOptions Insecure(const std::string& listen = "127.0.0.1:0") {
  ServerOptions options;
  options.listen = listen;
  options.insecure = true;
  return options;
}

TEST(ServerHostTest, EveryHostedServiceIsServingAndUnknownOnesAreNotFound) {
  std::vector<std::string> events;
  FakeService a("alpha", &events), b("beta", &events);
  auto host = ServerHost::Start(Insecure(), {&a, &b});
  ASSERT_TRUE(host.ok()) << host.status();
  ASSERT_GT((*host)->port(), 0);

  for (const std::string name : {"", "test.alpha", "test.beta"}) {
    HealthCheckResponse response;
    grpc::Status status = Check((*host)->port(), name, &response);
    ASSERT_TRUE(status.ok()) << name << ": " << status.error_message();
    EXPECT_EQ(response.status(), HealthCheckResponse::SERVING) << name;
  }
  HealthCheckResponse response;
  EXPECT_EQ(Check((*host)->port(), "test.gamma", &response).error_code(),
            grpc::StatusCode::NOT_FOUND);

  (*host)->Shutdown(absl::Seconds(1));
  EXPECT_THAT(events, ElementsAre("start alpha", "start beta", "stop beta", "stop alpha"));
}

TEST(ServerHostTest, PortAlreadyInUseIsReportedAsSuch) {
  std::vector<std::string> events;
  FakeService a("alpha", &events);
  auto first = ServerHost::Start(Insecure(), {&a});
  ASSERT_TRUE(first.ok()) << first.status();

  FakeService b("beta", &events);
  auto second = ServerHost::Start(Insecure(absl::StrCat("127.0.0.1:", (*first)->port())), {&b});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(second.status().message(), HasSubstr("Address already in use"));
  EXPECT_THAT(events, ElementsAre("start alpha"));  // beta never started
}

TEST(ServerHostTest, PlaintextRequiresTheDemoFlag) {
  std::vector<std::string> events;
  FakeService a("alpha", &events);
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  auto host = ServerHost::Start(options, {&a});
  ASSERT_FALSE(host.ok());
  EXPECT_EQ(host.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(host.status().message(), HasSubstr("insecure_demo"));
}

TEST(ServerHostTest, UnreadableTlsFileNamesTheFile) {
  std::vector<std::string> events;
  FakeService a("alpha", &events);
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.tls.cert_file = "/nonexistent/server.crt";
  options.tls.key_file = "/nonexistent/server.key";
  auto host = ServerHost::Start(options, {&a});
  ASSERT_FALSE(host.ok());
  EXPECT_THAT(host.status().message(), HasSubstr("/nonexistent/server.crt"));
}

TEST(ServerHostTest, AServiceThatFailsToStartStopsTheHostWithItsName) {
  std::vector<std::string> events;
  FakeService a("alpha", &events);
  FakeService b("beta", &events, absl::FailedPreconditionError("bus /dev/ttyUSB0 is missing"));
  auto host = ServerHost::Start(Insecure(), {&a, &b});
  ASSERT_FALSE(host.ok());
  EXPECT_EQ(host.status().message(), "beta: bus /dev/ttyUSB0 is missing");
  EXPECT_THAT(events, ElementsAre("start alpha", "start beta", "stop beta", "stop alpha"));
}

TEST(CheckCanListenTest, RejectsMalformedAddresses) {
  EXPECT_EQ(CheckCanListen("localhost").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckCanListen("127.0.0.1:99999").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(CheckCanListen("127.0.0.1:0").ok());
}

}  // namespace
}  // namespace evgate

// The OcppBridge service's RPCs and its set-up from site.yaml. The charger
// side over the wire is e2e/ocpp_charger_test (a third-party OCPP client).
// Bad inputs tried: a missing password file, a password shorter and longer
// than OCPP allows, a negative page size, a forged page token, commands for
// an unknown and for a disconnected charger, no command, a zero and a too
// long timeout, an unusable listen address.
#include "services/ocpp_bridge/ocpp_bridge_service.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/server_context.h"
#include "gtest/gtest.h"

namespace evgate::ocpp {
namespace {

using ::testing::HasSubstr;

std::string TmpDir() {
  return std::string(std::getenv("TEST_TMPDIR")) + "/" +
         ::testing::UnitTest::GetInstance()->current_test_info()->name();
}

std::string WriteFile(const std::string& name, const std::string& content) {
  std::filesystem::create_directories(TmpDir());
  const std::string path = TmpDir() + "/" + name;
  std::ofstream(path) << content;
  return path;
}

// `n` chargers CP-000 ... under profile 1, each with a password file.
site::SiteConfig Site(int n, const std::string& password = "0123456789abcdef\n") {
  site::SiteConfig site;
  site.services.session_database = TmpDir() + "/db/sessions.db";
  site::OcppLocalConfig local;
  local.listen = "127.0.0.1:0";
  local.security_profile = 1;
  site.ocpp.local = local;
  for (int i = 0; i < n; ++i) {
    site::DeviceConfig device;
    device.id = absl::StrFormat("dc-%03d", i);
    device.charge_point_id = absl::StrFormat("CP-%03d", i);
    device.password_file = WriteFile(absl::StrCat(device.id, ".key"), password);
    site.devices.push_back(device);
  }
  return site;
}

class OcppBridgeServiceTest : public ::testing::Test {
 protected:
  std::unique_ptr<OcppBridgeService> Make(const site::SiteConfig& site) {
    absl::StatusOr<std::unique_ptr<OcppBridgeService>> service =
        OcppBridgeService::Create(site, clock_);
    EXPECT_TRUE(service.ok()) << service.status();
    return service.ok() ? *std::move(service) : nullptr;
  }
  FakeClock clock_;
};

TEST_F(OcppBridgeServiceTest, StartsListeningAndListsTheChargersInPages) {
  auto service = Make(Site(150));
  ASSERT_TRUE(service->Start().ok());
  EXPECT_GT(service->ocpp_port(), 0);
  // The transaction book lives next to the session database.
  EXPECT_TRUE(std::filesystem::exists(TmpDir() + "/db/ocpp_transactions.db"));

  grpc::ServerContext context;
  v1::ListChargePointsRequest request;
  v1::ListChargePointsResponse first;
  ASSERT_TRUE(service->ListChargePoints(&context, &request, &first).ok());
  ASSERT_EQ(first.charge_points_size(), 100);
  EXPECT_EQ(first.charge_points(0).charge_point_id(), "CP-000");
  EXPECT_EQ(first.charge_points(0).device_id(), "dc-000");
  request.set_page_token(first.next_page_token());
  v1::ListChargePointsResponse second;
  ASSERT_TRUE(service->ListChargePoints(&context, &request, &second).ok());
  ASSERT_EQ(second.charge_points_size(), 50);
  EXPECT_EQ(second.charge_points(49).charge_point_id(), "CP-149");
  EXPECT_EQ(second.next_page_token(), "");

  request.set_page_token("CP-000");
  EXPECT_EQ(service->ListChargePoints(&context, &request, &second).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  request.set_page_token("");
  request.set_page_size(-1);
  EXPECT_EQ(service->ListChargePoints(&context, &request, &second).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  service->Stop();
}

TEST_F(OcppBridgeServiceTest, UpstreamIsDisabledOrHonestlyNotBuilt) {
  site::SiteConfig site = Site(1);
  auto service = Make(site);
  grpc::ServerContext context;
  v1::GetUpstreamStatusRequest request;
  v1::GetUpstreamStatusResponse response;
  ASSERT_TRUE(service->GetUpstreamStatus(&context, &request, &response).ok());
  EXPECT_EQ(response.state(), v1::UPSTREAM_CONNECTION_STATE_DISABLED);

  site::OcppUpstreamConfig upstream;
  upstream.url = "wss://csms.example.com/ocpp";
  site.ocpp.upstream = upstream;
  auto with_upstream = Make(site);
  grpc::Status status = with_upstream->GetUpstreamStatus(&context, &request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_THAT(status.error_message(), HasSubstr("not part of this build"));
}

TEST_F(OcppBridgeServiceTest, CommandErrors) {
  auto service = Make(Site(1));
  ASSERT_TRUE(service->Start().ok());
  grpc::ServerContext context;
  v1::SendChargerCommandRequest request;
  v1::SendChargerCommandResponse response;
  auto code = [&] {
    return service->SendChargerCommand(&context, &request, &response).error_code();
  };
  EXPECT_EQ(code(), grpc::StatusCode::INVALID_ARGUMENT);  // no charge point
  request.set_charge_point_id("CP-000");
  EXPECT_EQ(code(), grpc::StatusCode::INVALID_ARGUMENT);  // no command
  request.mutable_reset()->set_type(v1::RESET_TYPE_SOFT);
  EXPECT_EQ(code(), grpc::StatusCode::UNAVAILABLE);  // not connected
  request.set_charge_point_id("CP-999");
  EXPECT_EQ(code(), grpc::StatusCode::NOT_FOUND);
  *request.mutable_timeout() = google::protobuf::util::TimeUtil::SecondsToDuration(0);
  EXPECT_EQ(code(), grpc::StatusCode::INVALID_ARGUMENT);
  *request.mutable_timeout() = google::protobuf::util::TimeUtil::SecondsToDuration(3600);
  EXPECT_EQ(code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(OcppBridgeServiceTest, BadPasswordFilesAreRefusedWithTheirName) {
  site::SiteConfig site = Site(1);
  site.devices[0].password_file = TmpDir() + "/missing.key";
  absl::StatusOr<std::unique_ptr<OcppBridgeService>> missing =
      OcppBridgeService::Create(site, clock_);
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("missing.key"));

  for (const std::string& password : {std::string("short"), std::string(41, 'x')}) {
    absl::StatusOr<std::unique_ptr<OcppBridgeService>> bad =
        OcppBridgeService::Create(Site(1, password), clock_);
    ASSERT_FALSE(bad.ok());
    EXPECT_THAT(std::string(bad.status().message()), HasSubstr("16 to 40"));
    EXPECT_THAT(std::string(bad.status().message()), ::testing::Not(HasSubstr(password)));
  }
}

TEST_F(OcppBridgeServiceTest, AnUnusableListenAddressFailsStart) {
  site::SiteConfig site = Site(1);
  site.ocpp.local->listen = "192.0.2.1:9000";  // not an address of this machine
  auto service = Make(site);
  absl::Status started = service->Start();
  ASSERT_FALSE(started.ok());
  EXPECT_THAT(std::string(started.message()), HasSubstr("ocpp.local"));
}

}  // namespace
}  // namespace evgate::ocpp

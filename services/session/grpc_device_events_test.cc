#include "services/session/grpc_device_events.h"

#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "services/session/testing/device_events.h"
#include "services/session/testing/fake_device_driver.h"
#include "services/session/testing/test_site.h"
#include "site_controller/config/site_config_loader.h"

namespace evgate::session {
namespace {

using ::testing::HasSubstr;

// Records what the source delivers. Thread-safe.
class Recorder final : public DeviceEventHandler {
 public:
  void OnStreamStarted() override {
    absl::MutexLock lock(&mu_);
    log_.push_back("started");
  }
  void OnDeviceEvent(const v1::WatchDevicesResponse& event) override {
    absl::MutexLock lock(&mu_);
    log_.push_back(event.has_snapshot()                    ? "snapshot:" + event.device_id()
                   : event.has_initial_snapshot_complete() ? std::string("complete")
                   : event.has_rfid_tap()                  ? "tap:" + event.rfid_tap().id_tag()
                                                           : std::string("other"));
  }
  void OnStreamLost(const absl::Status& status) override {
    absl::MutexLock lock(&mu_);
    log_.push_back(absl::StrCat("lost:", absl::StatusCodeToString(status.code())));
  }
  // Waits (real time) until the log has `n` entries.
  std::vector<std::string> WaitFor(size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return log_.size() >= n; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(10));
    return log_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> log_ ABSL_GUARDED_BY(mu_);
};

class GrpcDeviceEventsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    driver_.SetDevice(
        testing::Snapshot("wallbox-1", {testing::Evse("wb1", v1::CONNECTOR_STATUS_AVAILABLE)})
            .snapshot());
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&driver_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }
  void TearDown() override { server_->Shutdown(std::chrono::system_clock::now()); }

  GrpcDeviceEventsOptions Options() {
    GrpcDeviceEventsOptions options;
    options.endpoint = absl::StrCat("127.0.0.1:", port_);
    options.credentials = grpc::InsecureChannelCredentials();
    options.initial_backoff = absl::Milliseconds(20);
    return options;
  }

  testing::FakeDeviceDriver driver_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

TEST_F(GrpcDeviceEventsTest, DeliversSnapshotsThenEventsAndReconnectsAfterTheStreamEnds) {
  Recorder recorder;
  GrpcDeviceEvents source(Options());
  source.Start(&recorder);
  EXPECT_THAT(recorder.WaitFor(3),
              ::testing::ElementsAre("started", "snapshot:wallbox-1", "complete"));
  driver_.Publish(testing::Tap("wallbox-1", "wb1", "04A1B2C3"));
  EXPECT_EQ(recorder.WaitFor(4).back(), "tap:04A1B2C3");

  // The driver ends the stream (as it does for a client that fell behind):
  // the source says so and comes back with fresh snapshots.
  driver_.EndStreams(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "too slow"));
  const std::vector<std::string> log = recorder.WaitFor(8);
  EXPECT_THAT(std::vector<std::string>(log.begin() + 4, log.end()),
              ::testing::ElementsAre("lost:RESOURCE_EXHAUSTED", "started", "snapshot:wallbox-1",
                                     "complete"));
  EXPECT_EQ(driver_.streams_opened(), 2);
  source.Stop();
  // The driver notices the cancelled stream on its next poll.
  for (int i = 0; i < 50 && driver_.streams_open() > 0; ++i) absl::SleepFor(absl::Milliseconds(20));
  EXPECT_EQ(driver_.streams_open(), 0);
}

TEST_F(GrpcDeviceEventsTest, KeepsTryingWhileTheDriverIsDownAndStopsPromptly) {
  Recorder recorder;
  GrpcDeviceEventsOptions options = Options();
  options.endpoint = "127.0.0.1:1";  // nothing listens there
  GrpcDeviceEvents source(options);
  source.Start(&recorder);
  absl::SleepFor(absl::Milliseconds(200));
  const absl::Time before = absl::Now();
  source.Stop();
  EXPECT_LT(absl::Now() - before, absl::Seconds(1));
  EXPECT_TRUE(recorder.WaitFor(0).empty());  // no stream ever started: nothing reported
}

TEST(DeviceDriverEndpointTest, FromTheServicesSection) {
  auto load = [](const std::string& device_drivers) {
    auto config = site::LoadSiteConfigString(
        testing::TestSiteYaml("/var/lib/evgate/t.db", device_drivers), "site.yaml");
    EXPECT_TRUE(config.ok()) << config.status();
    return *config;
  };
  EXPECT_EQ(DeviceDriverEndpoint(load("")).status().code(), absl::StatusCode::kNotFound);
  auto split = DeviceDriverEndpoint(load("drivers.local:7000"));
  ASSERT_TRUE(split.ok()) << split.status();
  EXPECT_EQ(split->endpoint, "drivers.local:7000");
  EXPECT_NE(split->credentials, nullptr);  // plaintext: the test site is insecure_demo

  site::SiteConfig tls = load("drivers.local:7000");
  tls.services.tls.emplace();
  tls.services.tls->cert_file = "/nonexistent/cert.pem";
  EXPECT_THAT(DeviceDriverEndpoint(tls).status().message(),
              HasSubstr("cannot read the CA file /nonexistent/cert.pem"));
}

}  // namespace
}  // namespace evgate::session

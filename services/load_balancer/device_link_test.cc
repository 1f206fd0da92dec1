// GrpcDeviceLink against the real DeviceDriver service: the sequence a
// controller continues from, and how refused batches come back.
#include "services/load_balancer/device_link.h"

#include <memory>
#include <vector>

#include "device_drivers/driver/device_driver_service.h"
#include "device_drivers/driver/fake_backend.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "runtime/clock.h"
#include "runtime/server_host.h"

namespace evgate::load_balancer {
namespace {

class GrpcDeviceLinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto can = std::make_unique<devices::FakeBackend>("can0");
    v1::DeviceState wallbox;
    wallbox.set_device_id("wallbox-1");
    wallbox.set_kind(v1::DEVICE_KIND_AC_WALLBOX);
    wallbox.add_evses()->set_evse_id("wb1");
    can->SetDevice(wallbox);
    std::vector<std::unique_ptr<devices::DeviceBackend>> backends;
    backends.push_back(std::move(can));
    drivers_ = std::make_unique<devices::DeviceDriverService>(std::move(backends), clock_);
    ServerOptions server;
    server.listen = "127.0.0.1:0";
    server.insecure = true;
    auto host = ServerHost::Start(server, {drivers_.get()});
    ASSERT_TRUE(host.ok()) << host.status();
    host_ = std::move(*host);
    const std::string where = "127.0.0.1:" + std::to_string(host_->port());
    link_ = std::make_unique<GrpcDeviceLink>(
        where, grpc::CreateChannel(where, grpc::InsecureChannelCredentials()));
  }
  void TearDown() override { host_->Shutdown(absl::Seconds(1)); }

  absl::StatusOr<v1::ApplySetpointsResponse> Apply(uint64_t sequence) {
    v1::ApplySetpointsRequest request;
    request.set_controller_id("load_balancer");
    request.set_sequence(sequence);
    v1::Setpoint* setpoint = request.add_setpoints();
    setpoint->set_evse_id("wb1");
    setpoint->mutable_value()->mutable_current_limit_a()->set_l1(10);
    return link_->Apply(request, absl::Seconds(5));
  }

  FakeClock clock_;
  std::unique_ptr<devices::DeviceDriverService> drivers_;
  std::unique_ptr<ServerHost> host_;
  std::unique_ptr<GrpcDeviceLink> link_;
};

TEST_F(GrpcDeviceLinkTest, TheDriverSaysWhereAControllersSequenceStands) {
  auto where = link_->ControllerSequence("load_balancer", absl::Seconds(5));
  ASSERT_TRUE(where.ok()) << where.status();
  EXPECT_EQ(where->last_applied_sequence(), 0u);
  EXPECT_GT(where->window(), 0u);
  ASSERT_TRUE(Apply(7).ok());
  where = link_->ControllerSequence("load_balancer", absl::Seconds(5));
  ASSERT_TRUE(where.ok()) << where.status();
  EXPECT_EQ(where->last_applied_sequence(), 7u);
  EXPECT_EQ(link_->ControllerSequence("someone_else", absl::Seconds(5))->last_applied_sequence(),
            0u);
}

TEST_F(GrpcDeviceLinkTest, OutdatedAndZeroSequencesComeBackAsTheirStatus) {
  ASSERT_TRUE(Apply(7).ok());
  EXPECT_EQ(Apply(7).status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(Apply(0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Apply(8 + (uint64_t{1} << 40)).status().code(), absl::StatusCode::kInvalidArgument)
      << "beyond the window";
}

}  // namespace
}  // namespace evgate::load_balancer

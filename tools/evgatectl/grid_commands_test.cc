// evgatectl grid against the real grid controller service (demo site, device events pushed by
// the test). Bad inputs tried: an unknown verb, an extra word, an unknown flag, a negative
// interval, off grid while the grid is present, a server without the grid controller.

#include <sstream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/clock.h"
#include "runtime/server_host.h"
#include "services/grid_controller/grid_controller_service.h"
#include "services/session/testing/fake_device_events.h"
#include "site_controller/config/site_config_loader.h"
#include "tools/evgatectl/cli.h"

namespace evgate::ctl {
namespace {

using ::testing::HasSubstr;

class NoBox final : public grid_controller::BoxCommander {
 public:
  absl::Status Send(const std::string&, const v1::OffGridBoxCommand&) override {
    return absl::OkStatus();
  }
};

class GridCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    site::SiteConfigLoadResult loaded = site::LoadSiteConfigFromFile(
        absl::StrCat(std::getenv("TEST_SRCDIR"), "/", std::getenv("TEST_WORKSPACE"),
                     "/gateway/sites/demo.yaml"));
    ASSERT_TRUE(loaded.ok());
    auto events = std::make_unique<session::testing::FakeDeviceEvents>();
    events_ = events.get();
    auto service = grid_controller::GridControllerService::Create(
        loaded.config, clock_, std::move(events), std::make_unique<NoBox>());
    ASSERT_TRUE(service.ok()) << service.status();
    service_ = *std::move(service);
    ServerOptions options;
    options.listen = "127.0.0.1:0";
    options.insecure = true;
    auto host = ServerHost::Start(options, {service_.get()});
    ASSERT_TRUE(host.ok()) << host.status();
    host_ = *std::move(host);
    events_->StreamStarted();
  }
  void TearDown() override { host_->Shutdown(absl::Seconds(1)); }

  void Box(bool grid, v1::TransferSwitchPosition position) {
    v1::WatchDevicesResponse event;
    event.set_device_id("offgrid-box");
    v1::DeviceState& d = *event.mutable_snapshot();
    d.set_device_id("offgrid-box");
    d.mutable_link()->mutable_last_seen()->set_seconds(1800000000);
    d.mutable_off_grid_box()->set_grid_present(grid);
    d.mutable_off_grid_box()->set_transfer_switch(position);
    d.mutable_off_grid_box()->set_qf1_closed(true);
    d.mutable_off_grid_box()->set_qf2_closed(true);
    events_->Event(event);
  }

  int Run(std::vector<std::string> argv) {
    out_.str("");
    err_.str("");
    argv.insert(argv.begin(), {"--server", absl::StrCat("127.0.0.1:", host_->port())});
    return RunCli(argv, out_, err_);
  }

  FakeClock clock_;
  session::testing::FakeDeviceEvents* events_ = nullptr;
  std::unique_ptr<grid_controller::GridControllerService> service_;
  std::unique_ptr<ServerHost> host_;
  std::ostringstream out_, err_;
};

TEST_F(GridCliTest, StatusShowsTheModeTheCountdownAndTheBox) {
  Box(false, v1::TRANSFER_SWITCH_POSITION_OPEN);
  ASSERT_EQ(Run({"grid", "status"}), kExitOk) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("OUTAGE_STANDBY since"));
  EXPECT_THAT(out_.str(), HasSubstr("STARTUP: the off-grid box reports the grid lost"));
  EXPECT_THAT(out_.str(), HasSubstr("STANDBY LEFT   180 s"));
  EXPECT_THAT(out_.str(), HasSubstr("offgrid-box: no grid, switch OPEN, QF1 closed, QF2 closed"));
  ASSERT_EQ(Run({"-o", "json", "grid", "status"}), kExitOk);
  EXPECT_THAT(out_.str(), HasSubstr(R"("mode": "GRID_MODE_OUTAGE_STANDBY")"));
}

TEST_F(GridCliTest, RequestsAndParameters) {
  Box(true, v1::TRANSFER_SWITCH_POSITION_ON_GRID);
  EXPECT_EQ(Run({"grid", "off-grid", "--reason", "drill"}), kExitFailure);
  EXPECT_THAT(err_.str(), HasSubstr("failed_precondition: cannot go off grid: the site is "
                                    "ON_GRID: evgate never islands while the grid is present"));
  EXPECT_EQ(Run({"grid", "on-grid"}), kExitFailure);
  EXPECT_THAT(err_.str(), HasSubstr("not islanded"));
  ASSERT_EQ(Run({"grid", "params", "v2x1"}), kExitOk) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("V2X SOC lower limit"));
  EXPECT_THAT(out_.str(), HasSubstr("30 %"));
  EXPECT_THAT(out_.str(), HasSubstr("19.8 kW"));
  EXPECT_THAT(out_.str(), HasSubstr("180 s"));
  EXPECT_EQ(Run({"grid", "params", "wb1"}), kExitFailure);
  EXPECT_THAT(err_.str(), HasSubstr("wb1 is not bidirectional"));
}

TEST_F(GridCliTest, UsageErrorsExitTwo) {
  EXPECT_EQ(Run({"grid", "explode"}), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("grid status|watch|off-grid|on-grid|params"));
  EXPECT_EQ(Run({"grid", "status", "now"}), kExitUsage);
  EXPECT_EQ(Run({"grid", "on-grid", "--evse", "v2x1"}), kExitUsage);
  EXPECT_EQ(Run({"grid", "watch", "--interval", "-1"}), kExitUsage);
  EXPECT_EQ(Run({"grid", "params"}), kExitUsage);
}

TEST(GridCliNotHostedTest, AServerWithoutTheGridControllerSaysSo) {
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.insecure = true;
  auto host = ServerHost::Start(options, {});
  ASSERT_TRUE(host.ok()) << host.status();
  std::ostringstream out, err;
  EXPECT_EQ(
      RunCli({"--server", absl::StrCat("127.0.0.1:", (*host)->port()), "grid", "status"}, out, err),
      kExitNotHosted);
  EXPECT_THAT(err.str(), HasSubstr("does not host evgate.v1.GridController"));
  (*host)->Shutdown(absl::Seconds(1));
}

}  // namespace
}  // namespace evgate::ctl

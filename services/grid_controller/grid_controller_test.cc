// The grid controller on the demo site: device events in, box commands and GridState out, and
// the GridController API over gRPC. Fake clock; device events pushed by the test.

#include "services/grid_controller/grid_controller.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "runtime/clock.h"
#include "runtime/server_host.h"
#include "services/grid_controller/grid_controller_service.h"
#include "services/session/testing/fake_device_events.h"
#include "site_controller/config/site_config_loader.h"

namespace evgate::grid_controller {
namespace {

using ::testing::HasSubstr;

std::string Runfile(const std::string& path) {
  return absl::StrCat(std::getenv("TEST_SRCDIR"), "/", std::getenv("TEST_WORKSPACE"), "/", path);
}

class RecordingCommander final : public BoxCommander {
 public:
  absl::Status Send(const std::string& box, const v1::OffGridBoxCommand& command) override {
    absl::MutexLock lock(&mu_);
    EXPECT_EQ(box, "offgrid-box");
    sent_.push_back(command);
    return answer_;
  }
  std::vector<v1::OffGridBoxCommand> Take() {
    absl::MutexLock lock(&mu_);
    return std::exchange(sent_, {});
  }
  void Answer(absl::Status status) {
    absl::MutexLock lock(&mu_);
    answer_ = std::move(status);
  }

 private:
  absl::Mutex mu_;
  std::vector<v1::OffGridBoxCommand> sent_ ABSL_GUARDED_BY(mu_);
  absl::Status answer_ ABSL_GUARDED_BY(mu_);
};

bool IsTransfer(const v1::OffGridBoxCommand& c, v1::OffGridBoxCommand::Transfer t) {
  return c.command_case() == v1::OffGridBoxCommand::kTransfer && c.transfer() == t;
}

class GridControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    site::SiteConfigLoadResult loaded =
        site::LoadSiteConfigFromFile(Runfile("gateway/sites/demo.yaml"));
    ASSERT_TRUE(loaded.ok());
    config_ = std::move(loaded.config);
    auto controller = GridController::Create(config_, clock_, &commander_);
    ASSERT_TRUE(controller.ok()) << controller.status();
    controller_ = *std::move(controller);
    controller_->OnStreamStarted();
  }

  void Box(bool grid, v1::TransferSwitchPosition position, bool snapshot = false) {
    v1::WatchDevicesResponse event;
    event.set_device_id("offgrid-box");
    v1::OffGridBoxState box;
    box.set_grid_present(grid);
    box.set_transfer_switch(position);
    box.set_qf1_closed(true);
    box.set_qf2_closed(true);
    if (snapshot) {
      v1::DeviceState& d = *event.mutable_snapshot();
      d.set_device_id("offgrid-box");
      d.set_kind(v1::DEVICE_KIND_OFFGRID_BOX);
      d.mutable_link()->mutable_last_seen()->set_seconds(1800000000);
      *d.mutable_off_grid_box() = box;
    } else {
      *event.mutable_off_grid_box_change() = box;
    }
    controller_->OnDeviceEvent(event);
  }
  void Ice22(v1::ConnectorStatus status, double soc, bool snapshot = false) {
    v1::WatchDevicesResponse event;
    event.set_device_id("ice22-1");
    v1::EvseState evse;
    evse.set_evse_id("v2x1");
    evse.set_connector_status(status);
    evse.mutable_measurements()->set_soc_pct(soc);
    evse.mutable_measurements()->set_power_w(-4200);
    if (snapshot) {
      v1::DeviceState& d = *event.mutable_snapshot();
      d.set_device_id("ice22-1");
      d.mutable_link()->mutable_last_seen()->set_seconds(1800000000);
      *d.add_evses() = evse;
    } else {
      *event.mutable_evse_state_change()->mutable_state() = evse;
    }
    controller_->OnDeviceEvent(event);
    // The charger's meter values: the SOC of the vehicle there now.
    v1::WatchDevicesResponse telemetry;
    telemetry.set_device_id("ice22-1");
    v1::EvseTelemetry& t = *telemetry.mutable_telemetry()->add_evses();
    t.set_evse_id("v2x1");
    *t.mutable_measurements() = evse.measurements();
    controller_->OnDeviceEvent(telemetry);
  }

  FakeClock clock_;
  site::SiteConfig config_;
  RecordingCommander commander_;
  std::unique_ptr<GridController> controller_;
};

TEST_F(GridControllerTest, TheOutageStoryFromDeviceEventsToBoxCommandsAndStates) {
  EXPECT_EQ(controller_->State().mode(), v1::GRID_MODE_UNSPECIFIED);
  EXPECT_THAT(controller_->State().last_transition_detail(), HasSubstr("waiting for"));

  Box(true, v1::TRANSFER_SWITCH_POSITION_ON_GRID, /*snapshot=*/true);
  Ice22(v1::CONNECTOR_STATUS_AVAILABLE, 0, /*snapshot=*/true);
  EXPECT_EQ(controller_->State().mode(), v1::GRID_MODE_ON_GRID);
  // First contact: site.yaml's countdown and P-N pull-in go into the box.
  std::vector<v1::OffGridBoxCommand> sent = commander_.Take();
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].standby_countdown().seconds(), 180);
  EXPECT_TRUE(sent[1].has_pn_pull_in_enabled());
  EXPECT_FALSE(sent[1].pn_pull_in_enabled());
  EXPECT_TRUE(controller_->directives().grid_supply);

  clock_.Advance(absl::Seconds(5));
  Box(false, v1::TRANSFER_SWITCH_POSITION_OPEN);
  v1::GridState state = controller_->State();
  EXPECT_EQ(state.mode(), v1::GRID_MODE_OUTAGE_STANDBY);
  EXPECT_EQ(state.last_transition_reason(), v1::GRID_TRANSITION_REASON_GRID_LOST);
  EXPECT_EQ(state.standby_remaining().seconds(), 180);
  EXPECT_EQ(state.since().seconds(), absl::ToUnixSeconds(clock_.Now()));
  EXPECT_EQ(state.off_grid_box_device_id(), "offgrid-box");
  EXPECT_FALSE(state.off_grid_box().grid_present());
  EXPECT_FALSE(controller_->directives().grid_supply);

  clock_.Advance(absl::Seconds(30));
  controller_->Tick();
  EXPECT_EQ(controller_->State().standby_remaining().seconds(), 150);

  Ice22(v1::CONNECTOR_STATUS_PREPARING, 80);
  sent = commander_.Take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_TRUE(IsTransfer(sent[0], v1::OffGridBoxCommand::TRANSFER_TO_OFF_GRID));
  EXPECT_EQ(controller_->directives().forming_evse, "v2x1");
  EXPECT_EQ(controller_->directives().forming_discharge_limit_w, 19800);

  Box(false, v1::TRANSFER_SWITCH_POSITION_OFF_GRID);
  state = controller_->State();
  EXPECT_EQ(state.mode(), v1::GRID_MODE_OFF_GRID);
  EXPECT_EQ(state.last_transition_reason(), v1::GRID_TRANSITION_REASON_DISCHARGE_STARTED);
  EXPECT_EQ(state.forming_evse_id(), "v2x1");
  EXPECT_EQ(state.forming_soc_pct(), 80);
  EXPECT_EQ(state.forming_power_w(), -4200);

  Ice22(v1::CONNECTOR_STATUS_CHARGING, 30);
  state = controller_->State();
  EXPECT_EQ(state.mode(), v1::GRID_MODE_OUTAGE_SLEEP);
  EXPECT_EQ(state.last_transition_reason(), v1::GRID_TRANSITION_REASON_SOC_LOWER_LIMIT);
  EXPECT_THAT(state.last_transition_detail(), HasSubstr("SOC 30 % reached its lower limit 30 %"));
  EXPECT_EQ(controller_->directives().forming_discharge_limit_w, 0);

  // Every transition is kept for watchers, in order.
  uint64_t through = 0;
  std::vector<v1::GridState> transitions = controller_->TransitionsAfter(0, &through);
  EXPECT_EQ(through, 4u);
  ASSERT_EQ(transitions.size(), 4u);
  EXPECT_EQ(transitions[0].mode(), v1::GRID_MODE_ON_GRID);
  EXPECT_EQ(transitions[0].last_transition_reason(), v1::GRID_TRANSITION_REASON_STARTUP);
  EXPECT_EQ(transitions[1].mode(), v1::GRID_MODE_OUTAGE_STANDBY);
  EXPECT_EQ(transitions[2].mode(), v1::GRID_MODE_OFF_GRID);
  EXPECT_EQ(transitions[3].mode(), v1::GRID_MODE_OUTAGE_SLEEP);
  EXPECT_TRUE(controller_->TransitionsAfter(4, &through).empty());
}

TEST_F(GridControllerTest, ARefusedTransferIsRetriedAfterTheTransferTimeout) {
  Box(true, v1::TRANSFER_SWITCH_POSITION_ON_GRID, true);
  Ice22(v1::CONNECTOR_STATUS_PREPARING, 80, true);
  Box(false, v1::TRANSFER_SWITCH_POSITION_OPEN);
  commander_.Take();  // the settings and the first transfer
  commander_.Answer(absl::FailedPreconditionError("REJECTED: QF1 open"));
  clock_.Advance(absl::Seconds(10));
  controller_->Tick();  // the attempt is given up
  EXPECT_TRUE(commander_.Take().empty());
  EXPECT_THAT(controller_->State().last_transition_detail(), HasSubstr("did not transfer"));
  clock_.Advance(absl::Seconds(10));
  controller_->Tick();
  std::vector<v1::OffGridBoxCommand> sent = commander_.Take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_TRUE(IsTransfer(sent[0], v1::OffGridBoxCommand::TRANSFER_TO_OFF_GRID));
}

TEST_F(GridControllerTest, ALostStreamMakesTheBoxUnknownAndANewOneWritesTheSettingsAgain) {
  Box(true, v1::TRANSFER_SWITCH_POSITION_ON_GRID, true);
  EXPECT_EQ(commander_.Take().size(), 2u);
  controller_->OnStreamLost(absl::UnavailableError("driver restarted"));
  EXPECT_EQ(controller_->State().mode(), v1::GRID_MODE_ON_GRID);  // nothing says otherwise
  controller_->OnStreamStarted();
  Box(true, v1::TRANSFER_SWITCH_POSITION_ON_GRID, true);
  EXPECT_EQ(commander_.Take().size(), 2u);
}

TEST_F(GridControllerTest, RequestsAndParameters) {
  Box(true, v1::TRANSFER_SWITCH_POSITION_ON_GRID, true);
  Ice22(v1::CONNECTOR_STATUS_PREPARING, 80, true);
  v1::RequestGridModeRequest request;
  request.set_target(v1::GRID_MODE_TARGET_OFF_GRID);
  absl::StatusOr<v1::GridState> refused = controller_->Request(request);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr("never islands while the grid is present"));
  request.set_target(v1::GRID_MODE_TARGET_UNSPECIFIED);
  EXPECT_EQ(controller_->Request(request).status().code(), absl::StatusCode::kInvalidArgument);
  request.set_target(v1::GRID_MODE_TARGET_OFF_GRID);
  request.set_evse_id("wb1");
  EXPECT_EQ(controller_->Request(request).status().code(), absl::StatusCode::kNotFound);

  absl::StatusOr<v1::V2xParameters> p = controller_->Parameters("v2x1");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->soc_min_pct(), 30);
  EXPECT_EQ(p->max_offgrid_discharge_power_w(), 19800);
  EXPECT_EQ(p->standby_countdown().seconds(), 180);
  EXPECT_EQ(controller_->Parameters("wb1").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(controller_->Parameters("nope").status().code(), absl::StatusCode::kNotFound);
}

// The API over gRPC: GetGridState, WatchGridState (the current state first, then each
// transition), RequestGridMode's errors, SetV2xParameters said to be unsupported.
TEST(GridControllerServiceTest, TheApiOverGrpc) {
  site::SiteConfigLoadResult loaded =
      site::LoadSiteConfigFromFile(Runfile("gateway/sites/demo.yaml"));
  ASSERT_TRUE(loaded.ok());
  FakeClock clock;
  auto events = std::make_unique<session::testing::FakeDeviceEvents>();
  session::testing::FakeDeviceEvents* source = events.get();
  auto commander = std::make_unique<RecordingCommander>();
  auto service =
      GridControllerService::Create(loaded.config, clock, std::move(events), std::move(commander));
  ASSERT_TRUE(service.ok()) << service.status();
  ServerOptions server;
  server.listen = "127.0.0.1:0";
  server.insecure = true;
  auto host = ServerHost::Start(server, {service->get()});
  ASSERT_TRUE(host.ok()) << host.status();
  auto stub = v1::GridController::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", (*host)->port()), grpc::InsecureChannelCredentials()));

  grpc::ClientContext watch_context;
  v1::WatchGridStateRequest watch_request;
  watch_request.mutable_interval();  // zero: mode changes only
  auto watch = stub->WatchGridState(&watch_context, watch_request);
  v1::WatchGridStateResponse message;
  ASSERT_TRUE(watch->Read(&message));
  EXPECT_EQ(message.sequence(), 1u);
  EXPECT_FALSE(message.mode_changed());
  EXPECT_EQ(message.state().mode(), v1::GRID_MODE_UNSPECIFIED);

  ASSERT_TRUE(source->started());
  source->StreamStarted();
  v1::WatchDevicesResponse box;
  box.set_device_id("offgrid-box");
  box.mutable_snapshot()->set_device_id("offgrid-box");
  box.mutable_snapshot()->mutable_link()->mutable_last_seen()->set_seconds(1800000000);
  box.mutable_snapshot()->mutable_off_grid_box()->set_grid_present(true);
  box.mutable_snapshot()->mutable_off_grid_box()->set_transfer_switch(
      v1::TRANSFER_SWITCH_POSITION_ON_GRID);
  source->Event(box);
  ASSERT_TRUE(watch->Read(&message));
  EXPECT_EQ(message.sequence(), 2u);
  EXPECT_TRUE(message.mode_changed());
  EXPECT_EQ(message.state().mode(), v1::GRID_MODE_ON_GRID);
  EXPECT_EQ(message.state().last_transition_reason(), v1::GRID_TRANSITION_REASON_STARTUP);

  grpc::ClientContext get_context;
  v1::GetGridStateResponse got;
  ASSERT_TRUE(stub->GetGridState(&get_context, {}, &got).ok());
  EXPECT_EQ(got.state().mode(), v1::GRID_MODE_ON_GRID);

  grpc::ClientContext request_context;
  v1::RequestGridModeRequest request;
  request.set_target(v1::GRID_MODE_TARGET_ON_GRID);
  v1::RequestGridModeResponse answer;
  grpc::Status status = stub->RequestGridMode(&request_context, request, &answer);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("not islanded"));

  grpc::ClientContext set_context;
  v1::SetV2xParametersResponse set_answer;
  EXPECT_EQ(stub->SetV2xParameters(&set_context, {}, &set_answer).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);

  watch_context.TryCancel();
  while (watch->Read(&message)) {
  }
  watch->Finish();
  (*host)->Shutdown(absl::Seconds(1));
}

}  // namespace
}  // namespace evgate::grid_controller

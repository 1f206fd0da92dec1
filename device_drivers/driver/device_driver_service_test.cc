#include "device_drivers/driver/device_driver_service.h"

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "device_drivers/driver/fake_backend.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "runtime/server_host.h"

namespace evgate::devices {
namespace {

using ::google::protobuf::util::TimeUtil;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

v1::DeviceState Meter(const std::string& id) {
  v1::DeviceState state;
  state.set_device_id(id);
  state.set_kind(v1::DEVICE_KIND_METER);
  state.set_bus_id("rs485-1");
  return state;
}

v1::DeviceState Wallbox(const std::string& id, const std::string& evse) {
  v1::DeviceState state;
  state.set_device_id(id);
  state.set_kind(v1::DEVICE_KIND_AC_WALLBOX);
  state.set_bus_id("can0");
  state.add_evses()->set_evse_id(evse);
  return state;
}

v1::WatchDevicesResponse Telemetry(const std::string& device, double current_l1_a) {
  v1::WatchDevicesResponse event;
  event.set_device_id(device);
  event.mutable_telemetry()->mutable_meter()->mutable_current_a()->set_l1(current_l1_a);
  return event;
}

v1::Setpoint Current(const std::string& evse, double a) {
  v1::Setpoint setpoint;
  setpoint.set_evse_id(evse);
  auto* limit = setpoint.mutable_value()->mutable_current_limit_a();
  limit->set_l1(a);
  limit->set_l2(a);
  limit->set_l3(a);
  return setpoint;
}

class DeviceDriverServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto modbus = std::make_unique<FakeBackend>("rs485-1");
    auto can = std::make_unique<FakeBackend>("can0");
    modbus_ = modbus.get();
    can_ = can.get();
    modbus_->SetDevice(Meter("grid-meter"));
    can_->SetDevice(Wallbox("wallbox-2", "wb2"));
    can_->SetDevice(Wallbox("wallbox-1", "wb1"));
    std::vector<std::unique_ptr<DeviceBackend>> backends;
    backends.push_back(std::move(modbus));
    backends.push_back(std::move(can));
    DeviceDriverOptions options;
    options.max_queued_events = 50;
    service_ = std::make_unique<DeviceDriverService>(std::move(backends), clock_, options);
    ServerOptions server;
    server.listen = "127.0.0.1:0";
    server.insecure = true;
    auto host = ServerHost::Start(server, {service_.get()});
    ASSERT_TRUE(host.ok()) << host.status();
    host_ = std::move(*host);
    stub_ = v1::DeviceDriver::NewStub(grpc::CreateChannel(
        "127.0.0.1:" + std::to_string(host_->port()), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override { host_->Shutdown(absl::Seconds(1)); }

  // Reads events until `initial_snapshot_complete`; returns the snapshots' ids.
  std::vector<std::string> ReadSnapshots(
      grpc::ClientReaderInterface<v1::WatchDevicesResponse>* reader) {
    std::vector<std::string> ids;
    v1::WatchDevicesResponse event;
    while (reader->Read(&event)) {
      EXPECT_EQ(event.sequence(), ids.size() + 1);
      if (event.has_initial_snapshot_complete()) return ids;
      EXPECT_TRUE(event.has_snapshot());
      ids.push_back(event.device_id());
    }
    ADD_FAILURE() << "stream ended before initial_snapshot_complete";
    return ids;
  }

  FakeClock clock_;
  FakeBackend* modbus_ = nullptr;
  FakeBackend* can_ = nullptr;
  std::unique_ptr<DeviceDriverService> service_;
  std::unique_ptr<ServerHost> host_;
  std::unique_ptr<v1::DeviceDriver::Stub> stub_;
};

TEST_F(DeviceDriverServiceTest, StartsEveryBackend) {
  EXPECT_TRUE(modbus_->started());
  EXPECT_TRUE(can_->started());
}

TEST_F(DeviceDriverServiceTest, ListsDevicesOfAllBusesByIdInPages) {
  std::vector<std::string> ids;
  std::string token;
  int pages = 0;
  do {
    grpc::ClientContext context;
    v1::ListDevicesRequest request;
    request.set_page_size(2);
    request.set_page_token(token);
    v1::ListDevicesResponse response;
    ASSERT_TRUE(stub_->ListDevices(&context, request, &response).ok());
    for (const auto& device : response.devices()) ids.push_back(device.device_id());
    token = response.next_page_token();
    ++pages;
  } while (!token.empty());
  EXPECT_THAT(ids, ElementsAre("grid-meter", "wallbox-1", "wallbox-2"));
  EXPECT_EQ(pages, 2);
}

TEST_F(DeviceDriverServiceTest, ListsEveryBusWithItsOwnersCountersById) {
  v1::BusHealth modbus;
  modbus.set_kind("modbus");
  modbus.set_requests_total(42);
  modbus.mutable_request_duration()->set_count(40);
  modbus_->SetBusHealth(modbus);
  grpc::ClientContext context;
  v1::ListBusesResponse response;
  ASSERT_TRUE(stub_->ListBuses(&context, v1::ListBusesRequest(), &response).ok());
  ASSERT_EQ(response.buses_size(), 2);
  EXPECT_EQ(response.buses(0).bus_id(), "can0");  // by id, not in hosting order
  EXPECT_EQ(response.buses(0).kind(), "fake");
  EXPECT_EQ(response.buses(1).bus_id(), "rs485-1");
  EXPECT_EQ(response.buses(1).kind(), "modbus");
  EXPECT_EQ(response.buses(1).requests_total(), 42u);
  EXPECT_EQ(response.buses(1).request_duration().count(), 40u);
}

TEST_F(DeviceDriverServiceTest, ListFiltersByKind) {
  grpc::ClientContext context;
  v1::ListDevicesRequest request;
  request.set_kind(v1::DEVICE_KIND_METER);
  v1::ListDevicesResponse response;
  ASSERT_TRUE(stub_->ListDevices(&context, request, &response).ok());
  ASSERT_EQ(response.devices_size(), 1);
  EXPECT_EQ(response.devices(0).device_id(), "grid-meter");
  EXPECT_TRUE(response.next_page_token().empty());
}

TEST_F(DeviceDriverServiceTest, GetUnknownDeviceIsNotFound) {
  grpc::ClientContext context;
  v1::GetDeviceRequest request;
  request.set_device_id("nope");
  v1::GetDeviceResponse response;
  grpc::Status status = stub_->GetDevice(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr("nope"));
}

TEST_F(DeviceDriverServiceTest, WatchSendsSnapshotsThenSelectedEventsInSequence) {
  grpc::ClientContext context;
  v1::WatchDevicesRequest request;
  request.add_device_ids("wallbox-1");
  request.add_device_ids("grid-meter");
  auto reader = stub_->WatchDevices(&context, request);
  EXPECT_THAT(ReadSnapshots(reader.get()), ElementsAre("grid-meter", "wallbox-1"));

  v1::WatchDevicesResponse tap;
  tap.set_device_id("wallbox-2");  // not selected
  tap.mutable_rfid_tap()->set_id_tag("04A2B3C4");
  can_->Emit(tap);
  tap.set_device_id("wallbox-1");
  can_->Emit(tap);

  v1::WatchDevicesResponse event;
  ASSERT_TRUE(reader->Read(&event));
  EXPECT_EQ(event.sequence(), 4u);
  EXPECT_EQ(event.device_id(), "wallbox-1");
  EXPECT_EQ(event.rfid_tap().id_tag(), "04A2B3C4");
  context.TryCancel();
}

TEST_F(DeviceDriverServiceTest, WatchUnknownDeviceIsNotFound) {
  grpc::ClientContext context;
  v1::WatchDevicesRequest request;
  request.add_device_ids("nope");
  auto reader = stub_->WatchDevices(&context, request);
  v1::WatchDevicesResponse event;
  EXPECT_FALSE(reader->Read(&event));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(DeviceDriverServiceTest, TelemetryIsThrottledPerDeviceAndTheLatestHeldSampleFollows) {
  grpc::ClientContext context;
  v1::WatchDevicesRequest request;
  request.add_device_ids("grid-meter");
  *request.mutable_telemetry_interval() = TimeUtil::MillisecondsToDuration(500);
  auto reader = stub_->WatchDevices(&context, request);
  ReadSnapshots(reader.get());

  modbus_->Emit(Telemetry("grid-meter", 10));  // sent at once
  modbus_->Emit(Telemetry("grid-meter", 11));  // held
  modbus_->Emit(Telemetry("grid-meter", 12));  // replaces 11
  v1::WatchDevicesResponse event;
  ASSERT_TRUE(reader->Read(&event));
  EXPECT_EQ(event.telemetry().meter().current_a().l1(), 10);

  clock_.Advance(absl::Milliseconds(500));
  ASSERT_TRUE(reader->Read(&event));
  EXPECT_EQ(event.telemetry().meter().current_a().l1(), 12);

  // A sample after a quiet interval goes through without delay.
  clock_.Advance(absl::Seconds(1));
  modbus_->Emit(Telemetry("grid-meter", 13));
  ASSERT_TRUE(reader->Read(&event));
  EXPECT_EQ(event.telemetry().meter().current_a().l1(), 13);
  context.TryCancel();
}

TEST_F(DeviceDriverServiceTest, AHeldSampleIsNeverOvertakenByALaterEventOfItsDevice) {
  grpc::ClientContext context;
  v1::WatchDevicesRequest request;
  *request.mutable_telemetry_interval() = TimeUtil::MillisecondsToDuration(500);
  auto reader = stub_->WatchDevices(&context, request);
  ReadSnapshots(reader.get());

  modbus_->Emit(Telemetry("grid-meter", 10));  // sent at once
  modbus_->Emit(Telemetry("grid-meter", 11));  // held
  // Another device's event does not release it.
  v1::WatchDevicesResponse other;
  other.set_device_id("wallbox-1");
  other.mutable_evse_state_change()->mutable_state()->set_evse_id("wb1");
  can_->Emit(other);
  // Its own device's event does, first.
  v1::WatchDevicesResponse fault;
  fault.set_device_id("grid-meter");
  fault.mutable_fault_raised()->mutable_fault()->set_code("METER_COMM_LOST");
  modbus_->Emit(fault);
  std::vector<std::string> order;
  v1::WatchDevicesResponse event;
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(reader->Read(&event));
    order.push_back(
        event.has_telemetry()
            ? absl::StrCat("telemetry ", event.telemetry().meter().current_a().l1())
            : absl::StrCat(event.device_id(), event.has_fault_raised() ? " fault" : ""));
  }
  EXPECT_THAT(order, ::testing::ElementsAre("telemetry 10", "wallbox-1", "telemetry 11",
                                            "grid-meter fault"));
  // The released sample restarts the interval.
  modbus_->Emit(Telemetry("grid-meter", 12));  // held
  clock_.Advance(absl::Milliseconds(500));
  ASSERT_TRUE(reader->Read(&event));
  EXPECT_EQ(event.telemetry().meter().current_a().l1(), 12);
  context.TryCancel();
}

TEST_F(DeviceDriverServiceTest, ZeroTelemetryIntervalMeansStateChangesOnly) {
  grpc::ClientContext context;
  v1::WatchDevicesRequest request;
  *request.mutable_telemetry_interval() = TimeUtil::MillisecondsToDuration(0);
  auto reader = stub_->WatchDevices(&context, request);
  ReadSnapshots(reader.get());
  modbus_->Emit(Telemetry("grid-meter", 10));
  v1::WatchDevicesResponse change;
  change.set_device_id("wallbox-1");
  change.mutable_evse_state_change()->mutable_state()->set_evse_id("wb1");
  can_->Emit(change);
  v1::WatchDevicesResponse event;
  ASSERT_TRUE(reader->Read(&event));
  EXPECT_TRUE(event.has_evse_state_change());
  context.TryCancel();
}

TEST_F(DeviceDriverServiceTest, AStreamThatFallsBehindIsEndedNotBuffered) {
  grpc::ClientContext context;
  v1::WatchDevicesRequest request;
  auto reader = stub_->WatchDevices(&context, request);
  ReadSnapshots(reader.get());
  // The handler may be writing while we publish; more than the limit plus
  // what gRPC buffers is published without reading.
  v1::WatchDevicesResponse change;
  change.set_device_id("wallbox-1");
  change.mutable_evse_state_change()->mutable_state()->set_evse_id("wb1");
  change.mutable_evse_state_change()
      ->mutable_state()
      ->mutable_measurements()
      ->add_temperatures()
      ->set_name(std::string(100000, 'x'));  // big events fill gRPC's buffers fast
  for (int i = 0; i < 500; ++i) can_->Emit(change);
  v1::WatchDevicesResponse event;
  while (reader->Read(&event)) {
  }
  grpc::Status status = reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("reconnect"));
}

TEST_F(DeviceDriverServiceTest, ApplySplitsOneBatchPerBusAndAnswersInRequestOrder) {
  grpc::ClientContext context;
  v1::ApplySetpointsRequest request;
  request.set_batch_id("42");
  request.set_sequence(1);
  *request.add_setpoints() = Current("wb2", 10);
  *request.add_setpoints() = Current("ghost", 10);
  *request.add_setpoints() = Current("wb1", 16);
  v1::ApplySetpointsResponse response;
  ASSERT_TRUE(stub_->ApplySetpoints(&context, request, &response).ok());
  ASSERT_EQ(response.results_size(), 3);
  EXPECT_EQ(response.results(0).evse_id(), "wb2");
  EXPECT_EQ(response.results(0).status(), v1::SETPOINT_STATUS_ACCEPTED);
  EXPECT_EQ(response.results(1).evse_id(), "ghost");
  EXPECT_EQ(response.results(1).reason(), v1::SETPOINT_REJECT_REASON_UNKNOWN_EVSE);
  EXPECT_EQ(response.results(2).evse_id(), "wb1");
  EXPECT_EQ(response.results(2).in_force().batch_id(), "42");

  auto batches = can_->batches();
  ASSERT_EQ(batches.size(), 1u);  // one call for the CAN bus, both EVSEs
  ASSERT_EQ(batches[0].setpoints.size(), 2u);
  EXPECT_EQ(batches[0].ttl, absl::Seconds(10));  // the default
  EXPECT_TRUE(modbus_->batches().empty());
}

TEST_F(DeviceDriverServiceTest, ApplyRejectsMalformedBatchesWhole) {
  v1::ApplySetpointsRequest request;
  request.set_sequence(1);
  *request.add_setpoints() = Current("wb1", 10);
  *request.add_setpoints() = Current("wb1", 12);
  {
    grpc::ClientContext context;
    v1::ApplySetpointsResponse response;
    grpc::Status status = stub_->ApplySetpoints(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(), HasSubstr("more than once"));
  }
  request.clear_setpoints();
  request.add_setpoints()->set_evse_id("wb1");  // no value
  {
    grpc::ClientContext context;
    v1::ApplySetpointsResponse response;
    EXPECT_EQ(stub_->ApplySetpoints(&context, request, &response).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  EXPECT_TRUE(can_->batches().empty());
}

TEST_F(DeviceDriverServiceTest, AnOutdatedSequenceIsAbortedSoALateRetryNeverWins) {
  auto apply = [&](uint64_t sequence, const std::string& controller) {
    grpc::ClientContext context;
    v1::ApplySetpointsRequest request;
    request.set_sequence(sequence);
    request.set_controller_id(controller);
    *request.mutable_ttl() = TimeUtil::SecondsToDuration(3);
    *request.add_setpoints() = Current("wb1", 10);
    v1::ApplySetpointsResponse response;
    return stub_->ApplySetpoints(&context, request, &response).error_code();
  };
  EXPECT_EQ(apply(5, "load_balancer"), grpc::StatusCode::OK);
  EXPECT_EQ(apply(5, "load_balancer"), grpc::StatusCode::ABORTED);
  EXPECT_EQ(apply(4, "load_balancer"), grpc::StatusCode::ABORTED);
  EXPECT_EQ(apply(1, "other"), grpc::StatusCode::OK);  // scoped per controller
  EXPECT_EQ(apply(6, "load_balancer"), grpc::StatusCode::OK);
  auto batches = can_->batches();
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[0].ttl, absl::Seconds(3));
}

// The contract of ApplySetpointsRequest.sequence (device.proto) with the
// service's defaults: window 1 << 20, first sequence at most 1 << 62.
constexpr uint64_t kWindow = uint64_t{1} << 20;
constexpr uint64_t kMaxFirstSequence = uint64_t{1} << 62;

class SequenceTest : public DeviceDriverServiceTest {
 protected:
  grpc::Status Apply(uint64_t sequence, const std::string& controller = "load_balancer",
                     std::optional<absl::Duration> ttl = std::nullopt,
                     v1::ApplySetpointsResponse* response = nullptr) {
    grpc::ClientContext context;
    v1::ApplySetpointsRequest request;
    request.set_sequence(sequence);
    request.set_controller_id(controller);
    if (ttl.has_value()) {
      *request.mutable_ttl() = TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(*ttl));
    }
    *request.add_setpoints() = Current("wb1", 10);
    v1::ApplySetpointsResponse ignored;
    return stub_->ApplySetpoints(&context, request, response ? response : &ignored);
  }
  v1::GetControllerSequenceResponse Where(const std::string& controller) {
    grpc::ClientContext context;
    v1::GetControllerSequenceRequest request;
    request.set_controller_id(controller);
    v1::GetControllerSequenceResponse response;
    grpc::Status status = stub_->GetControllerSequence(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }
};

TEST_F(SequenceTest, SequenceZeroIsInvalidNotABypass) {
  ASSERT_TRUE(Apply(7).ok());
  grpc::Status status = Apply(0);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("GetControllerSequence"));
  EXPECT_EQ(can_->batches().size(), 1u);
  EXPECT_EQ(Where("load_balancer").last_applied_sequence(), 7u);
}

TEST_F(SequenceTest, Uint64MaxCannotLockTheControllerOut) {
  // From a caller not seen yet and from one that is.
  EXPECT_EQ(Apply(UINT64_MAX, "intruder").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(Apply(1).ok());
  EXPECT_EQ(Apply(UINT64_MAX).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(Apply(2).ok());  // the real controller carries on
  EXPECT_EQ(Where("intruder").last_applied_sequence(), 0u);
  EXPECT_EQ(can_->batches().size(), 2u);
}

TEST_F(SequenceTest, ASequenceBeyondTheWindowIsInvalidAndChangesNothing) {
  ASSERT_TRUE(Apply(100).ok());
  grpc::Status status = Apply(100 + kWindow + 1);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("window"));
  EXPECT_EQ(Where("load_balancer").last_applied_sequence(), 100u);
  EXPECT_TRUE(Apply(100 + kWindow).ok());  // the edge of the window is fine
  EXPECT_EQ(can_->batches().size(), 2u);
}

TEST_F(SequenceTest, AFirstSequenceAboveTheMaximumIsInvalid) {
  EXPECT_EQ(Apply(kMaxFirstSequence + 1, "new").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(Apply(kMaxFirstSequence, "new").ok());
}

TEST_F(SequenceTest, GetControllerSequenceSaysWhereACallerStands) {
  v1::GetControllerSequenceResponse unknown = Where("load_balancer");
  EXPECT_EQ(unknown.last_applied_sequence(), 0u);
  EXPECT_EQ(unknown.window(), kWindow);
  EXPECT_EQ(unknown.max_sequence(), kMaxFirstSequence);
  ASSERT_TRUE(Apply(41).ok());
  EXPECT_EQ(Where("load_balancer").last_applied_sequence(), 41u);
  EXPECT_EQ(Where("other").last_applied_sequence(), 0u);
  // A restarted caller continues from there.
  EXPECT_TRUE(Apply(Where("load_balancer").last_applied_sequence() + 1).ok());
}

TEST_F(SequenceTest, ATtlAboveTheCapIsClampedAndTheResponseSaysSo) {
  // The fixture runs with the default cap, 10 s (the site's setpoint TTL).
  v1::ApplySetpointsResponse response;
  ASSERT_TRUE(Apply(1, "load_balancer", absl::Hours(24), &response).ok());
  auto batches = can_->batches();
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(batches[0].ttl, absl::Seconds(10));
  ASSERT_EQ(response.results_size(), 1);
  EXPECT_EQ(response.results(0).status(), v1::SETPOINT_STATUS_ACCEPTED);
  EXPECT_THAT(response.results(0).message(), HasSubstr("capped to 10s"));
  // A TTL within the cap is passed on unchanged and not commented on.
  ASSERT_TRUE(Apply(2, "load_balancer", absl::Seconds(3), &response).ok());
  EXPECT_EQ(can_->batches()[1].ttl, absl::Seconds(3));
  EXPECT_EQ(response.results(0).message(), "");
}

TEST_F(SequenceTest, ANonPositiveTtlIsInvalid) {
  EXPECT_EQ(Apply(1, "load_balancer", absl::ZeroDuration()).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Apply(1, "load_balancer", absl::Seconds(-3)).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(can_->batches().empty());
  EXPECT_EQ(Where("load_balancer").last_applied_sequence(), 0u);
}

// Dispatch across buses, calling the handler directly from test threads:
// "rs485-1" controls wb3, "can0" wb1 and wb2.
class DispatchTest : public ::testing::Test {
 protected:
  DispatchTest() {
    auto modbus = std::make_unique<FakeBackend>("rs485-1");
    auto can = std::make_unique<FakeBackend>("can0");
    modbus_ = modbus.get();
    can_ = can.get();
    modbus_->SetDevice(Wallbox("wallbox-3", "wb3"));
    can_->SetDevice(Wallbox("wallbox-1", "wb1"));
    can_->SetDevice(Wallbox("wallbox-2", "wb2"));
    can_->SetDevice(Wallbox("wallbox-4", "wb4"));
    can_->SetDevice(Wallbox("wallbox-5", "wb5"));
    std::vector<std::unique_ptr<DeviceBackend>> backends;
    backends.push_back(std::move(modbus));
    backends.push_back(std::move(can));
    service_ = std::make_unique<DeviceDriverService>(std::move(backends), clock_);
  }

  grpc::Status Apply(uint64_t sequence, std::vector<v1::Setpoint> setpoints,
                     const std::string& controller = "load_balancer",
                     v1::ApplySetpointsResponse* response = nullptr) {
    v1::ApplySetpointsRequest request;
    request.set_sequence(sequence);
    request.set_batch_id(std::to_string(sequence));
    request.set_controller_id(controller);
    for (v1::Setpoint& setpoint : setpoints) *request.add_setpoints() = std::move(setpoint);
    v1::ApplySetpointsResponse ignored;
    return service_->ApplySetpoints(nullptr, &request, response ? response : &ignored);
  }

  static std::vector<std::string> BatchIds(const FakeBackend& backend) {
    std::vector<std::string> ids;
    for (const FakeBackend::Batch& batch : backend.batches()) ids.push_back(batch.batch_id);
    return ids;
  }

  // Bounds only a failure: a passing test never waits this long.
  static constexpr absl::Duration kFailAfter = absl::Seconds(10);

  FakeClock clock_;
  FakeBackend* modbus_ = nullptr;
  FakeBackend* can_ = nullptr;
  std::unique_ptr<DeviceDriverService> service_;
};

TEST_F(DispatchTest, ABlockedBusDoesNotHoldUpAnotherCallersBatch) {
  absl::Notification can_entered, release, modbus_applied;
  can_->OnApply([&](const std::vector<v1::Setpoint>&) {
    can_entered.Notify();
    release.WaitForNotification();
  });
  modbus_->OnApply([&](const std::vector<v1::Setpoint>&) { modbus_applied.Notify(); });
  std::thread first([&] { EXPECT_TRUE(Apply(1, {Current("wb1", 10)}).ok()); });
  can_entered.WaitForNotification();

  absl::Notification second_done;
  std::thread second([&] {
    EXPECT_TRUE(Apply(1, {Current("wb3", 10)}, "session").ok());
    second_done.Notify();
  });
  EXPECT_TRUE(modbus_applied.WaitForNotificationWithTimeout(kFailAfter));
  EXPECT_TRUE(second_done.WaitForNotificationWithTimeout(kFailAfter));
  EXPECT_TRUE(can_->batches().empty());  // still blocked
  release.Notify();
  first.join();
  second.join();
  EXPECT_THAT(BatchIds(*can_), ElementsAre("1"));
}

TEST_F(DispatchTest, OneBatchAppliesEachBusWithoutWaitingForTheOthers) {
  absl::Notification release, modbus_applied;
  can_->OnApply([&](const std::vector<v1::Setpoint>&) { release.WaitForNotification(); });
  modbus_->OnApply([&](const std::vector<v1::Setpoint>&) { modbus_applied.Notify(); });
  v1::ApplySetpointsResponse response;
  std::thread batch([&] {
    EXPECT_TRUE(Apply(1, {Current("wb1", 10), Current("wb3", 12)}, "lb", &response).ok());
  });
  EXPECT_TRUE(modbus_applied.WaitForNotificationWithTimeout(kFailAfter));
  release.Notify();
  batch.join();
  ASSERT_EQ(response.results_size(), 2);
  EXPECT_EQ(response.results(0).evse_id(), "wb1");
  EXPECT_EQ(response.results(1).evse_id(), "wb3");
}

TEST_F(DispatchTest, ALaterBatchWaitsOnABlockedBusButNotOnTheOthers) {
  // Batch 1 blocks on the CAN bus; batch 2 passes the sequence check, is
  // applied on Modbus at once and on CAN only after batch 1.
  absl::Notification can_entered, release, modbus_got_second;
  can_->OnApply([&](const std::vector<v1::Setpoint>& setpoints) {
    if (setpoints[0].value().current_limit_a().l1() != 10) return;
    can_entered.Notify();
    release.WaitForNotification();
  });
  modbus_->OnApply([&](const std::vector<v1::Setpoint>& setpoints) {
    if (setpoints[0].value().current_limit_a().l1() == 20) modbus_got_second.Notify();
  });
  std::thread first([&] { EXPECT_TRUE(Apply(1, {Current("wb1", 10), Current("wb3", 10)}).ok()); });
  can_entered.WaitForNotification();
  std::thread second([&] { EXPECT_TRUE(Apply(2, {Current("wb1", 20), Current("wb3", 20)}).ok()); });
  EXPECT_TRUE(modbus_got_second.WaitForNotificationWithTimeout(kFailAfter));
  EXPECT_TRUE(can_->batches().empty());
  release.Notify();
  first.join();
  second.join();
  EXPECT_THAT(BatchIds(*can_), ElementsAre("1", "2"));
  EXPECT_THAT(BatchIds(*modbus_), ElementsAre("1", "2"));
}

v1::Setpoint Pause(const std::string& evse) {
  v1::Setpoint setpoint;
  setpoint.set_evse_id(evse);
  setpoint.mutable_value()->mutable_pause();
  return setpoint;
}

std::vector<std::string> EvseIds(const std::vector<v1::Setpoint>& setpoints) {
  std::vector<std::string> ids;
  for (const v1::Setpoint& setpoint : setpoints) ids.push_back(setpoint.evse_id());
  return ids;
}

TEST_F(DispatchTest, ABusGetsTheDecreasesOfABatchBeforeItsIncreases) {
  // In force after the first batch (the fake keeps what it accepted): wb1
  // 10 A, wb2 20 A, wb4 10 A; wb5 has never had a setpoint.
  ASSERT_TRUE(Apply(1, {Current("wb1", 10), Current("wb2", 20), Current("wb4", 10)}).ok());
  v1::ApplySetpointsResponse response;
  ASSERT_TRUE(Apply(2,
                    {Current("wb1", 16),  // up
                     Current("wb5", 8),   // unknown: after the decreases
                     Current("wb2", 6),   // down
                     Pause("wb4")},       // down
                    "load_balancer", &response)
                  .ok());
  auto batches = can_->batches();
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_THAT(EvseIds(batches[1].setpoints), ElementsAre("wb2", "wb4", "wb5", "wb1"));
  // Answers stay in request order.
  ASSERT_EQ(response.results_size(), 4);
  EXPECT_EQ(response.results(0).evse_id(), "wb1");
  EXPECT_EQ(response.results(1).evse_id(), "wb5");
  EXPECT_EQ(response.results(2).evse_id(), "wb2");
  EXPECT_EQ(response.results(3).evse_id(), "wb4");
}

TEST_F(DispatchTest, ASetpointLowerOnAnyPhaseCountsAsADecrease) {
  ASSERT_TRUE(Apply(1, {Current("wb1", 16), Current("wb2", 16)}).ok());
  v1::Setpoint mixed = Current("wb2", 20);
  mixed.mutable_value()->mutable_current_limit_a()->set_l3(10);  // 20/20/10 after 16/16/16
  ASSERT_TRUE(Apply(2, {Current("wb1", 16), mixed}).ok());       // wb1 unchanged
  auto batches = can_->batches();
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_THAT(EvseIds(batches[1].setpoints), ElementsAre("wb2", "wb1"));
}

TEST_F(DispatchTest, ConcurrentCallersNeverReorderABus) {
  constexpr int kThreads = 4;
  constexpr int kBatchesPerThread = 50;
  std::atomic<uint64_t> next{0};
  absl::Mutex mu;
  std::set<uint64_t> applied;  // sequences answered OK
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kBatchesPerThread; ++i) {
        const uint64_t sequence = ++next;
        grpc::Status status =
            Apply(sequence, {Current("wb1", 6 + sequence % 10), Current("wb3", 6 + sequence % 10)});
        if (status.ok()) {
          absl::MutexLock lock(&mu);
          applied.insert(sequence);
        } else {
          EXPECT_EQ(status.error_code(), grpc::StatusCode::ABORTED) << status.error_message();
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::vector<std::string> expected;
  for (uint64_t sequence : applied) expected.push_back(std::to_string(sequence));
  EXPECT_EQ(BatchIds(*can_), expected);
  EXPECT_EQ(BatchIds(*modbus_), expected);
}

TEST_F(DeviceDriverServiceTest, StopEndsStreamsAsUnavailable) {
  grpc::ClientContext context;
  auto reader = stub_->WatchDevices(&context, v1::WatchDevicesRequest());
  ReadSnapshots(reader.get());
  service_->Stop();
  v1::WatchDevicesResponse event;
  while (reader->Read(&event)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_FALSE(can_->started());
}

TEST(DeviceDriverServiceStartTest, AFailingBusStopsTheOthersAndNamesTheBus) {
  FakeClock clock;
  auto good = std::make_unique<FakeBackend>("rs485-1");
  auto bad = std::make_unique<FakeBackend>("can0");
  FakeBackend* good_ptr = good.get();
  bad->FailStartWith(absl::UnavailableError("interface can0 does not exist"));
  std::vector<std::unique_ptr<DeviceBackend>> backends;
  backends.push_back(std::move(good));
  backends.push_back(std::move(bad));
  DeviceDriverService service(std::move(backends), clock);
  absl::Status status = service.Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(status.message()), HasSubstr("bus can0: interface can0"));
  EXPECT_FALSE(good_ptr->started());
}

}  // namespace
}  // namespace evgate::devices

#include "device_drivers/modbus/bus_owner.h"

#include <algorithm>
#include <atomic>
#include <limits>
#include <memory>
#include <thread>
#include <vector>

#include "device_drivers/modbus/builtin_profiles.h"
#include "device_drivers/modbus/fake_modbus_transport.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace evgate::modbus {
namespace {

using ::testing::HasSubstr;

constexpr int kGridUnit = 1;
constexpr int kSubUnit = 2;

const RegisterMap& Sdm630() { return **BuiltinRegisterMap("eastron_sdm630"); }

void SetMeter(FakeModbusTransport& fake, int unit, float current_l1) {
  const RegisterTable t = RegisterTable::kInput;
  for (uint16_t a : {0x00, 0x02, 0x04}) fake.SetFloat(unit, t, a, 230);
  fake.SetFloat(unit, t, 0x06, current_l1);
  fake.SetFloat(unit, t, 0x08, 2);
  fake.SetFloat(unit, t, 0x0A, 3);
  fake.SetFloat(unit, t, 0x34, 230 * (current_l1 + 5));
  fake.SetFloat(unit, t, 0x46, 50);
  fake.SetFloat(unit, t, 0x48, 1000.5f);
  fake.SetFloat(unit, t, 0x4A, 2);
  fake.SetFloat(unit, t, 0x156, 1002.5f);
}

PolledDevice Meter(const std::string& id, int unit, int priority) {
  PolledDevice device;
  device.id = id;
  device.unit_id = unit;
  device.map = &Sdm630();
  device.poll_period = absl::Milliseconds(100);
  device.slow_poll_period = absl::Seconds(1);
  device.priority = priority;
  device.stale_after_missed_polls = 3;
  return device;
}

class BusOwnerTest : public ::testing::Test {
 protected:
  BusOwnerTest() {
    auto transport = std::make_unique<FakeModbusTransport>(&clock_, absl::Milliseconds(5),
                                                           absl::Milliseconds(50));
    fake_ = transport.get();
    SetMeter(*fake_, kGridUnit, 10);
    SetMeter(*fake_, kSubUnit, 4);
    options_.bus_id = "rs485-1";
    options_.inter_frame_gap = absl::Milliseconds(2);
    options_.retries = 2;
    options_.max_backoff = absl::Milliseconds(1600);
    transport_ = std::move(transport);
  }

  void Build(std::vector<PolledDevice> devices) {
    owner_ = std::make_unique<ModbusBusOwner>(options_, std::move(devices), std::move(transport_),
                                              clock_);
    owner_->SetListener([this](const DeviceStatus& status, BusEvent event) {
      events_.push_back(event);
      if (status.stale && !stale_at_.count(status.id)) stale_at_[status.id] = clock_.Now();
    });
  }

  // Polls like the background thread would, jumping the fake clock to the
  // next due time.
  void RunFor(absl::Duration duration) {
    const absl::Time end = clock_.Now() + duration;
    while (clock_.Now() < end) {
      const absl::Time next = owner_->PollOnce();
      if (next > clock_.Now()) clock_.Set(std::min(next, end));
    }
  }

  FakeClock clock_;
  FakeModbusTransport* fake_;
  std::unique_ptr<ModbusTransport> transport_;
  BusOptions options_;
  std::unique_ptr<ModbusBusOwner> owner_;
  std::map<std::string, absl::Time> stale_at_;
  std::vector<BusEvent> events_;
};

TEST_F(BusOwnerTest, ReadsMeterValuesAndCountsRequests) {
  Build({Meter("grid-meter", kGridUnit, 10)});
  EXPECT_TRUE(owner_->Device("grid-meter")->stale);  // nothing read yet
  RunFor(absl::Milliseconds(50));
  DeviceStatus s = *owner_->Device("grid-meter");
  EXPECT_FALSE(s.stale);
  EXPECT_EQ(s.values.Get(Quantity::kCurrentL1), 10);
  EXPECT_EQ(s.values.Get(Quantity::kVoltageL3), 230);
  EXPECT_EQ(s.values.Get(Quantity::kTotalPower), 230 * 15);
  EXPECT_EQ(s.values.Get(Quantity::kFrequency), 50);
  EXPECT_EQ(s.values.Get(Quantity::kEnergyImport), 1000500);
  EXPECT_EQ(s.values.Get(Quantity::kEnergyTotal), 1002500);
  // fast block + two slow blocks, once each in the first 50 ms.
  EXPECT_EQ(s.counters.requests_total, 3u);
  EXPECT_EQ(s.counters.errors_total, 0u);
  EXPECT_EQ(s.counters.latency_last, absl::Milliseconds(5));
  EXPECT_EQ(s.counters.latency_count, 3u);
}

TEST_F(BusOwnerTest, BusCountersAreTheDevicesSumsAndTimeAnsweredRequests) {
  Build({Meter("grid-meter", kGridUnit, 10), Meter("sub-meter", kSubUnit, 0)});
  RunFor(absl::Milliseconds(500));
  fake_->SetSilent(kSubUnit, true);
  RunFor(absl::Seconds(2));
  uint64_t requests = 0, errors = 0, timeouts = 0, answered = 0;
  for (const DeviceStatus& d : owner_->Devices()) {
    requests += d.counters.requests_total;
    errors += d.counters.errors_total;
    timeouts += d.counters.timeouts_total;
    answered += d.counters.latency_count;
  }
  const BusCounters bus = owner_->Bus();
  EXPECT_EQ(bus.requests_total, requests);
  EXPECT_EQ(bus.errors_total, errors);
  EXPECT_EQ(bus.timeouts_total, timeouts);
  EXPECT_GT(timeouts, 0u);
  v1::DurationHistogram h;
  bus.request_duration.ToProto(&h);
  // Every answer took the fake's 5 ms; the timeouts are not in it.
  EXPECT_EQ(h.count(), answered);
  EXPECT_EQ(h.count(), requests - timeouts);
  ASSERT_EQ(h.upper_bounds_s_size(), 11);
  EXPECT_DOUBLE_EQ(h.upper_bounds_s(2), 0.005);
  EXPECT_EQ(h.cumulative_counts(1), 0u);  // <= 2.5 ms
  EXPECT_EQ(h.cumulative_counts(2), answered);
  EXPECT_NEAR(h.sum_s(), 0.005 * static_cast<double>(answered), 1e-9);
}

TEST_F(BusOwnerTest, PollsFastAtPollPeriodAndEnergySlowly) {
  Build({Meter("grid-meter", kGridUnit, 10)});
  RunFor(absl::Seconds(2));
  int fast = 0, slow = 0;
  for (const auto& r : fake_->requests()) (r.address == 0 ? fast : slow)++;
  EXPECT_EQ(fast, 20);     // every 100 ms
  EXPECT_EQ(slow, 2 * 2);  // two energy blocks every second
}

TEST_F(BusOwnerTest, HigherPriorityDeviceGoesFirstAndFastBeforeSlow) {
  // Listed first, but lower priority.
  Build({Meter("sub-meter", kSubUnit, 0), Meter("grid-meter", kGridUnit, 10)});
  owner_->PollOnce();
  owner_->PollOnce();
  clock_.Advance(absl::Milliseconds(2));  // inter-frame gap
  owner_->PollOnce();
  const auto requests = fake_->requests();
  ASSERT_GE(requests.size(), 2u);
  EXPECT_EQ(requests[0].unit, kGridUnit);
  EXPECT_EQ(requests[0].address, 0x0000);  // fast block first
  EXPECT_EQ(requests[1].unit, kGridUnit);
  EXPECT_EQ(requests[1].address, 0x0048);
}

TEST_F(BusOwnerTest, KeepsTheInterFrameGap) {
  Build({Meter("grid-meter", kGridUnit, 10), Meter("sub-meter", kSubUnit, 0)});
  RunFor(absl::Seconds(1));
  const auto requests = fake_->requests();
  ASSERT_GT(requests.size(), 10u);
  for (size_t i = 1; i < requests.size(); ++i) {
    // Each request takes 5 ms, then at least 2 ms of silence.
    EXPECT_GE(requests[i].at - requests[i - 1].at, absl::Milliseconds(7)) << i;
  }
}

TEST_F(BusOwnerTest, SilentMeterTurnsStaleWithinItsTimeout) {
  Build({Meter("grid-meter", kGridUnit, 10)});
  RunFor(absl::Milliseconds(500));
  ASSERT_FALSE(owner_->Device("grid-meter")->stale);
  const absl::Time last_valid = *owner_->Device("grid-meter")->measured_at;
  fake_->SetSilent(kGridUnit, true);
  RunFor(absl::Seconds(2));
  DeviceStatus s = *owner_->Device("grid-meter");
  ASSERT_TRUE(s.stale);
  ASSERT_TRUE(stale_at_.count("grid-meter"));
  // 3 missed polls x 100 ms; noticed at the latest one request timeout later.
  EXPECT_GT(stale_at_["grid-meter"] - last_valid, absl::Milliseconds(300));
  EXPECT_LE(stale_at_["grid-meter"] - last_valid, absl::Milliseconds(300 + 50));
  EXPECT_GT(s.counters.timeouts_total, 0u);
  EXPECT_THAT(s.last_error, HasSubstr("timeout"));
  // Last known values are kept for display, flagged stale.
  EXPECT_EQ(s.values.Get(Quantity::kCurrentL1), 10);

  fake_->SetSilent(kGridUnit, false);
  RunFor(absl::Seconds(2));  // within max_backoff
  s = *owner_->Device("grid-meter");
  EXPECT_FALSE(s.stale);
  EXPECT_EQ(s.consecutive_failures, 0u);
}

TEST_F(BusOwnerTest, DeadDeviceBacksOffExponentiallyAndLiveOneKeepsItsRate) {
  Build({Meter("grid-meter", kGridUnit, 10), Meter("sub-meter", kSubUnit, 0)});
  fake_->SetSilent(kSubUnit, true);
  RunFor(absl::Seconds(10));
  // Start times of the sub meter's polls: the first of each 3 attempts.
  std::vector<absl::Time> poll_starts;
  std::vector<absl::Time> sub_requests;
  int grid_fast = 0;
  for (const auto& r : fake_->requests()) {
    if (r.unit == kGridUnit && r.address == 0) ++grid_fast;
    if (r.unit == kSubUnit) sub_requests.push_back(r.at);
  }
  ASSERT_EQ(sub_requests.size() % 3, 0u) << "every poll is tried 1 + 2 retries times";
  for (size_t i = 0; i < sub_requests.size(); i += 3) poll_starts.push_back(sub_requests[i]);
  ASSERT_GE(poll_starts.size(), 6u);
  std::vector<absl::Duration> gaps;
  for (size_t i = 1; i < poll_starts.size(); ++i)
    gaps.push_back(poll_starts[i] - poll_starts[i - 1]);
  // 100, 200, 400, 800, 1600, 1600, ... ms after each missed poll (+ its 3 x 50 ms).
  // Non-decreasing, up to the few ms the grid meter's frames shift a poll.
  for (size_t i = 1; i < gaps.size(); ++i) {
    EXPECT_GE(gaps[i], gaps[i - 1] - absl::Milliseconds(20)) << i;
  }
  EXPECT_GE(gaps[3], 2 * gaps[1]);
  EXPECT_LE(gaps.back(), absl::Milliseconds(1600 + 150 + 20));
  EXPECT_GE(gaps.back(), absl::Milliseconds(1600));
  // The dead meter costs the grid meter at most a few of its 100 polls.
  EXPECT_GE(grid_fast, 90);
  EXPECT_FALSE(owner_->Device("grid-meter")->stale);
  EXPECT_TRUE(owner_->Device("sub-meter")->stale);
  EXPECT_GE(owner_->Device("sub-meter")->consecutive_failures, 6u);
}

TEST_F(BusOwnerTest, NanValueIsRejectedCountedAndNeverPassedOn) {
  Build({Meter("grid-meter", kGridUnit, 10)});
  RunFor(absl::Milliseconds(50));
  fake_->SetFloat(kGridUnit, RegisterTable::kInput, 0x08, 7);  // a valid change...
  fake_->SetFloat(kGridUnit, RegisterTable::kInput, 0x06,      // ...with a NaN next to it
                  std::numeric_limits<float>::quiet_NaN());
  RunFor(absl::Milliseconds(100));
  DeviceStatus s = *owner_->Device("grid-meter");
  EXPECT_GE(s.counters.rejected_values_total, 1u);
  EXPECT_GE(s.counters.errors_total, 1u);
  EXPECT_THAT(s.last_error, HasSubstr("device grid-meter input 0x0006 current_l1: NaN rejected"));
  EXPECT_EQ(s.values.Get(Quantity::kCurrentL1), 10);  // the old value, not NaN
  EXPECT_EQ(s.values.Get(Quantity::kCurrentL2), 2);   // nothing from the bad answer
  RunFor(absl::Milliseconds(500));
  EXPECT_TRUE(owner_->Device("grid-meter")->stale);
}

TEST_F(BusOwnerTest, ListenerHearsPollsFailuresAndStale) {
  Build({Meter("grid-meter", kGridUnit, 10)});
  RunFor(absl::Milliseconds(50));
  ASSERT_FALSE(events_.empty());
  EXPECT_EQ(events_.front(), BusEvent::kPolled);
  events_.clear();
  fake_->SetSilent(kGridUnit, true);
  RunFor(absl::Milliseconds(500));
  EXPECT_EQ(std::count(events_.begin(), events_.end(), BusEvent::kPolled), 0);
  EXPECT_GE(std::count(events_.begin(), events_.end(), BusEvent::kPollFailed), 3);
  EXPECT_EQ(std::count(events_.begin(), events_.end(), BusEvent::kStale), 1);
}

// The write path: a wallbox-like device with holding registers.
class BusOwnerWriteTest : public BusOwnerTest {
 protected:
  void SetUp() override {
    options_.sleep = [this](absl::Duration d) { clock_.Advance(d); };
    PolledDevice wallbox = Meter("wallbox", kSubUnit, 0);
    wallbox.read_back_writes = true;
    Build({Meter("grid-meter", kGridUnit, 10), wallbox});
  }
};

TEST_F(BusOwnerWriteTest, WriteGoesOutBeforeEveryDuePoll) {
  // Every poll of both devices is due now; the write still goes first.
  WriteResult r = owner_->Write("wallbox", {261, {160}});
  ASSERT_TRUE(r.status.ok()) << r.status;
  const auto requests = fake_->requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].function, 6);  // one register: write single register
  EXPECT_EQ(requests[0].unit, kSubUnit);
  EXPECT_EQ(requests[0].address, 261);
  EXPECT_EQ(requests[0].values, std::vector<uint16_t>{160});
  EXPECT_EQ(requests[1].function, 3);  // read-back
  EXPECT_EQ(r.read_back, std::vector<uint16_t>{160});
  EXPECT_EQ(r.confirmed_at, clock_.Now());
  EXPECT_EQ(fake_->GetRegister(kSubUnit, RegisterTable::kHolding, 261), 160);
  // The inter-frame gap holds between the write and its read-back too.
  EXPECT_GE(requests[1].at - requests[0].at, absl::Milliseconds(5 + 2));
  DeviceStatus s = *owner_->Device("wallbox");
  EXPECT_EQ(s.counters.writes_total, 1u);
  EXPECT_EQ(s.counters.requests_total, 2u);
  EXPECT_EQ(s.counters.failed_writes_total, 0u);
}

TEST_F(BusOwnerWriteTest, ConfirmedWriteUpdatesTheKnownValuesOfItsFields) {
  // An SDM630 map has no holding fields; a wallbox map does.
  const RegisterMap map = *ParseRegisterMap(R"(name: wb
fields:
  - {quantity: charging_state, address: 5, type: uint16}
  - {quantity: watchdog_timeout, table: holding, address: 257, type: uint16, unit: ms, writable: true, poll: slow}
  - {quantity: max_current, table: holding, address: 261, type: uint16, unit: A, scale: 0.1, max: 16, writable: true, poll: slow}
)",
                                            "wb.yaml");
  auto transport = std::make_unique<FakeModbusTransport>(&clock_);
  FakeModbusTransport* fake = transport.get();
  PolledDevice wallbox;
  wallbox.id = "wallbox";
  wallbox.unit_id = kSubUnit;
  wallbox.map = &map;
  ModbusBusOwner owner(options_, {wallbox}, std::move(transport), clock_);
  fake->SetRegister(kSubUnit, RegisterTable::kInput, 5, 2);
  fake->SetRegister(kSubUnit, RegisterTable::kHolding, 257, 15000);
  for (int i = 0; i < 4; ++i) {
    owner.PollOnce();
    clock_.Advance(absl::Milliseconds(2));
  }
  ASSERT_EQ(owner.Device("wallbox")->values.Get(Quantity::kWatchdogTimeout), 15);
  ASSERT_TRUE(owner.Write("wallbox", {257, {5000}}).status.ok());
  ASSERT_TRUE(owner.Write("wallbox", {261, {123}}).status.ok());
  EXPECT_EQ(owner.Device("wallbox")->values.Get(Quantity::kWatchdogTimeout), 5);
  EXPECT_DOUBLE_EQ(*owner.Device("wallbox")->values.Get(Quantity::kMaxCurrent), 12.3);
}

TEST_F(BusOwnerWriteTest, SeveralRegistersUseFunction16) {
  ASSERT_TRUE(owner_->Write("wallbox", {257, {15000, 4}}).status.ok());
  EXPECT_EQ(fake_->requests()[0].function, 16);
  EXPECT_EQ(fake_->requests()[0].values, (std::vector<uint16_t>{15000, 4}));
}

TEST_F(BusOwnerWriteTest, WriteQueuedFromAnotherThreadOvertakesPolls) {
  // Fake time runs fast in the background, so the polling thread polls back
  // to back.
  std::atomic<bool> done{false};
  std::thread time([&] {
    while (!done) {
      clock_.Advance(absl::Milliseconds(1));
      std::this_thread::yield();
    }
  });
  owner_->Start();
  while (fake_->requests().size() < 20) std::this_thread::yield();
  const size_t before = fake_->requests().size();
  WriteResult r = owner_->Write("wallbox", {262, {60}});
  owner_->Stop();
  done = true;
  time.join();
  ASSERT_TRUE(r.status.ok()) << r.status;
  const auto requests = fake_->requests();
  size_t write_index = 0;
  for (size_t i = before; i < requests.size(); ++i) {
    if (requests[i].function == 6) write_index = i;
  }
  ASSERT_GT(write_index, 0u);
  // At most the transaction on the wire when Write() was called (and one
  // that started while the request was being queued) went before it.
  EXPECT_LE(write_index - before, 2u);
}

TEST_F(BusOwnerWriteTest, SilentDeviceWriteIsRetriedThenFailsAndBacksOff) {
  fake_->SetSilent(kSubUnit, true);
  WriteResult r = owner_->Write("wallbox", {261, {100}});
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_FALSE(r.confirmed_at.has_value());
  DeviceStatus s = *owner_->Device("wallbox");
  EXPECT_EQ(s.counters.requests_total, 3u);  // 1 + 2 retries
  EXPECT_EQ(s.counters.timeouts_total, 3u);
  EXPECT_EQ(s.counters.writes_total, 1u);
  EXPECT_EQ(s.counters.failed_writes_total, 1u);
  EXPECT_EQ(s.consecutive_failures, 1u);
  // Backed off: its polls wait while the grid meter's go on.
  fake_->ClearRequests();
  RunFor(absl::Milliseconds(90));
  for (const auto& request : fake_->requests()) EXPECT_EQ(request.unit, kGridUnit);
}

TEST_F(BusOwnerWriteTest, ReadGoesOutBeforeEveryDuePollAndIsCounted) {
  fake_->SetRegister(kSubUnit, RegisterTable::kHolding, 261, 160);
  absl::StatusOr<std::vector<uint16_t>> r =
      owner_->Read("wallbox", RegisterTable::kHolding, 261, 1);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, std::vector<uint16_t>{160});
  const auto requests = fake_->requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].function, 3);
  EXPECT_EQ(requests[0].unit, kSubUnit);
  EXPECT_EQ(owner_->Device("wallbox")->counters.requests_total, 1u);
  EXPECT_EQ(owner_->Read("nope", RegisterTable::kHolding, 261, 1).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(owner_->Read("wallbox", RegisterTable::kHolding, 261, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(BusOwnerWriteTest, SilentDeviceReadIsRetriedThenFailsAndBacksOff) {
  fake_->SetSilent(kSubUnit, true);
  absl::StatusOr<std::vector<uint16_t>> r =
      owner_->Read("wallbox", RegisterTable::kHolding, 261, 1);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
  DeviceStatus s = *owner_->Device("wallbox");
  EXPECT_EQ(s.counters.requests_total, 3u);  // 1 + 2 retries
  EXPECT_EQ(s.consecutive_failures, 1u);
  fake_->ClearRequests();
  RunFor(absl::Milliseconds(90));
  for (const auto& request : fake_->requests()) EXPECT_EQ(request.unit, kGridUnit);
}

TEST_F(BusOwnerWriteTest, ValueThatDoesNotReadBackFailsTheWrite) {
  fake_->SetIgnoresWrites(kSubUnit, 261);
  fake_->SetRegister(kSubUnit, RegisterTable::kHolding, 261, 60);
  WriteResult r = owner_->Write("wallbox", {261, {160}});
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(r.status.message(),
              HasSubstr("device wallbox holding 0x0105+1: wrote 160 but reads back 60"));
  EXPECT_EQ(r.read_back, std::vector<uint16_t>{60});
  DeviceStatus s = *owner_->Device("wallbox");
  EXPECT_EQ(s.counters.requests_total, 6u);  // 3 x (write + read-back)
  EXPECT_EQ(s.counters.errors_total, 3u);
  EXPECT_EQ(s.counters.failed_writes_total, 1u);
  EXPECT_THAT(s.last_error, HasSubstr("reads back 60"));
}

TEST_F(BusOwnerWriteTest, ExceptionReplyIsNotRetried) {
  fake_->SetRejectsWrites(kSubUnit, 261);
  WriteResult r = owner_->Write("wallbox", {261, {999}});
  EXPECT_EQ(r.status.code(), absl::StatusCode::kFailedPrecondition);
  DeviceStatus s = *owner_->Device("wallbox");
  EXPECT_EQ(s.counters.requests_total, 1u);
  EXPECT_EQ(s.consecutive_failures, 0u);  // it answered: no backoff
  EXPECT_TRUE(s.last_seen.has_value());
}

TEST_F(BusOwnerWriteTest, UnknownDeviceAndStoppedBusAreErrors) {
  EXPECT_EQ(owner_->Write("nope", {1, {1}}).status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(owner_->Write("wallbox", {1, {}}).status.code(), absl::StatusCode::kInvalidArgument);
  owner_->Start();
  owner_->Stop();
  WriteResult r = owner_->Write("wallbox", {261, {60}});
  EXPECT_EQ(r.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(r.status.message(), HasSubstr("bus rs485-1 is stopped"));
}

TEST_F(BusOwnerWriteTest, PollNowMakesABackedOffDeviceDueAtOnce) {
  fake_->SetSilent(kSubUnit, true);
  RunFor(absl::Milliseconds(600));  // missed polls: backed off for 400 ms
  fake_->SetSilent(kSubUnit, false);
  const auto polled_wallbox = [&] {
    bool polled = false;
    for (const auto& request : fake_->requests()) polled |= request.unit == kSubUnit;
    fake_->ClearRequests();
    return polled;
  };
  polled_wallbox();
  RunFor(absl::Milliseconds(30));
  EXPECT_FALSE(polled_wallbox()) << "still backed off";
  ASSERT_TRUE(owner_->PollNow("wallbox"));
  EXPECT_FALSE(owner_->PollNow("nope"));
  RunFor(absl::Milliseconds(30));
  EXPECT_TRUE(polled_wallbox());
  EXPECT_FALSE(owner_->Device("wallbox")->stale);
}

TEST(RtuInterFrameGap, ThreeAndAHalfCharacters) {
  EXPECT_EQ(RtuInterFrameGap(9600), absl::Microseconds(4010));  // 3.5 x 11 bits / 9600
  EXPECT_EQ(RtuInterFrameGap(115200), absl::Microseconds(1750));
}

}  // namespace
}  // namespace evgate::modbus

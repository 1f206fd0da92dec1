// The CAN bus owner's own cost per received frame (decode, state update,
// DeviceState pieces and WatchDevices events built for the sink), per
// setpoint batch, and per periodic pass, with 63 wallboxes on one bus (the
// protocol's maximum).
//
//   bazel run -c opt //device_drivers/can:can_bus_owner_benchmark
//
// BM_HandleBusMix: the frames 63 wallboxes send in one second (5 Status,
// 1 Measurements, 1 Energy each), round robin, into HandleEvent with a sink
// that drops the events. BM_ApplySetpoints63: one batch with a setpoint per
// EVSE (validation, encode, send to an in-memory queue, state-change event).
// BM_RunDue63: the once-per-second pass (63 setpoint refreshes, the
// AvailableCurrent broadcast, staleness checks).
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "device_drivers/can/can_bus_owner.h"
#include "device_drivers/can/testdata/queue_can_bus.h"
#include "device_drivers/can/wallbox_protocol.h"
#include "runtime/clock.h"
#include "runtime/log.h"

namespace evgate::can {
namespace {

namespace v1 = evgate::v1;
constexpr int kWallboxes = 63;

class CountingSink : public devices::DeviceEventSink {
 public:
  void Publish(v1::WatchDevicesResponse event) override {
    benchmark::DoNotOptimize(event);
    ++events;
  }
  int64_t events = 0;
};

struct Bench {
  Bench() {
    log::SetMinLevel(log::Level::kError);
    std::vector<CanWallboxConfig> configs;
    for (int address = 1; address <= kWallboxes; ++address) {
      CanWallboxConfig c;
      c.device_id = absl::StrCat("wallbox-", address);
      c.evse_id = absl::StrCat("wb", address);
      c.address = address;
      c.phases = {site::Phase::kL2, site::Phase::kL3, site::Phase::kL1};
      configs.push_back(c);
    }
    CanBusOwnerOptions options;
    options.bus_id = "bench";
    owner = std::make_unique<CanBusOwner>(
        options, configs, std::make_unique<QueueCanBus>(&to_owner, &from_owner), clock);
    owner->SetSink(&sink);
    (void)owner->Open();
  }
  FakeClock clock;
  std::deque<CanFrame> to_owner, from_owner;
  CountingSink sink;
  std::unique_ptr<CanBusOwner> owner;
};

std::vector<CanFrame> BusMix() {
  std::vector<CanFrame> frames;
  for (int round = 0; round < 5; ++round) {
    for (int address = 1; address <= kWallboxes; ++address) {
      wallbox::Status s;
      s.address = address;
      s.state = wallbox::IecState::kC;
      s.relay_closed = true;
      s.watchdog_configured = true;
      s.counter = round;
      s.current_a = {16.0 + round * 0.1, 15.9, 16.1};
      frames.push_back(*wallbox::Encode(s));
      if (round == 0) {
        frames.push_back(*wallbox::Encode(wallbox::Measurements{address, {230, 231, 229}, 11000}));
      } else if (round == 1) {
        wallbox::Energy e;
        e.address = address;
        e.session_energy_wh = 1000 + address;
        e.lifetime_energy_wh = 100000;
        e.relay_temperature_c = 40;
        e.ambient_temperature_c = 20;
        frames.push_back(*wallbox::Encode(e));
      }
    }
  }
  return frames;
}

void BM_HandleBusMix(benchmark::State& state) {
  Bench bench;
  const std::vector<CanFrame> frames = BusMix();
  size_t i = 0;
  BusEvent event;
  event.kind = BusEventKind::kFrame;
  for (auto _ : state) {
    event.frame = frames[i];
    bench.owner->HandleEvent(event);
    if (++i == frames.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["events_per_frame"] =
      static_cast<double>(bench.sink.events) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_HandleBusMix);

void BM_ApplySetpoints63(benchmark::State& state) {
  Bench bench;
  for (const CanFrame& f : BusMix()) bench.owner->HandleEvent({BusEventKind::kFrame, f, ""});
  std::vector<v1::Setpoint> batch;
  for (int address = 1; address <= kWallboxes; ++address) {
    v1::Setpoint sp;
    sp.set_evse_id(absl::StrCat("wb", address));
    v1::PhaseValues* c = sp.mutable_value()->mutable_current_limit_a();
    c->set_l1(10);
    c->set_l2(10);
    c->set_l3(10);
    batch.push_back(sp);
  }
  int round = 0;
  for (auto _ : state) {
    const double amps = 10 + (++round % 10);  // a change every time
    for (v1::Setpoint& sp : batch) {
      sp.mutable_value()->mutable_current_limit_a()->set_l1(amps);
      sp.mutable_value()->mutable_current_limit_a()->set_l2(amps);
      sp.mutable_value()->mutable_current_limit_a()->set_l3(amps);
    }
    benchmark::DoNotOptimize(bench.owner->ApplySetpoints(batch, absl::Seconds(10), "b"));
    bench.from_owner.clear();
  }
  state.SetItemsProcessed(state.iterations() * kWallboxes);
}
BENCHMARK(BM_ApplySetpoints63);

void BM_RunDue63(benchmark::State& state) {
  Bench bench;
  for (const CanFrame& f : BusMix()) bench.owner->HandleEvent({BusEventKind::kFrame, f, ""});
  std::vector<v1::Setpoint> batch;
  for (int address = 1; address <= kWallboxes; ++address) {
    v1::Setpoint sp;
    sp.set_evse_id(absl::StrCat("wb", address));
    sp.mutable_value()->mutable_pause();
    batch.push_back(sp);
  }
  bench.owner->ApplySetpoints(batch, absl::InfiniteDuration(), "b");
  for (auto _ : state) {
    bench.clock.Advance(absl::Seconds(1));  // everything is due
    benchmark::DoNotOptimize(bench.owner->RunDue());
    bench.from_owner.clear();
  }
}
BENCHMARK(BM_RunDue63);

}  // namespace
}  // namespace evgate::can

BENCHMARK_MAIN();

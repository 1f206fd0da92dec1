// Control-loop reaction time in one process (issue #3 goal: p99 <= 50 ms):
// from a grid meter sample's timestamp to the setpoints computed from it
// being handed to the bus owner. The path is the production one: the bus
// owner publishes the sample to the real DeviceDriver service, which streams
// it over gRPC (in-process channel, as in `evgate run`) to the load
// balancer's control loop, which runs the allocation engine and calls
// ApplySetpoints back over gRPC; a fake bus owner stands in for the buses
// and stamps the moment the batch arrives.
//
// Each iteration publishes one sample whose building load is 0.2 A per EVSE
// higher than the last, so every sample must lower every EVSE's setpoint at
// once; after 40 steps the load drops back (a ramped increase, not timed).
// The tick is set to 60 s (longer than a run) so that only meter samples
// trigger setpoints: a tick recomputes from the last sample, which with these
// unmeasured EVSEs would take one step of the next sample's decrease ahead
// of it and leave the next sample nothing to change. The site
// has N three-phase AC wallboxes (6-32 A, all charging) directly
// under the grid connection, whose fuse leaves each of them 12-20 A.
//
//   bazel run -c opt //services/load_balancer:control_loop_benchmark
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "benchmark/benchmark.h"
#include "device_drivers/driver/device_driver_service.h"
#include "device_drivers/driver/fake_backend.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/create_channel.h"
#include "prometheus/text_serializer.h"
#include "runtime/log.h"
#include "runtime/server_host.h"
#include "services/load_balancer/load_balancer_service.h"
#include "services/metrics_exporter/site_collector.h"
#include "site_controller/config/site_config_loader.h"

namespace evgate::load_balancer {
namespace {

using ::google::protobuf::util::TimeUtil;

std::string SiteYaml(int evses) {
  // 20 A per EVSE above a 40 A building load: every EVSE stays between its
  // minimum and maximum, so every load step moves every setpoint.
  const int fuse = evses * 20 + 40;
  std::string yaml = absl::StrFormat(R"(
site:
  id: bench
grid:
  fuse_limit_a: %d
  meter: grid-meter
controller:
  margin_a: 0
  hysteresis_a: 0.1
  min_pause_s: 0
  tick_ms: 60000
  meter_timeout_ms: 60000
services:
  session_database: /var/lib/evgate/bench.db
insecure_demo: true
devices:
  - id: grid-meter
    profile: eastron_sdm630
    bus: rs485-1
    address: 1
)",
                                     fuse);
  // CAN addresses go up to 63: 60 wallboxes per bus.
  for (int i = 1; i <= evses; ++i) {
    absl::StrAppendFormat(&yaml, R"(  - id: wallbox-%d
    profile: cabur_ev_plus_22kw
    bus: can%d
    address: %d
)",
                          i, (i - 1) / 60, (i - 1) % 60 + 1);
  }
  yaml += "buses:\n  - id: rs485-1\n    type: modbus_tcp\n    host: 127.0.0.1\n";
  for (int bus = 0; bus <= (evses - 1) / 60; ++bus) {
    absl::StrAppendFormat(
        &yaml,
        "  - id: can%d\n    type: can\n    interface: vcan%d\n    transport: udp\n"
        "    udp_port: %d\n",
        bus, bus, 15030 + bus);
  }
  yaml += "stations:\n";
  for (int i = 1; i <= evses; ++i) {
    absl::StrAppendFormat(&yaml, R"(  - id: wb%d
    device: wallbox-%d
    circuit: grid
    evses:
      - id: wb%d
        phases: [L1, L2, L3]
        max_current_a: 32
)",
                          i, i, i);
  }
  return yaml;
}

void BM_MeterSampleToSetpoints(benchmark::State& state) {
  log::SetMinLevel(log::Level::kWarning);
  const int evses = static_cast<int>(state.range(0));
  auto config = site::LoadSiteConfigString(SiteYaml(evses), "bench.yaml");
  if (!config.ok()) {
    state.SkipWithError(std::string(config.status().message()).c_str());
    return;
  }
  Clock& clock = SystemClock::Get();
  auto modbus = std::make_unique<devices::FakeBackend>("rs485-1");
  auto can = std::make_unique<devices::FakeBackend>("can0");
  devices::FakeBackend* meter_bus = modbus.get();
  devices::FakeBackend* wallbox_bus = can.get();
  v1::DeviceState meter;
  meter.set_device_id("grid-meter");
  meter.set_kind(v1::DEVICE_KIND_METER);
  meter_bus->SetDevice(meter);
  for (int i = 1; i <= evses; ++i) {
    v1::DeviceState wallbox;
    wallbox.set_device_id(absl::StrCat("wallbox-", i));
    wallbox.set_kind(v1::DEVICE_KIND_AC_WALLBOX);
    v1::EvseState* evse = wallbox.add_evses();
    evse->set_evse_id(absl::StrCat("wb", i));
    evse->set_connector_status(v1::CONNECTOR_STATUS_CHARGING);
    wallbox_bus->SetDevice(wallbox);
  }

  // The moment each batch reaches the bus owner, and wb1's value in it.
  std::mutex mu;
  std::condition_variable arrived;
  uint64_t batches = 0;
  absl::Time last_arrival;
  double ev_load_a = 0;  // per phase: the vehicles follow their setpoints at once
  wallbox_bus->OnApply([&](const std::vector<v1::Setpoint>& setpoints) {
    const absl::Time now = clock.Now();
    double sum = 0;
    for (const v1::Setpoint& s : setpoints) sum += s.value().current_limit_a().l1();
    std::lock_guard<std::mutex> lock(mu);
    ++batches;
    last_arrival = now;
    ev_load_a = sum;
    arrived.notify_all();
  });

  std::vector<std::unique_ptr<devices::DeviceBackend>> backends;
  backends.push_back(std::move(modbus));
  backends.push_back(std::move(can));
  devices::DeviceDriverService drivers(std::move(backends), clock);
  LoadBalancerService balancer(*config, clock);
  ServerOptions server;
  server.listen = "127.0.0.1:0";
  server.insecure = true;
  auto host = ServerHost::Start(server, {&drivers, &balancer});
  if (!host.ok()) {
    state.SkipWithError(std::string(host.status().message()).c_str());
    return;
  }

  // Arg 1 = 1: the metrics exporter's collector scrapes this process's load
  // balancer and drivers every 250 ms meanwhile, as in `evgate run` (the
  // worst case: same process, same cores), serialized as /metrics would be.
  std::atomic<bool> scraping{state.range(1) == 1};
  std::atomic<int> scrapes{0};
  std::thread scraper;
  if (scraping) {
    metrics::PeerChannels peers;
    auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", (*host)->port()),
                                       grpc::InsecureChannelCredentials());
    peers.load_balancer = channel;
    peers.device_drivers = channel;
    scraper = std::thread([&scraping, &scrapes, peers] {
      metrics::SiteCollector collector(peers, nullptr, {"bench", "bench"}, absl::Seconds(2));
      while (scraping) {
        benchmark::DoNotOptimize(prometheus::TextSerializer().Serialize(collector.Collect()));
        ++scrapes;
        absl::SleepFor(absl::Milliseconds(250));
      }
    });
  }

  const double fuse = evses * 20 + 40;
  auto publish = [&](double base_a) {
    v1::WatchDevicesResponse event;
    event.set_device_id("grid-meter");
    v1::MeterReading* reading = event.mutable_telemetry()->mutable_meter();
    double total_a;
    {
      std::lock_guard<std::mutex> lock(mu);
      total_a = base_a + ev_load_a;
    }
    reading->mutable_current_a()->set_l1(total_a);
    reading->mutable_current_a()->set_l2(total_a);
    reading->mutable_current_a()->set_l3(total_a);
    const absl::Time at = clock.Now();
    *reading->mutable_measured_at() = TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(at));
    meter_bus->Emit(event);
    return at;
  };
  auto wait_for_batch_after = [&](uint64_t seen, absl::Duration timeout) {
    std::unique_lock<std::mutex> lock(mu);
    return arrived.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                            [&] { return batches > seen; });
  };

  // Warm up: connect, leave failsafe, ramp up to the top of the sawtooth.
  const double low = fuse - evses * 20.0;  // 20 A per EVSE left at the bottom
  for (int i = 0; i < 40; ++i) {
    publish(low);
    absl::SleepFor(absl::Milliseconds(110));
  }

  std::vector<double> reactions_ms;
  int level = 0;  // steps above `low` of the last sample
  for (auto _ : state) {
    state.PauseTiming();
    if (level == 40) {
      // Back down and let the ramp (5 A/s) bring the EVSEs back to 20 A:
      // increases are rate-limited on purpose and not timed here.
      for (int i = 0; i < 25; ++i) {
        publish(low);
        absl::SleepFor(absl::Milliseconds(110));
      }
      level = 0;
    }
    uint64_t seen;
    {
      std::lock_guard<std::mutex> lock(mu);
      seen = batches;
    }
    state.ResumeTiming();
    const absl::Time at = publish(low + 0.2 * evses * ++level);
    if (!wait_for_batch_after(seen, absl::Seconds(2))) {
      const std::string error = absl::StrFormat(
          "no setpoints within 2 s of meter sample %d (level %d)", reactions_ms.size() + 1, level);
      state.SkipWithError(error.c_str());
      break;
    }
    state.PauseTiming();
    {
      std::lock_guard<std::mutex> lock(mu);
      reactions_ms.push_back(absl::ToDoubleMilliseconds(last_arrival - at));
    }
    // The driver passes a meter's telemetry on at most every 100 ms (its
    // minimum telemetry interval): a 10 Hz meter is the fastest input.
    absl::SleepFor(absl::Milliseconds(110));
    state.ResumeTiming();
  }
  scraping = false;
  if (scraper.joinable()) scraper.join();
  state.counters["scrapes"] = scrapes.load();
  (*host)->Shutdown(absl::Seconds(1));
  if (reactions_ms.empty()) return;
  std::sort(reactions_ms.begin(), reactions_ms.end());
  auto percentile = [&](double p) {
    return reactions_ms[std::min(reactions_ms.size() - 1,
                                 static_cast<size_t>(p * reactions_ms.size()))];
  };
  state.counters["p50_ms"] = percentile(0.50);
  state.counters["p99_ms"] = percentile(0.99);
  state.counters["max_ms"] = reactions_ms.back();
  state.counters["samples"] = static_cast<double>(reactions_ms.size());
}
// Args: EVSEs, and whether the metrics exporter scrapes meanwhile.
BENCHMARK(BM_MeterSampleToSetpoints)
    ->Args({4, 0})
    ->Args({100, 0})
    ->Args({1000, 0})
    ->Args({1000, 1})
    ->Iterations(200)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace evgate::load_balancer

BENCHMARK_MAIN();

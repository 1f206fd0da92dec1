// Time per allocation for 10 / 100 / 1,000 EVSEs in a three-level circuit
// tree below the grid: BM_Allocate is the plain Allocate() (validation and structure included),
// BM_AllocatePrepared the control loop's PreparedSite::Allocate(). Goal: p99 ≤ 1 ms at 1,000 EVSEs
// on one core.
//
//   bazel run -c opt //site_controller/allocation:allocation_benchmark
//
// The site is loaded so that limits bind at every level (grid, contract, feeders, boards,
// stations), some minimums do not fit and rotations/priorities are in play. Besides Google
// Benchmark's mean, each run reports p50_us and p99_us over its individual allocations.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "benchmark/benchmark.h"
#include "site_controller/allocation/allocation.h"
#include "site_controller/allocation/allocation_reference.h"

namespace evgate::allocation {
namespace {

AllocationInput MakeSite(int evse_count) {
  std::mt19937_64 rng(7);
  auto uniform = [&](double lo, double hi) {
    return std::uniform_real_distribution<double>(lo, hi)(rng);
  };
  AllocationInput in;
  // Sized so that about half the EVSEs' maximum fits: limits bind everywhere.
  const double site_a = std::max(63.0, evse_count * 9.0);
  in.grid.limit_a = {site_a, site_a, site_a};
  in.grid.contract_power_w = site_a * 3 * 230 * 0.9;
  in.grid.measured_a = PhaseValues{site_a * 0.2, site_a * 0.15, site_a * 0.25};
  in.grid.meter_age_s = 0.3;
  in.grid.meter_timeout_s = 3;
  in.margin_a = 1;
  in.now_s = 10000;
  // Level 1: feeders; level 2: boards; level 3: sub-boards. EVSEs hang off levels 2 and 3.
  const int feeders = std::max(1, evse_count / 100);
  const int boards_per_feeder = 5;
  const int subs_per_board = 2;
  std::vector<std::string> leaves;
  for (int f = 0; f < feeders; ++f) {
    const std::string feeder = "feeder" + std::to_string(f);
    const double feeder_a = site_a / feeders * 0.8;
    in.circuits.push_back({feeder,
                           "grid",
                           {feeder_a, feeder_a, feeder_a},
                           PhaseValues{feeder_a * 0.1, feeder_a * 0.1, feeder_a * 0.1}});
    for (int b = 0; b < boards_per_feeder; ++b) {
      const std::string board = feeder + "/board" + std::to_string(b);
      const double board_a = feeder_a / 3;
      in.circuits.push_back({board, feeder, {board_a, board_a, board_a}, std::nullopt});
      leaves.push_back(board);
      for (int s = 0; s < subs_per_board; ++s) {
        const std::string sub = board + "/sub" + std::to_string(s);
        in.circuits.push_back({sub, board, {board_a / 2, board_a / 2, board_a / 2}, std::nullopt});
        leaves.push_back(sub);
      }
    }
  }
  const int stations = std::max(1, evse_count / 20);
  for (int s = 0; s < stations; ++s) {
    in.stations.push_back({"station" + std::to_string(s), 60000});
  }
  for (int i = 0; i < evse_count; ++i) {
    Evse e;
    e.id = "evse" + std::to_string(i);
    e.circuit = leaves[i % leaves.size()];
    e.priority = i % 10 == 0 ? 1 : 0;
    e.session_energy_wh = static_cast<double>(rng() % 40) * 1000;
    e.plugged_at_s = static_cast<double>(rng() % 5000);
    if (i % 3 == 0) {
      e.running_since_s = in.now_s - static_cast<double>(rng() % 900);
    } else if (i % 3 == 1) {
      e.paused_since_s = in.now_s - static_cast<double>(rng() % 900);
    }
    if (i % 10 == 9) {
      e.type = EvseType::kDc;
      e.phases = {Phase::kL1, Phase::kL2, Phase::kL3};
      e.station = "station" + std::to_string((i / 10) % stations);
      e.connector = 1 + (i / 10) % 2;
      e.max_w = 60000;
      e.efficiency = 0.95;
      e.measured_w = uniform(0, 30000);
    } else if (i % 2 == 0) {
      const int rotation = i % 3;
      for (int k = 0; k < 3; ++k) e.phases.push_back(static_cast<Phase>((k + rotation) % 3));
      e.max_a = 16 + static_cast<double>(rng() % 17);
      e.measured_a = std::vector<double>{uniform(0, 16), uniform(0, 16), uniform(0, 16)};
    } else {
      e.phases = {static_cast<Phase>(i % 3)};
      e.max_a = 32;
      e.setpoint_a = 10;
    }
    e.active = i % 17 != 0;
    in.evses.push_back(std::move(e));
  }
  return in;
}

void BM_Allocate(benchmark::State& state) {
  const AllocationInput site = MakeSite(static_cast<int>(state.range(0)));
  std::vector<double> micros;
  micros.reserve(1 << 16);
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    absl::StatusOr<Allocation> out = Allocate(site);
    const auto end = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(out);
    if (!out.ok()) {
      state.SkipWithError(std::string(out.status().message()).c_str());
      return;
    }
    micros.push_back(std::chrono::duration<double, std::micro>(end - start).count());
  }
  std::sort(micros.begin(), micros.end());
  if (!micros.empty()) {
    state.counters["p50_us"] = micros[micros.size() / 2];
    state.counters["p99_us"] = micros[std::min(micros.size() - 1, micros.size() * 99 / 100)];
  }
  state.counters["evses"] = static_cast<double>(site.evses.size());
  state.counters["circuits"] = static_cast<double>(site.circuits.size());
}
BENCHMARK(BM_Allocate)->Arg(10)->Arg(100)->Arg(1000)->Unit(benchmark::kMicrosecond);

// The control loop's path: the site is prepared once (PreparedSite::Create), then every
// iteration allocates a new snapshot (here: the grid reading changes, so no result is cached)
// into the previous iteration's result, as the control policy does with the result the loop
// hands back (ControlPolicy::Recycle).
template <typename Site>
void BM_AllocatePreparedWith(benchmark::State& state) {
  AllocationInput site = MakeSite(static_cast<int>(state.range(0)));
  absl::StatusOr<Site> prepared = Site::Create(site);
  if (!prepared.ok()) {
    state.SkipWithError(std::string(prepared.status().message()).c_str());
    return;
  }
  const PhaseValues grid = *site.grid.measured_a;
  Allocation out;
  std::vector<double> micros;
  micros.reserve(1 << 16);
  int64_t n = 0;
  for (auto _ : state) {
    const double wobble = static_cast<double>(n++ % 8) * 0.25;
    site.grid.measured_a = PhaseValues{grid[0] + wobble, grid[1] + wobble, grid[2] + wobble};
    absl::Status status;
    absl::StatusOr<Allocation> result;  // the reference's, freed outside the timed part
    const auto start = std::chrono::steady_clock::now();
    if constexpr (std::is_same_v<Site, PreparedSite>) {
      status = prepared->Allocate(site, out);  // into the previous result, as the control loop
    } else {
      result = prepared->Allocate(site);
      status = result.status();
    }
    const auto end = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(out);
    benchmark::DoNotOptimize(result);
    if (!status.ok()) {
      state.SkipWithError(std::string(status.message()).c_str());
      return;
    }
    micros.push_back(std::chrono::duration<double, std::micro>(end - start).count());
  }
  std::sort(micros.begin(), micros.end());
  if (!micros.empty()) {
    state.counters["p50_us"] = micros[micros.size() / 2];
    state.counters["p99_us"] = micros[std::min(micros.size() - 1, micros.size() * 99 / 100)];
  }
  state.counters["evses"] = static_cast<double>(site.evses.size());
  state.counters["circuits"] = static_cast<double>(site.circuits.size());
}
void BM_AllocatePrepared(benchmark::State& state) { BM_AllocatePreparedWith<PreparedSite>(state); }
BENCHMARK(BM_AllocatePrepared)->Arg(10)->Arg(100)->Arg(1000)->Unit(benchmark::kMicrosecond);

// The same with the engine as it was before issue #10's performance work (allocation_reference.h),
// to show both figures from one run.
void BM_AllocatePreparedBefore(benchmark::State& state) {
  BM_AllocatePreparedWith<reference::PreparedSiteReference>(state);
}
BENCHMARK(BM_AllocatePreparedBefore)->Arg(1000)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace evgate::allocation

BENCHMARK_MAIN();

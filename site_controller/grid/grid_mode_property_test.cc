// Randomized event sequences against a model of the off-grid box and its vehicles: outages and
// restores, the button, plug/unplug, SOC falling while discharging, faults, link losses, a box
// that ignores commands, clock jumps both ways, operator requests. After every step the
// invariants of grid_mode_machine.h must hold; at the end of each sequence the site must reach
// the grid again once the world lets it, and an island once a vehicle is ready.

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "site_controller/grid/grid_mode_machine.h"

namespace evgate::grid {
namespace {

constexpr int kSequences = 1500;
constexpr int kStepsPerSequence = 300;
constexpr double kDischargePctPerSecond = 0.2;

// How often each (mode entered, reason) pair happened over all sequences: the sequences must
// reach every rule, or the invariants prove little.
std::map<std::pair<GridMode, TransitionReason>, int>& Coverage() {
  static auto* coverage = new std::map<std::pair<GridMode, TransitionReason>, int>;
  return *coverage;
}

struct Vehicle {
  bool reachable = true;
  bool connected = false;
  double soc_pct = 50;
  bool soc_known = true;
  bool fault = false;
};

// The box as docs/protocols/offgrid-box.md describes it (what OffGridBoxSimulator does).
struct World {
  bool grid = true;
  bool awake = true;
  bool link_up = true;
  bool cooperative = true;  // carries out transfer commands
  TransferSwitch sw = TransferSwitch::kOnGrid;
  bool qf1 = true;
  bool qf2 = true;
  double load_w = 5000;
  absl::Duration box_countdown_setting;
  std::optional<absl::Duration> box_countdown;
  std::vector<Vehicle> vehicles;
};

class Sequence {
 public:
  explicit Sequence(uint32_t seed) : rng_(seed) {
    std::uniform_int_distribution<int> countdown_s(5, 900);
    settings_.standby_countdown = absl::Seconds(countdown_s(rng_));
    settings_.auto_off_grid = Chance(0.6);
    settings_.resync_stable_time = absl::Seconds(std::uniform_int_distribution<int>(1, 60)(rng_));
    settings_.transfer_timeout = absl::Seconds(std::uniform_int_distribution<int>(1, 20)(rng_));
    settings_.overload_trip_time = absl::Seconds(std::uniform_int_distribution<int>(1, 5)(rng_));
    const int n = Chance(0.5) ? 1 : 2;
    for (int i = 0; i < n; ++i) {
      V2xEvseSettings evse;
      evse.evse_id = absl::StrCat("v2x", i + 1);
      evse.soc_min_pct = std::uniform_int_distribution<int>(10, 50)(rng_);
      evse.soc_max_pct = 100;
      evse.max_offgrid_discharge_power_w =
          std::uniform_real_distribution<double>(5000, 19800)(rng_);
      evses_.push_back(evse);
      world_.vehicles.push_back(Vehicle{});
    }
    // The box's own countdown may be set differently from site.yaml.
    world_.box_countdown_setting =
        Chance(0.5) ? settings_.standby_countdown : absl::Seconds(countdown_s(rng_));
    auto machine = GridModeMachine::Create(settings_, evses_);
    EXPECT_TRUE(machine.ok()) << machine.status();
    m_ = *std::move(machine);
  }

  void Run() {
    for (int step = 0; step < kStepsPerSequence && !::testing::Test::HasFailure(); ++step) {
      SCOPED_TRACE(absl::StrCat("step ", step));
      Mutate();
      MoveTime();
      const double pick = Uniform();
      if (pick < 0.80) {
        Check(m_->Observe(now_, Observed()));
      } else if (pick < 0.88) {
        Check(m_->Tick(now_));
      } else if (pick < 0.92) {
        PressButton();
        Check(m_->PressButton(now_));
      } else if (pick < 0.96) {
        const std::string id = Chance(0.5) ? "" : evses_[Index(evses_.size())].evse_id;
        auto step_result = m_->RequestOffGrid(now_, id, "property test");
        if (step_result.ok()) Check(*std::move(step_result));
      } else {
        auto step_result = m_->RequestOnGrid(now_, "property test");
        if (step_result.ok()) Check(*std::move(step_result));
      }
    }
    if (::testing::Test::HasFailure()) return;
    ReachesTheGridAgain();
    if (::testing::Test::HasFailure()) return;
    FormsAnIslandForAReadyVehicle();
  }

 private:
  bool Chance(double p) { return Uniform() < p; }
  double Uniform() { return std::uniform_real_distribution<double>(0, 1)(rng_); }
  size_t Index(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }

  void Mutate() {
    if (Chance(0.03)) SetGrid(!world_.grid);
    if (Chance(0.01)) world_.link_up = !world_.link_up;
    if (Chance(0.02)) world_.cooperative = !world_.cooperative;
    if (Chance(0.01)) world_.qf1 = !world_.qf1;
    if (Chance(0.01)) world_.qf2 = !world_.qf2;
    if (Chance(0.05)) world_.load_w = std::uniform_real_distribution<double>(0, 25000)(rng_);
    if (Chance(0.005) && !world_.grid && world_.awake) world_.sw = TransferSwitch::kOffGrid;
    for (Vehicle& v : world_.vehicles) {
      if (Chance(0.02)) {
        v.connected = !v.connected;
        if (v.connected) v.soc_pct = std::uniform_real_distribution<double>(5, 100)(rng_);
      }
      if (Chance(0.01)) v.reachable = !v.reachable;
      if (Chance(0.01)) v.soc_known = !v.soc_known;
      if (Chance(0.01)) v.fault = !v.fault;
    }
  }

  void SetGrid(bool present) {
    world_.grid = present;
    if (!present && world_.sw == TransferSwitch::kOnGrid) {
      world_.sw = TransferSwitch::kOpen;  // anti-islanding
      world_.box_countdown = world_.box_countdown_setting;
    }
    if (present) {
      world_.awake = true;
      if (world_.sw == TransferSwitch::kOpen) {
        world_.sw = TransferSwitch::kOnGrid;
        world_.box_countdown.reset();
      }
    }
  }

  void PressButton() {
    if (world_.grid) return;
    world_.awake = true;
    if (world_.sw == TransferSwitch::kOpen) world_.box_countdown = world_.box_countdown_setting;
  }

  void MoveTime() {
    absl::Duration dt = absl::Milliseconds(std::uniform_int_distribution<int>(100, 5000)(rng_));
    if (Chance(0.03)) dt = absl::Seconds(60);
    if (Chance(0.005)) dt = absl::Hours(1);
    if (Chance(0.01)) {
      now_ -= absl::Seconds(30);  // a clock stepping back: the machine must count no time
      return;
    }
    now_ += dt;
    Physics(dt);
  }

  void Physics(absl::Duration dt) {
    if (world_.box_countdown && world_.sw == TransferSwitch::kOpen && world_.awake) {
      *world_.box_countdown -= dt;
      if (*world_.box_countdown <= absl::ZeroDuration()) {
        world_.awake = false;  // sleep
        world_.box_countdown.reset();
      }
    }
    const Directives& d = last_directives_;
    for (size_t i = 0; i < evses_.size(); ++i) {
      Vehicle& v = world_.vehicles[i];
      if (d.forming_evse == evses_[i].evse_id && d.forming_discharge_limit_w > 0 && v.connected &&
          world_.sw == TransferSwitch::kOffGrid) {
        v.soc_pct = std::max(0.0, v.soc_pct - kDischargePctPerSecond * absl::ToDoubleSeconds(dt));
      }
    }
  }

  Observation Observed() const {
    Observation o;
    o.box.reachable = world_.awake && world_.link_up;
    o.box.grid_present = world_.grid;
    o.box.transfer_switch = world_.sw;
    o.box.qf1_closed = world_.qf1;
    o.box.qf2_closed = world_.qf2;
    o.box.backup_load_power_w = world_.sw == TransferSwitch::kOffGrid ? world_.load_w : 0;
    o.box.standby_remaining = world_.box_countdown;
    for (size_t i = 0; i < evses_.size(); ++i) {
      const Vehicle& v = world_.vehicles[i];
      V2xEvseObservation e;
      e.evse_id = evses_[i].evse_id;
      e.reachable = v.reachable;
      e.vehicle_connected = v.connected;
      if (v.connected && v.soc_known) e.soc_pct = v.soc_pct;
      e.blocking_fault = v.fault;
      o.evses.push_back(e);
    }
    last_fed_ = o;
    return o;
  }

  void Carry(const StepResult& step) {
    for (BoxCommand command : step.box_commands) {
      if (!world_.awake || !world_.link_up || !world_.cooperative) continue;
      if (command == BoxCommand::kTransferToOffGrid && world_.qf1) {
        world_.sw = TransferSwitch::kOffGrid;
        world_.box_countdown.reset();
      }
      if (command == BoxCommand::kTransferToOnGrid && world_.grid) {
        world_.sw = TransferSwitch::kOnGrid;
      }
    }
    last_directives_ = step.directives;
  }

  void Check(const StepResult& step) {
    const Status& s = m_->status();
    // Transitions form a chain ending in the mode now, each for a reason that leads there.
    GridMode at = mode_before_;
    for (const Transition& t : step.transitions) {
      EXPECT_EQ(t.from, at);
      EXPECT_TRUE(ReasonLeadsTo(t.reason, t.to))
          << TransitionReasonName(t.reason) << " -> " << GridModeName(t.to);
      at = t.to;
      ++Coverage()[{t.to, t.reason}];
    }
    EXPECT_EQ(at, s.mode);
    mode_before_ = s.mode;

    const Directives& d = step.directives;
    EXPECT_EQ(d.grid_supply, s.mode == GridMode::kUnknown || s.mode == GridMode::kOnGrid)
        << "an EVSE may charge from the grid in " << GridModeName(s.mode);
    if (d.forming_discharge_limit_w > 0) {
      const V2xEvseSettings* evse = nullptr;
      const V2xEvseObservation* seen = nullptr;
      for (size_t i = 0; i < evses_.size(); ++i) {
        if (evses_[i].evse_id == d.forming_evse) {
          evse = &evses_[i];
          seen = &last_fed_.evses[i];
        }
      }
      ASSERT_NE(evse, nullptr) << d.forming_evse;
      EXPECT_LE(d.forming_discharge_limit_w, defaults::kMaxOffGridDischargePowerW);
      EXPECT_LE(d.forming_discharge_limit_w, evse->max_offgrid_discharge_power_w);
      EXPECT_TRUE(seen->reachable && seen->vehicle_connected && !seen->blocking_fault);
      ASSERT_TRUE(seen->soc_pct.has_value()) << "discharge with the SOC unknown";
      EXPECT_GT(*seen->soc_pct, evse->soc_min_pct) << "discharge at or below the lower limit";
      EXPECT_TRUE(s.mode == GridMode::kOffGrid || s.mode == GridMode::kResync ||
                  (s.mode == GridMode::kOutageStandby &&
                   s.transfer_pending == BoxCommand::kTransferToOffGrid))
          << "discharge ordered in " << GridModeName(s.mode);
    }
    const BoxObservation& box = last_fed_.box;
    if (s.mode == GridMode::kOnGrid && box.reachable) {
      EXPECT_TRUE(box.grid_present) << "ON_GRID while the box reports no grid";
      EXPECT_EQ(box.transfer_switch, TransferSwitch::kOnGrid);
    }
    if ((s.mode == GridMode::kOffGrid || s.mode == GridMode::kResync) && box.reachable) {
      EXPECT_EQ(box.transfer_switch, TransferSwitch::kOffGrid) << "islanded without an island";
    }
    if (s.standby_remaining) {
      EXPECT_LE(*s.standby_remaining, settings_.standby_countdown);
      EXPECT_GE(*s.standby_remaining, absl::ZeroDuration());
    }
    for (BoxCommand command : step.box_commands) {
      if (command == BoxCommand::kTransferToOffGrid) {
        EXPECT_TRUE(box.reachable && !box.grid_present) << "islanding with the grid present";
      }
    }
    Carry(step);
  }

  static bool ReasonLeadsTo(TransitionReason reason, GridMode to) {
    using R = TransitionReason;
    switch (to) {
      case GridMode::kUnknown:
        return false;
      case GridMode::kOnGrid:
        return reason == R::kStartup || reason == R::kGridRestored || reason == R::kResyncComplete;
      case GridMode::kOutageStandby:
        return reason == R::kStartup || reason == R::kGridLost || reason == R::kButtonPressed ||
               reason == R::kVehicleStopped || reason == R::kFault || reason == R::kOperatorRequest;
      case GridMode::kOutageSleep:
        return reason == R::kStandbyTimeout || reason == R::kSocLowerLimit;
      case GridMode::kOffGrid:
        return reason == R::kStartup || reason == R::kDischargeStarted ||
               reason == R::kOperatorRequest || reason == R::kGridLost;
      case GridMode::kResync:
        return reason == R::kGridRestored;
    }
    return false;
  }

  // Liveness: with the grid back for good and a box that answers and obeys, ON_GRID follows.
  void ReachesTheGridAgain() {
    SCOPED_TRACE("grid back for good");
    world_.link_up = true;
    world_.cooperative = true;
    world_.qf1 = world_.qf2 = true;
    SetGrid(true);
    const absl::Duration enough =
        settings_.resync_stable_time + 2 * settings_.transfer_timeout + absl::Seconds(10);
    // At least a few observations: an ON_GRID kept while the box did not answer is not proof.
    for (absl::Duration t;
         t < enough && (t < absl::Seconds(3) || m_->status().mode != GridMode::kOnGrid);
         t += absl::Seconds(1)) {
      now_ += absl::Seconds(1);
      Physics(absl::Seconds(1));
      Check(m_->Observe(now_, Observed()));
    }
    EXPECT_EQ(m_->status().mode, GridMode::kOnGrid) << m_->status().last_detail;
  }

  // Liveness: an outage, a ready vehicle on v2x1, the button: an island forms (by itself when
  // the policy is automatic, else on request).
  void FormsAnIslandForAReadyVehicle() {
    SCOPED_TRACE("outage with a ready vehicle");
    for (Vehicle& v : world_.vehicles) v.connected = false;
    Vehicle& v = world_.vehicles[0];
    v = Vehicle{};
    v.connected = true;
    v.soc_pct = 95;
    world_.load_w = 1000;
    SetGrid(false);
    now_ += absl::Seconds(1);
    Check(m_->Observe(now_, Observed()));
    PressButton();
    Check(m_->PressButton(now_));
    if (!settings_.auto_off_grid) {
      Check(m_->Observe(now_, Observed()));
      auto step = m_->RequestOffGrid(now_, "v2x1", "liveness");
      ASSERT_TRUE(step.ok()) << step.status();
      Check(*step);
    }
    for (int i = 0; i < 5 && m_->status().mode != GridMode::kOffGrid; ++i) {
      now_ += absl::Seconds(1);
      Physics(absl::Seconds(1));
      Check(m_->Observe(now_, Observed()));
    }
    EXPECT_EQ(m_->status().mode, GridMode::kOffGrid) << m_->status().last_detail;
    EXPECT_EQ(last_directives_.forming_evse, "v2x1");
  }

  std::mt19937 rng_;
  GridModeSettings settings_;
  std::vector<V2xEvseSettings> evses_;
  std::unique_ptr<GridModeMachine> m_;
  World world_;
  absl::Time now_ = absl::UnixEpoch() + absl::Hours(100);
  mutable Observation last_fed_;
  Directives last_directives_;
  GridMode mode_before_ = GridMode::kUnknown;
};

TEST(GridModePropertyTest, InvariantsHoldOverRandomEventSequences) {
  for (int i = 0; i < kSequences && !::testing::Test::HasFailure(); ++i) {
    const uint32_t seed = 20261207u + static_cast<uint32_t>(i);
    SCOPED_TRACE(absl::StrCat("seed ", seed));
    Sequence(seed).Run();
  }
  using R = TransitionReason;
  const std::pair<GridMode, TransitionReason> rules[] = {
      {GridMode::kOnGrid, R::kStartup},
      {GridMode::kOnGrid, R::kGridRestored},
      {GridMode::kOnGrid, R::kResyncComplete},
      {GridMode::kOutageStandby, R::kGridLost},
      {GridMode::kOutageStandby, R::kButtonPressed},
      {GridMode::kOutageStandby, R::kVehicleStopped},
      {GridMode::kOutageStandby, R::kFault},
      {GridMode::kOutageStandby, R::kOperatorRequest},
      {GridMode::kOutageSleep, R::kStandbyTimeout},
      {GridMode::kOutageSleep, R::kSocLowerLimit},
      {GridMode::kOffGrid, R::kDischargeStarted},
      {GridMode::kOffGrid, R::kOperatorRequest},
      {GridMode::kOffGrid, R::kGridLost},
      {GridMode::kResync, R::kGridRestored},
  };
  for (const auto& rule : rules) {
    const int n = Coverage()[rule];
    EXPECT_GT(n, 0) << "never reached: " << GridModeName(rule.first) << " by "
                    << TransitionReasonName(rule.second);
    std::printf("%-15s %-18s %6d\n", std::string(GridModeName(rule.first)).c_str(),
                std::string(TransitionReasonName(rule.second)).c_str(), n);
  }
}

}  // namespace
}  // namespace evgate::grid

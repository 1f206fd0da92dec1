// The load balancer's decision logic, without I/O, threads or clocks: the control loop feeds it
// timestamped inputs (meter samples, EVSE state, dynamic limits, priority overrides, ticks) and
// dispatches the setpoints it returns. Every input triggers a recomputation with the allocation
// engine (PreparedSite), followed by the dynamics of ARCHITECTURE.md "Control semantics":
//  - decreases (towards less grid import, pauses included) are dispatched at once;
//  - increases are rate-limited to ramp_up_a_per_s (per-phase A; DC in the equivalent AC
//    power), counted from when the increase became pending, and hysteretic: an increase smaller
//    than hysteresis_a is not sent (a paused AC EVSE resumes at its minimum at once, since no
//    value between 0 and the minimum exists);
//  - the current a decrease frees is given to no one for the vehicle's response time
//    (ev_response_s): until then the lowered EVSE counts at the highest value it was offered
//    within that time, because its vehicle may still be following any of them (a car measured
//    at its new setpoint may be on its way up to an older, higher offer). On a circuit phase
//    where that does not fit the room the allocation left, the increases under that circuit
//    wait (their ramp restarts once they go);
//  - a grid meter sample older than meter_timeout_s (or none yet, or invalid) gives the failsafe
//    setpoints at once, flagged; the next fresh sample recovers (increases ramp from the failsafe
//    values);
//  - a metered circuit whose sample is older than meter_timeout_s or invalid puts that circuit's
//    subtree, and only it, in failsafe (Decision::failsafe_nodes): its EVSEs get their failsafe
//    setpoints and the rest of the site is allocated around them, counting them at their worst
//    case; a fresh valid sample recovers;
//  - an EVSE the loop cannot command (EvseUpdate::commandable false) is not allocated: it counts at
//    its worst case until it has provably fallen back to its failsafe, and its setpoint is its
//    failsafe value, flagged (Setpoint::commandable false);
//  - pause rotation: per EVSE the time it started running or was paused by the load balancer is
//    kept and fed back to the engine, which keeps pauses at least min_pause_s long.
// Dynamic limits (utility, building EMS) on the grid or a circuit tighten the configured limits
// until they expire; priority overrides replace an EVSE's priority until they expire.
//
// Times are absl::Time on the caller's monotonic timeline (Clock::MonotonicNow(); the control
// loop converts a driver's wall-clock measurement time to it at receipt), never wall time: a
// wall clock step must not freeze or fast-forward a meter's age. Inputs must not go back in time
// (an older time is treated as the latest one seen).
//
// Thread-compatible: one control loop owns it.

#ifndef EVGATE_SITE_CONTROLLER_CONTROL_CONTROL_POLICY_H_
#define EVGATE_SITE_CONTROLLER_CONTROL_CONTROL_POLICY_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "site_controller/allocation/allocation.h"
#include "site_controller/config/site_config.h"
#include "site_controller/control/site_model.h"

namespace evgate::control {

// A meter reading of the grid connection ("grid") or of a metered circuit.
struct MeterSample {
  std::string node;                   // "grid" or a circuit id
  absl::Time at;                      // when the meter measured it (monotonic)
  allocation::PhaseValues current_a;  // per site phase (0 for phases the node lacks)
  // Non-empty: the reading is not usable (a phase the node has carries no value, a non-finite
  // value, ...), in words. The node is in failsafe at once with this reason until a valid sample
  // arrives; `current_a` is ignored. Phases the node does not have stay 0 and are not required.
  std::string invalid_reason = {};
};

// A setpoint a driver accepted for an EVSE: the value in force on the device.
struct AcceptedSetpoint {
  double current_a = 0;  // AC: per phase
  double power_w = 0;    // DC: at the vehicle
  bool paused = true;
  absl::Time at;  // when the driver accepted it (monotonic)
};

// What a driver reports about an EVSE. The measurements are as of `at` and replace the previous
// ones (unset: not measured, the EVSE counts at its setpoint in force); unset soc_pct and
// session_energy_wh keep their previous values.
struct EvseUpdate {
  std::string evse;
  absl::Time at;
  bool active = false;                            // a vehicle is connected and wants energy
  std::optional<std::vector<double>> measured_a;  // AC, in EVSE phase order
  std::optional<double> measured_w;               // DC
  std::optional<double> soc_pct;
  std::optional<double> session_energy_wh;
  // False while the loop cannot command it: its driver stream is down or not yet
  // synchronised, its device link is stale, or its last setpoint was refused or timed out.
  bool commandable = true;
  // The last setpoint a driver accepted for it (value in force) and when (monotonic). Unset:
  // none accepted since the policy was created (its value in force is unknown). An update
  // without it keeps the one from before.
  std::optional<AcceptedSetpoint> last_accepted;
};

// A limit from outside (utility, building EMS) on the grid or a circuit, until `expires_at`.
// Per-phase amperes and/or power; a circuit power limit is applied as power / (phases × V) A on
// each of its phases. A new limit from the same `source` on the same node replaces the old one;
// several sources on one node all apply (the tightest wins).
struct DynamicLimit {
  std::string source;
  std::string node = std::string(allocation::kGridId);
  allocation::PhaseLimits limit_a;  // nullopt entries: no limit on that phase
  std::optional<double> power_w;
  std::optional<double> export_limit_w;  // grid only: export (discharge) limit, W, >= 0
  absl::Time expires_at = absl::InfiniteFuture();
};

// The V2X grid mode, from the grid controller (services/grid_controller): without the grid
// (an outage, an island) no EVSE may charge — every one is paused at once — and the EVSE that
// forms the island discharges at up to `forming_discharge_limit_w`. Back on the grid, charging
// resumes from the pauses with the normal ramp.
struct GridModeDirective {
  bool grid_supply = true;
  std::string forming_evse;              // empty: none
  double forming_discharge_limit_w = 0;  // > 0 while it forms the island
  std::string reason;                    // for a person, e.g. "OFF_GRID"
};

struct Setpoint {
  std::string evse;
  allocation::EvseType type = allocation::EvseType::kAc;
  double current_a = 0;  // AC: per phase
  double power_w = 0;    // DC: at the vehicle, negative = discharge
  bool paused = true;
  bool changed = false;  // differs from the previous decision: dispatch it
  // False: the EVSE is not controlled (the loop cannot command it, EvseUpdate::commandable).
  // The value is its failsafe, which the loop keeps retrying; it is not allocated and counts at
  // its worst case.
  bool commandable = true;
  // True: the EVSE is at its failsafe value because the whole site or a circuit it is under is
  // in failsafe (Decision::failsafe, failsafe_nodes).
  bool failsafe = false;
  // True: paused (or, forming the island, discharging) because the site has no grid supply
  // (GridModeDirective).
  bool grid_mode = false;
};

// A node (the grid or a metered circuit) whose meter reading is stale or invalid: its subtree is
// in failsafe.
struct NodeFailsafe {
  std::string node;    // "grid" or a circuit id
  std::string reason;  // in words, e.g. "meter reading is 3.5 s old (timeout 3 s)"
  absl::Time since;    // when it went into failsafe (monotonic; Decision::at timeline)
};

struct Decision {
  absl::Time at;
  // The whole site is in failsafe (the grid meter's reading is missing, stale or invalid).
  bool failsafe = false;
  std::string failsafe_reason;
  // Every node in failsafe, the grid included when `failsafe`, in node order (grid, then
  // circuits in configuration order). A circuit under a failed circuit is listed only when its
  // own meter failed.
  std::vector<NodeFailsafe> failsafe_nodes;
  std::vector<Setpoint> setpoints;  // every EVSE, in configuration order
  bool any_changed = false;
  // False while the grid controller says the site has no grid supply (GridModeDirective).
  bool grid_supply = true;
  std::string grid_mode_reason;
  // The engine's unramped allocation behind these setpoints.
  allocation::Allocation target;
};

class ControlPolicy {
 public:
  static absl::StatusOr<ControlPolicy> FromConfig(const site::SiteConfig& config);
  // `structure`: as from AllocationInputFromConfig (snapshot values are ignored, except that a
  // circuit with `measured_a` set, whatever its value, is metered: it is in failsafe until its
  // first reading and whenever its reading is older than meter_timeout_s or invalid).
  static absl::StatusOr<ControlPolicy> Create(const allocation::AllocationInput& structure,
                                              const ControlParams& params);

  ControlPolicy(ControlPolicy&&) = default;
  ControlPolicy& operator=(ControlPolicy&&) = default;

  absl::StatusOr<Decision> OnMeterSample(const MeterSample& sample);
  absl::StatusOr<Decision> OnEvseUpdate(const EvseUpdate& update);
  absl::StatusOr<Decision> OnDynamicLimit(const DynamicLimit& limit, absl::Time now);
  absl::StatusOr<Decision> OnPriorityOverride(const std::string& evse, int priority,
                                              absl::Time expires_at, absl::Time now);
  // INVALID_ARGUMENT for a forming EVSE that is unknown, not DC or with a negative limit.
  absl::StatusOr<Decision> OnGridMode(const GridModeDirective& directive, absl::Time now);
  // One poll cycle's readings, applied together with a single recomputation: EVSE currents and
  // the meters that include them must be used as of the same moment, or the derived non-EV
  // load is off by the difference for one recomputation (and can pause EVSEs needlessly).
  absl::StatusOr<Decision> OnSamples(const std::vector<MeterSample>& meters,
                                     const std::vector<EvseUpdate>& evses, absl::Time now);
  // Periodic recomputation: expiries, meter staleness, pending ramps.
  absl::StatusOr<Decision> OnTick(absl::Time now);

  // Hands back a Decision::target the caller no longer needs: the next decision is computed
  // into its memory (PreparedSite::Allocate into a previous result allocates no strings).
  void Recycle(allocation::Allocation target) { spare_ = std::move(target); }

  // The setpoints last returned.
  const std::vector<Setpoint>& setpoints() const { return sent_; }
  const ControlParams& params() const { return params_; }

 private:
  struct EvseRuntime {
    int base_priority = 0;
    std::optional<int> priority_override;
    absl::Time override_expires = absl::InfinitePast();
    absl::Time ramp_anchor = absl::InfinitePast();  // since when an increase is pending
    std::optional<double> running_since_s;
    std::optional<double> paused_since_s;
    bool commandable = true;
    std::optional<AcceptedSetpoint> last_accepted;
    std::optional<double> last_measured_a;  // per-phase A (max over phases; DC: its AC current)
    // After a decrease, for its vehicle's response time: the most it may still draw (per wired
    // phase A, DC as AC current) and until when.
    std::optional<double> releasing_a;
    absl::Time releasing_until = absl::InfinitePast();
  };
  // The meter of a node (0 grid, 1 + circuit).
  struct NodeMeter {
    bool metered = false;
    std::optional<absl::Time> at;  // latest valid reading
    allocation::PhaseValues current_a = {0, 0, 0};
    std::string invalid_reason;  // the latest reading was not usable (until a valid one)
    absl::Time invalid_at = absl::InfinitePast();
    std::optional<absl::Time> failsafe_since;
  };
  struct NodeLimits {
    std::map<std::string, DynamicLimit> by_source;
  };

  ControlPolicy(allocation::AllocationInput structure, ControlParams params,
                allocation::PreparedSite site, const std::vector<bool>& metered);

  absl::StatusOr<int> EvseIndex(const std::string& id) const;
  absl::StatusOr<int> NodeIndex(const std::string& id) const;  // 0 grid, 1 + circuit
  double Seconds(absl::Time t) const { return absl::ToDoubleSeconds(t - epoch_); }
  void Advance(absl::Time t);
  // Drops expired limits and overrides; re-prepares the site when the limits changed.
  absl::Status Expire();
  absl::Status RebuildStructure();
  absl::StatusOr<Decision> Recompute();
  absl::Status ApplyMeterSample(const MeterSample& sample);
  absl::Status ApplyEvseUpdate(const EvseUpdate& update);
  // Why node `n`'s own meter makes it failsafe now (empty: it does not).
  std::string NodeFailure(int n) const;
  // The worst case EVSE `i` can draw now, per wired phase in A, when it is not controlled.
  double WorstCaseA(int i, bool commandable) const;
  // The value EVSE `i` is sent now for the engine's `target` (setpoint units): decreases and
  // failsafe values at once, increases ramped and hysteretic.
  double NextValue(int i, double target, double prev, bool failsafe);
  // Holds back the increases in `next` (setpoint units, by EVSE) under every circuit phase where
  // the current that decreased EVSEs may still draw does not fit the room the allocation left.
  void HoldIncreasesForVehicleLag(const allocation::Allocation& target,
                                  const std::vector<double>& prev, std::vector<double>& next);
  // Per-phase A of a DC power at the vehicle (charging > 0).
  double DcAmps(const allocation::Evse& e, double w) const;

  allocation::AllocationInput configured_;  // structure as configured
  allocation::AllocationInput input_;       // structure with dynamic limits + current snapshot
  ControlParams params_;
  allocation::PreparedSite site_;
  allocation::Allocation spare_;  // Recycle(): where the next allocation is written
  absl::Time epoch_ = absl::UnixEpoch();
  absl::Time now_ = absl::InfinitePast();
  std::vector<NodeMeter> meters_;  // by node index
  std::vector<int> parent_;        // by node index; -1 for the grid
  std::vector<int> evse_node_;     // by EVSE index
  std::vector<EvseRuntime> evse_rt_;
  std::map<int, NodeLimits> dynamic_;  // by node index
  std::vector<Setpoint> sent_;
  // Recompute()'s scratch buffers, kept to avoid allocations per decision.
  std::vector<double> prev_buf_;
  std::vector<double> next_buf_;
  std::vector<allocation::PhaseValues> excess_buf_;
  std::vector<allocation::PhaseValues> room_buf_;
  bool failsafe_ = false;
  bool dispatched_once_ = false;  // the first decision sends every setpoint
  GridModeDirective grid_mode_;
};

}  // namespace evgate::control

#endif  // EVGATE_SITE_CONTROLLER_CONTROL_CONTROL_POLICY_H_

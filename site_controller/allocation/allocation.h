// The allocation engine: given a snapshot of a charging site (grid connection, circuit tree,
// stations, EVSEs, meter readings), decide how much current (AC) or power (DC) every EVSE may
// take so that no fuse, contract limit or station limit is exceeded.
//
// Contract (docs/scenario-format.md is the user-facing description of the same rules):
//  - Pure and deterministic: no I/O, no clock (time comes in as `AllocationInput::now_s`), no
//    randomness. The same input gives the same output, whatever the order of `evses`.
//  - Per circuit (the grid connection is the root) and per site phase:
//      base load + Σ allocated EV current ≤ limit − margin.
//    Base load of a metered circuit = measured − measured current of the EVSEs below it (an EVSE
//    without a measurement counts at its setpoint in force), taken as 0 when negative: local
//    generation is never relied upon to carry EV load. Unmetered circuit: base load 0.
//    Also Σ_phases (base + EV) × nominal voltage ≤ contract power, and Σ station connector power
//    ≤ station maximum power.
//  - AC EVSE: 0 (paused) or a multiple of its step in [min, max], rounded down. DC EVSE: 0 or a
//    multiple of `step_w` in [min_w, max_w]; AC current per wired phase = P / (n × V × η) when
//    charging and |P| × η / (n × V) when discharging.
//  - Strict priority classes (higher number first). Inside a class: admission in rank order
//    (see `Evse` rotation fields), then max-min fair water-filling in per-phase amperes, then
//    quantisation, then a top-up so that the result is Pareto efficient.
//  - Peak shaving: when base load alone exceeds a limit, bidirectional EVSEs with SOC above their
//    lower limit discharge just enough to remove the excess. Discharge never creates room for
//    charging other EVs.
//  - Failsafe: a metered grid whose reading is missing or older than its timeout gives every
//    active EVSE its failsafe value and nothing else is computed.
//
// Thread-safety: all functions are thread-safe (no shared state); the structs are plain values.

#ifndef EVGATE_SITE_CONTROLLER_ALLOCATION_ALLOCATION_H_
#define EVGATE_SITE_CONTROLLER_ALLOCATION_ALLOCATION_H_

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace evgate::allocation {

// A site phase (the grid connection's L1, L2, L3).
enum class Phase : int { kL1 = 0, kL2 = 1, kL3 = 2 };
inline constexpr int kPhaseCount = 3;
// "L1", "L2" or "L3".
const char* PhaseName(Phase phase);

// Per-phase limits; nullopt means the grid/circuit does not have this phase.
using PhaseLimits = std::array<std::optional<double>, kPhaseCount>;
// Per-site-phase values (entries for phases a node lacks are 0).
using PhaseValues = std::array<double, kPhaseCount>;

// Id of the root node: circuits and EVSEs name it as their parent/circuit.
inline constexpr std::string_view kGridId = "grid";
inline constexpr double kDefaultNominalVoltageV = 230.0;
inline constexpr double kDefaultMeterTimeoutS = 3.0;
inline constexpr double kDefaultMinPauseS = 300.0;

struct Grid {
  PhaseLimits limit_a;
  std::optional<double> contract_power_w;  // import limit, W over all phases
  std::optional<double> export_limit_w;    // only constrains V2X discharge
  double nominal_voltage_v = kDefaultNominalVoltageV;
  // The grid is metered when it has `measured_a` or `meter_timeout_s`. A metered grid without a
  // reading, or with `meter_age_s > meter_timeout_s` (default kDefaultMeterTimeoutS), is failsafe.
  std::optional<PhaseValues> measured_a;
  double meter_age_s = 0.0;
  std::optional<double> meter_timeout_s;
};

struct Circuit {
  std::string id;
  std::string parent = std::string(kGridId);  // "grid" or another circuit's id
  PhaseLimits limit_a;                        // a subset of the parent's phases
  std::optional<PhaseValues> measured_a;      // nullopt: unmetered (base load 0)
};

struct Station {
  std::string id;
  double max_power_w = 0.0;  // shared by all its connectors (DS60: 60 kW)
};

enum class EvseType { kAc, kDc };

struct Evse {
  std::string id;
  std::string circuit = std::string(kGridId);
  EvseType type = EvseType::kAc;
  // Site phases wired to the EVSE's L1, L2, L3 in that order (1 to 3 distinct phases).
  std::vector<Phase> phases;
  bool active = true;  // a vehicle is connected and wants energy
  int priority = 0;    // higher is served first
  // Rank inside a priority class (see Allocate()).
  double session_energy_wh = 0.0;
  std::optional<double> plugged_at_s;     // missing: ranks after every known plug-in time
  std::optional<double> running_since_s;  // set while charging: when it started or resumed
  std::optional<double> paused_since_s;   // set while paused by the load balancer
  int connector = 0;                      // DS60: 1 = left connector
  std::string station;                    // empty: not part of a station

  // AC.
  double min_a = 6.0;
  double max_a = 32.0;
  double step_a = 0.1;
  std::optional<std::vector<double>> measured_a;  // in EVSE phase order
  std::optional<double> setpoint_a;               // setpoint in force (for unmeasured EVSEs)
  double failsafe_a = 0.0;

  // DC. Powers are at the vehicle (DC side); positive = charging.
  double min_w = 0.0;
  double max_w = 0.0;
  double step_w = 1.0;
  double efficiency = 1.0;  // required in scenarios
  std::optional<double> measured_w;
  std::optional<double> setpoint_w;
  double failsafe_w = 0.0;
  bool bidirectional = false;
  double max_discharge_w = 0.0;
  std::optional<double> soc_pct;
  double soc_min_pct = 0.0;    // V2X SOC lower limit: no discharge at or below
  double soc_max_pct = 100.0;  // max SOC limit: no charging at or above

  // Snapshot: set while the EVSE is not controlled (the caller cannot command it, or its circuit
  // is in failsafe): the worst case it can draw, in AC A per wired phase (also for DC). It is not
  // allocated, is reported at its failsafe value (0 when inactive), and counts as this fixed load.
  std::optional<double> reserved_a;
};

struct AllocationInput {
  Grid grid;
  double margin_a = 0.0;
  std::vector<Circuit> circuits;
  std::vector<Station> stations;
  std::vector<Evse> evses;
  double now_s = 0.0;
  double min_pause_s = kDefaultMinPauseS;
  std::optional<double> min_run_s;  // default: min_pause_s
};

enum class PauseReason {
  kNone,
  kInactive,  // no vehicle / not requesting
  kCapacity,  // its minimum does not fit (`limited_by` names where)
  kSocLimit,  // SOC at or above soc_max_pct
  kNoDemand,  // max_w is 0
  kFailsafe,  // failsafe value is 0
};
const char* PauseReasonName(PauseReason reason);  // "capacity", ...

// The constraint that keeps an EVSE below its maximum, in structured form
// (EvseAllocation::limited_by is the same in words).
struct Limit {
  enum class Kind { kNone, kCircuitPhase, kContractPower, kStationPower, kFailsafe };
  Kind kind = Kind::kNone;
  std::string circuit;         // kCircuitPhase, kContractPower: "grid" or a circuit id
  std::optional<Phase> phase;  // kCircuitPhase
  std::string station;         // kStationPower
};

struct EvseAllocation {
  std::string id;
  EvseType type = EvseType::kAc;
  double current_a = 0.0;  // AC setpoint per phase; for DC the AC current per wired phase
  double power_w = 0.0;    // DC setpoint (negative = discharge); for AC the AC power
  bool paused = true;
  // Why the EVSE is not at its maximum: "grid L1", "circuit garage L2", "grid contract power",
  // "station ds60"; for a discharging EVSE the limit it is relieving. Empty when at maximum.
  std::string limited_by;
  Limit limit;  // the same, structured, for the API
  PauseReason pause_reason = PauseReason::kNone;
  // False for a reserved EVSE (Evse::reserved_a): at its failsafe value, not allocated.
  bool controlled = true;
};

struct CircuitLoad {
  std::string id;  // "grid" first, then circuits in input order
  // Predicted load = base load (≥ 0) + allocated EV current; headroom = limit − margin − load.
  // nullopt for phases the node lacks.
  std::array<std::optional<double>, kPhaseCount> load_a;
  std::array<std::optional<double>, kPhaseCount> headroom_a;
};

struct Allocation {
  bool failsafe = false;
  std::string failsafe_reason;
  std::vector<EvseAllocation> evses;  // in input order
  std::vector<CircuitLoad> circuits;  // empty in failsafe (loads are unknown)
};

// Checks every structural and range rule; the error lists every problem, one per line, each
// prefixed with its scenario field path ("evses[2].phases[1]: ...").
absl::Status ValidateInput(const AllocationInput& input);

// Validates `input`, then allocates. Ranking inside a priority class (first = admitted first):
//   1. tier 0: running (running_since_s set) for less than min_run_s — not paused to rotate;
//      tier 1: everyone else (new, running ≥ min_run_s, paused ≥ min_pause_s);
//      tier 2: paused (paused_since_s set) for less than min_pause_s — resumes only if it fits
//              without displacing anyone;
//   2. less session energy; 3. earlier plug-in; 4. lower connector number; 5. id.
// Outputs are rounded down: AC setpoints to 0.001 A, DC powers to whole `step_w` multiples;
// loads are rounded up and headrooms down to 0.01 A.
absl::StatusOr<Allocation> Allocate(const AllocationInput& input);

namespace internal {
class Engine;
}  // namespace internal

// A site whose structure has been validated and compiled once, for a control loop that
// allocates again on every meter sample, device event and tick.
//
// Structure = grid limits, contract/export limits, nominal voltage; circuits (order, ids,
// parents, limits); stations; EVSEs (order, ids, circuits, types, phases, connector, station,
// min/max/step, efficiency, failsafe values, V2X limits). Everything else is a snapshot value
// that may differ from call to call: meter readings and age, margin, now_s, min_pause_s,
// min_run_s, and per EVSE active, priority, rotation state, session energy, plug-in time,
// measurements, setpoints in force, SOC and reservation (reserved_a).
//
// `Allocate(snapshot)` gives exactly (bit for bit) what `evgate::allocation::Allocate(snapshot)`
// gives, provided `snapshot` has the prepared structure; it validates only the snapshot values
// (which it reports with the same messages) and reuses its buffers, so it does no string lookups
// and, once warm, few heap allocations. A snapshot with a different structure is a caller error
// that is only partly detected (counts); use `SameStructure()` where that cannot be ruled out,
// or prepare a new site when the configuration changes.
//
// Thread-compatible: `Allocate` mutates internal buffers; use one PreparedSite per thread.
class PreparedSite {
 public:
  // Validates `structure` completely (as ValidateInput) and prepares it. Its snapshot values
  // are irrelevant.
  static absl::StatusOr<PreparedSite> Create(const AllocationInput& structure);

  PreparedSite(PreparedSite&&) noexcept;
  PreparedSite& operator=(PreparedSite&&) noexcept;
  ~PreparedSite();

  absl::StatusOr<Allocation> Allocate(const AllocationInput& snapshot);
  // The same, written into `out` whatever it held before, reusing its memory: a caller that
  // hands back its previous result (a control loop) makes no string allocations once warm.
  // On error `out` is unspecified.
  absl::Status Allocate(const AllocationInput& snapshot, Allocation& out);

  // True when `input` has the structure this site was prepared with (O(EVSEs), compares ids).
  bool SameStructure(const AllocationInput& input) const;

  // The input given to Create().
  const AllocationInput& structure() const { return *structure_; }

 private:
  PreparedSite();
  std::unique_ptr<AllocationInput> structure_;  // stable address: engine_ points into it
  std::unique_ptr<internal::Engine> engine_;
};

}  // namespace evgate::allocation

#endif  // EVGATE_SITE_CONTROLLER_ALLOCATION_ALLOCATION_H_

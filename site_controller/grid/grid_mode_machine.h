// The grid-mode state machine of a V2X site: an ICE-22 V2X charger (or several bidirectional
// EVSEs) with its V2X Off Grid Box (../shared/seeds/ file 000, docs/protocols/offgrid-box.md,
// docs/v2x.md). Pure and deterministic: no I/O, no threads, no clock of its own. The grid
// controller service feeds it what the box and the V2X EVSEs report, the box's button, operator
// requests and ticks, each with the time of the caller's monotonic clock, and carries out what
// it returns: box commands (edge-triggered, each once) and directives (level-triggered: the
// state every step asks for).
//
// Modes and the rules between them (each rule is a test in grid_mode_machine_test.cc):
//   UNKNOWN         until the box has answered once.
//   STARTUP         first answer: ON_GRID (grid present, switch on grid), OFF_GRID (switch on
//                   the island), else OUTAGE_STANDBY with the countdown (the box's remaining
//                   time if it reports one, never more than configured).
//   ON_GRID         grid charging; on-grid discharging (peak shaving) is the allocation
//                   engine's, gated by each EVSE's SOC limits there.
//     GRID_LOST     box reports no grid or an open switch -> OUTAGE_STANDBY, countdown
//                   (standby_countdown, the ICE-22 "Off-grid Suicide Timer") starts.
//   OUTAGE_STANDBY  no grid: every EVSE paused.
//     DISCHARGE_STARTED / OPERATOR_REQUEST  a dischargeable vehicle ready (automatic when
//                   auto_off_grid) or RequestOffGrid: the forming EVSE is told to discharge
//                   off grid and the box to transfer to the island; OFF_GRID once the box
//                   reports its switch on the island (transfer_timeout: the attempt is given up
//                   and retried after as long again).
//     STANDBY_TIMEOUT  countdown ends first -> OUTAGE_SLEEP (backup battery saved).
//     BUTTON_PRESSED   the box's backup battery button restarts the countdown.
//     GRID_RESTORED    box reports grid and switch on grid again -> ON_GRID.
//   OUTAGE_SLEEP    the box sleeps (no answers). The button, or the box answering again after
//                   it was seen asleep, -> OUTAGE_STANDBY with a new countdown; grid back ->
//                   ON_GRID.
//   OFF_GRID        the forming EVSE supplies the backup loads, at most its off-grid limit and
//                   never more than 19.8 kW; every other EVSE paused.
//     SOC_LOWER_LIMIT  forming vehicle at or below its V2X SOC lower limit (or its SOC unknown)
//                   -> discharge stops, OUTAGE_SLEEP.
//     VEHICLE_STOPPED  forming EVSE unplugged or unreachable -> OUTAGE_STANDBY, new countdown
//                   (another vehicle may take over).
//     FAULT         QF1/QF2 open, a blocking fault on the forming EVSE, backup loads above the
//                   forming limit for longer than overload_trip_time (the overload alarm is
//                   raised at once), or the box opening the island by itself -> discharge
//                   stops, OUTAGE_STANDBY; automatic restarts are suppressed until the button or
//                   an operator request, so an overloaded island is not re-formed in a loop.
//     GRID_RESTORED  box reports the grid -> RESYNC.
//   RESYNC          grid back, still islanded: discharge goes on until the grid has been present
//                   for resync_stable_time (or at once when the forming vehicle cannot go on, or
//                   on RequestOnGrid, which is possible only here: an island with the grid
//                   reported is RESYNC), then the box is told to transfer back.
//     GRID_LOST     grid gone again -> OFF_GRID.
//     RESYNC_COMPLETE  box reports the switch on grid -> ON_GRID; the load balancer resumes
//                   charging with its ramp.
// Whatever the mode, the box's switch is the truth: an island formed or left at the charger by
// hand moves the machine to OFF_GRID or out of it.
//
// Invariants (grid_mode_property_test.cc): no discharge directive for a vehicle at or below its
// SOC lower limit; never more than the forming limit (<= 19.8 kW) off grid; no EVSE charging from
// the grid unless ON_GRID; never ON_GRID while the box reports no grid; the countdown never
// longer than configured; never a transfer to the island while the box reports the grid.
//
// Times: the caller's monotonic timeline. A time earlier than the last one seen counts as no time
// passed (a clock stepping back neither extends nor restarts a countdown).
//
// Thread-compatible: one grid controller owns it.

#ifndef EVGATE_SITE_CONTROLLER_GRID_GRID_MODE_MACHINE_H_
#define EVGATE_SITE_CONTROLLER_GRID_GRID_MODE_MACHINE_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace evgate::grid {

enum class GridMode { kUnknown, kOnGrid, kOutageStandby, kOutageSleep, kOffGrid, kResync };
absl::string_view GridModeName(GridMode mode);

// Why the machine entered (or, for the button, restarted) a mode. Mirrors GridTransitionReason
// of proto/evgate/v1/grid.proto.
enum class TransitionReason {
  kStartup,
  kGridLost,
  kDischargeStarted,
  kStandbyTimeout,
  kButtonPressed,
  kSocLowerLimit,
  kVehicleStopped,
  kGridRestored,
  kResyncComplete,
  kOperatorRequest,
  kFault,
};
absl::string_view TransitionReasonName(TransitionReason reason);

namespace defaults {
// The ICE-22 "Off-grid Suicide Timer (Countdown)": 180 s by default, at most 15 minutes.
inline constexpr absl::Duration kStandbyCountdown = absl::Seconds(180);
inline constexpr absl::Duration kMinStandbyCountdown = absl::Seconds(1);
inline constexpr absl::Duration kMaxStandbyCountdown = absl::Minutes(15);
// ICE-22 rated off-grid discharging power (19.8 kW at 300 V).
inline constexpr double kMaxOffGridDischargePowerW = 19800;
inline constexpr absl::Duration kResyncStableTime = absl::Seconds(30);
inline constexpr absl::Duration kTransferTimeout = absl::Seconds(10);
inline constexpr absl::Duration kOverloadTripTime = absl::Seconds(2);
}  // namespace defaults

struct GridModeSettings {
  absl::Duration standby_countdown = defaults::kStandbyCountdown;
  // Start off-grid discharge by itself when a dischargeable vehicle is ready during an outage;
  // false: only RequestOffGrid (or the charger's own screen) starts it.
  bool auto_off_grid = true;
  absl::Duration resync_stable_time = defaults::kResyncStableTime;
  absl::Duration transfer_timeout = defaults::kTransferTimeout;
  absl::Duration overload_trip_time = defaults::kOverloadTripTime;
};

// A bidirectional EVSE that can form the island.
struct V2xEvseSettings {
  std::string evse_id;
  double soc_min_pct = 30;   // "V2X SOC Lower Limit": no discharge at or below
  double soc_max_pct = 100;  // "Max SOC Limit for Charging"
  double max_offgrid_discharge_power_w = defaults::kMaxOffGridDischargePowerW;
};

enum class TransferSwitch { kUnknown, kOnGrid, kOffGrid, kOpen };

// What the off-grid box reports (OffGridBoxState of device.proto, plus its link).
struct BoxObservation {
  bool reachable = false;  // it answers; a sleeping box does not
  bool grid_present = false;
  TransferSwitch transfer_switch = TransferSwitch::kUnknown;
  std::optional<bool> qf1_closed;  // unknown counts as not closed
  std::optional<bool> qf2_closed;
  std::optional<double> backup_load_power_w;
  std::optional<absl::Duration> standby_remaining;  // the box's own countdown, if running
};

// What one V2X EVSE reports.
struct V2xEvseObservation {
  std::string evse_id;
  bool reachable = false;
  bool vehicle_connected = false;
  std::optional<double> soc_pct;
  bool blocking_fault = false;
  std::string fault_detail;  // for the transition detail, e.g. "CA 104 DC overvoltage"
};

struct Observation {
  BoxObservation box;
  std::vector<V2xEvseObservation> evses;  // by evse_id; a configured EVSE absent = unreachable
};

enum class BoxCommand { kTransferToOffGrid, kTransferToOnGrid };
absl::string_view BoxCommandName(BoxCommand command);

// The state every step asks for, for the service to keep in force.
struct Directives {
  // EVSEs may charge from the grid (ON_GRID, or UNKNOWN before the box has answered: the load
  // balancer's own grid-meter failsafe covers that time). Otherwise every EVSE but the forming one
  // is paused.
  bool grid_supply = true;
  // The EVSE told to form the island and discharge into the backup loads, and the most it may
  // discharge, W. Empty: no EVSE may discharge off grid (one that was forming must stop); named
  // with 0 W: it must stop (RESYNC after its vehicle could not go on, or its SOC no longer known
  // to be above the lower limit).
  std::string forming_evse;
  double forming_discharge_limit_w = 0;
};

struct Transition {
  GridMode from = GridMode::kUnknown;
  GridMode to = GridMode::kUnknown;
  TransitionReason reason = TransitionReason::kStartup;
  std::string detail;  // for a person, e.g. "v2x1: SOC 30 % reached its lower limit 30 %"
  absl::Time at;
};

struct Status {
  GridMode mode = GridMode::kUnknown;
  absl::Time since;
  std::optional<TransitionReason> last_reason;
  std::string last_detail;
  std::optional<absl::Duration> standby_remaining;  // OUTAGE_STANDBY only
  std::string forming_evse;                         // OFF_GRID and RESYNC
  std::optional<double> forming_soc_pct;
  bool box_reachable = false;
  // Backup loads above what the forming EVSE may supply (cleared when they are back under).
  bool overload_alarm = false;
  // After a fault exit: no automatic off-grid start until the button or an operator request.
  bool auto_off_grid_suppressed = false;
  // A transfer the box was told to make and has not reported yet.
  std::optional<BoxCommand> transfer_pending;
};

// What one step produced.
struct StepResult {
  std::vector<Transition> transitions;   // in order; empty when the mode held
  std::vector<BoxCommand> box_commands;  // to send now, each once
  Directives directives;
};

class GridModeMachine {
 public:
  // INVALID_ARGUMENT listing every bad setting: no V2X EVSE, duplicate ids, countdown outside
  // 1 s..15 min, SOC limits outside 0..100 or min >= max, off-grid power outside (0, 19.8 kW],
  // non-positive times.
  static absl::StatusOr<std::unique_ptr<GridModeMachine>> Create(
      GridModeSettings settings, std::vector<V2xEvseSettings> evses);

  // What the box and the V2X EVSEs report now (at least on every change and every tick).
  StepResult Observe(absl::Time now, const Observation& observation);
  // Time passing with nothing new reported.
  StepResult Tick(absl::Time now);
  // The backup battery button at the box: restarts the countdown (OUTAGE_STANDBY), wakes a
  // sleeping system, lifts the suppression of automatic starts after a fault.
  StepResult PressButton(absl::Time now);
  // Operator requests (RequestGridMode). FAILED_PRECONDITION listing every unmet condition;
  // NOT_FOUND for an unknown EVSE. `evse_id` empty = the only V2X EVSE.
  absl::StatusOr<StepResult> RequestOffGrid(absl::Time now, absl::string_view evse_id,
                                            absl::string_view reason);
  absl::StatusOr<StepResult> RequestOnGrid(absl::Time now, absl::string_view reason);

  const Status& status() const { return status_; }
  const GridModeSettings& settings() const { return settings_; }
  const std::vector<V2xEvseSettings>& evses() const { return evses_; }

 private:
  GridModeMachine(GridModeSettings settings, std::vector<V2xEvseSettings> evses);

  struct Pending {
    BoxCommand command;
    std::string evse_id;  // kTransferToOffGrid: the EVSE that forms the island
    TransitionReason reason;
    std::string detail;
    absl::Duration remaining;
  };

  // Moves time to `now` (never back) and counts the countdown, the resync wait, the transfer
  // deadline, the overload time and the retry wait down by the time passed.
  void Advance(absl::Time now);
  // Applies every rule that the last observation and the timers trigger, until none does.
  void Evaluate(StepResult& result);
  bool EvaluateOnce(StepResult& result);
  bool EvaluateIslanded(StepResult& result);
  bool EvaluateOutage(StepResult& result);
  void Enter(GridMode mode, TransitionReason reason, std::string detail, StepResult& result);
  void EnterIsland(TransitionReason reason, std::string detail, const V2xEvseSettings* forming,
                   StepResult& result);
  // A fault ends the island: OUTAGE_STANDBY, automatic starts suppressed.
  void EnterFault(std::string detail, StepResult& result);
  void RestartByButton(absl::string_view where, StepResult& result);
  void StartCountdown(std::optional<absl::Duration> box_remaining);
  void UpdateOverload();
  void Command(BoxCommand command, std::string evse_id, TransitionReason reason, std::string detail,
               StepResult& result);
  // Fills the status fields derived from the state and the directives.
  StepResult Finish(StepResult result);

  const V2xEvseSettings* FindEvse(absl::string_view evse_id) const;
  const V2xEvseObservation* Observed(absl::string_view evse_id) const;
  // Every reason the EVSE cannot form the island now (empty: it can).
  std::vector<std::string> UnmetForEvse(const V2xEvseSettings& evse) const;
  // Every reason the box cannot take the island now.
  std::vector<std::string> UnmetForBox() const;
  // The ready EVSE with the highest SOC (site.yaml order on a tie), or null.
  const V2xEvseSettings* BestReadyEvse() const;
  // For an island formed by hand: the ready EVSE, else the first with a vehicle, or null.
  const V2xEvseSettings* BestConnectedEvse() const;
  // Why the island must end for a fault (QF1/QF2, the forming EVSE, overload); empty: none.
  std::string FaultDetail(const V2xEvseSettings& forming) const;
  double FormingLimit(const V2xEvseSettings& evse) const;
  // The box reports the grid and its switch on the grid.
  bool GridBack() const;
  std::string GridLostDetail() const;

  GridModeSettings settings_;
  std::vector<V2xEvseSettings> evses_;

  Status status_;
  Observation last_;
  bool observed_ = false;
  std::optional<absl::Time> now_;
  TransferSwitch last_switch_ = TransferSwitch::kUnknown;
  bool box_seen_asleep_ = false;
  std::optional<absl::Duration> standby_remaining_;
  std::optional<absl::Duration> grid_stable_for_;  // RESYNC: how long the grid has been back
  absl::Duration overload_for_ = absl::ZeroDuration();
  absl::Duration retry_wait_ = absl::ZeroDuration();  // before the next automatic attempt
  std::optional<Pending> pending_;
  // The switch moved onto / off the island with this observation (consumed by the first rule).
  bool island_formed_edge_ = false;
  bool island_left_edge_ = false;
  // RESYNC: the forming vehicle could not go on (discharge stopped), or an operator asked:
  // transfer back without waiting for a stable grid.
  bool forming_stopped_ = false;
  bool transfer_back_now_ = false;
};

}  // namespace evgate::grid

#endif  // EVGATE_SITE_CONTROLLER_GRID_GRID_MODE_MACHINE_H_

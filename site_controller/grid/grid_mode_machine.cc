#include "site_controller/grid/grid_mode_machine.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace evgate::grid {
namespace {

// The box's own countdown restarting (its button) shows as its remaining time going up by more
// than polling jitter.
constexpr absl::Duration kCountdownRestartMargin = absl::Seconds(2);
// Rules chain (startup -> outage -> automatic start ...); a step settles in a few. A bound that
// is never reached keeps a defect from spinning forever.
constexpr int kMaxRulesPerStep = 8;

bool Islanded(GridMode mode) { return mode == GridMode::kOffGrid || mode == GridMode::kResync; }
bool Outage(GridMode mode) {
  return mode == GridMode::kOutageStandby || mode == GridMode::kOutageSleep;
}

std::string Pct(double value) { return absl::StrFormat("%.0f %%", value); }
std::string Seconds(absl::Duration d) {
  return absl::StrFormat("%.0f s", absl::ToDoubleSeconds(d));
}

}  // namespace

absl::string_view GridModeName(GridMode mode) {
  switch (mode) {
    case GridMode::kUnknown:
      return "UNKNOWN";
    case GridMode::kOnGrid:
      return "ON_GRID";
    case GridMode::kOutageStandby:
      return "OUTAGE_STANDBY";
    case GridMode::kOutageSleep:
      return "OUTAGE_SLEEP";
    case GridMode::kOffGrid:
      return "OFF_GRID";
    case GridMode::kResync:
      return "RESYNC";
  }
  return "?";
}

absl::string_view TransitionReasonName(TransitionReason reason) {
  switch (reason) {
    case TransitionReason::kStartup:
      return "STARTUP";
    case TransitionReason::kGridLost:
      return "GRID_LOST";
    case TransitionReason::kDischargeStarted:
      return "DISCHARGE_STARTED";
    case TransitionReason::kStandbyTimeout:
      return "STANDBY_TIMEOUT";
    case TransitionReason::kButtonPressed:
      return "BUTTON_PRESSED";
    case TransitionReason::kSocLowerLimit:
      return "SOC_LOWER_LIMIT";
    case TransitionReason::kVehicleStopped:
      return "VEHICLE_STOPPED";
    case TransitionReason::kGridRestored:
      return "GRID_RESTORED";
    case TransitionReason::kResyncComplete:
      return "RESYNC_COMPLETE";
    case TransitionReason::kOperatorRequest:
      return "OPERATOR_REQUEST";
    case TransitionReason::kFault:
      return "FAULT";
  }
  return "?";
}

absl::string_view BoxCommandName(BoxCommand command) {
  switch (command) {
    case BoxCommand::kTransferToOffGrid:
      return "transfer to off grid";
    case BoxCommand::kTransferToOnGrid:
      return "transfer to on grid";
  }
  return "?";
}

absl::StatusOr<std::unique_ptr<GridModeMachine>> GridModeMachine::Create(
    GridModeSettings settings, std::vector<V2xEvseSettings> evses) {
  std::vector<std::string> errors;
  if (evses.empty()) errors.push_back("no bidirectional EVSE: nothing can form the island");
  std::set<std::string> ids;
  for (const V2xEvseSettings& evse : evses) {
    const std::string who = evse.evse_id.empty() ? "an EVSE" : evse.evse_id;
    if (evse.evse_id.empty()) errors.push_back("a V2X EVSE without an id");
    if (!ids.insert(evse.evse_id).second) errors.push_back(absl::StrCat(who, ": listed twice"));
    const bool soc_ok = std::isfinite(evse.soc_min_pct) && std::isfinite(evse.soc_max_pct) &&
                        evse.soc_min_pct >= 0 && evse.soc_max_pct <= 100 &&
                        evse.soc_min_pct < evse.soc_max_pct;
    if (!soc_ok) {
      errors.push_back(
          absl::StrFormat("%s: SOC limits %g..%g %%: need 0 <= lower limit < max SOC <= 100", who,
                          evse.soc_min_pct, evse.soc_max_pct));
    }
    if (!(evse.max_offgrid_discharge_power_w > 0 &&
          evse.max_offgrid_discharge_power_w <= defaults::kMaxOffGridDischargePowerW)) {
      errors.push_back(absl::StrFormat("%s: off-grid discharge power %g W outside (0, %g]", who,
                                       evse.max_offgrid_discharge_power_w,
                                       defaults::kMaxOffGridDischargePowerW));
    }
  }
  if (settings.standby_countdown < defaults::kMinStandbyCountdown ||
      settings.standby_countdown > defaults::kMaxStandbyCountdown) {
    errors.push_back(absl::StrCat("standby countdown ",
                                  absl::FormatDuration(settings.standby_countdown),
                                  " outside 1s..15m (the ICE-22 allows at most 15 minutes)"));
  }
  const std::pair<const char*, absl::Duration> times[] = {
      {"resync stable time", settings.resync_stable_time},
      {"transfer timeout", settings.transfer_timeout},
      {"overload trip time", settings.overload_trip_time},
  };
  for (const auto& [name, value] : times) {
    if (value <= absl::ZeroDuration() || value == absl::InfiniteDuration()) {
      errors.push_back(absl::StrCat(name, " ", absl::FormatDuration(value), ": must be > 0"));
    }
  }
  if (!errors.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("grid modes: ", absl::StrJoin(errors, "; ")));
  }
  return std::unique_ptr<GridModeMachine>(
      new GridModeMachine(std::move(settings), std::move(evses)));
}

GridModeMachine::GridModeMachine(GridModeSettings settings, std::vector<V2xEvseSettings> evses)
    : settings_(std::move(settings)), evses_(std::move(evses)) {}

// ---------------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------------

StepResult GridModeMachine::Observe(absl::Time now, const Observation& observation) {
  Advance(now);
  const BoxObservation& box = observation.box;
  const std::optional<absl::Duration> box_remaining_before =
      last_.box.reachable ? last_.box.standby_remaining : std::nullopt;
  last_ = observation;
  observed_ = true;
  status_.box_reachable = box.reachable;
  if (box.reachable) {
    island_formed_edge_ =
        box.transfer_switch == TransferSwitch::kOffGrid && last_switch_ != TransferSwitch::kOffGrid;
    island_left_edge_ = box.transfer_switch != TransferSwitch::kOffGrid &&
                        box.transfer_switch != TransferSwitch::kUnknown &&
                        last_switch_ == TransferSwitch::kOffGrid;
  } else if (status_.mode == GridMode::kOutageSleep) {
    box_seen_asleep_ = true;
  }
  StepResult result;
  // The box's countdown jumping up is its button; otherwise ours never runs past the box's.
  // Asleep, a countdown running again (it had ended) is the button too, even when the box was
  // woken before anyone saw it stop answering.
  if (status_.mode == GridMode::kOutageSleep && box.reachable && box.standby_remaining &&
      *box.standby_remaining > absl::ZeroDuration() &&
      (!box_remaining_before ||
       *box.standby_remaining > *box_remaining_before + kCountdownRestartMargin)) {
    RestartByButton("the backup battery button at the off-grid box", result);
    StartCountdown(box.standby_remaining);
  } else if (status_.mode == GridMode::kOutageStandby && box.reachable && box.standby_remaining) {
    if (box_remaining_before &&
        *box.standby_remaining > *box_remaining_before + kCountdownRestartMargin) {
      RestartByButton("the backup battery button at the off-grid box", result);
    } else if (standby_remaining_) {
      standby_remaining_ = std::min(*standby_remaining_, *box.standby_remaining);
    }
  }
  UpdateOverload();
  Evaluate(result);
  if (box.reachable) last_switch_ = box.transfer_switch;
  island_formed_edge_ = false;
  island_left_edge_ = false;
  return Finish(std::move(result));
}

StepResult GridModeMachine::Tick(absl::Time now) {
  Advance(now);
  StepResult result;
  Evaluate(result);
  return Finish(std::move(result));
}

StepResult GridModeMachine::PressButton(absl::Time now) {
  Advance(now);
  StepResult result;
  if (Outage(status_.mode)) RestartByButton("the backup battery button", result);
  Evaluate(result);
  return Finish(std::move(result));
}

absl::StatusOr<StepResult> GridModeMachine::RequestOffGrid(absl::Time now,
                                                           absl::string_view evse_id,
                                                           absl::string_view reason) {
  Advance(now);
  const V2xEvseSettings* evse = nullptr;
  if (evse_id.empty()) {
    if (evses_.size() != 1) {
      std::vector<std::string> ids;
      for (const V2xEvseSettings& e : evses_) ids.push_back(e.evse_id);
      return absl::InvalidArgumentError(
          absl::StrCat("name the EVSE to form the island, one of: ", absl::StrJoin(ids, ", ")));
    }
    evse = &evses_.front();
  } else {
    evse = FindEvse(evse_id);
    if (evse == nullptr) {
      return absl::NotFoundError(
          absl::StrCat(evse_id, " is not a bidirectional EVSE of this site"));
    }
  }
  std::vector<std::string> unmet;
  if (!Outage(status_.mode)) {
    unmet.push_back(
        status_.mode == GridMode::kOnGrid
            ? "the site is ON_GRID: evgate never islands while the grid is present"
            : absl::StrCat("the site is ", GridModeName(status_.mode), ", not in an outage"));
  }
  if (pending_)
    unmet.push_back(absl::StrCat("a ", BoxCommandName(pending_->command), " is already under way"));
  for (std::string& why : UnmetForBox()) unmet.push_back(std::move(why));
  for (std::string& why : UnmetForEvse(*evse)) unmet.push_back(std::move(why));
  if (!unmet.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot go off grid: ", absl::StrJoin(unmet, "; ")));
  }
  StepResult result;
  status_.auto_off_grid_suppressed = false;
  const std::string detail = absl::StrCat("operator", reason.empty() ? "" : ": ", reason);
  if (status_.mode == GridMode::kOutageSleep) {
    Enter(GridMode::kOutageStandby, TransitionReason::kOperatorRequest, detail, result);
    StartCountdown(last_.box.standby_remaining);
  }
  Command(BoxCommand::kTransferToOffGrid, evse->evse_id, TransitionReason::kOperatorRequest,
          absl::StrCat(detail, " (", evse->evse_id, " forms the island)"), result);
  Evaluate(result);
  return Finish(std::move(result));
}

absl::StatusOr<StepResult> GridModeMachine::RequestOnGrid(absl::Time now,
                                                          absl::string_view reason) {
  Advance(now);
  std::vector<std::string> unmet;
  if (!Islanded(status_.mode)) {
    unmet.push_back(absl::StrCat("the site is ", GridModeName(status_.mode), ", not islanded"));
  }
  if (!last_.box.reachable) unmet.push_back("the off-grid box does not answer");
  if (last_.box.reachable && !last_.box.grid_present) {
    unmet.push_back("the off-grid box reports no grid to return to");
  }
  if (!unmet.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot return to the grid: ", absl::StrJoin(unmet, "; ")));
  }
  // Islanded with the grid reported is RESYNC already (the box's report moved it there).
  StepResult result;
  status_.last_detail = absl::StrCat("operator", reason.empty() ? "" : ": ", reason,
                                     " (transfer back without waiting for a stable grid)");
  transfer_back_now_ = true;
  Evaluate(result);
  return Finish(std::move(result));
}

// ---------------------------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------------------------

void GridModeMachine::Advance(absl::Time now) {
  if (!now_) {
    now_ = now;
    return;
  }
  if (now <= *now_) return;  // a step back counts as no time passed
  const absl::Duration passed = now - *now_;
  now_ = now;
  if (standby_remaining_) {
    standby_remaining_ = std::max(absl::ZeroDuration(), *standby_remaining_ - passed);
  }
  if (grid_stable_for_) *grid_stable_for_ += passed;
  if (pending_) pending_->remaining -= passed;
  retry_wait_ = std::max(absl::ZeroDuration(), retry_wait_ - passed);
  if (status_.overload_alarm) overload_for_ += passed;
}

void GridModeMachine::StartCountdown(std::optional<absl::Duration> box_remaining) {
  standby_remaining_ = settings_.standby_countdown;
  if (box_remaining && *box_remaining > absl::ZeroDuration()) {
    standby_remaining_ = std::min(*standby_remaining_, *box_remaining);
  }
}

void GridModeMachine::UpdateOverload() {
  const V2xEvseSettings* forming = FindEvse(status_.forming_evse);
  const bool over = Islanded(status_.mode) && forming != nullptr && last_.box.reachable &&
                    last_.box.backup_load_power_w &&
                    *last_.box.backup_load_power_w > FormingLimit(*forming);
  status_.overload_alarm = over;
  if (!over) overload_for_ = absl::ZeroDuration();
}

// ---------------------------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------------------------

void GridModeMachine::Evaluate(StepResult& result) {
  for (int i = 0; i < kMaxRulesPerStep && EvaluateOnce(result); ++i) {
  }
}

bool GridModeMachine::EvaluateOnce(StepResult& result) {
  if (!observed_) return false;
  const BoxObservation& box = last_.box;
  switch (status_.mode) {
    case GridMode::kUnknown: {
      if (!box.reachable) return false;
      island_left_edge_ = false;
      if (box.transfer_switch == TransferSwitch::kOffGrid) {
        island_formed_edge_ = false;
        EnterIsland(TransitionReason::kStartup, "the off-grid box's switch is on the island",
                    BestConnectedEvse(), result);
      } else if (GridBack()) {
        Enter(GridMode::kOnGrid, TransitionReason::kStartup, "the off-grid box reports the grid",
              result);
      } else {
        Enter(GridMode::kOutageStandby, TransitionReason::kStartup, GridLostDetail(), result);
        StartCountdown(box.standby_remaining);
      }
      return true;
    }
    case GridMode::kOnGrid:
      if (!box.reachable) return false;
      if (island_formed_edge_) {
        island_formed_edge_ = false;
        EnterIsland(TransitionReason::kDischargeStarted,
                    "the off-grid box closed the island without a command from evgate "
                    "(started at the charger)",
                    BestConnectedEvse(), result);
        return true;
      }
      if (!GridBack()) {
        Enter(GridMode::kOutageStandby, TransitionReason::kGridLost, GridLostDetail(), result);
        StartCountdown(box.standby_remaining);
        return true;
      }
      return false;
    case GridMode::kOutageStandby:
    case GridMode::kOutageSleep:
      return EvaluateOutage(result);
    case GridMode::kOffGrid:
    case GridMode::kResync:
      return EvaluateIslanded(result);
  }
  return false;
}

bool GridModeMachine::EvaluateOutage(StepResult& result) {
  const BoxObservation& box = last_.box;
  const bool transfer_to_island = pending_ && pending_->command == BoxCommand::kTransferToOffGrid;
  if (box.reachable && (island_formed_edge_ ||
                        (transfer_to_island && box.transfer_switch == TransferSwitch::kOffGrid))) {
    island_formed_edge_ = false;
    if (transfer_to_island) {
      const Pending done = *pending_;
      EnterIsland(done.reason, done.detail, FindEvse(done.evse_id), result);
    } else {
      EnterIsland(TransitionReason::kDischargeStarted,
                  "the off-grid box closed the island without a command from evgate "
                  "(started at the charger)",
                  BestConnectedEvse(), result);
    }
    return true;
  }
  if (box.reachable && GridBack()) {
    Enter(GridMode::kOnGrid, TransitionReason::kGridRestored, "the off-grid box reports the grid",
          result);
    return true;
  }
  if (status_.mode == GridMode::kOutageStandby && standby_remaining_ &&
      *standby_remaining_ <= absl::ZeroDuration()) {
    Enter(GridMode::kOutageSleep, TransitionReason::kStandbyTimeout,
          absl::StrCat("no off-grid discharge within ", Seconds(settings_.standby_countdown),
                       ": the V2X system sleeps to save its backup battery"),
          result);
    return true;
  }
  if (status_.mode == GridMode::kOutageSleep && box.reachable && box_seen_asleep_) {
    Enter(GridMode::kOutageStandby, TransitionReason::kButtonPressed,
          "the off-grid box woke up (backup battery button)", result);
    StartCountdown(box.standby_remaining);
    return true;
  }
  // Grid back while the switch is still on an island no vehicle forms any more (the forming one
  // stopped): nothing to resynchronise, the box is told to transfer back.
  if (box.reachable && box.grid_present && box.transfer_switch == TransferSwitch::kOffGrid) {
    if (pending_ && pending_->remaining <= absl::ZeroDuration()) pending_.reset();
    if (!pending_ || pending_->command != BoxCommand::kTransferToOnGrid) {
      Command(BoxCommand::kTransferToOnGrid, "", TransitionReason::kGridRestored,
              "the grid is back and the switch still on the island: transferring back", result);
    }
    return false;
  }
  if (pending_ && pending_->command == BoxCommand::kTransferToOnGrid) {
    pending_.reset();  // the grid went again before the box transferred back
  }
  if (transfer_to_island) {
    const V2xEvseSettings* evse = FindEvse(pending_->evse_id);
    std::vector<std::string> unmet = UnmetForEvse(*evse);
    if (pending_->remaining <= absl::ZeroDuration()) {
      unmet.push_back(absl::StrCat("the off-grid box did not transfer to the island within ",
                                   Seconds(settings_.transfer_timeout)));
    }
    if (!unmet.empty()) {
      status_.last_detail = absl::StrCat("off-grid start given up: ", absl::StrJoin(unmet, "; "));
      pending_.reset();
      retry_wait_ = settings_.transfer_timeout;
    }
    return false;
  }
  if (status_.mode == GridMode::kOutageStandby && settings_.auto_off_grid &&
      !status_.auto_off_grid_suppressed && !pending_ && retry_wait_ <= absl::ZeroDuration() &&
      UnmetForBox().empty()) {
    if (const V2xEvseSettings* evse = BestReadyEvse()) {
      const V2xEvseObservation* seen = Observed(evse->evse_id);
      Command(BoxCommand::kTransferToOffGrid, evse->evse_id, TransitionReason::kDischargeStarted,
              absl::StrCat(evse->evse_id, ": vehicle at SOC ", Pct(*seen->soc_pct),
                           " ready, automatic off-grid start"),
              result);
      return true;  // a switch already on the island completes it at once
    }
  }
  return false;
}

bool GridModeMachine::EvaluateIslanded(StepResult& result) {
  const BoxObservation& box = last_.box;
  const bool resync = status_.mode == GridMode::kResync;
  const V2xEvseSettings* forming = FindEvse(status_.forming_evse);
  // The box's switch is the truth: the island ended without us.
  if (box.reachable && island_left_edge_) {
    island_left_edge_ = false;
    if (box.transfer_switch == TransferSwitch::kOnGrid && box.grid_present) {
      const bool ours = pending_ && pending_->command == BoxCommand::kTransferToOnGrid;
      Enter(GridMode::kOnGrid,
            ours ? TransitionReason::kResyncComplete : TransitionReason::kGridRestored,
            ours ? "the loads are back on the grid"
                 : "the off-grid box transferred back to the grid by itself",
            result);
    } else {
      EnterFault("the off-grid box opened the island", result);
    }
    return true;
  }
  // What stops the forming vehicle: in OFF_GRID the island ends; in RESYNC the loads go back to
  // the grid at once.
  std::string stopped;
  TransitionReason why = TransitionReason::kVehicleStopped;
  const V2xEvseObservation* seen = forming ? Observed(forming->evse_id) : nullptr;
  if (forming == nullptr) {
    stopped = "no vehicle forms the island";
  } else if (seen == nullptr || !seen->reachable) {
    stopped = absl::StrCat(forming->evse_id, " does not answer");
  } else if (!seen->vehicle_connected) {
    stopped = absl::StrCat(forming->evse_id, ": vehicle unplugged");
  } else if (std::string fault = FaultDetail(*forming); !fault.empty()) {
    stopped = std::move(fault);
    why = TransitionReason::kFault;
  } else if (!seen->soc_pct) {
    stopped = absl::StrCat(forming->evse_id, ": vehicle SOC unknown, discharge stopped");
    why = TransitionReason::kSocLowerLimit;
  } else if (*seen->soc_pct <= forming->soc_min_pct) {
    stopped =
        absl::StrCat(forming->evse_id, ": SOC ", Pct(*seen->soc_pct), " reached its lower limit ",
                     Pct(forming->soc_min_pct), ", discharge stopped");
    why = TransitionReason::kSocLowerLimit;
  }
  if (!stopped.empty()) {
    if (resync) {
      if (!forming_stopped_) {
        forming_stopped_ = true;
        status_.last_detail = absl::StrCat(stopped, "; transferring back to the grid now");
      }
    } else if (why == TransitionReason::kFault) {
      EnterFault(stopped, result);
      return true;
    } else if (why == TransitionReason::kSocLowerLimit) {
      Enter(GridMode::kOutageSleep, why, absl::StrCat(stopped, ": the V2X system sleeps"), result);
      return true;
    } else {
      Enter(GridMode::kOutageStandby, why, stopped, result);
      StartCountdown(std::nullopt);
      return true;
    }
  }
  if (!resync) {
    if (box.reachable && box.grid_present) {
      const std::string former = status_.forming_evse;
      Enter(GridMode::kResync, TransitionReason::kGridRestored,
            absl::StrCat("the off-grid box reports the grid back; transfer after ",
                         Seconds(settings_.resync_stable_time), " of stable grid"),
            result);
      status_.forming_evse = former;
      grid_stable_for_ = absl::ZeroDuration();
      return true;
    }
    return false;
  }
  // RESYNC.
  if (box.reachable && !box.grid_present) {
    if (forming_stopped_) {
      Enter(GridMode::kOutageStandby, TransitionReason::kGridLost,
            "grid lost again during resync, and no vehicle forms the island", result);
      StartCountdown(std::nullopt);
    } else {
      const std::string former = status_.forming_evse;
      Enter(GridMode::kOffGrid, TransitionReason::kGridLost, "grid lost again during resync",
            result);
      status_.forming_evse = former;
    }
    return true;
  }
  if (pending_ && pending_->remaining <= absl::ZeroDuration()) {
    status_.last_detail = absl::StrCat("the off-grid box did not transfer back within ",
                                       Seconds(settings_.transfer_timeout), "; asking again");
    pending_.reset();
  }
  const bool stable = grid_stable_for_ && *grid_stable_for_ >= settings_.resync_stable_time;
  if (!pending_ && (stable || forming_stopped_ || transfer_back_now_)) {
    Command(BoxCommand::kTransferToOnGrid, "", TransitionReason::kResyncComplete,
            stable ? absl::StrCat("grid stable for ", Seconds(settings_.resync_stable_time))
                   : std::string(status_.last_detail),
            result);
  }
  return false;
}

void GridModeMachine::Enter(GridMode mode, TransitionReason reason, std::string detail,
                            StepResult& result) {
  result.transitions.push_back(Transition{status_.mode, mode, reason, detail, *now_});
  status_.mode = mode;
  status_.since = *now_;
  status_.last_reason = reason;
  status_.last_detail = std::move(detail);
  status_.forming_evse.clear();
  pending_.reset();
  standby_remaining_.reset();
  grid_stable_for_.reset();
  forming_stopped_ = false;
  transfer_back_now_ = false;
  box_seen_asleep_ = false;
  retry_wait_ = absl::ZeroDuration();  // a new mode (or the button) is a new chance
  UpdateOverload();
}

void GridModeMachine::EnterIsland(TransitionReason reason, std::string detail,
                                  const V2xEvseSettings* forming, StepResult& result) {
  Enter(GridMode::kOffGrid, reason, std::move(detail), result);
  if (forming != nullptr) status_.forming_evse = forming->evse_id;
  UpdateOverload();
}

void GridModeMachine::EnterFault(std::string detail, StepResult& result) {
  Enter(GridMode::kOutageStandby, TransitionReason::kFault,
        absl::StrCat(detail,
                     "; discharge stopped, no automatic restart until the backup battery "
                     "button or an operator request"),
        result);
  StartCountdown(std::nullopt);
  status_.auto_off_grid_suppressed = true;
}

void GridModeMachine::RestartByButton(absl::string_view where, StepResult& result) {
  status_.auto_off_grid_suppressed = false;
  Enter(GridMode::kOutageStandby, TransitionReason::kButtonPressed,
        absl::StrCat(where, ": standby countdown restarted (", Seconds(settings_.standby_countdown),
                     ")"),
        result);
  StartCountdown(std::nullopt);
}

void GridModeMachine::Command(BoxCommand command, std::string evse_id, TransitionReason reason,
                              std::string detail, StepResult& result) {
  pending_ =
      Pending{command, std::move(evse_id), reason, std::move(detail), settings_.transfer_timeout};
  result.box_commands.push_back(command);
}

StepResult GridModeMachine::Finish(StepResult result) {
  status_.standby_remaining =
      status_.mode == GridMode::kOutageStandby ? standby_remaining_ : std::nullopt;
  status_.transfer_pending = pending_ ? std::optional<BoxCommand>(pending_->command) : std::nullopt;
  const V2xEvseObservation* seen = Observed(status_.forming_evse);
  status_.forming_soc_pct = seen != nullptr ? seen->soc_pct : std::nullopt;

  Directives& d = result.directives;
  d.grid_supply = status_.mode == GridMode::kUnknown || status_.mode == GridMode::kOnGrid;
  std::string forming;
  if (Islanded(status_.mode) && !forming_stopped_) forming = status_.forming_evse;
  if (Outage(status_.mode) && pending_ && pending_->command == BoxCommand::kTransferToOffGrid) {
    forming = pending_->evse_id;
  }
  if (const V2xEvseSettings* evse = FindEvse(forming)) {
    d.forming_evse = evse->evse_id;
    // Never a discharge order for a vehicle whose SOC is not known to be above its limit.
    if (UnmetForEvse(*evse).empty()) d.forming_discharge_limit_w = FormingLimit(*evse);
  } else if (!status_.forming_evse.empty()) {
    d.forming_evse = status_.forming_evse;  // told to stop
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Conditions
// ---------------------------------------------------------------------------------------------

const V2xEvseSettings* GridModeMachine::FindEvse(absl::string_view evse_id) const {
  for (const V2xEvseSettings& evse : evses_) {
    if (evse.evse_id == evse_id) return &evse;
  }
  return nullptr;
}

const V2xEvseObservation* GridModeMachine::Observed(absl::string_view evse_id) const {
  if (evse_id.empty()) return nullptr;
  for (const V2xEvseObservation& evse : last_.evses) {
    if (evse.evse_id == evse_id) return &evse;
  }
  return nullptr;
}

std::string GridModeMachine::FaultDetail(const V2xEvseSettings& forming) const {
  const BoxObservation& box = last_.box;
  if (box.reachable && box.qf1_closed == false) return "QF1 (system protection) open";
  if (box.reachable && box.qf2_closed == false) return "QF2 (load branch) open";
  const V2xEvseObservation* seen = Observed(forming.evse_id);
  if (seen != nullptr && seen->blocking_fault) {
    return absl::StrCat(forming.evse_id, ": blocking fault", seen->fault_detail.empty() ? "" : " ",
                        seen->fault_detail);
  }
  if (status_.overload_alarm && overload_for_ >= settings_.overload_trip_time) {
    return absl::StrFormat("backup loads %.1f kW above the %.1f kW off-grid limit for %s",
                           *box.backup_load_power_w / 1000, FormingLimit(forming) / 1000,
                           Seconds(overload_for_));
  }
  return "";
}

std::vector<std::string> GridModeMachine::UnmetForEvse(const V2xEvseSettings& evse) const {
  const V2xEvseObservation* seen = Observed(evse.evse_id);
  if (seen == nullptr || !seen->reachable) return {absl::StrCat(evse.evse_id, " does not answer")};
  std::vector<std::string> unmet;
  if (!seen->vehicle_connected) unmet.push_back(absl::StrCat("no vehicle on ", evse.evse_id));
  if (seen->blocking_fault) {
    unmet.push_back(absl::StrCat(evse.evse_id, " has a blocking fault",
                                 seen->fault_detail.empty() ? "" : ": ", seen->fault_detail));
  }
  if (seen->vehicle_connected && !seen->soc_pct) {
    unmet.push_back(absl::StrCat(evse.evse_id, ": vehicle SOC unknown"));
  } else if (seen->soc_pct && *seen->soc_pct <= evse.soc_min_pct) {
    unmet.push_back(absl::StrCat(evse.evse_id, ": SOC ", Pct(*seen->soc_pct),
                                 " at or below its lower limit ", Pct(evse.soc_min_pct)));
  }
  return unmet;
}

std::vector<std::string> GridModeMachine::UnmetForBox() const {
  const BoxObservation& box = last_.box;
  if (!box.reachable) {
    return {"the off-grid box does not answer (asleep? press its backup battery button)"};
  }
  std::vector<std::string> unmet;
  if (box.grid_present) unmet.push_back("the off-grid box reports the grid present");
  if (box.qf1_closed != true) unmet.push_back("QF1 is not closed");
  if (box.qf2_closed != true) unmet.push_back("QF2 is not closed");
  return unmet;
}

const V2xEvseSettings* GridModeMachine::BestReadyEvse() const {
  const V2xEvseSettings* best = nullptr;
  double best_soc = 0;
  for (const V2xEvseSettings& evse : evses_) {
    if (!UnmetForEvse(evse).empty()) continue;
    const double soc = *Observed(evse.evse_id)->soc_pct;
    if (best == nullptr || soc > best_soc) {
      best = &evse;
      best_soc = soc;
    }
  }
  return best;
}

const V2xEvseSettings* GridModeMachine::BestConnectedEvse() const {
  if (const V2xEvseSettings* ready = BestReadyEvse()) return ready;
  for (const V2xEvseSettings& evse : evses_) {
    const V2xEvseObservation* seen = Observed(evse.evse_id);
    if (seen != nullptr && seen->reachable && seen->vehicle_connected) return &evse;
  }
  return nullptr;
}

double GridModeMachine::FormingLimit(const V2xEvseSettings& evse) const {
  return std::min(evse.max_offgrid_discharge_power_w, defaults::kMaxOffGridDischargePowerW);
}

bool GridModeMachine::GridBack() const {
  const BoxObservation& box = last_.box;
  return box.reachable && box.grid_present &&
         (box.transfer_switch == TransferSwitch::kOnGrid ||
          box.transfer_switch == TransferSwitch::kUnknown);
}

std::string GridModeMachine::GridLostDetail() const {
  const BoxObservation& box = last_.box;
  if (!box.grid_present) return "the off-grid box reports the grid lost";
  return "the off-grid box's transfer switch is open";
}

}  // namespace evgate::grid

#include "services/grid_controller/grid_controller.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "runtime/log.h"
#include "site_controller/config/api_conversions.h"

namespace evgate::grid_controller {
namespace {

constexpr log::Logger kLog("grid_controller");

v1::GridMode ModeOf(grid::GridMode mode) {
  switch (mode) {
    case grid::GridMode::kUnknown:
      return v1::GRID_MODE_UNSPECIFIED;
    case grid::GridMode::kOnGrid:
      return v1::GRID_MODE_ON_GRID;
    case grid::GridMode::kOutageStandby:
      return v1::GRID_MODE_OUTAGE_STANDBY;
    case grid::GridMode::kOutageSleep:
      return v1::GRID_MODE_OUTAGE_SLEEP;
    case grid::GridMode::kOffGrid:
      return v1::GRID_MODE_OFF_GRID;
    case grid::GridMode::kResync:
      return v1::GRID_MODE_RESYNC;
  }
  return v1::GRID_MODE_UNSPECIFIED;
}

v1::GridTransitionReason ReasonOf(grid::TransitionReason reason) {
  using R = grid::TransitionReason;
  switch (reason) {
    case R::kStartup:
      return v1::GRID_TRANSITION_REASON_STARTUP;
    case R::kGridLost:
      return v1::GRID_TRANSITION_REASON_GRID_LOST;
    case R::kDischargeStarted:
      return v1::GRID_TRANSITION_REASON_DISCHARGE_STARTED;
    case R::kStandbyTimeout:
      return v1::GRID_TRANSITION_REASON_STANDBY_TIMEOUT;
    case R::kButtonPressed:
      return v1::GRID_TRANSITION_REASON_BUTTON_PRESSED;
    case R::kSocLowerLimit:
      return v1::GRID_TRANSITION_REASON_SOC_LOWER_LIMIT;
    case R::kVehicleStopped:
      return v1::GRID_TRANSITION_REASON_VEHICLE_STOPPED;
    case R::kGridRestored:
      return v1::GRID_TRANSITION_REASON_GRID_RESTORED;
    case R::kResyncComplete:
      return v1::GRID_TRANSITION_REASON_RESYNC_COMPLETE;
    case R::kOperatorRequest:
      return v1::GRID_TRANSITION_REASON_OPERATOR_REQUEST;
    case R::kFault:
      return v1::GRID_TRANSITION_REASON_FAULT;
  }
  return v1::GRID_TRANSITION_REASON_UNSPECIFIED;
}

v1::OffGridBoxCommand Transfer(v1::OffGridBoxCommand::Transfer transfer) {
  v1::OffGridBoxCommand command;
  command.set_transfer(transfer);
  return command;
}

std::string Describe(const v1::OffGridBoxCommand& command) {
  switch (command.command_case()) {
    case v1::OffGridBoxCommand::kTransfer:
      return command.transfer() == v1::OffGridBoxCommand::TRANSFER_TO_OFF_GRID
                 ? "transfer to off grid"
                 : "transfer to on grid";
    case v1::OffGridBoxCommand::kPnPullInEnabled:
      return absl::StrCat("P-N pull-in ", command.pn_pull_in_enabled() ? "on" : "off");
    case v1::OffGridBoxCommand::kStandbyCountdown:
      return absl::StrCat("standby countdown ", command.standby_countdown().seconds(), " s");
    case v1::OffGridBoxCommand::COMMAND_NOT_SET:
      break;
  }
  return "?";
}

}  // namespace

absl::StatusOr<std::unique_ptr<grid::GridModeMachine>> MachineFromSite(
    const site::SiteConfig& config) {
  if (!config.grid_modes) {
    return absl::FailedPreconditionError(
        "this site has no grid_modes in site.yaml (a plain grid-connected site)");
  }
  const site::GridModesConfig& g = *config.grid_modes;
  grid::GridModeSettings settings;
  settings.standby_countdown = absl::Seconds(g.standby_countdown_s);
  settings.auto_off_grid = g.auto_off_grid;
  settings.resync_stable_time = absl::Seconds(g.resync_stable_s);
  std::vector<grid::V2xEvseSettings> evses;
  for (const site::StationConfig& station : config.stations) {
    for (const site::EvseConfig& evse : station.evses) {
      if (!evse.dc || !evse.dc->bidirectional || evse.dc->max_discharge_power_offgrid_w <= 0) {
        continue;
      }
      grid::V2xEvseSettings& v2x = evses.emplace_back();
      v2x.evse_id = evse.id;
      v2x.soc_min_pct = evse.dc->soc_min_pct;
      v2x.soc_max_pct = evse.dc->soc_max_pct;
      v2x.max_offgrid_discharge_power_w = std::min(evse.dc->max_discharge_power_offgrid_w,
                                                   grid::defaults::kMaxOffGridDischargePowerW);
    }
  }
  return grid::GridModeMachine::Create(settings, std::move(evses));
}

absl::StatusOr<std::unique_ptr<GridController>> GridController::Create(
    const site::SiteConfig& config, const Clock& clock, BoxCommander* commander) {
  absl::StatusOr<std::unique_ptr<grid::GridModeMachine>> machine = MachineFromSite(config);
  if (!machine.ok()) return machine.status();
  return std::unique_ptr<GridController>(
      new GridController(config, clock, commander, *std::move(machine)));
}

GridController::GridController(const site::SiteConfig& config, const Clock& clock,
                               BoxCommander* commander,
                               std::unique_ptr<grid::GridModeMachine> machine)
    : box_device_id_(config.grid_modes->off_grid_box),
      settings_(*config.grid_modes),
      config_(config),
      clock_(clock),
      commander_(commander),
      machine_(std::move(machine)),
      inputs_(config.grid_modes->off_grid_box, config.grid.meter.value_or(""), [&] {
        std::vector<std::string> ids;
        for (const grid::V2xEvseSettings& evse : machine_->evses()) ids.push_back(evse.evse_id);
        return ids;
      }()) {}

// ---------------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------------

void GridController::OnStreamStarted() {
  absl::MutexLock send(&send_mu_);
  std::vector<v1::OffGridBoxCommand> commands;
  {
    absl::MutexLock lock(&mu_);
    inputs_.Reset();
    commands = ObserveLocked();
  }
  SendAll(commands);
}

void GridController::OnDeviceEvent(const v1::WatchDevicesResponse& event) {
  absl::MutexLock send(&send_mu_);
  std::vector<v1::OffGridBoxCommand> commands;
  {
    absl::MutexLock lock(&mu_);
    if (!inputs_.Apply(event)) return;
    commands = ObserveLocked();
  }
  SendAll(commands);
}

void GridController::OnStreamLost(const absl::Status& status) {
  kLog.Warning("device events lost (%s): the box and the V2X EVSEs count as unreachable",
               status.message());
  absl::MutexLock send(&send_mu_);
  std::vector<v1::OffGridBoxCommand> commands;
  {
    absl::MutexLock lock(&mu_);
    inputs_.Reset();
    commands = ObserveLocked();
  }
  SendAll(commands);
}

void GridController::Tick() {
  absl::MutexLock send(&send_mu_);
  std::vector<v1::OffGridBoxCommand> commands;
  {
    absl::MutexLock lock(&mu_);
    commands = Record(machine_->Tick(clock_.MonotonicNow()));
  }
  SendAll(commands);
}

absl::StatusOr<v1::GridState> GridController::Request(const v1::RequestGridModeRequest& request) {
  absl::MutexLock send(&send_mu_);
  std::vector<v1::OffGridBoxCommand> commands;
  v1::GridState state;
  {
    absl::MutexLock lock(&mu_);
    absl::StatusOr<grid::StepResult> step;
    switch (request.target()) {
      case v1::GRID_MODE_TARGET_OFF_GRID:
        step = machine_->RequestOffGrid(clock_.MonotonicNow(), request.evse_id(), request.reason());
        break;
      case v1::GRID_MODE_TARGET_ON_GRID:
        step = machine_->RequestOnGrid(clock_.MonotonicNow(), request.reason());
        break;
      default:
        return absl::InvalidArgumentError("target must be OFF_GRID or ON_GRID");
    }
    if (!step.ok()) return step.status();
    kLog.Info("operator request %s%s%s accepted",
              request.target() == v1::GRID_MODE_TARGET_OFF_GRID ? "off grid" : "on grid",
              request.reason().empty() ? "" : ": ", request.reason());
    commands = Record(*step);
    state = StateLocked();
  }
  SendAll(commands);
  return state;
}

std::vector<v1::OffGridBoxCommand> GridController::ObserveLocked() {
  std::vector<v1::OffGridBoxCommand> commands;
  const bool reachable = inputs_.box_reachable();
  if (reachable && !box_was_reachable_) {
    // First contact, a driver restart or the box waking up: it gets site.yaml's settings.
    v1::OffGridBoxCommand countdown;
    *countdown.mutable_standby_countdown() =
        api::ToProto(absl::Seconds(settings_.standby_countdown_s));
    commands.push_back(countdown);
    v1::OffGridBoxCommand pull_in;
    pull_in.set_pn_pull_in_enabled(settings_.pn_pull_in);
    commands.push_back(pull_in);
  }
  box_was_reachable_ = reachable;
  for (v1::OffGridBoxCommand& c :
       Record(machine_->Observe(clock_.MonotonicNow(), inputs_.Observe()))) {
    commands.push_back(std::move(c));
  }
  return commands;
}

std::vector<v1::OffGridBoxCommand> GridController::Record(const grid::StepResult& step) {
  directives_ = step.directives;
  const grid::Status& status = machine_->status();
  for (const grid::Transition& t : step.transitions) {
    kLog.Info("grid mode %s -> %s (%s): %s", grid::GridModeName(t.from), grid::GridModeName(t.to),
              grid::TransitionReasonName(t.reason), t.detail);
    v1::GridState state = StateLocked();
    // An intermediate transition of this step: its own mode, reason and time.
    state.set_mode(ModeOf(t.to));
    state.set_last_transition_reason(ReasonOf(t.reason));
    state.set_last_transition_detail(t.detail);
    *state.mutable_since() = api::ToProto(clock_.Now() - (clock_.MonotonicNow() - t.at));
    ++transitions_;
    recent_.push_back(std::move(state));
    while (recent_.size() > kMaxTransitions) recent_.pop_front();
  }
  if (status.overload_alarm != overload_alarm_) {
    overload_alarm_ = status.overload_alarm;
    if (overload_alarm_) {
      kLog.Warning("off-grid overload: the backup loads draw more than %s may supply",
                   status.forming_evse);
    } else {
      kLog.Info("off-grid overload over");
    }
  }
  std::vector<v1::OffGridBoxCommand> commands;
  for (grid::BoxCommand c : step.box_commands) {
    commands.push_back(Transfer(c == grid::BoxCommand::kTransferToOffGrid
                                    ? v1::OffGridBoxCommand::TRANSFER_TO_OFF_GRID
                                    : v1::OffGridBoxCommand::TRANSFER_TO_ON_GRID));
  }
  return commands;
}

void GridController::SendAll(const std::vector<v1::OffGridBoxCommand>& commands) {
  for (const v1::OffGridBoxCommand& command : commands) {
    absl::Status sent = commander_->Send(box_device_id_, command);
    if (sent.ok()) {
      kLog.Info("%s: %s", box_device_id_, Describe(command));
    } else {
      kLog.Warning("%s: %s not done: %s", box_device_id_, Describe(command), sent.message());
    }
  }
}

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

v1::GridState GridController::State() const {
  absl::MutexLock lock(&mu_);
  return StateLocked();
}

v1::GridState GridController::StateLocked() const {
  const grid::Status& s = machine_->status();
  const absl::Time now = clock_.Now();
  const absl::Time monotonic = clock_.MonotonicNow();
  v1::GridState state;
  state.set_mode(ModeOf(s.mode));
  if (s.mode != grid::GridMode::kUnknown) {
    *state.mutable_since() = api::ToProto(now - (monotonic - s.since));
  }
  if (s.last_reason) state.set_last_transition_reason(ReasonOf(*s.last_reason));
  state.set_last_transition_detail(
      s.mode == grid::GridMode::kUnknown
          ? absl::StrCat("waiting for the off-grid box ", box_device_id_, " to answer")
          : s.last_detail);
  if (s.standby_remaining) *state.mutable_standby_remaining() = api::ToProto(*s.standby_remaining);
  state.set_off_grid_box_device_id(box_device_id_);
  if (std::optional<v1::OffGridBoxState> box = inputs_.box()) *state.mutable_off_grid_box() = *box;
  if (std::optional<v1::MeterReading> meter = inputs_.grid_meter()) {
    *state.mutable_grid_meter() = *meter;
  }
  if (!directives_.forming_evse.empty()) {
    state.set_forming_discharge_limit_w(directives_.forming_discharge_limit_w);
    if (s.forming_evse.empty()) state.set_forming_evse_id(directives_.forming_evse);
  }
  if (!s.forming_evse.empty()) {
    state.set_forming_evse_id(s.forming_evse);
    if (s.forming_soc_pct) state.set_forming_soc_pct(*s.forming_soc_pct);
    if (std::optional<v1::EvseState> evse = inputs_.evse(s.forming_evse);
        evse && evse->measurements().has_power_w()) {
      state.set_forming_power_w(evse->measurements().power_w());
    }
  }
  *state.mutable_at() = api::ToProto(now);
  return state;
}

grid::Directives GridController::directives() const {
  absl::MutexLock lock(&mu_);
  return directives_;
}

absl::StatusOr<v1::V2xParameters> GridController::Parameters(const std::string& evse_id) const {
  const site::EvseConfig* evse = config_.FindEvse(evse_id);
  if (evse == nullptr) return absl::NotFoundError(absl::StrCat("no EVSE '", evse_id, "'"));
  if (!evse->dc || !evse->dc->bidirectional) {
    return absl::FailedPreconditionError(absl::StrCat(evse_id, " is not bidirectional"));
  }
  v1::V2xParameters p;
  p.set_evse_id(evse_id);
  p.set_soc_min_pct(evse->dc->soc_min_pct);
  p.set_soc_max_pct(evse->dc->soc_max_pct);
  p.set_max_charge_power_w(evse->dc->max_power_w);
  p.set_max_discharge_power_w(evse->dc->max_discharge_power_w);
  p.set_max_offgrid_discharge_power_w(evse->dc->max_discharge_power_offgrid_w);
  p.set_pn_pull_in_enabled(settings_.pn_pull_in);
  *p.mutable_standby_countdown() = api::ToProto(absl::Seconds(settings_.standby_countdown_s));
  return p;
}

uint64_t GridController::transitions() const {
  absl::MutexLock lock(&mu_);
  return transitions_;
}

std::vector<v1::GridState> GridController::TransitionsAfter(uint64_t after,
                                                            uint64_t* through) const {
  absl::MutexLock lock(&mu_);
  *through = transitions_;
  std::vector<v1::GridState> out;
  const uint64_t first_kept = transitions_ - recent_.size() + 1;
  for (uint64_t n = std::max(after + 1, first_kept); n <= transitions_; ++n) {
    out.push_back(recent_[n - first_kept]);
  }
  return out;
}

void GridController::WaitForTransition(uint64_t after, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto ready = [this, after]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return shut_down_ || transitions_ > after;
  };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
}

void GridController::Shutdown() {
  absl::MutexLock lock(&mu_);
  shut_down_ = true;
}

bool GridController::shut_down() const {
  absl::MutexLock lock(&mu_);
  return shut_down_;
}

}  // namespace evgate::grid_controller

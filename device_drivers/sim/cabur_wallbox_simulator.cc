#include "device_drivers/sim/cabur_wallbox_simulator.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_format.h"
#include "runtime/log.h"

namespace evgate::sim {
namespace {

using can::CanFrame;
namespace wb = can::wallbox;

constexpr log::Logger kLog("cabur_wallbox_sim");

void Append(std::vector<CanFrame>& out, const absl::StatusOr<CanFrame>& frame) {
  if (frame.ok()) {
    out.push_back(*frame);
  } else {
    kLog.Error("cannot encode a frame: %s", std::string(frame.status().message()).c_str());
  }
}

// The next time a periodic frame is due: one period after the last due time,
// so coarse ticks do not stretch the period; after a gap (or at power-up) one
// period from now.
absl::Time NextDue(absl::Time due, absl::Duration period, absl::Time now) {
  const absl::Time next = due + period;
  return next > now ? next : now + period;
}

}  // namespace

CaburWallboxSimulator::CaburWallboxSimulator(const CaburWallboxConfig& config, absl::Time now)
    : config_(config),
      lifetime_wh_(static_cast<double>(config.lifetime_energy_wh)),
      integrated_to_(now) {
  UpdateOffer(now);
}

bool CaburWallboxSimulator::WatchdogExpired(absl::Time now) const {
  return now - last_setpoint_at_ > absl::Milliseconds(watchdog_timeout_ms_);
}

void CaburWallboxSimulator::UpdateOffer(absl::Time now) {
  Phases offer{};
  const double cap = config_.max_current_a;
  if (errors_ == 0) {
    for (int p = 0; p < phases(); ++p) {
      if (failsafe_active_) {
        offer[p] = std::min(failsafe_current_a_, cap);
      } else if (setpoint_.has_value() && !setpoint_->pause && setpoint_->phase_enabled[p]) {
        offer[p] = std::min(setpoint_->max_current_a, cap);
      }
    }
  }
  if (offer != offer_) {
    offer_ = offer;
    offer_changes_.emplace_back(now, offer);
  }
}

wb::IecState CaburWallboxSimulator::State() const {
  if (errors_ != 0) return wb::IecState::kF;
  if (!ev_.has_value()) return wb::IecState::kA;
  if (ev_full_) return wb::IecState::kB;
  const int n = std::min(ev_->phases, phases());
  for (int p = 0; p < n; ++p) {
    if (ev_view_[p] > 0) return wb::IecState::kC;
  }
  return wb::IecState::kB;
}

CaburWallboxSimulator::Phases CaburWallboxSimulator::Draw() const {
  Phases draw{};
  if (State() != wb::IecState::kC) return draw;
  const int n = std::min(ev_->phases, phases());
  for (int p = 0; p < n; ++p) draw[p] = std::min(ev_view_[p], ev_->max_current_a);
  return draw;
}

void CaburWallboxSimulator::Integrate(absl::Time from, absl::Time to) {
  if (to <= from) return;
  const Phases draw = Draw();
  double power_w = 0;
  for (double a : draw) power_w += a * config_.voltage_v;
  if (power_w <= 0) return;
  double energy_wh = power_w * absl::ToDoubleHours(to - from);
  const double remaining = ev_->energy_to_full_wh - session_wh_;
  if (energy_wh >= remaining) {
    energy_wh = std::max(remaining, 0.0);
    ev_full_ = true;  // the vehicle stops asking: C -> B
  }
  session_wh_ += energy_wh;
  lifetime_wh_ += energy_wh;
}

void CaburWallboxSimulator::Advance(absl::Time now) {
  now = std::max(now, integrated_to_);
  while (!offer_changes_.empty() && offer_changes_.front().first + config_.ev_lag <= now) {
    const absl::Time seen_at =
        std::max(offer_changes_.front().first + config_.ev_lag, integrated_to_);
    Integrate(integrated_to_, seen_at);
    integrated_to_ = seen_at;
    ev_view_ = offer_changes_.front().second;
    offer_changes_.pop_front();
  }
  Integrate(integrated_to_, now);
  integrated_to_ = now;
}

wb::Status CaburWallboxSimulator::StatusMessage() const {
  wb::Status s;
  s.address = config_.address;
  s.state = State();
  s.relay_closed = s.state == wb::IecState::kC;
  s.failsafe_active = failsafe_active_;
  s.paused = !failsafe_active_ && setpoint_.has_value() && setpoint_->pause;
  s.watchdog_configured = watchdog_configured_;
  s.applied_sequence = setpoint_.has_value() ? setpoint_->sequence : 0;
  s.errors = errors_;
  s.current_a = Draw();
  return s;
}

std::vector<CanFrame> CaburWallboxSimulator::MaybeStatus(absl::Time now, bool due) {
  wb::Status s = StatusMessage();
  const bool changed =
      !last_reported_.has_value() || s.state != last_reported_->state ||
      s.relay_closed != last_reported_->relay_closed ||
      s.failsafe_active != last_reported_->failsafe_active || s.paused != last_reported_->paused ||
      s.watchdog_configured != last_reported_->watchdog_configured ||
      s.errors != last_reported_->errors || s.applied_sequence != last_reported_->applied_sequence;
  std::vector<CanFrame> out;
  if (!due && !(changed && now - last_status_ >= kMinStatusGap)) return out;
  status_counter_ = (status_counter_ + 1) % 16;
  s.counter = status_counter_;
  Append(out, wb::Encode(s));
  last_reported_ = s;
  last_status_ = now;
  if (due) next_status_ = NextDue(next_status_, kStatusPeriod, now);
  return out;
}

std::vector<CanFrame> CaburWallboxSimulator::OnFrame(const CanFrame& frame, absl::Time now) {
  absl::StatusOr<wb::Message> message = wb::Decode(frame);
  if (!message.ok()) {
    const uint32_t type = frame.id >> 6;
    const bool for_me =
        !frame.extended && (type == 1 || ((type == 2 || type == 3) &&
                                          static_cast<int>(frame.id & 0x3F) == config_.address));
    if (message.status().code() != absl::StatusCode::kNotFound && for_me) {
      ++frames_rejected_;
      kLog.Warning("wallbox %d ignores a bad frame: %s", config_.address,
                   std::string(message.status().message()).c_str());
    }
    return {};
  }
  if (auto* broadcast = std::get_if<wb::AvailableCurrent>(&*message)) {
    broadcast_ = *broadcast;
    return {};
  }
  if (wb::AddressOf(*message) != config_.address) return {};
  if (auto* setpoint = std::get_if<wb::Setpoint>(&*message)) {
    Advance(now);
    setpoint_ = *setpoint;
    last_setpoint_at_ = now;
    failsafe_active_ = false;
    UpdateOffer(now);
    return MaybeStatus(now, false);
  }
  if (auto* config = std::get_if<wb::WatchdogConfig>(&*message)) {
    Advance(now);
    watchdog_timeout_ms_ = config->timeout_ms;
    failsafe_current_a_ = config->failsafe_current_a;
    watchdog_configured_ = true;
    UpdateOffer(now);
    return MaybeStatus(now, false);
  }
  return {};  // another wallbox's report on the same address: not ours to act on
}

std::vector<CanFrame> CaburWallboxSimulator::Tick(absl::Time now) {
  Advance(now);
  if (!failsafe_active_ && WatchdogExpired(now)) {
    failsafe_active_ = true;
    kLog.Info("wallbox %d: no setpoint for %d ms, failsafe %.1f A", config_.address,
              watchdog_timeout_ms_, failsafe_current_a_);
    UpdateOffer(now);
  }
  std::vector<CanFrame> out = std::move(queued_);
  queued_.clear();
  if (now >= next_identity_) {
    wb::Identity id;
    id.info.address = config_.address;
    id.info.model = config_.model;
    id.info.firmware = config_.firmware;
    id.info.max_current_a = config_.max_current_a;
    id.info.tethered_cable = config_.tethered_cable;
    id.serial = config_.serial;
    absl::StatusOr<std::vector<CanFrame>> frames = wb::EncodeIdentity(id);
    if (frames.ok()) out.insert(out.end(), frames->begin(), frames->end());
    next_identity_ = NextDue(next_identity_, kIdentityPeriod, now);
  }
  for (const CanFrame& f : MaybeStatus(now, now >= next_status_)) out.push_back(f);
  if (now >= next_measurement_) {
    const Phases draw = Draw();
    wb::Measurements m;
    m.address = config_.address;
    double power_w = 0;
    for (int p = 0; p < phases(); ++p) {
      m.voltage_v[p] = config_.voltage_v;
      power_w += config_.voltage_v * draw[p];
    }
    m.active_power_w = static_cast<int>(std::lround(power_w));
    Append(out, wb::Encode(m));
    wb::Energy e;
    e.address = config_.address;
    e.session_energy_wh = static_cast<int64_t>(session_wh_);
    e.lifetime_energy_wh = static_cast<int64_t>(lifetime_wh_);
    e.relay_temperature_c = config_.relay_temperature_c;
    e.ambient_temperature_c = config_.ambient_temperature_c;
    Append(out, wb::Encode(e));
    next_measurement_ = NextDue(next_measurement_, kMeasurementPeriod, now);
  }
  return out;
}

void CaburWallboxSimulator::PlugIn(const EvParams& ev, absl::Time now) {
  Advance(now);
  ev_ = ev;
  ev_->phases = ev.phases >= 3 ? 3 : 1;
  ev_full_ = false;
  session_wh_ = 0;
  // The new vehicle starts from nothing and sees the offer after its lag.
  ev_view_ = {};
  offer_changes_.clear();
  offer_changes_.emplace_back(now, offer_);
}

void CaburWallboxSimulator::Unplug(absl::Time now) {
  Advance(now);
  ev_.reset();
  ev_full_ = false;
  ev_view_ = {};
  offer_changes_.clear();
}

absl::Status CaburWallboxSimulator::TapCard(const std::vector<uint8_t>& uid, absl::Time now) {
  Advance(now);
  absl::StatusOr<std::vector<CanFrame>> frames =
      wb::EncodeRfidTap({config_.address, tap_sequence_, uid});
  if (!frames.ok()) return frames.status();
  tap_sequence_ = (tap_sequence_ + 1) % 8;
  queued_.insert(queued_.end(), frames->begin(), frames->end());
  return absl::OkStatus();
}

void CaburWallboxSimulator::InjectFault(wb::ErrorCode code, absl::Time now) {
  Advance(now);
  errors_ |= wb::ErrorBit(code);
  // The relay opens at once; the vehicle sees state F and stops.
  ev_view_ = {};
  offer_changes_.clear();
  UpdateOffer(now);
}

void CaburWallboxSimulator::ClearFault(wb::ErrorCode code, absl::Time now) {
  Advance(now);
  errors_ &= static_cast<uint16_t>(~wb::ErrorBit(code));
  UpdateOffer(now);
}

std::array<double, 3> CaburWallboxSimulator::CurrentDraw(absl::Time now) {
  Advance(now);
  return Draw();
}

CaburWallboxSnapshot CaburWallboxSimulator::Snapshot(absl::Time now) {
  Advance(now);
  CaburWallboxSnapshot s;
  const wb::Status status = StatusMessage();
  s.state = status.state;
  s.plugged = ev_.has_value();
  s.relay_closed = status.relay_closed;
  s.failsafe_active = failsafe_active_;
  s.paused = status.paused;
  s.watchdog_configured = watchdog_configured_;
  s.offered_current_a = offer_;
  s.current_a = Draw();
  s.session_energy_wh = session_wh_;
  s.lifetime_energy_wh = lifetime_wh_;
  s.errors = errors_;
  s.applied_sequence = status.applied_sequence;
  s.watchdog_timeout_ms = watchdog_timeout_ms_;
  s.failsafe_current_a = failsafe_current_a_;
  s.frames_rejected = frames_rejected_;
  return s;
}

// ---- the host -----------------------------------------------------------------

CanWallboxSimHost::CanWallboxSimHost(can::CanBus& bus, const Clock& clock, absl::Duration tick)
    : bus_(bus), clock_(clock), tick_(tick) {}

CanWallboxSimHost::~CanWallboxSimHost() { Stop(); }

absl::Status CanWallboxSimHost::AddWallbox(const CaburWallboxConfig& config) {
  if (config.address < wb::kMinAddress || config.address > wb::kMaxAddress) {
    return absl::InvalidArgumentError(
        absl::StrFormat("wallbox address %d is outside 1..63", config.address));
  }
  if (config.max_current_a < 6 || config.max_current_a > 32) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "wallbox %d: max current %d A is outside 6..32 A", config.address, config.max_current_a));
  }
  if (!(config.voltage_v >= 0 && config.voltage_v <= 500)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "wallbox %d: voltage %g V is outside 0..500 V", config.address, config.voltage_v));
  }
  wb::Identity probe;
  probe.info.address = config.address;
  probe.info.model = config.model;
  probe.info.firmware = config.firmware;
  probe.info.max_current_a = config.max_current_a;
  probe.serial = config.serial;
  if (absl::StatusOr<std::vector<CanFrame>> id = wb::EncodeIdentity(probe); !id.ok()) {
    return id.status();
  }
  absl::MutexLock lock(&mu_);
  if (sims_.count(config.address) > 0) {
    return absl::AlreadyExistsError(
        absl::StrFormat("two wallboxes with CAN address %d (ERR CAN ADDR)", config.address));
  }
  sims_[config.address] = std::make_unique<CaburWallboxSimulator>(config, clock_.Now());
  return absl::OkStatus();
}

absl::Status CanWallboxSimHost::Start() {
  if (thread_.joinable()) return absl::FailedPreconditionError("already started");
  if (open_) return absl::FailedPreconditionError("already open without a thread");
  if (absl::Status s = bus_.Open(); !s.ok()) return s;
  open_ = true;
  stop_ = false;
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

absl::Status CanWallboxSimHost::Open() {
  if (open_) return absl::FailedPreconditionError("already open");
  if (absl::Status s = bus_.Open(); !s.ok()) return s;
  open_ = true;
  return absl::OkStatus();
}

absl::StatusOr<int> CanWallboxSimHost::Step() {
  if (!open_) return absl::FailedPreconditionError("Step() before Open()");
  if (thread_.joinable()) return absl::FailedPreconditionError("Step() while the thread runs");
  // A bus that is down reports so on every Receive(): it ends the step like
  // an empty queue does.
  int events = 0;
  for (can::BusEventKind kind = RunOnce(absl::ZeroDuration()); kind != can::BusEventKind::kTimeout;
       kind = RunOnce(absl::ZeroDuration())) {
    ++events;
    if (kind == can::BusEventKind::kInterfaceDown) break;
  }
  return events;
}

void CanWallboxSimHost::Stop() {
  if (!open_) return;
  if (thread_.joinable()) {
    stop_ = true;
    thread_.join();
  }
  bus_.Close();
  open_ = false;
}

void CanWallboxSimHost::SendAll(const std::vector<CanFrame>& frames) {
  for (const CanFrame& f : frames) {
    if (absl::Status s = bus_.Send(f); !s.ok()) {
      if (send_errors_++ % 100 == 0) {
        kLog.Warning("%s: cannot send: %s", bus_.Describe().c_str(),
                     std::string(s.message()).c_str());
      }
    }
  }
}

void CanWallboxSimHost::Run() {
  while (!stop_) RunOnce(tick_);
}

can::BusEventKind CanWallboxSimHost::RunOnce(absl::Duration wait) {
  const can::BusEvent event = bus_.Receive(wait);
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_.Now();
  for (auto& [address, sim] : sims_) {
    const bool on_bus = cut_off_.count(address) == 0;
    if (on_bus && event.kind == can::BusEventKind::kFrame && event.frame.has_value()) {
      SendAll(sim->OnFrame(*event.frame, now));
    }
    std::vector<can::CanFrame> frames = sim->Tick(now);
    if (on_bus) SendAll(frames);
  }
  return event.kind;
}

namespace {
absl::Status Unknown(int address) {
  return absl::NotFoundError(absl::StrFormat("no simulated wallbox with address %d", address));
}
}  // namespace

absl::Status CanWallboxSimHost::PlugIn(int address, const EvParams& ev) {
  absl::MutexLock lock(&mu_);
  auto it = sims_.find(address);
  if (it == sims_.end()) return Unknown(address);
  it->second->PlugIn(ev, clock_.Now());
  return absl::OkStatus();
}

absl::Status CanWallboxSimHost::Unplug(int address) {
  absl::MutexLock lock(&mu_);
  auto it = sims_.find(address);
  if (it == sims_.end()) return Unknown(address);
  it->second->Unplug(clock_.Now());
  return absl::OkStatus();
}

absl::Status CanWallboxSimHost::TapCard(int address, const std::vector<uint8_t>& uid) {
  absl::MutexLock lock(&mu_);
  auto it = sims_.find(address);
  if (it == sims_.end()) return Unknown(address);
  return it->second->TapCard(uid, clock_.Now());
}

absl::Status CanWallboxSimHost::InjectFault(int address, wb::ErrorCode code) {
  absl::MutexLock lock(&mu_);
  auto it = sims_.find(address);
  if (it == sims_.end()) return Unknown(address);
  it->second->InjectFault(code, clock_.Now());
  return absl::OkStatus();
}

absl::Status CanWallboxSimHost::ClearFault(int address, wb::ErrorCode code) {
  absl::MutexLock lock(&mu_);
  auto it = sims_.find(address);
  if (it == sims_.end()) return Unknown(address);
  it->second->ClearFault(code, clock_.Now());
  return absl::OkStatus();
}

absl::Status CanWallboxSimHost::SetResponding(int address, bool responding) {
  absl::MutexLock lock(&mu_);
  if (sims_.count(address) == 0) return Unknown(address);
  if (responding) {
    cut_off_.erase(address);
  } else {
    cut_off_.insert(address);
  }
  return absl::OkStatus();
}

bool CanWallboxSimHost::Responding(int address) {
  absl::MutexLock lock(&mu_);
  return sims_.count(address) > 0 && cut_off_.count(address) == 0;
}

std::array<double, 3> CanWallboxSimHost::CurrentDraw(int address) {
  absl::MutexLock lock(&mu_);
  auto it = sims_.find(address);
  if (it == sims_.end()) return {};
  return it->second->CurrentDraw(clock_.Now());
}

std::optional<CaburWallboxSnapshot> CanWallboxSimHost::Snapshot(int address) {
  absl::MutexLock lock(&mu_);
  auto it = sims_.find(address);
  if (it == sims_.end()) return std::nullopt;
  return it->second->Snapshot(clock_.Now());
}

std::vector<int> CanWallboxSimHost::addresses() {
  absl::MutexLock lock(&mu_);
  std::vector<int> out;
  for (const auto& [address, sim] : sims_) out.push_back(address);
  return out;
}

int64_t CanWallboxSimHost::send_errors() const {
  absl::MutexLock lock(&mu_);
  return send_errors_;
}

}  // namespace evgate::sim

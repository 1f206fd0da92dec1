#include "services/load_balancer/control_loop.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <future>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/util/time_util.h"
#include "runtime/log.h"
#include "services/load_balancer/proto_conversions.h"
#include "services/load_balancer/setpoint_values.h"
#include "site_controller/config/api_conversions.h"

namespace evgate::load_balancer {
namespace {

using ::google::protobuf::util::TimeUtil;

log::Logger kLog("load_balancer");

// Longest real-time wait of the loop thread, so that a FakeClock in tests
// and a clock step in production are noticed promptly.
constexpr absl::Duration kMaxWait = absl::Milliseconds(20);
// An EVSE measurement older than this at a meter sample is not trusted.
constexpr absl::Duration kMaxMeasurementAge = absl::Seconds(3);
// EVSE measurements kept for aligning with the grid meter: at 5 Hz, 10 s.
constexpr size_t kMeasurementHistory = 50;
// Why an OCPP charger no driver reports is not commanded. It is not held at
// its maximum like an EVSE a driver has not reported yet: no evgate ever
// commanded it, so no setpoint of ours can be in force on it, and holding
// its maximum would block its circuit for good. What it draws is building
// load to the meters above it.
constexpr char kNoOcppDriver[] =
    "no driver reports this OCPP charger (no OCPP bridge in reach); the meters see its draw as "
    "building load";
// The same for an OCPP charger the bridge reports but that has not been
// online since this load balancer started: it holds no setpoint of ours.
// Once one of its setpoints was accepted, a stale charger is counted at its
// worst case like any other EVSE (it may still run that setpoint).
constexpr char kOcppNeverOnline[] =
    "this OCPP charger has not been online since the load balancer started, so no setpoint of "
    "ours is in force on it; the meters see its draw as building load";

// A vehicle is connected and may take energy.
bool VehicleConnected(const v1::EvseState& evse) {
  switch (evse.connector_status()) {
    case v1::CONNECTOR_STATUS_PREPARING:
    case v1::CONNECTOR_STATUS_CHARGING:
    case v1::CONNECTOR_STATUS_SUSPENDED_EV:
    case v1::CONNECTOR_STATUS_SUSPENDED_EVSE:
      return true;
    case v1::CONNECTOR_STATUS_UNSPECIFIED:
      break;
    default:
      return false;
  }
  switch (evse.iec61851_state()) {
    case v1::IEC61851_STATE_B:
    case v1::IEC61851_STATE_C:
    case v1::IEC61851_STATE_D:
      return true;
    default:
      return false;
  }
}

}  // namespace

ControlLoopOptions ControlLoopOptionsFromConfig(const site::ControllerConfig& controller) {
  ControlLoopOptions options;
  options.tick = absl::Milliseconds(controller.tick_ms);
  options.setpoint_ttl = control::SetpointTtl(controller);
  options.apply_deadline = (options.setpoint_ttl - options.tick) / 2;
  return options;
}

absl::StatusOr<std::unique_ptr<ControlLoop>> ControlLoop::Create(
    const site::SiteConfig& config, std::vector<std::unique_ptr<DeviceLink>> links,
    std::unique_ptr<SessionLink> sessions, const Clock& clock, ControlLoopOptions options) {
  if (options.setpoint_ttl <= options.tick) {
    return absl::InvalidArgumentError("the setpoint TTL must be longer than the tick");
  }
  if (options.apply_deadline <= absl::ZeroDuration()) {
    options.apply_deadline = (options.setpoint_ttl - options.tick) / 2;
  }
  absl::StatusOr<control::ControlPolicy> policy = control::ControlPolicy::FromConfig(config);
  if (!policy.ok()) return policy.status();
  return std::unique_ptr<ControlLoop>(new ControlLoop(config, std::move(links), std::move(sessions),
                                                      clock, std::move(options),
                                                      *std::move(policy)));
}

ControlLoop::ControlLoop(const site::SiteConfig& config,
                         std::vector<std::unique_ptr<DeviceLink>> links,
                         std::unique_ptr<SessionLink> sessions, const Clock& clock,
                         ControlLoopOptions options, control::ControlPolicy policy)
    : config_(config),
      links_(std::move(links)),
      sessions_(std::move(sessions)),
      clock_(clock),
      options_(std::move(options)),
      policy_(std::move(policy)),
      link_ready_(links_.size(), false),
      link_failing_(links_.size(), false),
      retrying_(links_.size(), false),
      retries_(links_.size()),
      next_sequence_(links_.size(), 0) {
  if (config_.grid.meter) devices_[*config_.grid.meter].meter_node = site::kGridCircuitId;
  for (const site::CircuitConfig& circuit : config_.circuits) {
    if (circuit.meter) devices_[*circuit.meter].meter_node = circuit.id;
  }
  for (const site::StationConfig& station : config_.stations) {
    for (const site::EvseConfig& evse : station.evses) {
      devices_[station.device].evses.push_back(evse.id);
      std::vector<site::Phase> phases = evse.phases;
      if (phases.empty()) {
        const site::CircuitConfig* circuit = config_.FindCircuit(station.circuit);
        phases = circuit != nullptr ? circuit->phases : config_.grid.phases;
      }
      evse_routes_[evse.id] = EvseRoute{&evse, std::nullopt, station.device, std::move(phases)};
      working_.evses[evse.id];
    }
  }
  // Until a driver reports an EVSE it may be at anything a previous instance
  // of the load balancer (or another controller) left: at most its maximum,
  // from now until TTL + device watchdog have passed.
  const Stamp now = Now();
  std::vector<control::EvseUpdate> updates;
  for (auto& [evse_id, route] : evse_routes_) {
    const site::DeviceConfig* device = config_.FindDevice(route.device);
    route.ocpp = device != nullptr && device->profile != nullptr &&
                 device->profile->bus == site::BusKind::kOcpp;
    if (route.ocpp) {
      working_.evses[evse_id].not_commandable = kNoOcppDriver;
      continue;
    }
    v1::SetpointValue most;
    if (route.config->ac) {
      for (site::Phase phase : route.config->phases) {
        SetPhase(most.mutable_current_limit_a(), static_cast<int>(phase),
                 route.config->ac->max_current_a);
      }
    } else {
      most.set_power_limit_w(route.config->dc->max_power_w);
    }
    commands_[evse_id].accepted = Accepted(most, now.mono);
    commands_[evse_id].pushed = NotCommandable(evse_id);
    working_.evses[evse_id].not_commandable = commands_[evse_id].pushed;
    updates.push_back(UpdateOf(evse_id, evse_live_[evse_id], now.mono));
  }
  Apply([&] { return policy_.OnSamples({}, updates, now.mono); });
  // Before the first decision: in failsafe until the grid meter's first
  // sample; a site without a grid meter is never in failsafe for it.
  working_.failsafe = config_.grid.meter.has_value();
  if (config_.grid.meter) {
    working_.failsafe_reason = "no sample from grid meter '" + *config_.grid.meter + "' yet";
  }
  snapshot_ = working_;
}

ControlLoop::~ControlLoop() { Stop(); }

void ControlLoop::Start() {
  for (size_t i = 0; i < links_.size(); ++i) {
    links_[i]->Start(
        [this, i](const v1::WatchDevicesResponse& event) {
          Input input;
          input.kind = Input::Kind::kEvent;
          input.link = i;
          input.event = event;
          Post(std::move(input));
        },
        [this, i](const absl::Status&) {
          Input input;
          input.kind = Input::Kind::kLinkDown;
          input.link = i;
          Post(std::move(input));
        });
  }
  if (sessions_ != nullptr) {
    sessions_->Start(
        [this](const v1::WatchSessionsResponse& event) {
          Input input;
          input.kind = Input::Kind::kSession;
          input.session = event;
          Post(std::move(input));
        },
        [this](const absl::Status&) {
          // The last known authorizations stay in force until the new
          // stream's snapshot replaces them; a half-received snapshot of the
          // lost stream is dropped (StreamFollower logs the loss).
          Input input;
          input.kind = Input::Kind::kSession;
          input.session.set_event(v1::SESSION_EVENT_TYPE_UNSPECIFIED);
          Post(std::move(input));
        });
  }
  if (!options_.stepped) thread_ = std::thread([this] { Run(); });
}

void ControlLoop::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stop_) return;
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
  for (std::thread& retry : retries_) {
    if (retry.joinable()) retry.join();
  }
  for (const auto& link : links_) link->Stop();
  if (sessions_ != nullptr) sessions_->Stop();
}

absl::Time ControlLoop::ToWall(absl::Time mono) const {
  const Stamp now = Now();
  return now.wall - (now.mono - mono);
}

absl::Time ControlLoop::MonoOf(absl::Time wall, Stamp now) {
  if (wall == absl::InfiniteFuture() || wall == absl::InfinitePast()) return wall;
  return now.mono + (wall - now.wall);
}

absl::Time ControlLoop::ToMono(const google::protobuf::Timestamp& measured_at, Stamp received) {
  const absl::Duration age = received.wall - api::FromProto(measured_at);
  return received.mono - std::max(age, absl::ZeroDuration());
}

void ControlLoop::Post(Input input) {
  input.received = Now();
  absl::MutexLock lock(&mu_);
  inputs_.push_back(std::move(input));
}

void ControlLoop::Run() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      const absl::Duration wait =
          std::clamp(next_tick_ - clock_.MonotonicNow(), absl::ZeroDuration(), kMaxWait);
      mu_.AwaitWithTimeout(absl::Condition(
                               +[](ControlLoop* loop) ABSL_EXCLUSIVE_LOCKS_REQUIRED(loop->mu_) {
                                 return loop->stop_ || !loop->inputs_.empty();
                               },
                               this),
                           wait);
      if (stop_) return;
    }
    Step();
  }
}

void ControlLoop::Step() {
  std::deque<Input> inputs;
  {
    absl::MutexLock lock(&mu_);
    inputs.swap(inputs_);
  }
  std::optional<v1::AllocationTrigger> trigger;
  for (const Input& input : inputs) {
    std::optional<v1::AllocationTrigger> t = Handle(input);
    // A meter sample outranks a device event as the reason we report.
    if (t && (!trigger || *t == v1::ALLOCATION_TRIGGER_METER_SAMPLE)) trigger = t;
  }
  const absl::Time now = clock_.MonotonicNow();
  if (PushCommandability(now) && !trigger) trigger = v1::ALLOCATION_TRIGGER_DEVICE_EVENT;
  bool ticked = false;
  if (now >= next_tick_) {
    ticked = true;
    Apply([&] { return policy_.OnTick(now); });
    if (!trigger) trigger = v1::ALLOCATION_TRIGGER_TICK;
    next_tick_ = now + options_.tick;
  }
  if (!trigger) return;
  bool changed = Dispatch(/*refresh=*/ticked);
  // A failed or refused batch changes who can be commanded: the others are
  // re-shared at once, not at the next input.
  if (PushCommandability(clock_.MonotonicNow())) changed |= Dispatch(/*refresh=*/false);
  const absl::Time dispatched_at = clock_.MonotonicNow();
  std::optional<absl::Time> sample_at;
  if (*trigger == v1::ALLOCATION_TRIGGER_METER_SAMPLE) sample_at = pending_sample_at_;
  pending_sample_at_.reset();
  if (changed && sample_at) {
    absl::MutexLock lock(&mu_);
    reactions_.push_back(dispatched_at - *sample_at);
    if (reactions_.size() > options_.reaction_history) reactions_.pop_front();
  }
  Publish(*trigger, changed ? sample_at : std::nullopt, dispatched_at);
}

std::optional<v1::AllocationTrigger> ControlLoop::Handle(const Input& input) {
  const Stamp now = input.received;
  switch (input.kind) {
    case Input::Kind::kCall:
      input.call();
      return input.call_trigger;
    case Input::Kind::kLinkDown:
      HandleLinkDown(input.link, now);
      return v1::ALLOCATION_TRIGGER_DEVICE_EVENT;
    case Input::Kind::kSession:
      HandleSession(input.session, now);
      return v1::ALLOCATION_TRIGGER_SESSION_EVENT;
    case Input::Kind::kEvent:
      break;
  }
  const v1::WatchDevicesResponse& event = input.event;
  switch (event.event_case()) {
    case v1::WatchDevicesResponse::kSnapshot:
      HandleDevice(input.link, event.snapshot(), now);
      return v1::ALLOCATION_TRIGGER_DEVICE_EVENT;
    case v1::WatchDevicesResponse::kEvseStateChange:
      HandleEvse(input.link, event.device_id(), event.evse_state_change().state(), now);
      return v1::ALLOCATION_TRIGGER_DEVICE_EVENT;
    case v1::WatchDevicesResponse::kTelemetry: {
      const v1::Telemetry& telemetry = event.telemetry();
      std::optional<v1::AllocationTrigger> trigger;
      for (const v1::EvseTelemetry& evse : telemetry.evses()) {
        HandleEvseMeasurements(evse.evse_id(), evse.measurements(), now);
        trigger = v1::ALLOCATION_TRIGGER_DEVICE_EVENT;
      }
      if (telemetry.has_meter()) {
        auto route = devices_.find(event.device_id());
        if (route != devices_.end() && route->second.meter_node &&
            HandleMeter(event.device_id(), telemetry.meter(), now)) {
          trigger = v1::ALLOCATION_TRIGGER_METER_SAMPLE;
        }
      }
      return trigger;
    }
    case v1::WatchDevicesResponse::kInitialSnapshotComplete:
      link_ready_[input.link] = true;
      link_failing_[input.link] = false;
      RecheckLink(input.link);
      return v1::ALLOCATION_TRIGGER_DEVICE_EVENT;
    case v1::WatchDevicesResponse::kLinkStateChange:
      SetStale(event.device_id(), event.link_state_change().link().stale(), now);
      return v1::ALLOCATION_TRIGGER_DEVICE_EVENT;
    default:
      return std::nullopt;  // RFID taps, faults (also seen as state changes), off-grid box
  }
}

void ControlLoop::HandleDevice(size_t link, const v1::DeviceState& device, Stamp now) {
  for (const v1::EvseState& evse : device.evses()) {
    HandleEvse(link, device.device_id(), evse, now);
  }
  if (device.has_meter() && !device.link().stale() && device.meter().has_measured_at()) {
    auto route = devices_.find(device.device_id());
    if (route != devices_.end() && route->second.meter_node) {
      HandleMeter(device.device_id(), device.meter(), now);
    }
  }
  SetStale(device.device_id(), device.link().stale(), now);
}

void ControlLoop::HandleEvse(size_t link, const std::string& device, const v1::EvseState& evse,
                             Stamp now) {
  auto route = evse_routes_.find(evse.evse_id());
  if (route == evse_routes_.end() || route->second.device != device) {
    kLog.Warning(
        "driver %s reports EVSE '%s' of device '%s', which site.yaml does not have there; "
        "ignored",
        links_[link]->name(), evse.evse_id(), device);
    return;
  }
  if (route->second.link != link) recheck_.insert(evse.evse_id());
  route->second.link = link;
  evse_live_[evse.evse_id()].connected = VehicleConnected(evse);
  LoopSnapshot::Evse& shown = working_.evses[evse.evse_id()];
  shown.seen = true;
  shown.connector_status = evse.connector_status();
  if (evse.has_measurements()) {
    HandleEvseMeasurements(evse.evse_id(), evse.measurements(), now);
  } else {
    PushEvse(evse.evse_id(), now.mono);
  }
}

bool ControlLoop::IsActive(const std::string& evse_id, const EvseLive& live) const {
  return live.connected && (sessions_ == nullptr || authorized_.count(evse_id) > 0);
}

bool ControlLoop::OcppNeverOnline(const std::string& evse_id) const {
  const EvseRoute& route = evse_routes_.at(evse_id);
  if (!route.ocpp || !route.link) return false;
  auto command = commands_.find(evse_id);
  if (command != commands_.end() && command->second.accepted) return false;
  return !link_ready_[*route.link] || stale_devices_.count(route.device) > 0;
}

std::string ControlLoop::NotCommandable(const std::string& evse_id) const {
  const EvseRoute& route = evse_routes_.at(evse_id);
  if (!route.link && route.ocpp) return "";  // building load, see kNoOcppDriver
  if (OcppNeverOnline(evse_id)) return "";   // building load, see kOcppNeverOnline
  if (!route.link) return "no driver has reported it";
  if (!link_ready_[*route.link]) {
    return absl::StrCat("its driver ", links_[*route.link]->name(), " is not connected");
  }
  if (stale_devices_.count(route.device) > 0) {
    return absl::StrCat("device ", route.device, " is not answering (link stale)");
  }
  auto command = commands_.find(evse_id);
  if (command != commands_.end() && !command->second.failed.empty()) return command->second.failed;
  return "";
}

control::EvseUpdate ControlLoop::UpdateOf(const std::string& evse_id, const EvseLive& live,
                                          absl::Time now) {
  const EvseCommand& command = commands_[evse_id];
  control::EvseUpdate update;
  update.evse = evse_id;
  update.at = now;
  update.active = IsActive(evse_id, live);
  update.measured_a = live.measured_a;
  update.measured_w = live.measured_w;
  update.commandable = command.pushed.empty();  // PushCommandability keeps it current
  update.last_accepted = command.accepted;
  return update;
}

void ControlLoop::PushEvse(const std::string& evse_id, absl::Time now,
                           std::optional<double> soc_pct, std::optional<double> session_energy_wh) {
  control::EvseUpdate update = UpdateOf(evse_id, evse_live_[evse_id], now);
  working_.evses[evse_id].active = update.active;
  update.soc_pct = soc_pct;
  update.session_energy_wh = session_energy_wh;
  Apply([&] { return policy_.OnEvseUpdate(update); });
}

bool ControlLoop::PushCommandability(absl::Time now) {
  std::vector<control::EvseUpdate> updates;
  std::set<std::string> recheck;
  recheck.swap(recheck_);
  for (const std::string& evse_id : recheck) {
    const EvseRoute& route = evse_routes_.at(evse_id);
    EvseCommand& command = commands_[evse_id];
    const std::string why = NotCommandable(evse_id);
    // What the operator sees: why it cannot be commanded, or why it is not
    // commanded and counted as building load.
    std::string shown = why;
    if (why.empty() && route.ocpp && !route.link) {
      shown = kNoOcppDriver;
    } else if (why.empty() && OcppNeverOnline(evse_id)) {
      shown = kOcppNeverOnline;
    }
    if (why == command.pushed && shown == command.shown) continue;
    if (!why.empty()) {
      kLog.Warning("EVSE %s cannot be commanded: %s; counted at its worst case", evse_id, why);
    } else if (!shown.empty()) {
      kLog.Info("EVSE %s is not commanded: %s", evse_id, shown);
    } else {
      kLog.Info("EVSE %s is under control again", evse_id);
    }
    command.pushed = why;
    command.shown = shown;
    working_.evses[evse_id].not_commandable = shown;
    updates.push_back(UpdateOf(evse_id, evse_live_[evse_id], now));
  }
  if (updates.empty()) return false;
  Apply([&] { return policy_.OnSamples({}, updates, now); });
  return true;
}

void ControlLoop::HandleSession(const v1::WatchSessionsResponse& event, Stamp now) {
  const v1::Session& session = event.session();
  const bool authorized = session.energy_authorized() && !session.has_end_time() &&
                          event.event() != v1::SESSION_EVENT_TYPE_ENDED;
  std::set<std::string> before = authorized_;
  switch (event.event()) {
    case v1::SESSION_EVENT_TYPE_UNSPECIFIED:  // the stream was lost
      resyncing_.reset();
      return;
    case v1::SESSION_EVENT_TYPE_SNAPSHOT:
      if (!resyncing_) resyncing_.emplace();
      if (authorized) resyncing_->insert(session.evse_id());
      return;  // applied as a whole at SNAPSHOT_COMPLETE
    case v1::SESSION_EVENT_TYPE_SNAPSHOT_COMPLETE:
      authorized_ = resyncing_.value_or(std::set<std::string>());
      resyncing_.reset();
      break;
    case v1::SESSION_EVENT_TYPE_STARTED:
    case v1::SESSION_EVENT_TYPE_UPDATED:
    case v1::SESSION_EVENT_TYPE_ENDED:
      if (authorized) {
        authorized_.insert(session.evse_id());
      } else {
        authorized_.erase(session.evse_id());
      }
      break;
    default:
      return;
  }
  for (const auto& [evse_id, route] : evse_routes_) {
    if (before.count(evse_id) != authorized_.count(evse_id)) PushEvse(evse_id, now.mono);
  }
}

void ControlLoop::HandleEvseMeasurements(const std::string& evse_id, const v1::EvseMeasurements& m,
                                         Stamp now) {
  auto route = evse_routes_.find(evse_id);
  if (route == evse_routes_.end()) return;
  const site::EvseConfig& evse = *route->second.config;
  EvseLive& live = evse_live_[evse_id];
  LoopSnapshot::Evse& shown = working_.evses[evse_id];
  shown.measured_a = m.current_a();
  shown.measured_power_w.reset();
  if (m.has_power_w()) shown.measured_power_w = m.power_w();
  // Without its time a measurement cannot be matched with a meter sample:
  // not used (the EVSE counts at its setpoint), its SoC and energy still are.
  Measured measured;
  measured.at = m.has_measured_at() ? ToMono(m.measured_at(), now) : now.mono;
  if (!m.has_measured_at()) {
    // Nothing to store: the EVSE is unmeasured from here on.
  } else if (evse.ac) {
    std::vector<double> currents;
    for (site::Phase phase : evse.phases) {
      std::optional<double> value = GetPhase(m.current_a(), static_cast<int>(phase));
      if (!value || !std::isfinite(*value)) break;  // unknown: counted at its setpoint
      currents.push_back(*value);
    }
    if (currents.size() == evse.phases.size()) measured.a = std::move(currents);
  } else if (m.has_power_w() && std::isfinite(m.power_w())) {
    measured.w = m.power_w();
  }
  if (config_.grid.meter) {
    // Used from the next grid meter sample on, as of that sample's time.
    live.history.push_back(std::move(measured));
    while (live.history.size() > kMeasurementHistory) live.history.pop_front();
  } else {
    live.measured_a = std::move(measured.a);
    live.measured_w = measured.w;
  }
  // A driver's nonsense (NaN, an "unknown" SoC of 255) must not reach the
  // policy: it would refuse every later computation.
  std::optional<double> soc;
  if (m.has_soc_pct() && m.soc_pct() >= 0 && m.soc_pct() <= 100) soc = m.soc_pct();
  std::optional<double> energy;
  if (m.has_session_energy_wh() && std::isfinite(m.session_energy_wh()) &&
      m.session_energy_wh() >= 0) {
    energy = m.session_energy_wh();
  }
  PushEvse(evse_id, now.mono, soc, energy);
}

bool ControlLoop::HandleMeter(const std::string& device, const v1::MeterReading& reading,
                              Stamp now) {
  const std::string& node = *devices_.at(device).meter_node;
  const std::vector<site::Phase>* phases = &config_.grid.phases;
  if (const site::CircuitConfig* circuit = config_.FindCircuit(node)) phases = &circuit->phases;
  if (reading.has_measured_at()) {
    // A driver re-sends a meter's reading when only its slow registers
    // (energy) were read: the currents are the ones already acted on, as
    // old as their measured_at. Acting on them again would decide on
    // nothing new (and count a reaction from an old moment).
    const absl::Time measured_at = api::FromProto(reading.measured_at());
    auto [last, first] = last_measured_at_.try_emplace(node, measured_at);
    if (!first && last->second == measured_at) {
      working_.meters[node] = reading;  // its other values are shown
      return false;
    }
    last->second = measured_at;
  }
  control::MeterSample sample;
  sample.node = node;
  sample.at = reading.has_measured_at() ? ToMono(reading.measured_at(), now) : now.mono;
  if (!reading.has_measured_at()) {
    sample.invalid_reason = absl::StrCat("meter ", device, " sent a reading without measured_at");
  }
  for (site::Phase phase : *phases) {
    const int p = static_cast<int>(phase);
    std::optional<double> a = GetPhase(reading.current_a(), p);
    if (!sample.invalid_reason.empty()) break;
    if (!a) {
      sample.invalid_reason = absl::StrCat("meter ", device, " has no current for phase L", p + 1);
    } else if (!std::isfinite(*a)) {
      sample.invalid_reason =
          absl::StrCat("meter ", device, " reports a non-finite current on phase L", p + 1);
    } else {
      sample.current_a[p] = *a;
    }
  }
  if (!sample.invalid_reason.empty()) {
    kLog.Warning("%s; %s is in failsafe until a valid reading", sample.invalid_reason,
                 node == site::kGridCircuitId ? "the site" : "circuit " + node);
  }
  working_.meters[node] = reading;
  if (!pending_sample_at_ || sample.at < *pending_sample_at_) pending_sample_at_ = sample.at;
  if (node != site::kGridCircuitId || !sample.invalid_reason.empty()) {
    Apply([&] { return policy_.OnMeterSample(sample); });
    return true;
  }
  working_.grid_sample_at = sample.at;
  // Every EVSE as of the meter's moment: its latest measurement taken no
  // later than the sample (none yet: it keeps what it had).
  std::vector<control::EvseUpdate> updates;
  for (auto& [evse_id, live] : evse_live_) {
    auto after = std::find_if(live.history.begin(), live.history.end(),
                              [&](const Measured& m) { return m.at > sample.at; });
    if (after == live.history.begin()) continue;
    const Measured& chosen = *std::prev(after);
    const bool recent = sample.at - chosen.at <= kMaxMeasurementAge;
    live.measured_a = recent ? chosen.a : std::nullopt;  // too old: counted at its setpoint
    live.measured_w = recent ? chosen.w : std::nullopt;
    live.history.erase(live.history.begin(), std::prev(after));  // older ones are done
    updates.push_back(UpdateOf(evse_id, live, now.mono));
  }
  Apply([&] { return policy_.OnSamples({sample}, updates, now.mono); });
  return true;
}

void ControlLoop::SetStale(const std::string& device, bool stale, Stamp now) {
  if (auto route = devices_.find(device); route != devices_.end()) {
    recheck_.insert(route->second.evses.begin(), route->second.evses.end());
  }
  if (!stale) {
    stale_devices_.erase(device);  // commandable again: PushCommandability
    return;
  }
  stale_devices_.insert(device);
  ForgetMeasurements(device, now);
}

void ControlLoop::RecheckLink(size_t link) {
  for (const auto& [evse_id, route] : evse_routes_) {
    if (route.link == link) recheck_.insert(evse_id);
  }
}

void ControlLoop::ForgetMeasurements(const std::string& device, Stamp now) {
  auto route = devices_.find(device);
  if (route == devices_.end()) return;
  for (const std::string& evse_id : route->second.evses) {
    // Measurements unknown: the engine counts the EVSE at its setpoint.
    evse_live_[evse_id].measured_a.reset();
    evse_live_[evse_id].measured_w.reset();
    evse_live_[evse_id].history.clear();
    working_.evses[evse_id].measured_a.Clear();
    working_.evses[evse_id].measured_power_w.reset();
    PushEvse(evse_id, now.mono);
  }
}

void ControlLoop::HandleLinkDown(size_t link, Stamp now) {
  // Meters of this driver age out into failsafe on their own; its EVSEs keep
  // their last state, unmeasured and not commandable, until the stream's new
  // snapshots arrive. The driver may have restarted: where its sequence
  // stands is asked again.
  link_ready_[link] = false;
  {
    absl::MutexLock lock(&sequence_mu_);
    next_sequence_[link] = 0;
  }
  RecheckLink(link);
  for (const auto& [device, route] : devices_) {
    bool ours = false;
    for (const std::string& evse : route.evses) ours |= evse_routes_.at(evse).link == link;
    if (ours) ForgetMeasurements(device, now);
  }
}

void ControlLoop::Apply(absl::FunctionRef<absl::StatusOr<control::Decision>()> decide) {
  // Timed on the process's steady clock, not the loop's injected one: this
  // is a performance figure (Allocation.compute_time), not a control input.
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<control::Decision> decision = decide();
  decision_compute_ = absl::FromChrono(std::chrono::steady_clock::now() - start);
  if (!decision.ok()) {
    // No valid decision: stop refreshing the last one, so that the drivers'
    // TTL runs out and every EVSE falls back to its failsafe.
    kLog.Error("control policy: %s; setpoints are no longer refreshed (failsafe at their TTL)",
               decision.status().ToString());
    decision_.reset();
    return;
  }
  // The previous result's memory is reused for the next one.
  if (decision_) policy_.Recycle(std::move(decision_->target));
  decision_ = *std::move(decision);
}

void ControlLoop::Publish(v1::AllocationTrigger trigger, std::optional<absl::Time> sample_at,
                          absl::Time dispatched_at) {
  if (!decision_) return;
  const control::Decision& d = *decision_;
  const absl::Time computed_at = ToWall(d.at);
  v1::Allocation allocation = ToProto(d.target);
  // Report what was dispatched (ramped), not the engine's unramped target.
  std::map<std::string, const control::Setpoint*> setpoints;
  for (const control::Setpoint& s : d.setpoints) setpoints[s.evse] = &s;
  for (v1::EvseAllocation& evse : *allocation.mutable_evses()) {
    auto it = setpoints.find(evse.evse_id());
    if (it == setpoints.end()) continue;
    const control::Setpoint& s = *it->second;
    evse.set_paused(s.paused);
    if (evse.has_current_a()) evse.set_current_a(s.paused ? 0 : s.current_a);
    if (evse.has_power_w()) evse.set_power_w(s.paused ? 0 : s.power_w);
    // The AC current it draws per site phase at that value.
    const EvseRoute& route = evse_routes_.at(evse.evse_id());
    const double per_phase_a =
        s.paused ? 0
        : route.config->ac
            ? s.current_a
            : s.power_w / (static_cast<double>(route.phases.size()) *
                           config_.grid.nominal_voltage_v * route.config->dc->efficiency);
    evse.clear_phase_current_a();
    for (site::Phase phase : route.phases) {
      SetPhase(evse.mutable_phase_current_a(), static_cast<int>(phase), per_phase_a);
    }
    LoopSnapshot::Evse& shown = working_.evses[evse.evse_id()];
    // Also for one that is commandable but not commanded (building load).
    if (!s.commandable || !shown.not_commandable.empty()) {
      evse.set_not_controlled_reason(shown.not_commandable);
    }
    if (s.grid_mode && s.paused) evse.set_pause_reason(v1::PAUSE_REASON_GRID_MODE);
    // Inactive with a vehicle connected: it waits for an authorized session.
    if (evse.pause_reason() == v1::PAUSE_REASON_NO_VEHICLE) {
      auto live = evse_live_.find(evse.evse_id());
      if (live != evse_live_.end() && live->second.connected) {
        evse.set_pause_reason(v1::PAUSE_REASON_NOT_AUTHORIZED);
      }
    }
    if (s.paused && !shown.paused_since) shown.paused_since = computed_at;
    if (!s.paused) shown.paused_since.reset();
  }
  std::sort(allocation.mutable_evses()->begin(), allocation.mutable_evses()->end(),
            [](const v1::EvseAllocation& a, const v1::EvseAllocation& b) {
              return a.evse_id() < b.evse_id();
            });
  allocation.set_failsafe(d.failsafe);
  allocation.set_trigger(trigger);
  *allocation.mutable_computed_at() = api::ToProto(computed_at);
  *allocation.mutable_compute_time() =
      TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(decision_compute_));
  if (sample_at) {
    *allocation.mutable_reaction_time() =
        TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(dispatched_at - *sample_at));
  }

  working_.failsafe_nodes.clear();
  for (const control::NodeFailsafe& node : d.failsafe_nodes) {
    working_.failsafe_nodes[node.node] = NodeFailsafeShown{node.reason, ToWall(node.since)};
  }
  working_.failsafe_since.reset();
  if (auto grid = working_.failsafe_nodes.find(site::kGridCircuitId);
      d.failsafe && grid != working_.failsafe_nodes.end()) {
    working_.failsafe_since = grid->second.since;
  } else if (d.failsafe) {
    working_.failsafe_since = computed_at;
  }
  working_.failsafe = d.failsafe;
  if (d.failsafe) working_.failsafe_reason = d.failsafe_reason;
  working_.at = ToWall(dispatched_at);
  const Stamp now = Now();
  working_.dynamic_limits.erase(
      std::remove_if(working_.dynamic_limits.begin(), working_.dynamic_limits.end(),
                     [&](const ActiveDynamicLimit& l) { return l.expires_mono <= now.mono; }),
      working_.dynamic_limits.end());
  for (auto& [id, evse] : working_.evses) {
    if (evse.priority_override && evse.priority_expires_mono <= now.mono) {
      evse.priority_override.reset();
    }
  }

  absl::MutexLock lock(&mu_);
  if (!published_ || !SameEvseValues(*published_, allocation)) {
    allocation.set_sequence(++allocation_sequence_);
    published_ = allocation;
  } else {
    allocation.set_sequence(allocation_sequence_);
  }
  working_.allocation = std::move(allocation);
  snapshot_ = working_;
}

}  // namespace evgate::load_balancer

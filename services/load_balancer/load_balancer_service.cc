#include "services/load_balancer/load_balancer_service.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "runtime/grpc_status.h"
#include "runtime/log.h"
#include "runtime/peer_channel.h"
#include "services/load_balancer/proto_conversions.h"
#include "site_controller/allocation/scenario.h"
#include "site_controller/config/api_conversions.h"

namespace evgate::load_balancer {
namespace {

using ::google::protobuf::util::TimeUtil;

log::Logger kLog("load_balancer");

constexpr char kDeviceDriverHealthName[] = "evgate.v1.DeviceDriver";
constexpr char kSessionHealthName[] = "evgate.v1.SessionService";
// How often a WatchAllocations stream checks for cancellation.
constexpr absl::Duration kWatchPoll = absl::Milliseconds(200);

// a - b per phase, over the phases present in `a`.
v1::PhaseValues Minus(const v1::PhaseValues& a, const v1::PhaseValues& b) {
  v1::PhaseValues out;
  for (int p = 0; p < allocation::kPhaseCount; ++p) {
    if (std::optional<double> x = GetPhase(a, p))
      SetPhase(&out, p, *x - GetPhase(b, p).value_or(0));
  }
  return out;
}

// The limit in force: configured minus margin, tightened by external limits.
v1::PhaseValues EffectiveLimit(const v1::PhaseValues& configured, double margin_a,
                               const std::string& node,
                               const std::vector<ActiveDynamicLimit>& limits) {
  v1::PhaseValues out;
  for (int p = 0; p < allocation::kPhaseCount; ++p) {
    std::optional<double> limit = GetPhase(configured, p);
    if (!limit) continue;
    double value = *limit;
    for (const ActiveDynamicLimit& l : limits) {
      if (l.limit.circuit_id() != node) continue;
      if (std::optional<double> d = GetPhase(l.limit.current_limit_a(), p))
        value = std::min(value, *d);
    }
    SetPhase(&out, p, value - margin_a);
  }
  return out;
}

// When an update or priority expires: absolute, from now, or never.
template <typename Request>
absl::Time ExpiryOf(const Request& request, absl::Time now) {
  if (request.has_expires_at()) return api::FromProto(request.expires_at());
  if (request.has_ttl()) return now + api::FromProto(request.ttl());
  return absl::InfiniteFuture();
}

}  // namespace

LoadBalancerService::LoadBalancerService(const site::SiteConfig& config, const Clock& clock,
                                         std::optional<Links> links)
    : config_(config), clock_(clock), links_(std::move(links)) {
  v1::GridConnectionStatus* grid = topology_.mutable_grid();
  *grid->mutable_limit_a() = PerPhase(config.grid.phases, config.grid.fuse_limit_a);
  *grid->mutable_effective_limit_a() = grid->limit_a();
  if (config.grid.contract_power_w) grid->set_contract_power_w(*config.grid.contract_power_w);
  if (config.grid.export_limit_w) grid->set_export_limit_w(*config.grid.export_limit_w);
  grid->set_nominal_voltage_v(config.grid.nominal_voltage_v);
  grid->set_meter_device_id(config.grid.meter.value_or(""));
  *grid->mutable_meter_timeout() =
      google::protobuf::util::TimeUtil::MillisecondsToDuration(config.controller.meter_timeout_ms);

  for (const site::CircuitConfig& circuit : config.circuits) {
    v1::CircuitStatus* out = topology_.add_circuits();
    out->set_circuit_id(circuit.id);
    out->set_parent_circuit_id(circuit.parent);
    *out->mutable_limit_a() = PerPhase(circuit.phases, circuit.limit_a);
    *out->mutable_effective_limit_a() = out->limit_a();
    out->set_meter_device_id(circuit.meter.value_or(""));
  }
  for (const site::StationConfig& station : config.stations) {
    v1::StationStatus* out_station = topology_.add_stations();
    out_station->set_station_id(station.id);
    out_station->set_max_power_w(station.max_power_w);
    for (const site::EvseConfig& evse : station.evses) {
      out_station->add_evse_ids(evse.id);
      for (v1::CircuitStatus& circuit : *topology_.mutable_circuits()) {
        if (circuit.circuit_id() == station.circuit) circuit.add_evse_ids(evse.id);
      }
      v1::EvseStatus* out = topology_.add_evses();
      out->set_evse_id(evse.id);
      out->set_device_id(station.device);
      out->set_circuit_id(station.circuit);
      out->set_station_id(station.id);
      out->set_kind(evse.dc ? v1::EVSE_KIND_DC : v1::EVSE_KIND_AC);
      for (site::Phase phase : evse.phases) out->add_phases(ToProto(phase));
      out->set_bidirectional(evse.dc && evse.dc->bidirectional);
      out->set_priority(evse.priority);
      out->set_connector_status(v1::CONNECTOR_STATUS_UNAVAILABLE);
    }
  }
  topology_.set_margin_a(config.controller.margin_a);
}

LoadBalancerService::~LoadBalancerService() { Stop(); }

void LoadBalancerService::OnHosted(const HostInfo& host) {
  if (links_.has_value()) return;
  links_.emplace();
  auto channel_to = [&](const std::string& service, const std::string& health_name,
                        std::string* where) -> std::shared_ptr<grpc::Channel> {
    absl::StatusOr<PeerChannel> peer = ChannelToPeer(config_, host, service, health_name);
    if (!peer.ok()) {
      links_error_ = peer.status();
      return nullptr;
    }
    *where = peer->where;
    return peer->channel;
  };
  std::string where;
  if (auto channel = channel_to("device_drivers", kDeviceDriverHealthName, &where)) {
    links_->drivers.push_back(std::make_unique<GrpcDeviceLink>(where, channel));
    kLog.Info("device drivers: %s", where);
  } else {
    kLog.Warning(
        "no device driver in this process and services.endpoints.device_drivers.endpoint is not "
        "set: the load balancer sees no meter and keeps the site in failsafe");
  }
  // A split site's OCPP bridge serves DeviceDriver for its chargers itself;
  // in one process they are devices of the drivers above.
  if (!host.Hosts("evgate.v1.OcppBridge")) {
    auto bridge = config_.services.endpoints.find("ocpp_bridge");
    if (bridge != config_.services.endpoints.end() && bridge->second.endpoint) {
      if (auto channel = channel_to("ocpp_bridge", "evgate.v1.OcppBridge", &where)) {
        links_->drivers.push_back(std::make_unique<GrpcDeviceLink>(where, channel));
        kLog.Info("OCPP chargers: DeviceDriver of the OCPP bridge at %s", where);
      }
    }
  }
  if (config_.grid_modes) {
    if (auto channel = channel_to("grid_controller", "evgate.v1.GridController", &where)) {
      links_->grid = std::make_unique<GrpcGridLink>(where, channel);
      kLog.Info(
          "grid controller: %s; no charging without the grid, the island's former "
          "discharges",
          where);
    } else {
      kLog.Warning(
          "grid_modes in site.yaml but no grid controller in this process and "
          "services.endpoints.grid_controller.endpoint is not set: the load balancer does not "
          "know when the site is off grid");
    }
  }
  if (auto channel = channel_to("session", kSessionHealthName, &where)) {
    links_->sessions = std::make_unique<GrpcSessionLink>(where, channel);
    kLog.Info("session service: %s; EVSEs draw energy only with an authorized session", where);
  } else {
    kLog.Warning(
        "no session service in this process and services.endpoints.session.endpoint is not set: "
        "every connected vehicle may charge without authorization");
  }
}

absl::Status LoadBalancerService::Start() {
  if (!links_error_.ok()) return links_error_;
  if (!links_.has_value()) links_.emplace();
  absl::StatusOr<std::unique_ptr<ControlLoop>> loop =
      ControlLoop::Create(config_, std::move(links_->drivers), std::move(links_->sessions), clock_,
                          ControlLoopOptionsFromConfig(config_.controller));
  grid_ = std::move(links_->grid);
  links_.reset();
  if (!loop.ok()) return loop.status();
  loop_ = *std::move(loop);
  loop_->Start();
  if (grid_ != nullptr) {
    grid_->Start(
        [this](const v1::WatchGridStateResponse& message) {
          control::GridModeDirective directive = DirectiveOf(message.state());
          if (last_grid_mode_ && last_grid_mode_->grid_supply == directive.grid_supply &&
              last_grid_mode_->forming_evse == directive.forming_evse &&
              last_grid_mode_->forming_discharge_limit_w == directive.forming_discharge_limit_w) {
            return;
          }
          last_grid_mode_ = directive;
          loop_->SetGridMode(std::move(directive));
        },
        [](const absl::Status& status) {
          kLog.Warning("grid controller stream lost (%s): the last grid mode stays in force",
                       status.message());
        });
  }
  return absl::OkStatus();
}

void LoadBalancerService::Stop() {
  if (grid_ != nullptr) grid_->Stop();
  if (loop_ != nullptr) loop_->Stop();
}

grpc::Status LoadBalancerService::GetSiteStatus(grpc::ServerContext*,
                                                const v1::GetSiteStatusRequest*,
                                                v1::GetSiteStatusResponse* response) {
  *response = topology_;
  const absl::Time now = clock_.Now();
  *response->mutable_at() = api::ToProto(now);
  if (loop_ == nullptr) {
    response->set_failsafe(true);
    response->set_failsafe_reason(v1::FAILSAFE_REASON_CONTROL_LOOP_STALLED);
    response->set_failsafe_detail("the control loop is not running");
    return grpc::Status::OK;
  }
  const LoopSnapshot live = loop_->Snapshot();
  const double margin = config_.controller.margin_a;

  response->set_failsafe(live.failsafe);
  if (live.failsafe) {
    response->set_failsafe_reason(live.grid_sample_at ? v1::FAILSAFE_REASON_METER_STALE
                                                      : v1::FAILSAFE_REASON_NO_METER_DATA);
    response->set_failsafe_detail(live.failsafe_reason);
    if (live.failsafe_since)
      *response->mutable_failsafe_since() = api::ToProto(*live.failsafe_since);
  }
  for (const ActiveDynamicLimit& limit : live.dynamic_limits) {
    *response->add_dynamic_limits() = limit.limit;
  }
  *response->mutable_counters() = live.counters;
  if (live.allocation) *response->mutable_allocation() = *live.allocation;

  std::map<std::string, const v1::EvseAllocation*> allocated;
  if (live.allocation) {
    for (const v1::EvseAllocation& e : live.allocation->evses()) allocated[e.evse_id()] = &e;
  }
  std::map<std::string, const v1::CircuitLoad*> loads;
  if (live.allocation) {
    for (const v1::CircuitLoad& c : live.allocation->circuits()) loads[c.circuit_id()] = &c;
  }

  // EVSEs, and their measured load per node.
  std::map<std::string, v1::PhaseValues> ev_load;  // by circuit, direct children only
  for (v1::EvseStatus& evse : *response->mutable_evses()) {
    auto it = live.evses.find(evse.evse_id());
    if (it == live.evses.end()) continue;
    const LoopSnapshot::Evse& e = it->second;
    evse.set_active(e.active);
    evse.set_connector_status(e.seen ? e.connector_status : v1::CONNECTOR_STATUS_UNSPECIFIED);
    *evse.mutable_measured_a() = e.measured_a;
    if (e.measured_power_w) evse.set_measured_power_w(*e.measured_power_w);
    if (e.priority_override) {
      evse.set_priority(*e.priority_override);
      if (e.priority_expires_at != absl::InfiniteFuture()) {
        *evse.mutable_priority_expires_at() = api::ToProto(e.priority_expires_at);
      }
    }
    if (e.paused_since && e.active) *evse.mutable_paused_since() = api::ToProto(*e.paused_since);
    if (auto a = allocated.find(evse.evse_id()); a != allocated.end()) {
      *evse.mutable_allocation() = *a->second;
    }
    v1::PhaseValues& load = ev_load[evse.circuit_id()];
    for (int p = 0; p < allocation::kPhaseCount; ++p) {
      if (std::optional<double> a = GetPhase(e.measured_a, p)) {
        SetPhase(&load, p, GetPhase(load, p).value_or(0) + *a);
      }
    }
  }
  // Sum EV load up the tree (children are listed after their parents).
  std::map<std::string, v1::PhaseValues> subtree = ev_load;
  for (auto it = config_.circuits.rbegin(); it != config_.circuits.rend(); ++it) {
    v1::PhaseValues& parent = subtree[it->parent];
    for (int p = 0; p < allocation::kPhaseCount; ++p) {
      if (std::optional<double> a = GetPhase(subtree[it->id], p)) {
        SetPhase(&parent, p, GetPhase(parent, p).value_or(0) + *a);
      }
    }
  }

  v1::GridConnectionStatus* grid = response->mutable_grid();
  *grid->mutable_effective_limit_a() =
      EffectiveLimit(grid->limit_a(), margin, site::kGridCircuitId, live.dynamic_limits);
  *grid->mutable_ev_load_a() = subtree[site::kGridCircuitId];
  if (auto meter = live.meters.find(site::kGridCircuitId); meter != live.meters.end()) {
    *grid->mutable_measured_a() = meter->second.current_a();
    if (meter->second.has_total_power_w()) {
      grid->set_measured_power_w(meter->second.total_power_w());
    }
    *grid->mutable_base_load_a() = Minus(grid->measured_a(), grid->ev_load_a());
    *grid->mutable_headroom_a() = Minus(grid->effective_limit_a(), grid->measured_a());
  }
  if (live.grid_sample_at) {
    *grid->mutable_meter_age() = TimeUtil::NanosecondsToDuration(
        absl::ToInt64Nanoseconds(clock_.MonotonicNow() - *live.grid_sample_at));
  }
  for (v1::CircuitStatus& circuit : *response->mutable_circuits()) {
    *circuit.mutable_effective_limit_a() =
        EffectiveLimit(circuit.limit_a(), margin, circuit.circuit_id(), live.dynamic_limits);
    *circuit.mutable_ev_load_a() = subtree[circuit.circuit_id()];
    if (auto meter = live.meters.find(circuit.circuit_id()); meter != live.meters.end()) {
      *circuit.mutable_measured_a() = meter->second.current_a();
      *circuit.mutable_base_load_a() = Minus(circuit.measured_a(), circuit.ev_load_a());
    }
    if (auto load = loads.find(circuit.circuit_id()); load != loads.end()) {
      *circuit.mutable_headroom_a() = load->second->headroom_a();
    }
    if (auto failed = live.failsafe_nodes.find(circuit.circuit_id());
        failed != live.failsafe_nodes.end()) {
      circuit.set_failsafe(true);
      circuit.set_failsafe_detail(failed->second.reason);
      *circuit.mutable_failsafe_since() = api::ToProto(failed->second.since);
    }
  }
  for (v1::StationStatus& station : *response->mutable_stations()) {
    double power = 0;
    for (const std::string& evse : station.evse_ids()) {
      if (auto a = allocated.find(evse); a != allocated.end()) power += a->second->power_w();
    }
    station.set_allocated_power_w(power);
  }
  return grpc::Status::OK;
}

grpc::Status LoadBalancerService::Simulate(grpc::ServerContext*, const v1::SimulateRequest* request,
                                           v1::SimulateResponse* response) {
  absl::StatusOr<allocation::AllocationInput> input =
      allocation::ParseScenario(request->scenario_json());
  if (!input.ok()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(input.status().message()));
  }
  absl::StatusOr<allocation::Allocation> result = allocation::Allocate(*input);
  if (!result.ok()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(result.status().message()));
  }
  response->set_allocation_json(allocation::AllocationToJson(*result, 2));
  *response->mutable_allocation() = ToProto(*result);
  response->mutable_allocation()->set_trigger(v1::ALLOCATION_TRIGGER_SIMULATION);
  return grpc::Status::OK;
}

grpc::Status LoadBalancerService::WatchAllocations(
    grpc::ServerContext* context, const v1::WatchAllocationsRequest* request,
    grpc::ServerWriter<v1::WatchAllocationsResponse>* writer) {
  if (loop_ == nullptr) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the control loop is not running");
  }
  std::set<std::string> selected(request->evse_ids().begin(), request->evse_ids().end());
  for (const std::string& id : selected) {
    if (config_.FindEvse(id) == nullptr) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND,
                          absl::StrCat("no EVSE \"", id, "\" on this site"));
    }
  }
  auto filter = [&selected](v1::Allocation allocation) {
    if (selected.empty()) return allocation;
    auto* evses = allocation.mutable_evses();
    evses->erase(std::remove_if(
                     evses->begin(), evses->end(),
                     [&](const v1::EvseAllocation& e) { return selected.count(e.evse_id()) == 0; }),
                 evses->end());
    return allocation;
  };
  std::optional<v1::Allocation> sent;
  uint64_t seen = 0;
  if (std::optional<v1::Allocation> current = loop_->Snapshot().allocation) {
    sent = filter(*current);
    seen = current->sequence();
    v1::WatchAllocationsResponse message;
    *message.mutable_allocation() = *sent;
    if (!writer->Write(message)) return grpc::Status::OK;
  }
  while (!context->IsCancelled() && !loop_->stopped()) {
    std::optional<v1::Allocation> next = loop_->WaitForAllocation(seen, kWatchPoll);
    if (!next) continue;
    seen = next->sequence();
    v1::Allocation filtered = filter(*std::move(next));
    if (sent && SameEvseValues(*sent, filtered)) continue;
    v1::WatchAllocationsResponse message;
    *message.mutable_allocation() = filtered;
    if (!writer->Write(message)) break;
    sent = std::move(filtered);
  }
  return grpc::Status::OK;
}

grpc::Status LoadBalancerService::SetDynamicLimits(grpc::ServerContext*,
                                                   const v1::SetDynamicLimitsRequest* request,
                                                   v1::SetDynamicLimitsResponse* response) {
  if (loop_ == nullptr) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the control loop is not running");
  }
  const absl::Time now = clock_.Now();
  std::vector<std::pair<v1::DynamicLimit, absl::Time>> limits;
  for (const v1::DynamicLimitUpdate& update : request->updates()) {
    if (update.has_ttl() && api::FromProto(update.ttl()) < absl::ZeroDuration()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "ttl must not be negative");
    }
    // A zero ttl clears: it expires now.
    limits.emplace_back(update.limit(), ExpiryOf(update, now));
  }
  absl::StatusOr<std::vector<ActiveDynamicLimit>> active = loop_->SetDynamicLimits(limits);
  if (!active.ok()) return ToGrpc(active.status());
  for (const ActiveDynamicLimit& limit : *active) *response->add_active_limits() = limit.limit;
  return grpc::Status::OK;
}

grpc::Status LoadBalancerService::SetEvsePriority(grpc::ServerContext*,
                                                  const v1::SetEvsePriorityRequest* request,
                                                  v1::SetEvsePriorityResponse* response) {
  if (loop_ == nullptr) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the control loop is not running");
  }
  const absl::Time expires_at = ExpiryOf(*request, clock_.Now());
  if (absl::Status status =
          loop_->SetEvsePriority(request->evse_id(), request->priority(), expires_at);
      !status.ok()) {
    return ToGrpc(status);
  }
  response->set_evse_id(request->evse_id());
  response->set_priority(request->priority());
  if (expires_at != absl::InfiniteFuture())
    *response->mutable_expires_at() = api::ToProto(expires_at);
  return grpc::Status::OK;
}

}  // namespace evgate::load_balancer

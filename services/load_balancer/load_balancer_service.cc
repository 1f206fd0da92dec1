#include "services/load_balancer/load_balancer_service.h"

#include "google/protobuf/util/time_util.h"
#include "site_controller/allocation/scenario.h"

namespace evgate::load_balancer {
namespace {

constexpr char kNeedsControlLoop[] =
    "the load balancer's control loop needs live device data, and no device driver is part of "
    "this build yet; Simulate and GetSiteStatus are available";

void SetPhase(v1::PhaseValues* values, int phase, double value) {
  switch (phase) {
    case 0:
      values->set_l1(value);
      break;
    case 1:
      values->set_l2(value);
      break;
    case 2:
      values->set_l3(value);
      break;
  }
}

v1::Phase ToProto(site::Phase phase) {
  switch (phase) {
    case site::Phase::kL1:
      return v1::PHASE_L1;
    case site::Phase::kL2:
      return v1::PHASE_L2;
    case site::Phase::kL3:
      return v1::PHASE_L3;
  }
  return v1::PHASE_UNSPECIFIED;
}

v1::PhaseValues PerPhase(const std::vector<site::Phase>& phases,
                         const std::vector<double>& values) {
  v1::PhaseValues result;
  for (size_t i = 0; i < phases.size() && i < values.size(); ++i) {
    SetPhase(&result, static_cast<int>(phases[i]), values[i]);
  }
  return result;
}

v1::PauseReason ToProto(allocation::PauseReason reason) {
  switch (reason) {
    case allocation::PauseReason::kCapacity:
      return v1::PAUSE_REASON_NOT_ENOUGH_CURRENT;
    case allocation::PauseReason::kSocLimit:
      return v1::PAUSE_REASON_SOC_LIMIT;
    case allocation::PauseReason::kFailsafe:
      return v1::PAUSE_REASON_FAILSAFE;
    case allocation::PauseReason::kNone:
    case allocation::PauseReason::kInactive:
    case allocation::PauseReason::kNoDemand:
      break;
  }
  return v1::PAUSE_REASON_UNSPECIFIED;
}

v1::LimitingConstraint ToProto(const allocation::Limit& limit) {
  v1::LimitingConstraint constraint;
  switch (limit.kind) {
    case allocation::Limit::Kind::kNone:
      break;
    case allocation::Limit::Kind::kCircuitPhase:
      constraint.set_kind(v1::CONSTRAINT_KIND_CIRCUIT_PHASE);
      break;
    case allocation::Limit::Kind::kContractPower:
      constraint.set_kind(v1::CONSTRAINT_KIND_CONTRACT_POWER);
      break;
    case allocation::Limit::Kind::kStationPower:
      constraint.set_kind(v1::CONSTRAINT_KIND_STATION_POWER);
      break;
    case allocation::Limit::Kind::kFailsafe:
      constraint.set_kind(v1::CONSTRAINT_KIND_FAILSAFE);
      break;
  }
  constraint.set_circuit_id(limit.circuit);
  constraint.set_station_id(limit.station);
  if (limit.phase) {
    constraint.set_phase(*limit.phase == allocation::Phase::kL1   ? v1::PHASE_L1
                         : *limit.phase == allocation::Phase::kL2 ? v1::PHASE_L2
                                                                  : v1::PHASE_L3);
  }
  return constraint;
}

v1::PhaseValues ToProto(const std::array<std::optional<double>, allocation::kPhaseCount>& values) {
  v1::PhaseValues result;
  for (int p = 0; p < allocation::kPhaseCount; ++p) {
    if (values[p]) SetPhase(&result, p, *values[p]);
  }
  return result;
}

}  // namespace

v1::Allocation ToProto(const allocation::Allocation& result) {
  v1::Allocation proto;
  proto.set_failsafe(result.failsafe);
  for (const allocation::EvseAllocation& e : result.evses) {
    v1::EvseAllocation* out = proto.add_evses();
    out->set_evse_id(e.id);
    if (e.type == allocation::EvseType::kAc) {
      out->set_current_a(e.current_a);
    } else {
      out->set_power_w(e.power_w);
    }
    out->set_paused(e.paused);
    out->set_pause_reason(ToProto(e.pause_reason));
    if (e.limit.kind != allocation::Limit::Kind::kNone)
      *out->mutable_limited_by() = ToProto(e.limit);
  }
  for (const allocation::CircuitLoad& c : result.circuits) {
    v1::CircuitLoad* out = proto.add_circuits();
    out->set_circuit_id(c.id);
    *out->mutable_load_a() = ToProto(c.load_a);
    *out->mutable_headroom_a() = ToProto(c.headroom_a);
  }
  return proto;
}

LoadBalancerService::LoadBalancerService(const site::SiteConfig& config) {
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
  // Without a grid meter sample the controller cannot know the base load, so
  // the site is in failsafe until the control loop receives one.
  topology_.set_failsafe(true);
  topology_.set_failsafe_reason(v1::FAILSAFE_REASON_NO_METER_DATA);
  topology_.set_failsafe_detail(config.grid.meter
                                    ? "no sample from grid meter '" + *config.grid.meter + "' yet"
                                    : "the site has no grid meter configured");
}

grpc::Status LoadBalancerService::GetSiteStatus(grpc::ServerContext*,
                                                const v1::GetSiteStatusRequest*,
                                                v1::GetSiteStatusResponse* response) {
  *response = topology_;
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
    grpc::ServerContext*, const v1::WatchAllocationsRequest*,
    grpc::ServerWriter<v1::WatchAllocationsResponse>*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, kNeedsControlLoop);
}

grpc::Status LoadBalancerService::SetDynamicLimits(grpc::ServerContext*,
                                                   const v1::SetDynamicLimitsRequest*,
                                                   v1::SetDynamicLimitsResponse*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, kNeedsControlLoop);
}

grpc::Status LoadBalancerService::SetEvsePriority(grpc::ServerContext*,
                                                  const v1::SetEvsePriorityRequest*,
                                                  v1::SetEvsePriorityResponse*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, kNeedsControlLoop);
}

}  // namespace evgate::load_balancer

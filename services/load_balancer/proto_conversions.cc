#include "services/load_balancer/proto_conversions.h"

#include "site_controller/config/api_conversions.h"

namespace evgate::load_balancer {

void SetPhase(v1::PhaseValues* values, int phase, double value) {
  api::SetPhase(values, static_cast<site::Phase>(phase), value);
}

std::optional<double> GetPhase(const v1::PhaseValues& values, int phase) {
  return api::GetPhase(values, static_cast<site::Phase>(phase));
}

v1::Phase ToProto(site::Phase phase) { return api::ToProto(phase); }

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
    case allocation::PauseReason::kInactive:
      // The loop tells a connected vehicle without a session apart (NOT_AUTHORIZED).
      return v1::PAUSE_REASON_NO_VEHICLE;
    case allocation::PauseReason::kNoDemand:
      return v1::PAUSE_REASON_NO_DEMAND;
    case allocation::PauseReason::kNone:
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

v1::PhaseValues ToProto(const allocation::PhaseValues& values) {
  v1::PhaseValues result;
  for (int p = 0; p < allocation::kPhaseCount; ++p) SetPhase(&result, p, values[p]);
  return result;
}

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

bool SameEvseValues(const v1::Allocation& a, const v1::Allocation& b) {
  if (a.failsafe() != b.failsafe() || a.evses_size() != b.evses_size()) return false;
  for (int i = 0; i < a.evses_size(); ++i) {
    const v1::EvseAllocation& x = a.evses(i);
    const v1::EvseAllocation& y = b.evses(i);
    if (x.evse_id() != y.evse_id() || x.paused() != y.paused() || x.current_a() != y.current_a() ||
        x.power_w() != y.power_w() || x.not_controlled_reason() != y.not_controlled_reason()) {
      return false;
    }
  }
  return true;
}

}  // namespace evgate::load_balancer

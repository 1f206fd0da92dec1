// Conversions between the site model / allocation engine types and the
// public LoadBalancer and DeviceDriver protos, shared by the service and the
// control loop. Pure functions; thread-safe.
#ifndef EVGATE_SERVICES_LOAD_BALANCER_PROTO_CONVERSIONS_H_
#define EVGATE_SERVICES_LOAD_BALANCER_PROTO_CONVERSIONS_H_

#include <array>
#include <optional>
#include <vector>

#include "evgate/v1/common.pb.h"
#include "evgate/v1/load_balancer.pb.h"
#include "site_controller/allocation/allocation.h"
#include "site_controller/config/site_config.h"

namespace evgate::load_balancer {

// Sets site phase `phase` (0 = L1) of `values`.
void SetPhase(v1::PhaseValues* values, int phase, double value);
// The value of site phase `phase` (0 = L1), if present.
std::optional<double> GetPhase(const v1::PhaseValues& values, int phase);

v1::Phase ToProto(site::Phase phase);
// values[i] on phases[i].
v1::PhaseValues PerPhase(const std::vector<site::Phase>& phases, const std::vector<double>& values);
v1::PauseReason ToProto(allocation::PauseReason reason);
v1::LimitingConstraint ToProto(const allocation::Limit& limit);
v1::PhaseValues ToProto(const std::array<std::optional<double>, allocation::kPhaseCount>& values);
v1::PhaseValues ToProto(const allocation::PhaseValues& values);

// True when both allocations give every EVSE the same value, pause state and
// control state (not_controlled_reason) and agree on failsafe: what
// WatchAllocations counts as "a new allocation".
bool SameEvseValues(const v1::Allocation& a, const v1::Allocation& b);

// An engine result as the API's typed Allocation (no sequence/time/trigger).
v1::Allocation ToProto(const allocation::Allocation& allocation);

}  // namespace evgate::load_balancer

#endif  // EVGATE_SERVICES_LOAD_BALANCER_PROTO_CONVERSIONS_H_

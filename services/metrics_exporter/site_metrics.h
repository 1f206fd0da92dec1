// What one scrape read from the other services, turned into samples of the
// catalogue's metrics. Pure functions of the services' API messages: no I/O,
// no clock, so every mapping is tested on messages built in the test.
#ifndef EVGATE_SERVICES_METRICS_EXPORTER_SITE_METRICS_H_
#define EVGATE_SERVICES_METRICS_EXPORTER_SITE_METRICS_H_

#include <string>
#include <string_view>
#include <vector>

#include "evgate/v1/device.pb.h"
#include "evgate/v1/grid.pb.h"
#include "evgate/v1/load_balancer.pb.h"
#include "evgate/v1/ocpp.pb.h"
#include "evgate/v1/session.pb.h"
#include "services/metrics_exporter/family_set.h"

namespace evgate::metrics {

// An enum value as a label: the proto name without its type prefix, lower
// case ("CONNECTOR_STATUS_SUSPENDED_EV" -> "suspended_ev").
std::string EnumLabel(const std::string& proto_name, std::string_view prefix);

// Circuits, grid connection, failsafe, stations and EVSEs (LoadBalancer.GetSiteStatus).
void AddSiteStatus(const v1::GetSiteStatusResponse& status, FamilySet& out);

// Link health, faults, meters (DeviceDriver.ListDevices, every page).
void AddDevices(const std::vector<v1::DeviceState>& devices, FamilySet& out);

// Request durations of Modbus buses, frames and error frames of CAN buses
// (DeviceDriver.ListBuses). An OCPP "bus" has none of these.
void AddBuses(const std::vector<v1::BusHealth>& buses, FamilySet& out);

// Open sessions (SessionService.ListSessions with the OPEN filter).
void AddOpenSessions(const std::vector<v1::Session>& sessions, FamilySet& out);

// The local Central System's charge points and the upstream link.
void AddChargePoints(const std::vector<v1::ChargePoint>& charge_points, FamilySet& out);
void AddUpstream(const v1::GetUpstreamStatusResponse& upstream, FamilySet& out);

// The grid mode, the off-grid box's view of the grid and the island (GridController.GetGridState).
void AddGridState(const v1::GridState& state, FamilySet& out);

}  // namespace evgate::metrics

#endif  // EVGATE_SERVICES_METRICS_EXPORTER_SITE_METRICS_H_

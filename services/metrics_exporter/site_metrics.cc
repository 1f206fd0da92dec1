#include "services/metrics_exporter/site_metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/strip.h"
#include "google/protobuf/generated_enum_reflection.h"
#include "google/protobuf/util/time_util.h"
#include "site_controller/config/api_conversions.h"

namespace evgate::metrics {

namespace {

using google::protobuf::util::TimeUtil;

constexpr const char* kPhases[] = {"L1", "L2", "L3"};
constexpr double kJoulesPerWh = 3600;

// Phase `p` (0 = L1) of `values`, absent when not set.
std::optional<double> PhaseValue(const v1::PhaseValues& values, int p) {
  return api::GetPhase(values, static_cast<site::Phase>(p));
}

// One sample per phase that has a value.
void PerPhase(FamilySet& out, std::string_view name, const std::string& owner,
              const v1::PhaseValues& values) {
  for (int p = 0; p < 3; ++p) {
    if (std::optional<double> v = PhaseValue(values, p)) out.Gauge(name, {owner, kPhases[p]}, *v);
  }
}

double Seconds(const google::protobuf::Duration& d) {
  return static_cast<double>(TimeUtil::DurationToNanoseconds(d)) / 1e9;
}

double UnixSeconds(const google::protobuf::Timestamp& t) {
  return static_cast<double>(TimeUtil::TimestampToNanoseconds(t)) / 1e9;
}

// An enum value as a label; a number this build does not know (a newer
// peer) becomes "unknown".
template <typename Enum>
std::string Label(Enum value, std::string_view prefix) {
  const google::protobuf::EnumValueDescriptor* d =
      google::protobuf::GetEnumDescriptor<Enum>()->FindValueByNumber(value);
  return d == nullptr ? "unknown" : EnumLabel(d->name(), prefix);
}

}  // namespace

std::string EnumLabel(const std::string& proto_name, std::string_view prefix) {
  absl::string_view name = proto_name;
  absl::ConsumePrefix(&name, absl::string_view(prefix.data(), prefix.size()));
  return absl::AsciiStrToLower(name);
}

void AddSiteStatus(const v1::GetSiteStatusResponse& status, FamilySet& out) {
  const v1::GridConnectionStatus& grid = status.grid();
  const std::string kGrid = "grid";
  PerPhase(out, "evgate_circuit_current_amperes", kGrid, grid.measured_a());
  PerPhase(out, "evgate_circuit_ev_current_amperes", kGrid, grid.ev_load_a());
  PerPhase(out, "evgate_circuit_limit_amperes", kGrid, grid.effective_limit_a());
  PerPhase(out, "evgate_circuit_headroom_amperes", kGrid, grid.headroom_a());
  out.Gauge("evgate_circuit_failsafe", {kGrid}, status.failsafe() ? 1 : 0);
  if (grid.has_measured_power_w())
    out.Gauge("evgate_grid_power_watts", {}, grid.measured_power_w());
  if (grid.has_contract_power_w()) {
    out.Gauge("evgate_grid_contract_power_watts", {}, grid.contract_power_w());
  }
  if (grid.has_export_limit_w())
    out.Gauge("evgate_grid_export_limit_watts", {}, grid.export_limit_w());
  if (grid.has_meter_age())
    out.Gauge("evgate_grid_meter_age_seconds", {}, Seconds(grid.meter_age()));
  if (grid.has_meter_timeout()) {
    out.Gauge("evgate_grid_meter_timeout_seconds", {}, Seconds(grid.meter_timeout()));
  }
  out.Gauge("evgate_margin_amperes", {}, status.margin_a());
  if (status.failsafe()) {
    out.Gauge("evgate_failsafe_active", {Label(status.failsafe_reason(), "FAILSAFE_REASON_")}, 1);
  } else {
    out.Gauge("evgate_failsafe_active", {""}, 0);
  }

  for (const v1::CircuitStatus& c : status.circuits()) {
    PerPhase(out, "evgate_circuit_current_amperes", c.circuit_id(), c.measured_a());
    PerPhase(out, "evgate_circuit_ev_current_amperes", c.circuit_id(), c.ev_load_a());
    PerPhase(out, "evgate_circuit_limit_amperes", c.circuit_id(), c.effective_limit_a());
    PerPhase(out, "evgate_circuit_headroom_amperes", c.circuit_id(), c.headroom_a());
    out.Gauge("evgate_circuit_failsafe", {c.circuit_id()}, c.failsafe() ? 1 : 0);
  }
  for (const v1::StationStatus& s : status.stations()) {
    out.Gauge("evgate_station_power_watts", {s.station_id()}, s.allocated_power_w());
    out.Gauge("evgate_station_limit_watts", {s.station_id()}, s.max_power_w());
  }

  const v1::ControlCounters& counters = status.counters();
  out.Counter("evgate_setpoint_batches_total", {}, static_cast<double>(counters.batches_sent()));
  out.Counter("evgate_setpoint_batches_failed_total", {},
              static_cast<double>(counters.batches_failed()));
  out.Counter("evgate_setpoints_sent_total", {}, static_cast<double>(counters.setpoints_sent()));
  // Every reason, 0 until it happens, so that rate() has data.
  std::map<std::string, double> refused = {{"no_result", 0}, {"batch_failed", 0}};
  for (int r = v1::SetpointRejectReason_MIN + 1; r <= v1::SetpointRejectReason_MAX; ++r) {
    if (v1::SetpointRejectReason_IsValid(r)) {
      refused[Label(static_cast<v1::SetpointRejectReason>(r), "SETPOINT_REJECT_REASON_")] = 0;
    }
  }
  for (const auto& [reason, count] : counters.setpoints_refused()) {
    refused[reason] = static_cast<double>(count);
  }
  for (const auto& [reason, count] : refused) {
    out.Counter("evgate_setpoints_refused_total", {reason}, count);
  }

  // The connector states every EVSE reports a 0 or 1 for (a state set).
  std::vector<v1::ConnectorStatus> states;
  for (int i = v1::ConnectorStatus_MIN + 1; i <= v1::ConnectorStatus_MAX; ++i) {
    if (v1::ConnectorStatus_IsValid(i)) states.push_back(static_cast<v1::ConnectorStatus>(i));
  }
  for (const v1::EvseStatus& e : status.evses()) {
    const std::string& id = e.evse_id();
    const v1::EvseAllocation& a = e.allocation();
    // An AC allocation is a current, a DC one a power; both are served,
    // the other derived from the per-phase AC current the load balancer
    // counts for it (its AC input current for a DC EVSE).
    double phase_sum = 0, phase_peak = 0;
    for (int p = 0; p < 3; ++p) {
      if (std::optional<double> v = PhaseValue(a.phase_current_a(), p)) {
        phase_sum += *v;
        if (std::abs(*v) > std::abs(phase_peak)) phase_peak = *v;
      }
    }
    out.Gauge("evgate_evse_setpoint_amperes", {id}, a.has_current_a() ? a.current_a() : phase_peak);
    out.Gauge("evgate_evse_setpoint_watts", {id},
              a.has_power_w() ? a.power_w() : phase_sum * grid.nominal_voltage_v());
    PerPhase(out, "evgate_evse_current_amperes", id, e.measured_a());
    if (e.has_measured_power_w()) out.Gauge("evgate_evse_power_watts", {id}, e.measured_power_w());
    if (a.paused()) {
      out.Gauge("evgate_evse_paused", {id, Label(a.pause_reason(), "PAUSE_REASON_")}, 1);
    } else {
      out.Gauge("evgate_evse_paused", {id, ""}, 0);
    }
    out.Gauge("evgate_evse_priority", {id}, e.priority());
    out.Gauge("evgate_evse_active", {id}, e.active() ? 1 : 0);
    out.Gauge("evgate_evse_controlled", {id, a.not_controlled_reason()},
              a.not_controlled_reason().empty() ? 1 : 0);
    for (v1::ConnectorStatus s : states) {
      out.Gauge("evgate_evse_status", {id, Label(s, "CONNECTOR_STATUS_")},
                e.connector_status() == s ? 1 : 0);
    }
  }
}

void AddDevices(const std::vector<v1::DeviceState>& devices, FamilySet& out) {
  struct BusTotals {
    double requests = 0, errors = 0, timeouts = 0;
  };
  std::map<std::string, BusTotals> buses;
  auto add_faults = [&](const std::string& device, const std::string& evse,
                        const google::protobuf::RepeatedPtrField<v1::Fault>& faults) {
    for (const v1::Fault& f : faults) {
      out.Gauge("evgate_device_fault",
                {device, evse, f.code(), Label(f.severity(), "FAULT_SEVERITY_")}, 1);
    }
  };
  for (const v1::DeviceState& d : devices) {
    const std::string& id = d.device_id();
    const v1::LinkHealth& link = d.link();
    out.Gauge("evgate_device_online", {id, d.bus_id(), Label(d.kind(), "DEVICE_KIND_")},
              link.stale() ? 0 : 1);
    out.Counter("evgate_device_requests_total", {id, d.bus_id()},
                static_cast<double>(link.requests_total()));
    out.Counter("evgate_device_errors_total", {id, d.bus_id()},
                static_cast<double>(link.errors_total()));
    out.Counter("evgate_device_timeouts_total", {id, d.bus_id()},
                static_cast<double>(link.timeouts_total()));
    if (link.has_last_seen()) {
      out.Gauge("evgate_device_last_seen_timestamp_seconds", {id}, UnixSeconds(link.last_seen()));
    }
    if (!d.bus_id().empty()) {
      BusTotals& bus = buses[d.bus_id()];
      bus.requests += static_cast<double>(link.requests_total());
      bus.errors += static_cast<double>(link.errors_total());
      bus.timeouts += static_cast<double>(link.timeouts_total());
    }
    add_faults(id, "", d.faults());
    for (const v1::EvseState& e : d.evses()) {
      add_faults(id, e.evse_id(), e.faults());
      if (e.has_setpoint() && e.setpoint().source() != v1::SETPOINT_SOURCE_UNSPECIFIED) {
        for (int src = v1::SetpointSource_MIN + 1; src <= v1::SetpointSource_MAX; ++src) {
          if (!v1::SetpointSource_IsValid(src)) continue;
          const auto source = static_cast<v1::SetpointSource>(src);
          out.Gauge("evgate_evse_setpoint_source", {e.evse_id(), Label(source, "SETPOINT_SOURCE_")},
                    e.setpoint().source() == source ? 1 : 0);
        }
      }
      if (e.measurements().has_soc_pct()) {
        out.Gauge("evgate_evse_soc_percent", {e.evse_id()}, e.measurements().soc_pct());
      }
    }
    if (d.kind() == v1::DEVICE_KIND_METER && d.has_meter()) {
      const v1::MeterReading& m = d.meter();
      PerPhase(out, "evgate_meter_current_amperes", id, m.current_a());
      if (m.has_total_power_w()) out.Gauge("evgate_meter_power_watts", {id}, m.total_power_w());
      if (m.has_energy_import_wh()) {
        out.Counter("evgate_meter_energy_import_joules_total", {id},
                    m.energy_import_wh() * kJoulesPerWh);
      }
    }
  }
  for (const auto& [bus, totals] : buses) {
    out.Counter("evgate_bus_requests_total", {bus}, totals.requests);
    out.Counter("evgate_bus_errors_total", {bus}, totals.errors);
    out.Counter("evgate_bus_timeouts_total", {bus}, totals.timeouts);
  }
}

void AddBuses(const std::vector<v1::BusHealth>& buses, FamilySet& out) {
  for (const v1::BusHealth& bus : buses) {
    const std::string& id = bus.bus_id();
    out.Counter("evgate_setpoints_expired_total", {id},
                static_cast<double>(bus.setpoints_expired_total()));
    if (bus.kind() == "modbus") {
      const v1::DurationHistogram& d = bus.request_duration();
      prometheus::ClientMetric::Histogram h;
      const int n = std::min(d.upper_bounds_s_size(), d.cumulative_counts_size());
      for (int i = 0; i < n; ++i) {
        h.bucket.push_back({d.cumulative_counts(i), d.upper_bounds_s(i)});
      }
      h.bucket.push_back({d.count(), std::numeric_limits<double>::infinity()});
      h.sample_count = d.count();
      h.sample_sum = d.sum_s();
      out.Histogram("evgate_bus_request_duration_seconds", {id}, std::move(h));
    } else if (bus.kind() == "can") {
      out.Counter("evgate_can_frames_total", {id, "sent"},
                  static_cast<double>(bus.frames_sent_total()));
      out.Counter("evgate_can_frames_total", {id, "received"},
                  static_cast<double>(bus.frames_received_total()));
      // Every kind, 0 included, so that a rate or an alert has data on a
      // healthy bus.
      const std::pair<const char*, uint64_t> kinds[] = {
          {"warning", bus.error_warning_total()},
          {"passive", bus.error_passive_total()},
          {"bus_off", bus.bus_off_total()},
          {"other", bus.other_error_frames_total()},
      };
      for (const auto& [kind, count] : kinds) {
        out.Counter("evgate_can_error_frames_total", {id, kind}, static_cast<double>(count));
      }
      out.Counter("evgate_can_interface_down_total", {id},
                  static_cast<double>(bus.interface_down_total()));
    }
  }
}

void AddOpenSessions(const std::vector<v1::Session>& sessions, FamilySet& out) {
  std::map<std::string, int> by_state;
  // Every open state is reported, 0 when no session is in it, so a panel or
  // an alert on a state has data when nothing is charging.
  for (v1::SessionState s :
       {v1::SESSION_STATE_PENDING_PLUG_IN, v1::SESSION_STATE_ACTIVE, v1::SESSION_STATE_FINISHING}) {
    by_state[Label(s, "SESSION_STATE_")] = 0;
  }
  for (const v1::Session& s : sessions) {
    ++by_state[Label(s.state(), "SESSION_STATE_")];
    out.Gauge("evgate_session_energy_joules", {s.evse_id()}, s.energy_charged_wh() * kJoulesPerWh);
  }
  for (const auto& [state, count] : by_state) out.Gauge("evgate_sessions_open", {state}, count);
}

void AddChargePoints(const std::vector<v1::ChargePoint>& charge_points, FamilySet& out) {
  for (const v1::ChargePoint& cp : charge_points) {
    const bool connected = cp.connection_state() == v1::CHARGE_POINT_CONNECTION_STATE_CONNECTED &&
                           cp.registration_status() == v1::REGISTRATION_STATUS_ACCEPTED;
    out.Gauge("evgate_ocpp_charge_point_connected", {cp.charge_point_id()}, connected ? 1 : 0);
    out.Gauge("evgate_ocpp_charge_point_pending_calls", {cp.charge_point_id()}, cp.pending_calls());
    for (const v1::OcppMessageCount& m : cp.messages()) {
      out.Counter("evgate_ocpp_messages_total",
                  {cp.charge_point_id(), m.direction(), m.action(), m.result()},
                  static_cast<double>(m.count()));
    }
  }
}

void AddUpstream(const v1::GetUpstreamStatusResponse& upstream, FamilySet& out) {
  for (int i = v1::UpstreamConnectionState_MIN + 1; i <= v1::UpstreamConnectionState_MAX; ++i) {
    if (!v1::UpstreamConnectionState_IsValid(i)) continue;
    const auto state = static_cast<v1::UpstreamConnectionState>(i);
    out.Gauge("evgate_ocpp_upstream_state", {Label(state, "UPSTREAM_CONNECTION_STATE_")},
              upstream.state() == state ? 1 : 0);
  }
  out.Gauge("evgate_ocpp_upstream_queue_length", {}, upstream.offline_queue_depth());
}

void AddGridState(const v1::GridState& state, FamilySet& out) {
  for (int i = v1::GridMode_MIN + 1; i <= v1::GridMode_MAX; ++i) {
    if (!v1::GridMode_IsValid(i)) continue;
    const auto mode = static_cast<v1::GridMode>(i);
    out.Gauge("evgate_grid_mode", {Label(mode, "GRID_MODE_")}, state.mode() == mode ? 1 : 0);
  }
  // A site without grid_modes has no mode to date.
  if (state.mode() == v1::GRID_MODE_UNSPECIFIED) return;
  if (state.has_since()) {
    out.Gauge("evgate_grid_mode_since_timestamp_seconds", {}, UnixSeconds(state.since()));
  }
  if (state.has_off_grid_box()) {
    out.Gauge("evgate_grid_box_grid_present", {}, state.off_grid_box().grid_present() ? 1 : 0);
  }
  // forming_power_w is negative (discharge); the building is supplied its magnitude.
  const bool island = !state.forming_evse_id().empty() && state.has_forming_power_w();
  out.Gauge("evgate_grid_island_power_watts", {},
            island ? std::max(0.0, -state.forming_power_w()) : 0.0);
  if (state.has_forming_discharge_limit_w()) {
    out.Gauge("evgate_grid_island_discharge_limit_watts", {}, state.forming_discharge_limit_w());
  }
  if (state.mode() == v1::GRID_MODE_OUTAGE_STANDBY && state.has_standby_remaining()) {
    out.Gauge("evgate_grid_standby_remaining_seconds", {}, Seconds(state.standby_remaining()));
  }
}

}  // namespace evgate::metrics

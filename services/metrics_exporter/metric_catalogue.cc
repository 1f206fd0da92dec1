#include "services/metrics_exporter/metric_catalogue.h"

#include <unordered_map>

namespace evgate::metrics {

namespace {

using prometheus::MetricType;

constexpr std::string_view kLb = "load_balancer";
constexpr std::string_view kDd = "device_drivers";
constexpr std::string_view kSe = "session";
constexpr std::string_view kOc = "ocpp_bridge";
constexpr std::string_view kGc = "grid_controller";
constexpr std::string_view kEx = "exporter";
constexpr std::string_view kLib = "prometheus-cpp";

std::string_view TypeName(MetricType type) {
  switch (type) {
    case MetricType::Counter:
      return "counter";
    case MetricType::Gauge:
      return "gauge";
    case MetricType::Histogram:
      return "histogram";
    case MetricType::Summary:
      return "summary";
    case MetricType::Untyped:
      return "untyped";
  }
  return "untyped";
}

}  // namespace

const std::vector<MetricSpec>& MetricCatalogue() {
  static const auto* catalogue = new std::vector<MetricSpec>{
      // --- The exporter and its peers.
      {"evgate_up",
       MetricType::Gauge,
       "1",
       {"service"},
       kEx,
       "1 when the exporter read the service at this scrape, 0 when it is configured or hosted "
       "but did not answer; the service's own metrics are then absent, never stale"},
      {"evgate_peer_read_seconds",
       MetricType::Gauge,
       "s",
       {"service"},
       kEx,
       "Time this scrape took to read the service"},
      {"evgate_build_info",
       MetricType::Gauge,
       "1",
       {"version", "revision"},
       kEx,
       "Always 1; the build that serves these metrics"},
      {"exposer_scrapes_total",
       MetricType::Counter,
       "1",
       {},
       kLib,
       "Scrapes of /metrics served (prometheus-cpp's Exposer)"},
      {"exposer_transferred_bytes_total",
       MetricType::Counter,
       "bytes",
       {},
       kLib,
       "Bytes of /metrics served (prometheus-cpp's Exposer)"},
      {"exposer_request_latencies",
       MetricType::Summary,
       "µs",
       {},
       kLib,
       "Time to serve a scrape, in microseconds (prometheus-cpp's Exposer; its name and unit "
       "are the library's)"},
      {"process_resident_memory_bytes",
       MetricType::Gauge,
       "bytes",
       {},
       kEx,
       "Resident memory of the exporter's process"},
      {"process_virtual_memory_bytes",
       MetricType::Gauge,
       "bytes",
       {},
       kEx,
       "Virtual memory of the exporter's process"},
      {"process_cpu_seconds_total",
       MetricType::Counter,
       "s",
       {},
       kEx,
       "User and system CPU time of the exporter's process"},
      {"process_open_fds",
       MetricType::Gauge,
       "1",
       {},
       kEx,
       "Open file descriptors of the exporter's process"},
      {"process_start_time_seconds",
       MetricType::Gauge,
       "s",
       {},
       kEx,
       "Start of the exporter's process, seconds since the Unix epoch"},

      // --- Load balancer: the site's circuits (the grid connection is circuit "grid").
      {"evgate_circuit_current_amperes",
       MetricType::Gauge,
       "A",
       {"circuit", "phase"},
       kLb,
       "Measured current of a circuit phase (absent when the circuit has no meter)"},
      {"evgate_circuit_ev_current_amperes",
       MetricType::Gauge,
       "A",
       {"circuit", "phase"},
       kLb,
       "Current the EVSEs below the circuit draw on the phase"},
      {"evgate_circuit_limit_amperes",
       MetricType::Gauge,
       "A",
       {"circuit", "phase"},
       kLb,
       "Limit in force on a circuit phase: the configured limit, lowered by dynamic limits, "
       "minus the margin"},
      {"evgate_circuit_headroom_amperes",
       MetricType::Gauge,
       "A",
       {"circuit", "phase"},
       kLb,
       "Limit in force minus load of a circuit phase; below 0 the circuit is over its limit "
       "less the margin"},
      {"evgate_circuit_failsafe",
       MetricType::Gauge,
       "1",
       {"circuit"},
       kLb,
       "1 while the circuit is in failsafe (its meter is stale or missing a phase)"},
      {"evgate_margin_amperes",
       MetricType::Gauge,
       "A",
       {},
       kLb,
       "Safety margin kept below every circuit limit"},
      {"evgate_grid_power_watts",
       MetricType::Gauge,
       "W",
       {},
       kLb,
       "Measured grid power, positive importing, negative exporting"},
      {"evgate_grid_contract_power_watts",
       MetricType::Gauge,
       "W",
       {},
       kLb,
       "Contracted import power of the grid connection (absent when not configured)"},
      {"evgate_grid_export_limit_watts",
       MetricType::Gauge,
       "W",
       {},
       kLb,
       "Export limit of the grid connection (absent when not configured)"},
      {"evgate_grid_meter_age_seconds",
       MetricType::Gauge,
       "s",
       {},
       kLb,
       "Age of the grid meter's last sample as the load balancer sees it"},
      {"evgate_grid_meter_timeout_seconds",
       MetricType::Gauge,
       "s",
       {},
       kLb,
       "Grid meter age beyond which the site goes to failsafe"},
      {"evgate_failsafe_active",
       MetricType::Gauge,
       "1",
       {"reason"},
       kLb,
       "1 while the whole site is in failsafe, with its reason; 0 (without reason) otherwise"},
      {"evgate_station_power_watts",
       MetricType::Gauge,
       "W",
       {"station"},
       kLb,
       "Power allocated to the EVSEs of a station (a charger with several connectors)"},
      {"evgate_station_limit_watts",
       MetricType::Gauge,
       "W",
       {"station"},
       kLb,
       "Maximum power of a station"},

      // --- Load balancer: EVSEs.
      {"evgate_evse_setpoint_amperes",
       MetricType::Gauge,
       "A",
       {"evse"},
       kLb,
       "Current per phase the load balancer allocates to the EVSE (for a DC EVSE: the AC input "
       "current it counts for it); 0 while paused, negative = discharging"},
      {"evgate_evse_setpoint_watts",
       MetricType::Gauge,
       "W",
       {"evse"},
       kLb,
       "Power the load balancer allocates to the EVSE (for an AC EVSE: its per-phase currents at "
       "the nominal voltage); negative = discharging"},
      {"evgate_evse_current_amperes",
       MetricType::Gauge,
       "A",
       {"evse", "phase"},
       kLb,
       "Measured current of the EVSE per site phase"},
      {"evgate_evse_power_watts",
       MetricType::Gauge,
       "W",
       {"evse"},
       kLb,
       "Measured power of the EVSE (absent when it reports none)"},
      {"evgate_evse_paused",
       MetricType::Gauge,
       "1",
       {"evse", "reason"},
       kLb,
       "1 with the pause reason while the load balancer pauses the EVSE, else 0 (no reason)"},
      {"evgate_evse_priority",
       MetricType::Gauge,
       "1",
       {"evse"},
       kLb,
       "Charging priority of the EVSE (higher is served first)"},
      {"evgate_evse_active",
       MetricType::Gauge,
       "1",
       {"evse"},
       kLb,
       "1 when a vehicle is connected and wants energy"},
      {"evgate_evse_controlled",
       MetricType::Gauge,
       "1",
       {"evse", "reason"},
       kLb,
       "1 when the load balancer can command the EVSE; 0 with the reason when it counts it at "
       "its worst case instead (unreachable, refused its setpoint, stale)"},
      {"evgate_evse_status",
       MetricType::Gauge,
       "1",
       {"evse", "state"},
       kLb,
       "Connector status as a state set: 1 for the EVSE's current state, 0 for the others"},
      {"evgate_allocations_total",
       MetricType::Counter,
       "1",
       {"trigger"},
       kLb,
       "Allocations computed since the exporter started following the load balancer, by cause"},
      {"evgate_control_reaction_seconds",
       MetricType::Histogram,
       "s",
       {},
       kLb,
       "From a triggering input (meter sample, device event) to the setpoints being dispatched"},
      {"evgate_allocation_compute_seconds",
       MetricType::Histogram,
       "s",
       {},
       kLb,
       "Time the allocation engine took for one allocation"},

      {"evgate_setpoint_batches_total",
       MetricType::Counter,
       "1",
       {},
       kLb,
       "ApplySetpoints batches the load balancer sent to the device drivers since it started"},
      {"evgate_setpoint_batches_failed_total",
       MetricType::Counter,
       "1",
       {},
       kLb,
       "Batches a driver did not take (RPC error or no answer in time)"},
      {"evgate_setpoints_sent_total",
       MetricType::Counter,
       "1",
       {},
       kLb,
       "Setpoints in the batches sent (every EVSE's value, refreshed inside its TTL)"},
      {"evgate_setpoints_refused_total",
       MetricType::Counter,
       "1",
       {"reason"},
       kLb,
       "Setpoints not taken, by reason (the driver's reject reason, no_result, batch_failed); "
       "the load balancer then counts the EVSE at its worst case"},

      // --- Device drivers.
      {"evgate_evse_setpoint_source",
       MetricType::Gauge,
       "1",
       {"evse", "source"},
       kDd,
       "What the EVSE runs on, as a state set: controller (a live setpoint), failsafe (its "
       "setpoint expired or none came: the watchdog value), device_default, external"},
      {"evgate_device_online",
       MetricType::Gauge,
       "1",
       {"device", "bus", "kind"},
       kDd,
       "1 while the device answers its bus owner, 0 while it is stale"},
      {"evgate_device_requests_total",
       MetricType::Counter,
       "1",
       {"device", "bus"},
       kDd,
       "Requests the bus owner sent to the device"},
      {"evgate_device_errors_total",
       MetricType::Counter,
       "1",
       {"device", "bus"},
       kDd,
       "Requests to the device that failed (exception, bad frame, refused)"},
      {"evgate_device_timeouts_total",
       MetricType::Counter,
       "1",
       {"device", "bus"},
       kDd,
       "Requests to the device that got no answer in time"},
      {"evgate_device_last_seen_timestamp_seconds",
       MetricType::Gauge,
       "s",
       {"device"},
       kDd,
       "When the device last answered, seconds since the Unix epoch"},
      {"evgate_bus_requests_total",
       MetricType::Counter,
       "1",
       {"bus"},
       kDd,
       "Requests on a bus (sum over its devices)"},
      {"evgate_bus_errors_total",
       MetricType::Counter,
       "1",
       {"bus"},
       kDd,
       "Failed requests on a bus (sum over its devices)"},
      {"evgate_bus_timeouts_total",
       MetricType::Counter,
       "1",
       {"bus"},
       kDd,
       "Requests on a bus that got no answer in time (sum over its devices)"},
      {"evgate_bus_request_duration_seconds",
       MetricType::Histogram,
       "s",
       {"bus"},
       kDd,
       "From sending a request on a Modbus bus to its answer (answered requests; timeouts are "
       "evgate_bus_timeouts_total)"},
      {"evgate_setpoints_expired_total",
       MetricType::Counter,
       "1",
       {"bus"},
       kDd,
       "Setpoints that outlived their TTL without a new one, so that their EVSE fell back to its "
       "failsafe (counted by the bus owner)"},
      {"evgate_can_frames_total",
       MetricType::Counter,
       "1",
       {"bus", "direction"},
       kDd,
       "CAN frames the bus owner sent (direction sent) and received (received, all of them: "
       "other protocols' and malformed ones too)"},
      {"evgate_can_error_frames_total",
       MetricType::Counter,
       "1",
       {"bus", "kind"},
       kDd,
       "Error frames the CAN controller reported, by what they announce: warning (error counters "
       "above the warning level), passive (error-passive), bus_off, other (protocol, ACK, "
       "transceiver, lost arbitration)"},
      {"evgate_can_interface_down_total",
       MetricType::Counter,
       "1",
       {"bus"},
       kDd,
       "Times the CAN interface went down or disappeared"},
      {"evgate_device_fault",
       MetricType::Gauge,
       "1",
       {"device", "evse", "code", "severity"},
       kDd,
       "1 per active fault, by unified fault code (evse empty for a device-level fault)"},
      {"evgate_meter_current_amperes",
       MetricType::Gauge,
       "A",
       {"device", "phase"},
       kDd,
       "Current a meter measures per phase"},
      {"evgate_meter_power_watts",
       MetricType::Gauge,
       "W",
       {"device"},
       kDd,
       "Total power a meter measures, positive importing"},
      {"evgate_meter_energy_import_joules_total",
       MetricType::Counter,
       "J",
       {"device"},
       kDd,
       "Imported energy register of a meter (1 kWh = 3.6e6 J)"},
      {"evgate_evse_soc_percent",
       MetricType::Gauge,
       "%",
       {"evse"},
       kDd,
       "State of charge the vehicle reports (DC chargers)"},

      // --- Sessions.
      {"evgate_sessions_open",
       MetricType::Gauge,
       "1",
       {"state"},
       kSe,
       "Sessions not yet ended, by state"},
      {"evgate_session_energy_joules",
       MetricType::Gauge,
       "J",
       {"evse"},
       kSe,
       "Energy charged so far in the EVSE's open session (1 kWh = 3.6e6 J)"},
      {"evgate_sessions_completed_total",
       MetricType::Counter,
       "1",
       {"reason"},
       kSe,
       "Sessions that ended since the exporter started following the session service, by stop "
       "reason"},
      {"evgate_energy_delivered_joules_total",
       MetricType::Counter,
       "J",
       {},
       kSe,
       "Energy charged in the sessions that ended since the exporter started following them"},

      // --- OCPP bridge.
      {"evgate_ocpp_charge_point_connected",
       MetricType::Gauge,
       "1",
       {"charge_point"},
       kOc,
       "1 while the configured charge point holds an accepted OCPP connection"},
      {"evgate_ocpp_charge_point_pending_calls",
       MetricType::Gauge,
       "1",
       {"charge_point"},
       kOc,
       "CALLs to the charge point queued or in flight"},
      {"evgate_ocpp_messages_total",
       MetricType::Counter,
       "1",
       {"charge_point", "direction", "action", "result"},
       kOc,
       "OCPP-J CALLs exchanged with the charge point since the bridge started: direction in "
       "(from the charger) or out, the action, and ok, the OCPP-J error code, timeout or "
       "closed"},
      {"evgate_ocpp_upstream_state",
       MetricType::Gauge,
       "1",
       {"state"},
       kOc,
       "Connection to the central CSMS as a state set (disabled while none is configured)"},
      {"evgate_ocpp_upstream_queue_length",
       MetricType::Gauge,
       "1",
       {},
       kOc,
       "Messages waiting in the offline queue for the CSMS"},

      // --- Grid controller (V2X grid modes, docs/v2x.md).
      {"evgate_grid_mode",
       MetricType::Gauge,
       "1",
       {"state"},
       kGc,
       "Grid mode of a site with an off-grid box as a state set (on_grid, outage_standby, "
       "outage_sleep, off_grid, resync); every value 0 on a site without grid_modes"},
      {"evgate_grid_mode_since_timestamp_seconds",
       MetricType::Gauge,
       "s",
       {},
       kGc,
       "When the current grid mode was entered (Unix time)"},
      {"evgate_grid_box_grid_present",
       MetricType::Gauge,
       "1",
       {},
       kGc,
       "1 while the off-grid box reports the grid present; absent while the box is not heard"},
      {"evgate_grid_island_power_watts",
       MetricType::Gauge,
       "W",
       {},
       kGc,
       "Power the vehicle forming the island supplies to the building's backup loads (0 while "
       "no island is formed)"},
      {"evgate_grid_island_discharge_limit_watts",
       MetricType::Gauge,
       "W",
       {},
       kGc,
       "Most the island's vehicle may discharge into the backup loads (positive; 0: it must "
       "stop); only while an EVSE forms an island"},
      {"evgate_grid_standby_remaining_seconds",
       MetricType::Gauge,
       "s",
       {},
       kGc,
       "Time left of the off-grid standby countdown before the V2X system sleeps to save its "
       "backup battery; only in outage_standby"},
  };
  return *catalogue;
}

const MetricSpec* FindMetric(std::string_view name) {
  // A scrape of a large site looks up tens of thousands of samples.
  static const auto* index = [] {
    auto* by_name = new std::unordered_map<std::string_view, const MetricSpec*>();
    for (const MetricSpec& spec : MetricCatalogue()) by_name->emplace(spec.name, &spec);
    return by_name;
  }();
  auto it = index->find(name);
  return it == index->end() ? nullptr : it->second;
}

std::vector<std::string> SeriesNames(const MetricSpec& spec) {
  const std::string name(spec.name);
  if (spec.type == MetricType::Histogram) {
    return {name + "_bucket", name + "_sum", name + "_count"};
  }
  return {name};
}

std::string CatalogueMarkdown() {
  std::string out =
      "# Metrics\n\n"
      "Generated from `services/metrics_exporter/metric_catalogue.cc` by\n"
      "`bazel run //services/metrics_exporter -- --print-catalogue`; a test fails when this file\n"
      "and the catalogue differ. The exporter serves exactly these metrics on\n"
      "`services.metrics_listen` (`/metrics`); what each service does not answer is absent and\n"
      "`evgate_up{service=...}` is 0.\n\n"
      "| name | type | unit | labels | from | meaning |\n"
      "|---|---|---|---|---|---|\n";
  for (const MetricSpec& spec : MetricCatalogue()) {
    std::string labels;
    for (std::string_view label : spec.labels) {
      if (!labels.empty()) labels += ", ";
      ((labels += "`") += label) += "`";
    }
    for (std::string_view part :
         {std::string_view("| `"), spec.name, std::string_view("` | "), TypeName(spec.type),
          std::string_view(" | "), spec.unit, std::string_view(" | "), std::string_view(labels),
          std::string_view(" | "), spec.source, std::string_view(" | "), spec.help,
          std::string_view(" |\n")}) {
      out += part;
    }
  }
  out +=
      "\n## Not served yet\n\n"
      "Asked for by issue #12 but not in the services' APIs yet, so not exported (no value is\n"
      "made up):\n\n"
      "- the upstream offline queue's age (the upstream CSMS client is not built).\n\n"
      "The SoC of DC vehicles is `evgate_evse_soc_percent`; V2X discharge on the grid is a\n"
      "negative EVSE power.\n";
  return out;
}

}  // namespace evgate::metrics

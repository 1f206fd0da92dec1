#include "site_controller/config/internal/parse.h"

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "site_controller/config/device_profiles.h"
#include "site_controller/config/internal/yaml_reader.h"
#include "site_controller/config/site_config.h"
#include "yaml-cpp/yaml.h"

namespace evgate::site::internal {
namespace {

const EnumTable<BusType>& BusTypes() {
  static const auto* const kTable = new EnumTable<BusType>{{"modbus_rtu", BusType::kModbusRtu},
                                                           {"modbus_tcp", BusType::kModbusTcp},
                                                           {"can", BusType::kCan}};
  return *kTable;
}

const EnumTable<Parity>& Parities() {
  static const auto* const kTable = new EnumTable<Parity>{
      {"none", Parity::kNone}, {"even", Parity::kEven}, {"odd", Parity::kOdd}};
  return *kTable;
}

const EnumTable<CanTransport>& CanTransports() {
  static const auto* const kTable = new EnumTable<CanTransport>{
      {"socketcan", CanTransport::kSocketCan}, {"udp", CanTransport::kUdp}};
  return *kTable;
}

const EnumTable<ConnectorType>& ConnectorTypes() {
  static const auto* const kTable =
      new EnumTable<ConnectorType>{{"type2", ConnectorType::kType2},
                                   {"ccs1", ConnectorType::kCcs1},
                                   {"ccs2", ConnectorType::kCcs2},
                                   {"chademo", ConnectorType::kChademo},
                                   {"gbt", ConnectorType::kGbt}};
  return *kTable;
}

const std::vector<Phase>& AllPhases() {
  static const auto* const kPhases = new std::vector<Phase>{Phase::kL1, Phase::kL2, Phase::kL3};
  return *kPhases;
}

// The fields of an EVSE that only make sense for one kind of charger.
constexpr absl::string_view kAcEvseFields[] = {"min_current_a", "max_current_a", "current_step_a",
                                               "failsafe_current_a"};
constexpr absl::string_view kDcEvseFields[] = {"min_power_w",
                                               "max_power_w",
                                               "efficiency",
                                               "failsafe_power_w",
                                               "bidirectional",
                                               "max_discharge_power_w",
                                               "max_discharge_power_offgrid_w",
                                               "soc_min_pct",
                                               "soc_max_pct"};
constexpr absl::string_view kBidirectionalFields[] = {
    "max_discharge_power_w", "max_discharge_power_offgrid_w", "soc_min_pct", "soc_max_pct"};

class Parser {
 public:
  Parser(SiteConfig* config, ErrorList* errors) : c_(*config), errors_(errors) {}

  void Parse(const YAML::Node& root) {
    Value value{root, "", 1};
    if (root.IsNull()) {
      errors_->Add(1, "",
                   "the file is empty; a site needs at least the sections "
                   "site, grid and services");
      return;
    }
    if (!root.IsMap()) {
      errors_->Add(LineOf(root) > 0 ? LineOf(root) : 1, "",
                   absl::StrCat("expected a mapping of sections (site:, "
                                "grid:, ...) at the top level, got ",
                                Describe(root)));
      return;
    }
    SourceLines root_lines;
    MapReader r(value, errors_, &root_lines);
    // The order of the "allowed" list in messages, as in docs/site-yaml.md.
    for (absl::string_view key :
         {"site", "grid", "circuits", "buses", "devices", "stations", "authorization", "ocpp",
          "controller", "grid_modes", "services", "simulation", "insecure_demo"}) {
      r.Allow(key);
    }
    r.Bool("insecure_demo", &c_.insecure_demo);
    ParseSite(r);
    ParseGrid(r);
    ParseCircuits(r);
    ParseBuses(r);
    ParseDevices(r);
    ParseController(r);
    ParseGridModes(r);
    ParseStations(r);
    ParseAuthorization(r);
    ParseOcpp(r);
    ParseServices(r);
    ParseSimulation(r);
    r.Finish("at the top level");
  }

 private:
  void ParseSite(MapReader& root) {
    c_.site.source.SetPath("site", 0);
    std::optional<Value> v = root.Mapping("site", Required("add e.g. 'site: {id: depot-1}'"));
    if (!v) {
      return;
    }
    MapReader r(*v, errors_, &c_.site.source);
    r.Id("id", &c_.site.id, Required("a short id for the site, e.g. depot-1"));
    r.String("name", &c_.site.name);
    r.Finish("in site");
  }

  void ParseGrid(MapReader& root) {
    GridConfig& g = c_.grid;
    g.source.SetPath("grid", 0);
    g.phases = AllPhases();
    std::optional<Value> v =
        root.Mapping("grid", Required("describe the grid connection: fuse_limit_a, ..."));
    if (!v) {
      return;
    }
    MapReader r(*v, errors_, &g.source);
    r.Phases("phases", &g.phases);
    bool uniform = false;
    if (r.PerPhase("fuse_limit_a", &g.fuse_limit_a, &uniform,
                   Required("the main fuse rating in A, e.g. 63 (every "
                            "phase) or [63, 63, 63]")) &&
        uniform) {
      g.fuse_limit_a.assign(g.phases.size(), g.fuse_limit_a.front());
    }
    r.Number("nominal_voltage_v", &g.nominal_voltage_v);
    r.Number("contract_power_w", &g.contract_power_w);
    r.Number("export_limit_w", &g.export_limit_w);
    r.Id("meter", &g.meter);
    r.Finish("in grid");
  }

  void ParseCircuits(MapReader& root) {
    std::optional<std::vector<Value>> items = root.Sequence("circuits");
    if (!items) {
      return;
    }
    std::vector<bool> phases_given;
    std::vector<bool> uniform_limit;
    for (const Value& item : *items) {
      if (!CheckMapping(item, errors_)) {
        continue;
      }
      CircuitConfig& circuit = c_.circuits.emplace_back();
      MapReader r(item, errors_, &circuit.source);
      r.Id("id", &circuit.id, Required("a unique id, e.g. garage"));
      r.Id("parent", &circuit.parent,
           Required("'grid' or the id of the circuit that feeds this one"));
      phases_given.push_back(r.Phases("phases", &circuit.phases));
      bool uniform = false;
      r.PerPhase("limit_a", &circuit.limit_a, &uniform,
                 Required("the breaker rating in A, e.g. 32 (every phase) or "
                          "one number per phase"));
      uniform_limit.push_back(uniform);
      r.Id("meter", &circuit.meter);
      r.Finish("in a circuit");
    }
    // Phases default to the parent's, which may be defined further down.
    std::map<std::string, size_t> index;
    for (size_t i = 0; i < c_.circuits.size(); ++i) {
      index.emplace(c_.circuits[i].id, i);
    }
    std::vector<bool> resolved = phases_given;
    for (bool changed = true; changed;) {
      changed = false;
      for (size_t i = 0; i < c_.circuits.size(); ++i) {
        if (resolved[i]) {
          continue;
        }
        CircuitConfig& circuit = c_.circuits[i];
        if (circuit.parent == kGridCircuitId) {
          circuit.phases = c_.grid.phases;
        } else if (auto it = index.find(circuit.parent);
                   it != index.end() && resolved[it->second]) {
          circuit.phases = c_.circuits[it->second].phases;
        } else {
          continue;
        }
        resolved[i] = true;
        changed = true;
      }
    }
    for (size_t i = 0; i < c_.circuits.size(); ++i) {
      CircuitConfig& circuit = c_.circuits[i];
      // A cycle or an unknown parent (both reported by the validator).
      if (!resolved[i]) {
        circuit.phases = c_.grid.phases;
      }
      if (uniform_limit[i] && !circuit.limit_a.empty()) {
        circuit.limit_a.assign(circuit.phases.size(), circuit.limit_a.front());
      }
    }
  }

  void ParseBuses(MapReader& root) {
    std::optional<std::vector<Value>> items = root.Sequence("buses");
    if (!items) {
      return;
    }
    for (const Value& item : *items) {
      if (!CheckMapping(item, errors_)) {
        continue;
      }
      BusConfig& bus = c_.buses.emplace_back();
      MapReader r(item, errors_, &bus.source);
      r.Id("id", &bus.id, Required("a unique id, e.g. rs485-1"));
      if (!r.Enum("type", BusTypes(), "bus type", &bus.type,
                  Required("modbus_rtu, modbus_tcp or can"))) {
        // Without a valid type every bus field is plausible.
        for (absl::string_view key :
             {"port", "baud", "parity", "data_bits", "stop_bits", "rs485", "inter_frame_gap_ms",
              "timeout_ms", "retries", "host", "interface", "transport", "bitrate", "udp_group",
              "udp_port"}) {
          r.Allow(key);
        }
        r.Finish();
        continue;
      }
      switch (bus.type) {
        case BusType::kModbusRtu: {
          ModbusRtuSettings& s = bus.modbus_rtu.emplace();
          r.String("port", &s.port, Required("the serial device, e.g. /dev/ttyUSB0"));
          r.Integer("baud", &s.baud,
                    Required("the baud rate all devices on the bus use, "
                             "e.g. 9600"));
          r.Enum("parity", Parities(), "parity", &s.parity);
          r.Integer("data_bits", &s.data_bits);
          r.Integer("stop_bits", &s.stop_bits);
          r.Bool("rs485", &s.rs485);
          r.Integer("inter_frame_gap_ms", &s.inter_frame_gap_ms);
          r.Integer("timeout_ms", &s.timeout_ms);
          r.Integer("retries", &s.retries);
          break;
        }
        case BusType::kModbusTcp: {
          ModbusTcpSettings& s = bus.modbus_tcp.emplace();
          r.String("host", &s.host, Required("the Modbus TCP server (gateway) address"));
          r.Integer("port", &s.port);
          r.Integer("timeout_ms", &s.timeout_ms);
          r.Integer("retries", &s.retries);
          break;
        }
        case BusType::kCan: {
          CanSettings& s = bus.can.emplace();
          r.String("interface", &s.interface, Required("the CAN interface, e.g. can0"));
          r.Enum("transport", CanTransports(), "CAN transport", &s.transport);
          r.Integer("bitrate", &s.bitrate);
          if (s.transport == CanTransport::kUdp) {
            r.String("udp_group", &s.udp_group);
            r.Integer("udp_port", &s.udp_port);
          }
          break;
        }
      }
      r.Finish(
          absl::StrCat("for a ", BusTypeName(bus.type), " bus",
                       bus.type == BusType::kCan && bus.can->transport == CanTransport::kSocketCan
                           ? " with transport socketcan"
                           : ""));
    }
  }

  void ParseDevices(MapReader& root) {
    std::optional<std::vector<Value>> items = root.Sequence("devices");
    if (!items) {
      return;
    }
    for (const Value& item : *items) {
      if (!CheckMapping(item, errors_)) {
        continue;
      }
      DeviceConfig& device = c_.devices.emplace_back();
      MapReader r(item, errors_, &device.source);
      r.Id("id", &device.id, Required("a unique id, e.g. grid-meter"));
      if (std::optional<Value> v =
              r.Field("profile", Required("the device model, e.g. eastron_sdm630"))) {
        if (std::optional<std::string> name = ToString(*v, errors_)) {
          device.profile_name = *name;
          device.profile = FindDeviceProfile(*name);
          if (device.profile == nullptr) {
            std::vector<std::string> names;
            for (const DeviceProfile& p : AllDeviceProfiles()) {
              names.emplace_back(p.name);
            }
            std::string message = absl::StrCat("unknown device profile '", *name, "'");
            if (auto guess = DidYouMean(*name, names)) {
              absl::StrAppend(&message, " (did you mean '", *guess, "'?)");
            }
            absl::StrAppend(&message, "; allowed: ", absl::StrJoin(names, ", "));
            errors_->Add(v->line, v->path, std::move(message));
          }
        }
      }
      r.Id("bus", &device.bus);
      r.Integer("address", &device.address);
      r.String("charge_point_id", &device.charge_point_id);
      r.String("password_file", &device.password_file);
      r.String("register_map", &device.register_map);
      r.Integer("poll_period_ms", &device.poll_period_ms);
      r.Integer("stale_after_missed_polls", &device.stale_after_missed_polls);
      r.Finish("in a device");
    }
  }

  void ParseController(MapReader& root) {
    ControllerConfig& k = c_.controller;
    k.source.SetPath("controller", 0);
    std::optional<Value> v = root.Mapping("controller");
    if (!v) {
      return;
    }
    MapReader r(*v, errors_, &k.source);
    r.Number("margin_a", &k.margin_a);
    r.Number("ramp_up_a_per_s", &k.ramp_up_a_per_s);
    r.Number("hysteresis_a", &k.hysteresis_a);
    r.Integer("tick_ms", &k.tick_ms);
    r.Integer("meter_timeout_ms", &k.meter_timeout_ms);
    r.Integer("min_pause_s", &k.min_pause_s);
    r.Number("failsafe_current_a", &k.failsafe_current_a);
    r.Finish("in controller");
  }

  void ParseGridModes(MapReader& root) {
    std::optional<Value> v = root.Mapping("grid_modes");
    if (!v) {
      return;
    }
    GridModesConfig& g = c_.grid_modes.emplace();
    g.source.SetPath("grid_modes", 0);
    MapReader r(*v, errors_, &g.source);
    r.Id("off_grid_box", &g.off_grid_box,
         Required("the id of the off-grid box under devices (profile v2x_offgrid_box)"));
    r.Integer("standby_countdown_s", &g.standby_countdown_s);
    r.Bool("auto_off_grid", &g.auto_off_grid);
    r.Integer("resync_stable_s", &g.resync_stable_s);
    r.Bool("pn_pull_in", &g.pn_pull_in);
    r.Finish("in grid_modes");
  }

  void ParseStations(MapReader& root) {
    std::optional<std::vector<Value>> items = root.Sequence("stations");
    if (!items) {
      return;
    }
    for (const Value& item : *items) {
      if (!CheckMapping(item, errors_)) {
        continue;
      }
      StationConfig& station = c_.stations.emplace_back();
      MapReader r(item, errors_, &station.source);
      r.Id("id", &station.id, Required("a unique id, e.g. wb1"));
      r.Id("device", &station.device, Required("the id of the charger's entry under devices"));
      r.Id("circuit", &station.circuit,
           Required("'grid' or the id of the circuit that feeds the station"));
      const DeviceConfig* device = c_.FindDevice(station.device);
      const DeviceProfile* profile = device ? device->profile : nullptr;
      if (profile != nullptr && !IsCharger(profile->kind)) {
        profile = nullptr;
      }
      if (profile != nullptr) {
        station.max_power_w = profile->station_max_power_w;
      }
      r.Number("max_power_w", &station.max_power_w);
      if (std::optional<std::vector<Value>> evses =
              r.Sequence("evses", Required("one entry per connector, e.g. "
                                           "'evses: [{id: wb1, connector: 1}]'"))) {
        for (const Value& evse_item : *evses) {
          if (!CheckMapping(evse_item, errors_)) {
            continue;
          }
          ParseEvse(evse_item, station, device, profile);
        }
      }
      r.Finish("in a station");
    }
  }

  void ParseEvse(const Value& item, StationConfig& station, const DeviceConfig* device,
                 const DeviceProfile* profile) {
    EvseConfig& evse = station.evses.emplace_back();
    evse.connector = static_cast<int>(station.evses.size());
    MapReader r(item, errors_, &evse.source);
    r.Id("id", &evse.id, Required("an id unique across the site, e.g. wb1"));
    r.Integer("connector", &evse.connector);
    const bool phases_given = r.Phases("phases", &evse.phases);

    AcEvseLimits ac;
    std::optional<double> max_current_a;
    std::optional<double> failsafe_current_a;
    r.Number("min_current_a", &ac.min_current_a);
    r.Number("max_current_a", &max_current_a);
    r.Number("current_step_a", &ac.current_step_a);
    r.Number("failsafe_current_a", &failsafe_current_a);

    DcEvseLimits dc;
    std::optional<double> max_power_w;
    std::optional<double> max_discharge_power_w;
    std::optional<double> max_discharge_power_offgrid_w;
    r.Number("min_power_w", &dc.min_power_w);
    r.Number("max_power_w", &max_power_w);
    r.Number("efficiency", &dc.efficiency);
    r.Number("failsafe_power_w", &dc.failsafe_power_w);
    r.Bool("bidirectional", &dc.bidirectional);
    r.Number("max_discharge_power_w", &max_discharge_power_w);
    r.Number("max_discharge_power_offgrid_w", &max_discharge_power_offgrid_w);
    r.Number("soc_min_pct", &dc.soc_min_pct);
    r.Number("soc_max_pct", &dc.soc_max_pct);

    ConnectorType connector_type;
    if (r.Enum("connector_type", ConnectorTypes(), "connector type", &connector_type)) {
      evse.connector_type = connector_type;
    }
    r.Integer("priority", &evse.priority);
    r.IdList("groups", &evse.groups);
    r.Finish("in an EVSE");

    if (profile == nullptr) {
      return;  // unknown device: reported elsewhere
    }
    const std::string device_text =
        absl::StrCat("device '", device->id, "' uses profile ", profile->name, " (",
                     DeviceKindName(profile->kind), ")");

    if (!phases_given) {
      if (profile->three_phase) {
        evse.phases = AllPhases();
      } else {
        errors_->Add(evse.source.line(), evse.source.PathOf("phases"),
                     absl::StrCat("required field is missing; ", device_text,
                                  " and is single-phase: give the site phase "
                                  "it is wired to, e.g. [L1]"));
      }
    }

    if (profile->kind == DeviceKind::kAcWallbox) {
      ReportFieldsNotFor(evse, kDcEvseFields, "DC chargers", device_text);
      ac.max_current_a = max_current_a.value_or(profile->max_current_a);
      if (failsafe_current_a) {
        ac.failsafe_current_a = *failsafe_current_a;
      } else {
        // The site default, moved into this EVSE's range (0 stays 0: pause).
        const double site = c_.controller.failsafe_current_a;
        ac.failsafe_current_a =
            site == 0 ? 0 : std::max(ac.min_current_a, std::min(site, ac.max_current_a));
      }
      evse.ac = ac;
      return;
    }
    ReportFieldsNotFor(evse, kAcEvseFields, "AC wallboxes", device_text);
    if (!dc.bidirectional) {
      for (absl::string_view field : kBidirectionalFields) {
        if (!evse.source.Has(field)) {
          continue;
        }
        errors_->Add(evse.source.LineOf(field), evse.source.PathOf(field),
                     absl::StrCat("applies to bidirectional (V2X) EVSEs only; "
                                  "set 'bidirectional: true' to use it"));
      }
    }
    dc.max_power_w = max_power_w.value_or(station.max_power_w);
    dc.max_discharge_power_w = max_discharge_power_w.value_or(profile->max_discharge_power_w);
    dc.max_discharge_power_offgrid_w =
        max_discharge_power_offgrid_w.value_or(profile->max_discharge_power_offgrid_w);
    evse.dc = dc;
  }

  template <size_t N>
  void ReportFieldsNotFor(const EvseConfig& evse, const absl::string_view (&fields)[N],
                          absl::string_view kind, const std::string& device_text) {
    for (absl::string_view field : fields) {
      if (!evse.source.Has(field)) {
        continue;
      }
      errors_->Add(evse.source.LineOf(field), evse.source.PathOf(field),
                   absl::StrCat("applies to ", kind, " only; ", device_text));
    }
  }

  void ParseAuthorization(MapReader& root) {
    AuthorizationConfig& a = c_.authorization;
    a.source.SetPath("authorization", 0);
    std::optional<Value> v = root.Mapping("authorization");
    if (!v) {
      return;
    }
    MapReader r(*v, errors_, &a.source);
    r.IdList("free_vend_evses", &a.free_vend_evses);
    if (std::optional<std::vector<Value>> cards = r.Sequence("cards")) {
      for (const Value& item : *cards) {
        if (!CheckMapping(item, errors_)) {
          continue;
        }
        CardConfig& card = a.cards.emplace_back();
        MapReader cr(item, errors_, &card.source);
        if (cr.String("uid", &card.uid, Required("the RFID UID in hex, e.g. \"04A1B2C3\""))) {
          card.uid = absl::AsciiStrToUpper(card.uid);
        }
        cr.String("name", &card.name);
        cr.Time("valid_from", &card.valid_from);
        cr.Time("valid_until", &card.valid_until);
        cr.IdList("evses", &card.evses);
        cr.IdList("groups", &card.groups);
        cr.Bool("blocked", &card.blocked);
        cr.Bool("master", &card.master);
        cr.Finish("in a card");
      }
    }
    r.Integer("offline_cache_ttl_s", &a.offline_cache_ttl_s);
    r.Integer("connection_timeout_s", &a.connection_timeout_s);
    r.Finish("in authorization");
  }

  void ParseOcpp(MapReader& root) {
    OcppConfig& o = c_.ocpp;
    o.source.SetPath("ocpp", 0);
    std::optional<Value> v = root.Mapping("ocpp");
    if (!v) {
      return;
    }
    MapReader r(*v, errors_, &o.source);
    if (std::optional<Value> lv = r.Mapping("local")) {
      OcppLocalConfig& l = o.local.emplace();
      MapReader lr(*lv, errors_, &l.source);
      lr.String("listen", &l.listen);
      lr.Integer("security_profile", &l.security_profile);
      lr.String("tls_cert_file", &l.tls_cert_file);
      lr.String("tls_key_file", &l.tls_key_file);
      lr.String("ca_file", &l.ca_file);
      lr.Finish("in ocpp.local");
    }
    if (std::optional<Value> uv = r.Mapping("upstream")) {
      OcppUpstreamConfig& u = o.upstream.emplace();
      MapReader ur(*uv, errors_, &u.source);
      ur.String("url", &u.url, Required("the CSMS address, e.g. wss://csms.example.com/ocpp"));
      ur.String("charge_point_id", &u.charge_point_id,
                Required("the identity the CSMS knows this site by"));
      ur.Integer("security_profile", &u.security_profile);
      ur.String("password_file", &u.password_file);
      ur.String("ca_file", &u.ca_file);
      ur.String("client_cert_file", &u.client_cert_file);
      ur.String("client_key_file", &u.client_key_file);
      ur.Finish("in ocpp.upstream");
    }
    r.Finish("in ocpp");
  }

  void ParseServices(MapReader& root) {
    ServicesConfig& s = c_.services;
    s.source.SetPath("services", 0);
    std::optional<Value> v =
        root.Mapping("services", Required("at least 'services: {session_database: "
                                          "/var/lib/evgate/sessions.db}'"));
    if (!v) {
      return;
    }
    MapReader r(*v, errors_, &s.source);
    r.String("api_listen", &s.api_listen);
    r.String("metrics_listen", &s.metrics_listen);
    r.String("session_database", &s.session_database,
             Required("an absolute path where the charge records are kept, "
                      "e.g. /var/lib/evgate/sessions.db"));
    if (std::optional<Value> tv = r.Mapping("tls")) {
      TlsConfig& t = s.tls.emplace();
      MapReader tr(*tv, errors_, &t.source);
      tr.String("cert_file", &t.cert_file, Required("the PEM server certificate"));
      tr.String("key_file", &t.key_file, Required("the PEM private key"));
      tr.String("client_ca_file", &t.client_ca_file);
      tr.String("client_cert_file", &t.client_cert_file);
      tr.String("client_key_file", &t.client_key_file);
      tr.Finish("in services.tls");
    }
    ParseServiceAuth(r);
    for (absl::string_view name : ServiceNames()) {
      std::optional<Value> ev = r.Mapping(name);
      if (!ev) {
        continue;
      }
      ServiceEndpointConfig& e = s.endpoints[std::string(name)];
      MapReader er(*ev, errors_, &e.source);
      er.String("listen", &e.listen);
      er.String("endpoint", &e.endpoint);
      er.Finish(absl::StrCat("in services.", name));
    }
    r.Finish("in services");
  }

  void ParseServiceAuth(MapReader& services) {
    ServiceAuthConfig& a = c_.services.auth;
    a.source.SetPath("services.auth", 0);
    std::optional<Value> v = services.Mapping("auth");
    if (!v) {
      return;
    }
    MapReader r(*v, errors_, &a.source);
    if (std::optional<std::vector<Value>> principals = r.Sequence("principals")) {
      for (const Value& item : *principals) {
        if (!CheckMapping(item, errors_)) {
          continue;
        }
        PrincipalConfig& p = a.principals.emplace_back();
        MapReader pr(item, errors_, &p.source);
        pr.Id("name", &p.name, Required("a short name for logs, e.g. load-balancer"));
        pr.String("certificate", &p.certificate);
        pr.String("token_file", &p.token_file);
        pr.IdList("roles", &p.roles, Required("e.g. [viewer] or [controller, viewer]"));
        pr.Finish("in a principal");
      }
    }
    r.Finish("in services.auth");
  }

  void ParseSimulation(MapReader& root) {
    SimulationConfig& sim = c_.simulation;
    sim.source.SetPath("simulation", 0);
    std::optional<Value> v = root.Mapping("simulation");
    if (!v) {
      return;
    }
    MapReader r(*v, errors_, &sim.source);
    r.IdList("devices", &sim.devices);
    if (std::optional<Value> bv = r.Mapping("building_load")) {
      BuildingLoadConfig& b = sim.building_load.emplace();
      MapReader br(*bv, errors_, &b.source);
      bool uniform = false;
      if (br.PerPhase("base_a", &b.base_a, &uniform) && uniform) {
        b.base_a.assign(c_.grid.phases.size(), b.base_a.front());
      }
      if (br.PerPhase("peak_a", &b.peak_a, &uniform) && uniform) {
        b.peak_a.assign(c_.grid.phases.size(), b.peak_a.front());
      }
      br.Finish("in simulation.building_load");
    }
    if (std::optional<std::vector<Value>> vehicles = r.Sequence("vehicles")) {
      for (const Value& item : *vehicles) {
        if (!CheckMapping(item, errors_)) {
          continue;
        }
        SimulatedVehicleConfig& vehicle = sim.vehicles.emplace_back();
        MapReader vr(item, errors_, &vehicle.source);
        vr.Id("evse", &vehicle.evse, Required("the EVSE the vehicle is plugged into, e.g. wb1"));
        // Defaults come from the EVSE; an unknown or DC EVSE is the
        // validator's to report.
        if (const EvseConfig* evse = c_.FindEvse(vehicle.evse); evse != nullptr && evse->ac) {
          vehicle.max_current_a = evse->ac->max_current_a;
          vehicle.phases = evse->phases.size() == 1 ? 1 : 3;
        } else if (evse != nullptr && evse->dc) {
          vehicle.max_power_w = evse->dc->max_power_w;
        }
        vr.Number("max_current_a", &vehicle.max_current_a);
        vr.Integer("phases", &vehicle.phases);
        vr.Number("max_power_w", &vehicle.max_power_w);
        vr.Number("energy_to_full_wh", &vehicle.energy_to_full_wh);
        if (vr.String("id_tag", &vehicle.id_tag)) {
          vehicle.id_tag = absl::AsciiStrToUpper(*vehicle.id_tag);
        }
        vr.Finish("in a simulated vehicle");
      }
    }
    r.Finish("in simulation");
  }

  SiteConfig& c_;
  ErrorList* errors_;
};

}  // namespace

void ParseSiteConfig(const YAML::Node& root, SiteConfig* config, ErrorList* errors) {
  Parser(config, errors).Parse(root);
}

}  // namespace evgate::site::internal

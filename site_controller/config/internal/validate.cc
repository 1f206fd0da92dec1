#include "site_controller/config/internal/validate.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "site_controller/config/device_profiles.h"
#include "site_controller/config/internal/yaml_reader.h"
#include "site_controller/config/site_config.h"

namespace evgate::site::internal {
namespace {

// 60000 → "60000", 0.1 → "0.1".
std::string Num(double value) { return absl::StrFormat("%.10g", value); }

// A current for a person: to the hundredth of an ampere.
std::string Amperes(double a) { return absl::StrCat(Num(std::round(a * 100) / 100), " A"); }

std::string Quoted(absl::string_view text) { return absl::StrCat("'", text, "'"); }

std::string TimeText(absl::Time time) {
  return absl::FormatTime(absl::RFC3339_sec, time, absl::UTCTimeZone());
}

bool Contains(const std::vector<Phase>& phases, Phase phase) {
  return std::find(phases.begin(), phases.end(), phase) != phases.end();
}

// "unknown circuit 'garag' (did you mean 'garage'?); known: grid, garage".
std::string UnknownReference(absl::string_view what, absl::string_view id,
                             const std::vector<std::string>& known) {
  std::string message = absl::StrCat("unknown ", what, " '", id, "'");
  if (std::optional<std::string> guess = DidYouMean(id, known)) {
    absl::StrAppend(&message, " (did you mean '", *guess, "'?)");
  }
  if (known.empty()) {
    absl::StrAppend(&message, "; none is defined");
  } else {
    constexpr size_t kMaxListed = 12;
    std::vector<std::string> listed(
        known.begin(),
        known.begin() + static_cast<std::ptrdiff_t>(std::min(known.size(), kMaxListed)));
    absl::StrAppend(&message, "; known: ", absl::StrJoin(listed, ", "),
                    known.size() > kMaxListed ? ", ..." : "");
  }
  return message;
}

struct HostPort {
  std::string host;
  int port = 0;
};

// "host:port" or "[v6addr]:port".
std::optional<HostPort> ParseHostPort(absl::string_view text) {
  HostPort result;
  absl::string_view port_text;
  if (absl::StartsWith(text, "[")) {
    const size_t close = text.find("]:");
    if (close == absl::string_view::npos || close == 1) {
      return std::nullopt;
    }
    result.host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == absl::string_view::npos || colon == 0) {
      return std::nullopt;
    }
    result.host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
    for (char c : result.host) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') {
        return std::nullopt;
      }
    }
  }
  if (port_text.empty() || port_text.size() > 5) {
    return std::nullopt;
  }
  for (char c : port_text) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      return std::nullopt;
    }
  }
  if (!absl::SimpleAtoi(port_text, &result.port) || result.port > 65535) {
    return std::nullopt;
  }
  return result;
}

bool IsHex(absl::string_view text) {
  for (char c : text) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return true;
}

// OCPP identities go into the URL path and the basic-auth user name.
bool IsValidChargePointId(absl::string_view id) {
  if (id.empty() || id.size() > 48) {
    return false;
  }
  for (char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') {
      return false;
    }
  }
  return true;
}
constexpr char kChargePointIdRule[] = "use 1–48 characters: letters, digits, '.', '-' and '_'";

class Validator {
 public:
  Validator(const SiteConfig& config, ErrorList* errors) : c_(config), errors_(errors) {}

  void Run() {
    IndexIds();
    CheckGrid();
    CheckCircuits();
    CheckCircuitCycles();
    CheckMeters();
    CheckBuses();
    CheckDevices();
    CheckStations();
    CheckAuthorization();
    CheckOcpp();
    CheckController();
    CheckGridModes();
    CheckFailsafeFit();
    CheckServices();
    CheckServiceAuth();
    CheckSimulation();
  }

 private:
  void Error(const SourceLines& source, absl::string_view field, std::string message) {
    std::string path = source.PathOf(field);
    if (errors_->Unreadable(path)) {
      return;  // already reported while reading
    }
    errors_->Add(source.LineOf(field), std::move(path), std::move(message));
  }

  // Indexes items by id; a duplicate is reported on its second occurrence.
  template <typename T>
  void IndexById(const std::vector<T>& items, absl::string_view kind,
                 std::map<std::string, size_t>* index, std::vector<std::string>* ids,
                 absl::string_view reserved = {}) {
    for (size_t i = 0; i < items.size(); ++i) {
      const T& item = items[i];
      if (item.id.empty() || item.id == reserved) {
        continue;
      }
      auto [it, inserted] = index->emplace(item.id, i);
      if (inserted) {
        ids->push_back(item.id);
        continue;
      }
      const T& first = items[it->second];
      Error(item.source, "id",
            absl::StrCat("duplicate ", kind, " id '", item.id, "'; first defined at line ",
                         first.source.line(), " (", first.source.path(), ")"));
    }
  }

  void IndexIds() {
    circuit_ids_.push_back(kGridCircuitId);
    for (const CircuitConfig& circuit : c_.circuits) {
      if (circuit.id == kGridCircuitId) {
        Error(circuit.source, "id",
              "'grid' is reserved for the grid connection (the root of the "
              "circuit tree); choose another id");
      }
    }
    IndexById(c_.circuits, "circuit", &circuits_, &circuit_ids_, kGridCircuitId);
    IndexById(c_.buses, "bus", &buses_, &bus_ids_);
    IndexById(c_.devices, "device", &devices_, &device_ids_);
    IndexById(c_.stations, "station", &stations_, &station_ids_);
    for (const StationConfig& station : c_.stations) {
      for (const EvseConfig& evse : station.evses) {
        if (evse.id.empty()) {
          continue;
        }
        auto [it, inserted] = evses_.emplace(evse.id, &evse);
        if (inserted) {
          evse_ids_.push_back(evse.id);
          for (const std::string& group : evse.groups) {
            groups_.insert(group);
          }
          continue;
        }
        Error(evse.source, "id",
              absl::StrCat("duplicate EVSE id '", evse.id,
                           "'; EVSE ids are unique across the site; first "
                           "defined at line ",
                           it->second->source.line(), " (", it->second->source.path(), ")"));
      }
    }
  }

  const CircuitConfig* Circuit(absl::string_view id) const {
    auto it = circuits_.find(std::string(id));
    return it == circuits_.end() ? nullptr : &c_.circuits[it->second];
  }
  const DeviceConfig* Device(absl::string_view id) const {
    auto it = devices_.find(std::string(id));
    return it == devices_.end() ? nullptr : &c_.devices[it->second];
  }
  const BusConfig* Bus(absl::string_view id) const {
    auto it = buses_.find(std::string(id));
    return it == buses_.end() ? nullptr : &c_.buses[it->second];
  }
  // Phases of "grid" or a circuit; nullptr when unknown.
  const std::vector<Phase>* PhasesOf(absl::string_view circuit) const {
    if (circuit == kGridCircuitId) {
      return &c_.grid.phases;
    }
    const CircuitConfig* found = Circuit(circuit);
    return found ? &found->phases : nullptr;
  }
  static std::string CircuitName(absl::string_view circuit) {
    return circuit == kGridCircuitId ? std::string("the grid")
                                     : absl::StrCat("circuit '", circuit, "'");
  }

  // A phase list of a grid or circuit: distinct L1..L3.
  void CheckPhaseSet(const SourceLines& source, const std::vector<Phase>& phases) {
    std::set<Phase> seen;
    for (Phase phase : phases) {
      if (!seen.insert(phase).second) {
        Error(source, "phases",
              absl::StrCat(PhaseName(phase), " is listed twice; list each phase at most once"));
        return;
      }
    }
  }

  // Per-phase values: one per phase and each > 0.
  void CheckPerPhaseLimits(const SourceLines& source, absl::string_view field,
                           const std::vector<Phase>& phases, const std::vector<double>& values,
                           absl::string_view what) {
    if (!source.Has(field) || values.empty()) {
      return;
    }
    if (values.size() != phases.size()) {
      Error(source, field,
            absl::StrCat(
                values.size(), values.size() == 1 ? " value given for " : " values given for ",
                phases.size(), phases.size() == 1 ? " phase (" : " phases (", PhaseListName(phases),
                "); give one per phase, in that order, or a single "
                "number for all"));
    }
    for (double value : values) {
      if (value <= 0) {
        Error(source, field, absl::StrCat(what, " must be > 0 A, got ", Num(value)));
        return;
      }
    }
  }

  // ---- grid (rule 14) ----------------------------------------------------
  void CheckGrid() {
    const GridConfig& g = c_.grid;
    if (g.source.line() == 0) {
      return;  // missing section, already reported
    }
    CheckPhaseSet(g.source, g.phases);
    CheckPerPhaseLimits(g.source, "fuse_limit_a", g.phases, g.fuse_limit_a, "the fuse limit");
    if (g.nominal_voltage_v < 100 || g.nominal_voltage_v > 280) {
      std::string message = absl::StrCat(Num(g.nominal_voltage_v),
                                         " V is out of range; give the phase-to-neutral "
                                         "voltage, allowed 100–280");
      if (g.nominal_voltage_v >= 340 && g.nominal_voltage_v <= 490) {
        absl::StrAppend(&message, " (", Num(g.nominal_voltage_v),
                        " V looks like the phase-to-phase voltage; that is ",
                        Num(std::round(g.nominal_voltage_v / 1.732)), " V phase-to-neutral)");
      }
      Error(g.source, "nominal_voltage_v", std::move(message));
    }
    if (g.contract_power_w && *g.contract_power_w <= 0) {
      Error(g.source, "contract_power_w",
            absl::StrCat("must be > 0 W, got ", Num(*g.contract_power_w),
                         "; remove the line if there is no contract limit"));
    }
    if (g.export_limit_w && *g.export_limit_w < 0) {
      Error(g.source, "export_limit_w",
            absl::StrCat("must be >= 0 W (0 = no export allowed), got ", Num(*g.export_limit_w)));
    }
  }

  // ---- circuits (rules 6, 8) ---------------------------------------------
  void CheckCircuits() {
    for (const CircuitConfig& circuit : c_.circuits) {
      const SourceLines& s = circuit.source;
      if (!circuit.parent.empty() && circuit.parent != kGridCircuitId &&
          Circuit(circuit.parent) == nullptr) {
        Error(s, "parent", UnknownReference("parent circuit", circuit.parent, circuit_ids_));
      }
      CheckPhaseSet(s, circuit.phases);
      if (s.Has("phases") && circuit.parent != circuit.id) {
        const std::vector<Phase>* parent_phases = PhasesOf(circuit.parent);
        if (parent_phases != nullptr) {
          std::vector<Phase> missing;
          for (Phase phase : circuit.phases) {
            if (!Contains(*parent_phases, phase)) {
              missing.push_back(phase);
            }
          }
          if (!missing.empty()) {
            Error(s, "phases",
                  absl::StrCat(PhaseListName(missing),
                               missing.size() == 1 ? " is not a phase of " : " are not phases of ",
                               CircuitName(circuit.parent), " (", PhaseListName(*parent_phases),
                               "); a circuit can only use its parent's "
                               "phases"));
          }
        }
      }
      // A child limit above the parent's is fine: the parent constrains.
      CheckPerPhaseLimits(s, "limit_a", circuit.phases, circuit.limit_a, "the limit");
    }
  }

  // ---- circuit cycles (rule 7) -------------------------------------------
  void CheckCircuitCycles() {
    const size_t n = c_.circuits.size();
    // Only the first circuit of each id takes part (duplicates are errors).
    auto parent_index = [&](size_t i) -> std::optional<size_t> {
      auto it = circuits_.find(c_.circuits[i].parent);
      if (it == circuits_.end()) {
        return std::nullopt;
      }
      return it->second;
    };
    enum State { kNew, kOnPath, kDone };
    std::vector<State> state(n, kNew);
    for (size_t start = 0; start < n; ++start) {
      if (circuits_.count(c_.circuits[start].id) == 0 ||
          circuits_.at(c_.circuits[start].id) != start) {
        continue;
      }
      std::vector<size_t> path;
      std::optional<size_t> at = start;
      while (at && state[*at] == kNew) {
        state[*at] = kOnPath;
        path.push_back(*at);
        at = parent_index(*at);
      }
      if (at && state[*at] == kOnPath) {
        auto begin = std::find(path.begin(), path.end(), *at);
        std::vector<size_t> cycle(begin, path.end());
        for (size_t k = 0; k < cycle.size(); ++k) {
          std::vector<std::string> names;
          for (size_t m = 0; m <= cycle.size(); ++m) {
            names.push_back(c_.circuits[cycle[(k + m) % cycle.size()]].id);
          }
          const CircuitConfig& circuit = c_.circuits[cycle[k]];
          Error(circuit.source, "parent",
                absl::StrCat("circuit '", circuit.id,
                             "' is in a cycle: ", absl::StrJoin(names, " -> "),
                             "; every circuit must lead up to 'grid'"));
        }
      }
      for (size_t i : path) {
        state[i] = kDone;
      }
    }
  }

  // ---- grid and circuit meters (rules 6, 13, 19) -------------------------
  void CheckMeters() {
    std::map<std::string, std::string> measured;  // meter id -> place
    auto check = [&](const SourceLines& source, const std::optional<std::string>& meter,
                     const std::string& place) {
      if (!meter) {
        return;
      }
      const DeviceConfig* device = Device(*meter);
      if (device == nullptr) {
        Error(source, "meter", UnknownReference("device", *meter, device_ids_));
        return;
      }
      if (device->profile != nullptr && device->profile->kind != DeviceKind::kMeter) {
        std::vector<std::string> meters;
        for (const DeviceProfile& p : AllDeviceProfiles()) {
          if (p.kind == DeviceKind::kMeter) {
            meters.emplace_back(p.name);
          }
        }
        Error(source, "meter",
              absl::StrCat("device '", *meter, "' uses profile ", device->profile->name, " (",
                           DeviceKindName(device->profile->kind),
                           "); a meter must use a meter profile: ", absl::StrJoin(meters, ", ")));
        return;
      }
      auto [it, inserted] = measured.emplace(*meter, place);
      if (!inserted) {
        Error(source, "meter",
              absl::StrCat("meter '", *meter, "' already measures ", it->second,
                           "; a meter measures one place"));
      }
    };
    check(c_.grid.source, c_.grid.meter, "the grid");
    for (const CircuitConfig& circuit : c_.circuits) {
      check(circuit.source, circuit.meter, absl::StrCat("circuit '", circuit.id, "'"));
    }
  }

  // ---- buses (rules 5, 12) -----------------------------------------------
  void CheckBuses() {
    static const std::set<int> kBauds = {1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200};
    static const std::set<int> kBitrates = {125000, 250000, 500000, 1000000};
    // What identifies the physical bus -> index of its owner.
    std::map<std::string, size_t> owners;
    auto claim = [&](size_t i, absl::string_view field, std::string key, absl::string_view what) {
      auto [it, inserted] = owners.emplace(std::move(key), i);
      if (inserted) {
        return;
      }
      const BusConfig& owner = c_.buses[it->second];
      Error(c_.buses[i].source, field,
            absl::StrCat(what, " is already owned by ", owner.source.path(), " '", owner.id,
                         "'; one physical bus has exactly one owner: put "
                         "all its devices on '",
                         owner.id, "'"));
    };
    for (size_t i = 0; i < c_.buses.size(); ++i) {
      const BusConfig& bus = c_.buses[i];
      const SourceLines& s = bus.source;
      if (bus.modbus_rtu) {
        const ModbusRtuSettings& m = *bus.modbus_rtu;
        if (s.Has("baud") && kBauds.count(m.baud) == 0) {
          Error(s, "baud",
                absl::StrCat(m.baud,
                             " is not a standard baud rate; allowed: 1200, "
                             "2400, 4800, 9600, 19200, 38400, 57600, 115200"));
        }
        if (m.data_bits != 7 && m.data_bits != 8) {
          Error(s, "data_bits", absl::StrCat("must be 7 or 8, got ", m.data_bits));
        }
        if (m.stop_bits != 1 && m.stop_bits != 2) {
          Error(s, "stop_bits", absl::StrCat("must be 1 or 2, got ", m.stop_bits));
        }
        if (m.inter_frame_gap_ms && (*m.inter_frame_gap_ms < 0 || *m.inter_frame_gap_ms > 1000)) {
          Error(s, "inter_frame_gap_ms",
                absl::StrCat(*m.inter_frame_gap_ms,
                             " is out of range; allowed 0–1000 ms (leave it "
                             "out for 3.5 character times)"));
        }
        CheckTimeoutAndRetries(s, m.timeout_ms, m.retries);
        if (!m.port.empty()) {
          claim(i, "port", absl::StrCat("serial port ", m.port),
                absl::StrCat("serial port ", m.port));
        }
      }
      if (bus.modbus_tcp) {
        const ModbusTcpSettings& m = *bus.modbus_tcp;
        if (m.port < 1 || m.port > 65535) {
          Error(s, "port", absl::StrCat(m.port, " is not a TCP port; allowed 1–65535"));
        }
        CheckTimeoutAndRetries(s, m.timeout_ms, m.retries);
        if (!m.host.empty()) {
          const std::string address = absl::StrCat(m.host, ":", m.port);
          claim(i, "host", absl::StrCat("modbus_tcp ", address),
                absl::StrCat("Modbus TCP server ", address));
        }
      }
      if (bus.can) {
        const CanSettings& can = *bus.can;
        if (kBitrates.count(can.bitrate) == 0) {
          Error(s, "bitrate",
                absl::StrCat(can.bitrate,
                             " is not a supported CAN bitrate; allowed: "
                             "125000, 250000, 500000, 1000000"));
        }
        if (can.transport == CanTransport::kUdp) {
          if (!IsMulticastGroup(can.udp_group)) {
            Error(s, "udp_group",
                  absl::StrCat(Quoted(can.udp_group),
                               " is not an IPv4 multicast address; allowed "
                               "224.0.0.0–239.255.255.255, e.g. ",
                               defaults::kCanUdpGroup));
          }
          if (can.udp_port < 1 || can.udp_port > 65535) {
            Error(s, "udp_port", absl::StrCat(can.udp_port, " is not a UDP port; allowed 1–65535"));
          }
        }
        if (!can.interface.empty()) {
          claim(i, "interface", absl::StrCat("can ", can.interface),
                absl::StrCat("CAN interface ", can.interface));
        }
        if (can.transport == CanTransport::kUdp) {
          const std::string group = absl::StrCat(can.udp_group, ":", can.udp_port);
          claim(i, s.Has("udp_port") ? "udp_port" : "interface", absl::StrCat("udp ", group),
                absl::StrCat("virtual CAN bus ", group));
        }
      }
    }
  }

  static bool IsMulticastGroup(absl::string_view text) {
    std::vector<absl::string_view> parts = absl::StrSplit(text, '.');
    if (parts.size() != 4) {
      return false;
    }
    int octets[4];
    for (int k = 0; k < 4; ++k) {
      if (parts[k].empty() || parts[k].size() > 3 || !absl::SimpleAtoi(parts[k], &octets[k]) ||
          octets[k] < 0 || octets[k] > 255) {
        return false;
      }
    }
    return octets[0] >= 224 && octets[0] <= 239;
  }

  void CheckTimeoutAndRetries(const SourceLines& s, int timeout_ms, int retries) {
    if (timeout_ms < 10 || timeout_ms > 60000) {
      Error(s, "timeout_ms", absl::StrCat(timeout_ms, " is out of range; allowed 10–60000 ms"));
    }
    if (retries < 0 || retries > 10) {
      Error(s, "retries", absl::StrCat(retries, " is out of range; allowed 0–10"));
    }
  }

  // ---- devices (rules 5, 6, 11) ------------------------------------------
  void CheckDevices() {
    std::map<std::string, const DeviceConfig*> charge_point_ids;
    // (bus id, address) -> first device
    std::map<std::pair<std::string, int>, const DeviceConfig*> addresses;
    for (const DeviceConfig& device : c_.devices) {
      const SourceLines& s = device.source;
      const DeviceProfile* profile = device.profile;
      if (profile == nullptr) {
        continue;  // unknown profile, reported
      }
      const std::string what = absl::StrCat(profile->name, " (", DeviceKindName(profile->kind),
                                            ", ", BusKindName(profile->bus), ")");
      if (s.Has("poll_period_ms") &&
          (device.poll_period_ms < 50 || device.poll_period_ms > 600000)) {
        Error(s, "poll_period_ms",
              absl::StrCat(device.poll_period_ms, " is out of range; allowed 50–600000 ms"));
      }
      if (device.stale_after_missed_polls < 1 || device.stale_after_missed_polls > 100) {
        Error(s, "stale_after_missed_polls",
              absl::StrCat(device.stale_after_missed_polls, " is out of range; allowed 1–100"));
      }
      if (profile->needs_register_map && !device.register_map) {
        Error(s, "register_map",
              absl::StrCat("required field is missing; ", profile->name,
                           " needs the path of its register map file"));
      }
      if (!profile->needs_register_map && device.register_map) {
        Error(s, "register_map",
              absl::StrCat("applies to generic_meter only; this device uses profile ", what));
      }

      if (profile->bus == BusKind::kOcpp) {
        for (absl::string_view field :
             {"bus", "address", "poll_period_ms", "stale_after_missed_polls"}) {
          if (!s.Has(field)) {
            continue;
          }
          Error(s, field,
                absl::StrCat("does not apply to ", what,
                             ": the charger connects to evgate's OCPP server "
                             "(ocpp.local); remove this line"));
        }
        CheckChargerPassword(s, device);
        if (!device.charge_point_id) {
          Error(s, "charge_point_id",
                absl::StrCat("required field is missing; ", profile->name,
                             " is an OCPP charger: give the Charger ID set "
                             "in the charger, e.g. DS60-DEPOT-01"));
          continue;
        }
        if (!IsValidChargePointId(*device.charge_point_id)) {
          Error(s, "charge_point_id",
                absl::StrCat(Quoted(*device.charge_point_id), " is not a valid charge point id; ",
                             kChargePointIdRule));
          continue;
        }
        auto [it, inserted] = charge_point_ids.emplace(*device.charge_point_id, &device);
        if (!inserted) {
          Error(s, "charge_point_id",
                absl::StrCat("charge_point_id '", *device.charge_point_id,
                             "' is already used by device '", it->second->id, "' (",
                             it->second->source.path(), "); each charger needs its own"));
        }
        continue;
      }

      // Modbus and CAN devices.
      for (absl::string_view field : {"charge_point_id", "password_file"}) {
        if (s.Has(field)) {
          Error(s, field,
                absl::StrCat("applies to OCPP chargers only; this device uses profile ", what));
        }
      }
      const absl::string_view bus_kind = BusKindName(profile->bus);
      const BusConfig* bus = nullptr;
      if (!device.bus) {
        Error(s, "bus",
              absl::StrCat("required field is missing; ", profile->name, " talks ", bus_kind,
                           ": give the id of its bus"));
      } else if ((bus = Bus(*device.bus)) == nullptr) {
        Error(s, "bus", UnknownReference("bus", *device.bus, bus_ids_));
      } else if (BusKindOf(bus->type) != profile->bus) {
        Error(s, "bus",
              absl::StrCat(
                  "device '", device.id, "' (", profile->name, ") talks ", bus_kind, " but bus '",
                  bus->id, "' is a ", BusTypeName(bus->type), " bus; use ",
                  profile->bus == BusKind::kCan ? "a can bus" : "a modbus_rtu or modbus_tcp bus"));
        bus = nullptr;
      } else if (profile->serial_format && bus->modbus_rtu) {
        const SerialFormat& want = *profile->serial_format;
        const ModbusRtuSettings& have = *bus->modbus_rtu;
        const SerialFormat have_format{have.baud, have.parity, have.data_bits, have.stop_bits};
        if (want.baud != have.baud || want.parity != have.parity ||
            want.data_bits != have.data_bits || want.stop_bits != have.stop_bits) {
          Error(s, "bus",
                absl::StrCat(profile->name, " talks ", SerialFormatName(want), " only, but bus '",
                             bus->id, "' is set to ", SerialFormatName(have_format),
                             "; all devices on one RS-485 bus use the same "
                             "settings"));
        }
      }
      if (!device.address) {
        Error(s, "address",
              absl::StrCat("required field is missing; give the device's ", bus_kind,
                           " address, allowed ", profile->min_address, "–", profile->max_address));
        continue;
      }
      const int address = *device.address;
      if (address < profile->min_address || address > profile->max_address) {
        Error(s, "address",
              absl::StrCat(address, " is out of range for ", profile->name, "; allowed ",
                           profile->min_address, "–", profile->max_address,
                           profile->bus == BusKind::kCan ? " (the CAN address, Cabur CANAddr)"
                                                         : " (the Modbus unit id)"));
        continue;
      }
      if (bus != nullptr) {
        auto [it, inserted] = addresses.emplace(std::make_pair(bus->id, address), &device);
        if (!inserted) {
          Error(s, "address",
                absl::StrCat("address ", address, " on bus '", bus->id,
                             "' is already used by device '", it->second->id, "' (",
                             it->second->source.path(),
                             "); each device on a bus needs its own address"));
        }
      }
    }
  }

  // ---- stations and EVSEs (rules 5, 6, 9, 10, 13) ------------------------
  void CheckStations() {
    std::map<std::string, const StationConfig*> device_owner;
    for (const StationConfig& station : c_.stations) {
      const SourceLines& s = station.source;
      if (!station.circuit.empty() && PhasesOf(station.circuit) == nullptr) {
        Error(s, "circuit", UnknownReference("circuit", station.circuit, circuit_ids_));
      }
      const DeviceConfig* device = nullptr;
      const DeviceProfile* profile = nullptr;
      if (!station.device.empty()) {
        device = Device(station.device);
        if (device == nullptr) {
          Error(s, "device", UnknownReference("device", station.device, device_ids_));
        } else if (device->profile != nullptr && !IsCharger(device->profile->kind)) {
          Error(s, "device",
                absl::StrCat("device '", device->id, "' uses profile ", device->profile->name, " (",
                             DeviceKindName(device->profile->kind),
                             "); a station needs an AC wallbox or a DC "
                             "charger"));
        } else {
          profile = device->profile;
          auto [it, inserted] = device_owner.emplace(device->id, &station);
          if (!inserted) {
            Error(s, "device",
                  absl::StrCat("device '", device->id, "' is already used by station '",
                               it->second->id, "' (", it->second->source.path(),
                               "); one charger is one station"));
          }
        }
      }
      if (profile == nullptr) {
        continue;
      }

      if (station.max_power_w <= 0 || station.max_power_w > profile->station_max_power_w) {
        Error(s, "max_power_w",
              absl::StrCat(Num(station.max_power_w),
                           station.max_power_w <= 0
                               ? " must be > 0"
                               : absl::StrCat(" exceeds the maximum of profile ", profile->name,
                                              " (", Num(profile->station_max_power_w), " W)"),
                           "; allowed up to ", Num(profile->station_max_power_w)));
      }
      const int n = static_cast<int>(station.evses.size());
      if (s.Has("evses") && (n < profile->min_connectors || n > profile->max_connectors)) {
        Error(
            s, "evses",
            absl::StrCat(n, n == 1 ? " EVSE" : " EVSEs", " given, but ", profile->name, " has ",
                         profile->min_connectors == profile->max_connectors
                             ? absl::StrCat(profile->max_connectors)
                             : absl::StrCat(profile->min_connectors, "–", profile->max_connectors),
                         profile->max_connectors == 1 ? " connector" : " connectors",
                         "; give one EVSE per connector"));
      }
      std::map<int, const EvseConfig*> connectors;
      for (const EvseConfig& evse : station.evses) {
        if (evse.connector < 1 || evse.connector > profile->max_connectors) {
          Error(evse.source, "connector",
                absl::StrCat(evse.connector, " is out of range for ", profile->name, "; allowed 1–",
                             profile->max_connectors,
                             profile->name == "ds60" ? " (1 = left, 2 = right)" : ""));
        } else if (auto [it, inserted] = connectors.emplace(evse.connector, &evse); !inserted) {
          Error(evse.source, "connector",
                absl::StrCat("connector ", evse.connector, " is already used by EVSE '",
                             it->second->id, "' of this station"));
        }
        CheckEvsePhases(station, evse, *profile);
        if (evse.ac) {
          CheckAcLimits(evse, *evse.ac, *profile);
        }
        if (evse.dc) {
          CheckDcLimits(station, evse, *evse.dc, *profile);
        }
      }
    }
  }

  void CheckEvsePhases(const StationConfig& station, const EvseConfig& evse,
                       const DeviceProfile& profile) {
    const SourceLines& s = evse.source;
    if (evse.phases.empty()) {
      return;  // missing: reported while parsing
    }
    std::set<Phase> distinct(evse.phases.begin(), evse.phases.end());
    if (distinct.size() != evse.phases.size() ||
        (evse.phases.size() != 1 && evse.phases.size() != 3)) {
      Error(s, "phases",
            absl::StrCat("give 1 phase (single-phase) or 3 distinct phases "
                         "(three-phase), got [",
                         PhaseListName(evse.phases), "]"));
      return;
    }
    if (evse.phases.size() == 1 && !profile.single_phase) {
      Error(s, "phases",
            absl::StrCat(profile.name,
                         " is three-phase: give 3 distinct phases, e.g. "
                         "[L1, L2, L3] or a rotation such as [L2, L3, L1]"));
    }
    if (evse.phases.size() == 3 && !profile.three_phase) {
      Error(s, "phases",
            absl::StrCat(profile.name,
                         " is single-phase: give exactly one phase, e.g. "
                         "[L1]"));
    }
    const std::vector<Phase>* available = PhasesOf(station.circuit);
    if (available == nullptr) {
      return;
    }
    std::vector<Phase> missing;
    for (Phase phase : evse.phases) {
      if (!Contains(*available, phase)) {
        missing.push_back(phase);
      }
    }
    if (!missing.empty()) {
      Error(s, "phases",
            absl::StrCat("wired to ", PhaseListName(missing), " but ", CircuitName(station.circuit),
                         " has only ", PhaseListName(*available)));
    }
  }

  void CheckAcLimits(const EvseConfig& evse, const AcEvseLimits& ac, const DeviceProfile& profile) {
    const SourceLines& s = evse.source;
    const std::string allowed =
        absl::StrCat("allowed ", Num(profile.min_current_a), "–", Num(profile.max_current_a));
    if (ac.min_current_a < defaults::kMinCurrentA) {
      Error(s, "min_current_a",
            absl::StrCat(Num(ac.min_current_a),
                         " is below 6 A, the lowest current IEC 61851-1 "
                         "allows; ",
                         allowed));
    }
    if (ac.max_current_a > profile.max_current_a) {
      Error(s, "max_current_a",
            absl::StrCat(Num(ac.max_current_a), " exceeds the maximum of profile ", profile.name,
                         " (", Num(profile.max_current_a), " A); ", allowed));
    }
    if (ac.min_current_a > ac.max_current_a) {
      if (s.Has("max_current_a")) {
        Error(s, "max_current_a",
              absl::StrCat(Num(ac.max_current_a), " is below min_current_a (",
                           Num(ac.min_current_a), " A); ", allowed));
      } else {
        Error(s, "min_current_a",
              absl::StrCat(Num(ac.min_current_a), " is above max_current_a (",
                           Num(ac.max_current_a), " A); ", allowed));
      }
    }
    if (ac.current_step_a <= 0) {
      Error(s, "current_step_a", absl::StrCat("must be > 0 A, got ", Num(ac.current_step_a)));
    }
    if (s.Has("failsafe_current_a") && ac.failsafe_current_a != 0 &&
        (ac.failsafe_current_a < ac.min_current_a || ac.failsafe_current_a > ac.max_current_a)) {
      Error(s, "failsafe_current_a",
            absl::StrCat(Num(ac.failsafe_current_a),
                         " must be 0 (pause) or within [min_current_a, "
                         "max_current_a] = [",
                         Num(ac.min_current_a), ", ", Num(ac.max_current_a), "]"));
    }
  }

  void CheckDcLimits(const StationConfig& station, const EvseConfig& evse, const DcEvseLimits& dc,
                     const DeviceProfile& profile) {
    const SourceLines& s = evse.source;
    if (dc.min_power_w < 0) {
      Error(s, "min_power_w", absl::StrCat("must be >= 0 W, got ", Num(dc.min_power_w)));
    }
    if (dc.max_power_w <= 0) {
      Error(s, "max_power_w", absl::StrCat("must be > 0 W, got ", Num(dc.max_power_w)));
    } else if (dc.max_power_w > station.max_power_w) {
      Error(s, "max_power_w",
            absl::StrCat(Num(dc.max_power_w), " exceeds the station's max_power_w (",
                         Num(station.max_power_w), " W)"));
    }
    if (dc.min_power_w > dc.max_power_w) {
      Error(
          s, "min_power_w",
          absl::StrCat(Num(dc.min_power_w), " is above max_power_w (", Num(dc.max_power_w), " W)"));
    }
    if (dc.efficiency < 0.5 || dc.efficiency > 1.0) {
      Error(s, "efficiency",
            absl::StrCat(Num(dc.efficiency),
                         " is out of range; allowed 0.5–1.0 (DC output / AC "
                         "input, e.g. 0.95)"));
    }
    if (dc.failsafe_power_w < 0 || dc.failsafe_power_w > dc.max_power_w) {
      Error(s, "failsafe_power_w",
            absl::StrCat(Num(dc.failsafe_power_w), " is out of range; allowed 0–",
                         Num(dc.max_power_w), " (0 = pause)"));
    }
    if (!dc.bidirectional) {
      return;
    }
    if (!profile.bidirectional) {
      std::vector<std::string> v2x;
      for (const DeviceProfile& p : AllDeviceProfiles()) {
        if (p.bidirectional) {
          v2x.emplace_back(p.name);
        }
      }
      Error(s, "bidirectional",
            absl::StrCat("profile ", profile.name,
                         " cannot discharge; bidirectional: true needs a "
                         "bidirectional (V2X) profile: ",
                         absl::StrJoin(v2x, ", ")));
      return;
    }
    auto check_discharge = [&](absl::string_view field, double value, double limit,
                               absl::string_view where) {
      if (value <= 0 || value > limit) {
        Error(
            s, field,
            absl::StrCat(Num(value),
                         value <= 0 ? " must be > 0 W"
                                    : absl::StrCat(" exceeds the maximum of profile ", profile.name,
                                                   " (", Num(limit), " W ", where, ")"),
                         "; allowed up to ", Num(limit)));
      }
    };
    check_discharge("max_discharge_power_w", dc.max_discharge_power_w,
                    profile.max_discharge_power_w, "on grid");
    check_discharge("max_discharge_power_offgrid_w", dc.max_discharge_power_offgrid_w,
                    profile.max_discharge_power_offgrid_w, "off grid");
    bool soc_ok = true;
    for (auto [field, value] :
         {std::pair<absl::string_view, double>{"soc_min_pct", dc.soc_min_pct},
          std::pair<absl::string_view, double>{"soc_max_pct", dc.soc_max_pct}}) {
      if (value < 0 || value > 100) {
        Error(s, field, absl::StrCat(Num(value), " is out of range; allowed 0–100 %"));
        soc_ok = false;
      }
    }
    if (soc_ok && dc.soc_min_pct >= dc.soc_max_pct) {
      Error(s, s.Has("soc_min_pct") ? "soc_min_pct" : "soc_max_pct",
            absl::StrCat("soc_min_pct (", Num(dc.soc_min_pct), ") must be below soc_max_pct (",
                         Num(dc.soc_max_pct), ")"));
    }
  }

  // ---- authorization (rules 5, 6, 18) ------------------------------------
  void CheckAuthorization() {
    const AuthorizationConfig& a = c_.authorization;
    CheckEvseRefs(a.source, "free_vend_evses", a.free_vend_evses);
    if (a.offline_cache_ttl_s < 0 || a.offline_cache_ttl_s > 31536000) {
      Error(
          a.source, "offline_cache_ttl_s",
          absl::StrCat(a.offline_cache_ttl_s, " is out of range; allowed 0–31536000 s (one year)"));
    }
    if (a.connection_timeout_s < 10 || a.connection_timeout_s > 3600) {
      Error(
          a.source, "connection_timeout_s",
          absl::StrCat(a.connection_timeout_s,
                       " is out of range; allowed 10–3600 s (time to plug in after authorizing)"));
    }
    std::vector<std::string> groups(groups_.begin(), groups_.end());
    std::map<std::string, const CardConfig*> uids;
    for (const CardConfig& card : a.cards) {
      const SourceLines& s = card.source;
      if (!card.uid.empty()) {
        if (!IsHex(card.uid) || card.uid.size() % 2 != 0 || card.uid.size() < 8 ||
            card.uid.size() > 20) {
          Error(s, "uid",
                absl::StrCat(Quoted(card.uid),
                             " is not a valid card UID; use 8–20 hex digits "
                             "(an even number, no separators), e.g. "
                             "\"04A1B2C3D4E5F6\""));
        } else if (auto [it, inserted] = uids.emplace(card.uid, &card); !inserted) {
          Error(s, "uid",
                absl::StrCat(
                    "card UID ", card.uid, " is already used by ", it->second->source.path(),
                    it->second->name.empty() ? "" : absl::StrCat(" ('", it->second->name, "')"),
                    "; each card is listed once"));
        }
      }
      if (card.valid_from && card.valid_until && *card.valid_from >= *card.valid_until) {
        Error(s, "valid_until",
              absl::StrCat(TimeText(*card.valid_until), " is not after valid_from ",
                           TimeText(*card.valid_from)));
      }
      CheckEvseRefs(s, "evses", card.evses);
      for (size_t i = 0; i < card.groups.size(); ++i) {
        if (groups_.count(card.groups[i]) > 0) {
          continue;
        }
        std::string message = UnknownReference("group", card.groups[i], groups);
        absl::StrAppend(&message, " (a group exists when an EVSE lists it in groups)");
        Error(s, absl::StrCat("groups[", i, "]"), std::move(message));
      }
      // blocked + master together is allowed: blocked wins at runtime.
    }
  }

  void CheckEvseRefs(const SourceLines& s, absl::string_view field,
                     const std::vector<std::string>& ids) {
    for (size_t i = 0; i < ids.size(); ++i) {
      if (evses_.count(ids[i]) > 0) {
        continue;
      }
      Error(s, absl::StrCat(field, "[", i, "]"), UnknownReference("EVSE", ids[i], evse_ids_));
    }
  }

  // ---- listen addresses (rules 16, 17) -----------------------------------
  // Checks host:port; port 0 (pick a free port) only where `allow_zero`.
  void CheckAddress(const SourceLines& s, absl::string_view field, const std::string& text,
                    bool allow_zero) {
    std::optional<HostPort> address = ParseHostPort(text);
    if (!address || (address->port == 0 && !allow_zero)) {
      Error(s, field,
            absl::StrCat(Quoted(text),
                         " is not a host:port address; write "
                         "e.g. 127.0.0.1:9000 or [::1]:9000, "
                         "port ",
                         allow_zero ? "0–65535 (0 = pick a free port)" : "1–65535"));
      return;
    }
    if (!allow_zero || address->port == 0) {
      return;
    }
    const std::string where = s.PathOf(field);
    for (const auto& [other, other_where] : listening_) {
      const bool same_host = other.host == address->host || other.host == "0.0.0.0" ||
                             address->host == "0.0.0.0" || other.host == "::" ||
                             address->host == "::";
      if (same_host && other.port == address->port) {
        Error(s, field,
              absl::StrCat("port ", address->port, " is already used by ", other_where, " (",
                           other.host, ":", other.port, ")"));
        return;
      }
    }
    listening_.emplace_back(*address, where);
  }

  // An OCPP charger's basic-auth password file: needed exactly when the
  // local Central System's security profile uses basic auth (1 and 2).
  void CheckChargerPassword(const SourceLines& s, const DeviceConfig& device) {
    if (!c_.ocpp.local) return;  // CheckOcpp reports the missing ocpp.local
    const int profile = c_.ocpp.local->security_profile;
    const bool basic_auth = profile == 1 || profile == 2;
    if (basic_auth && !device.password_file) {
      Error(s, "password_file",
            absl::StrCat("required field is missing; ocpp.local uses security profile ", profile,
                         " (basic auth): give the file holding this charger's password (its "
                         "AuthorizationKey), never the password itself"));
    } else if (!basic_auth && device.password_file) {
      Error(s, "password_file",
            absl::StrCat("applies to security profiles 1 and 2 only; ocpp.local uses profile ",
                         profile,
                         profile == 3 ? " (client certificates, no password)" : " (no auth, demo)",
                         "; remove this line"));
    } else if (device.password_file && device.password_file->empty()) {
      Error(s, "password_file", "must not be empty; give the path of the password file");
    }
  }

  // ---- ocpp (rule 16) ----------------------------------------------------
  void CheckOcpp() {
    const OcppConfig& o = c_.ocpp;
    const DeviceConfig* first_ocpp = nullptr;
    for (const DeviceConfig& device : c_.devices) {
      if (device.profile && device.profile->bus == BusKind::kOcpp) {
        first_ocpp = &device;
        break;
      }
    }
    if (first_ocpp != nullptr && !o.local) {
      Error(first_ocpp->source, "profile",
            absl::StrCat("device '", first_ocpp->id, "' (", first_ocpp->profile->name,
                         ") connects over OCPP, but ocpp.local is not "
                         "configured; add 'ocpp: {local: {listen: "
                         "0.0.0.0:9000, security_profile: 2, ...}}'"));
    }
    if (o.local) {
      const OcppLocalConfig& l = *o.local;
      const SourceLines& s = l.source;
      CheckAddress(s, "listen", l.listen, /*allow_zero=*/true);
      if (CheckSecurityProfile(s, l.security_profile)) {
        if (l.security_profile >= 2) {
          const std::string why =
              absl::StrCat("required for security profile ", l.security_profile, " (TLS)");
          if (!l.tls_cert_file) {
            Error(s, "tls_cert_file", absl::StrCat(why, "; give the PEM server certificate"));
          }
          if (!l.tls_key_file) {
            Error(s, "tls_key_file", absl::StrCat(why, "; give the PEM private key"));
          }
        }
        if (l.security_profile == 3 && !l.ca_file) {
          Error(s, "ca_file",
                "required for security profile 3 (mutual TLS); give the CA "
                "that signed the chargers' client certificates");
        }
      }
    }
    if (o.upstream) {
      const OcppUpstreamConfig& u = *o.upstream;
      const SourceLines& s = u.source;
      if (!u.charge_point_id.empty() && !IsValidChargePointId(u.charge_point_id)) {
        Error(s, "charge_point_id",
              absl::StrCat(Quoted(u.charge_point_id), " is not a valid charge point id; ",
                           kChargePointIdRule));
      }
      if (!CheckSecurityProfile(s, u.security_profile)) {
        return;
      }
      const int profile = u.security_profile;
      if (!u.url.empty()) {
        const bool ws = absl::StartsWith(u.url, "ws://");
        const bool wss = absl::StartsWith(u.url, "wss://");
        if ((!ws && !wss) || u.url.size() <= (ws ? 5u : 6u)) {
          Error(s, "url",
                absl::StrCat(Quoted(u.url),
                             " is not a ws:// or wss:// URL; write e.g. "
                             "wss://csms.example.com/ocpp"));
        } else if (ws && profile >= 2) {
          Error(s, "url",
                absl::StrCat("ws:// is unencrypted; security profile ", profile,
                             " needs a wss:// URL"));
        } else if (wss && profile <= 1) {
          Error(s, "url",
                absl::StrCat("wss:// uses TLS, but security profile ", profile,
                             " has none; set security_profile 2 (TLS + basic "
                             "auth) or 3 (mutual TLS)"));
        }
      }
      if ((profile == 1 || profile == 2) && !u.password_file) {
        Error(s, "password_file",
              absl::StrCat("required for security profile ", profile,
                           " (basic auth): the path of a file holding the "
                           "password; the password itself never goes in "
                           "site.yaml"));
      }
      if (profile == 3) {
        if (!u.client_cert_file) {
          Error(s, "client_cert_file",
                "required for security profile 3 (mutual TLS); give this "
                "site's PEM client certificate");
        }
        if (!u.client_key_file) {
          Error(s, "client_key_file",
                "required for security profile 3 (mutual TLS); give the PEM "
                "private key of the client certificate");
        }
      }
    }
  }

  // Range 0..3 and profile 0 only with insecure_demo. False if unusable.
  bool CheckSecurityProfile(const SourceLines& s, int profile) {
    if (profile < 0 || profile > 3) {
      Error(s, "security_profile",
            absl::StrCat(profile,
                         " is not an OCPP security profile; allowed 0 (demo "
                         "only), 1 basic auth, 2 TLS + basic auth, 3 mutual "
                         "TLS"));
      return false;
    }
    if (profile == 0 && !c_.insecure_demo) {
      Error(s, "security_profile",
            "0 (no authentication, no TLS) is allowed only with "
            "'insecure_demo: true'; use 2 (TLS + basic auth) or 3 (mutual "
            "TLS)");
    }
    return true;
  }

  // ---- grid modes ---------------------------------------------------------
  void CheckGridModes() {
    if (!c_.grid_modes) {
      return;
    }
    const GridModesConfig& g = *c_.grid_modes;
    const SourceLines& s = g.source;
    if (!g.off_grid_box.empty()) {
      const DeviceConfig* box = c_.FindDevice(g.off_grid_box);
      if (box == nullptr) {
        Error(s, "off_grid_box", absl::StrCat("no device '", g.off_grid_box, "' under devices"));
      } else if (box->profile != nullptr && box->profile->kind != DeviceKind::kOffgridBox) {
        Error(s, "off_grid_box",
              absl::StrCat("device '", g.off_grid_box, "' is a ",
                           DeviceKindName(box->profile->kind), ", not an off-grid box"));
      }
    }
    if (g.standby_countdown_s < 1 || g.standby_countdown_s > 900) {
      Error(s, "standby_countdown_s",
            absl::StrCat(g.standby_countdown_s,
                         " is out of range; allowed 1–900 s (the ICE-22 allows at most 15 min)"));
    }
    if (g.resync_stable_s < 1 || g.resync_stable_s > 3600) {
      Error(s, "resync_stable_s",
            absl::StrCat(g.resync_stable_s, " is out of range; allowed 1–3600 s"));
    }
    bool any = false;
    for (const StationConfig& station : c_.stations) {
      for (const EvseConfig& evse : station.evses) {
        if (evse.dc && evse.dc->bidirectional && evse.dc->max_discharge_power_offgrid_w > 0) {
          any = true;
        }
      }
    }
    if (!any) {
      Error(s, "off_grid_box",
            "no bidirectional EVSE with max_discharge_power_offgrid_w > 0 can form the island");
    }
  }

  // ---- controller (rule 15) ----------------------------------------------
  void CheckController() {
    const ControllerConfig& k = c_.controller;
    const SourceLines& s = k.source;
    if (k.margin_a < 0) {
      Error(s, "margin_a", absl::StrCat("must be >= 0 A, got ", Num(k.margin_a)));
    }
    if (k.ramp_up_a_per_s <= 0) {
      Error(s, "ramp_up_a_per_s", absl::StrCat("must be > 0 A/s, got ", Num(k.ramp_up_a_per_s)));
    }
    if (k.hysteresis_a < 0) {
      Error(s, "hysteresis_a", absl::StrCat("must be >= 0 A, got ", Num(k.hysteresis_a)));
    }
    if (k.tick_ms < 10 || k.tick_ms > 60000) {
      Error(s, "tick_ms", absl::StrCat(k.tick_ms, " is out of range; allowed 10–60000 ms"));
    }
    if (k.min_pause_s < 0 || k.min_pause_s > 86400) {
      Error(s, "min_pause_s", absl::StrCat(k.min_pause_s, " is out of range; allowed 0–86400 s"));
    }
    if (k.failsafe_current_a != 0 &&
        (k.failsafe_current_a < defaults::kMinCurrentA || k.failsafe_current_a > 80)) {
      Error(s, "failsafe_current_a",
            absl::StrCat(Num(k.failsafe_current_a),
                         " must be 0 (pause) or 6–80 A (6 A is the IEC "
                         "61851-1 minimum)"));
    }
    if (k.meter_timeout_ms < 100) {
      Error(s, "meter_timeout_ms",
            absl::StrCat(k.meter_timeout_ms, " is too short; allowed 100 ms or more"));
      return;
    }
    const DeviceConfig* meter = c_.grid.meter ? Device(*c_.grid.meter) : nullptr;
    if (meter != nullptr && k.meter_timeout_ms < 2 * meter->poll_period_ms) {
      Error(s, "meter_timeout_ms",
            absl::StrCat(k.meter_timeout_ms, " ms is shorter than two polls of the grid meter '",
                         meter->id, "' (2 × ", meter->poll_period_ms,
                         " ms = ", 2 * meter->poll_period_ms,
                         " ms); one late answer would trip the failsafe"));
    }
  }

  // ---- failsafe fits the topology ----------------------------------------
  // The failsafe is what every EVSE runs at when nothing can be measured or
  // commanded (grid meter stale, gateway dead): then all of them may draw it
  // at once, so per phase their sum must fit every circuit on their path,
  // with the controller's margin, or the failsafe itself trips a breaker.
  void CheckFailsafeFit() {
    struct Load {
      double a = 0;
      std::vector<std::string> evses;  // contributing, with their current
    };
    // node ("grid" or circuit id) -> site phase -> failsafe load
    std::map<std::string, std::map<Phase, Load>> loads;
    for (const StationConfig& station : c_.stations) {
      const std::vector<Phase>* circuit_phases = PhasesOf(station.circuit);
      if (circuit_phases == nullptr) {
        continue;  // unknown circuit, reported with the station
      }
      // A DC station's connectors share its max_power_w, in failsafe too.
      double dc_budget_w = station.max_power_w > 0 ? station.max_power_w : 0;
      for (const EvseConfig& evse : station.evses) {
        std::vector<Phase> phases = evse.phases.empty() ? *circuit_phases : evse.phases;
        double per_phase_a = 0;
        if (evse.ac) {
          per_phase_a = evse.ac->failsafe_current_a;
        } else if (evse.dc && !phases.empty() && evse.dc->efficiency > 0) {
          const double w = std::min(evse.dc->failsafe_power_w, dc_budget_w);
          dc_budget_w -= w;
          per_phase_a = w / evse.dc->efficiency /
                        (static_cast<double>(phases.size()) * c_.grid.nominal_voltage_v);
        }
        if (!(per_phase_a > 0)) {
          continue;
        }
        // The EVSE's circuit and every ancestor up to the grid; a cycle is
        // reported on its own (CheckCircuitCycles), so the walk is bounded.
        std::string node = station.circuit;
        for (size_t depth = 0; depth <= c_.circuits.size() + 1; ++depth) {
          for (Phase phase : phases) {
            Load& load = loads[node][phase];
            load.a += per_phase_a;
            load.evses.push_back(absl::StrCat(evse.id, " ", Amperes(per_phase_a)));
          }
          if (node == kGridCircuitId) {
            break;
          }
          const CircuitConfig* circuit = Circuit(node);
          if (circuit == nullptr) {
            break;
          }
          node = circuit->parent.empty() ? std::string(kGridCircuitId) : circuit->parent;
        }
      }
    }
    auto check = [&](const std::string& node, const SourceLines& source, absl::string_view field,
                     const std::vector<Phase>& phases, const std::vector<double>& limits) {
      auto found = loads.find(node);
      if (found == loads.end() || limits.size() != phases.size()) {
        return;  // no failsafe load, or a limit list already reported
      }
      for (size_t i = 0; i < phases.size(); ++i) {
        auto load = found->second.find(phases[i]);
        if (load == found->second.end()) {
          continue;
        }
        const double allowed = limits[i] - c_.controller.margin_a;
        // A hundredth of an ampere of tolerance for decimal arithmetic.
        if (load->second.a <= allowed + 0.005) {
          continue;
        }
        constexpr size_t kShown = 6;
        std::vector<std::string> shown(
            load->second.evses.begin(),
            load->second.evses.begin() + std::min(kShown, load->second.evses.size()));
        std::string who = absl::StrJoin(shown, ", ");
        if (load->second.evses.size() > kShown) {
          absl::StrAppend(&who, " and ", load->second.evses.size() - kShown, " more");
        }
        Error(source, field,
              absl::StrCat("the failsafe currents of the EVSEs under ", CircuitName(node),
                           " add up to ", Amperes(load->second.a), " on ", PhaseName(phases[i]),
                           " (", who, "), above its limit ", Num(limits[i]), " A less the margin ",
                           Num(c_.controller.margin_a), " A = ", Num(allowed),
                           " A; with no meter or no controller they all run at their failsafe at "
                           "once, so lower failsafe_current_a / failsafe_power_w of some "
                           "(0 = pause on failsafe)"));
      }
    };
    check(std::string(kGridCircuitId), c_.grid.source, "fuse_limit_a", c_.grid.phases,
          c_.grid.fuse_limit_a);
    for (const CircuitConfig& circuit : c_.circuits) {
      if (circuit.id != kGridCircuitId && Circuit(circuit.id) == &circuit) {  // else reported
        check(circuit.id, circuit.source, "limit_a", circuit.phases, circuit.limit_a);
      }
    }
  }

  // ---- services (rule 17) ------------------------------------------------
  void CheckServices() {
    const ServicesConfig& sv = c_.services;
    const SourceLines& s = sv.source;
    if (s.line() == 0) {
      return;  // missing section, already reported
    }
    CheckAddress(s, "api_listen", sv.api_listen, /*allow_zero=*/true);
    CheckAddress(s, "metrics_listen", sv.metrics_listen, /*allow_zero=*/true);
    for (const auto& [name, endpoint] : sv.endpoints) {
      if (endpoint.listen) {
        CheckAddress(endpoint.source, "listen", *endpoint.listen, true);
      }
      if (endpoint.endpoint) {
        CheckAddress(endpoint.source, "endpoint", *endpoint.endpoint, false);
      }
    }
    const std::string& db = sv.session_database;
    if (!db.empty()) {
      if (db.front() != '/') {
        Error(s, "session_database",
              absl::StrCat(Quoted(db),
                           " is a relative path; use an absolute path such as "
                           "/var/lib/evgate/sessions.db, or the charge "
                           "records would end up wherever evgate was "
                           "started"));
      } else if (db == "/tmp" || absl::StartsWith(db, "/tmp/")) {
        Error(s, "session_database",
              absl::StrCat(Quoted(db),
                           " is under /tmp, which is cleared on reboot: the "
                           "charge records would be lost; use e.g. "
                           "/var/lib/evgate/sessions.db"));
      }
    }
    if (!sv.tls && !c_.insecure_demo) {
      Error(s, "tls",
            "required unless 'insecure_demo: true': the gRPC APIs must use "
            "TLS; add 'tls: {cert_file: ..., key_file: ...}'");
    }
  }

  // ---- services.auth and the services' client certificates -------------
  // Outside the demo the API is authorized (docs/security.md): TLS (checked
  // above) and at least one principal; each principal is one identity with
  // known roles; certificate principals need a CA to verify them.
  void CheckServiceAuth() {
    const ServicesConfig& sv = c_.services;
    if (sv.source.line() == 0) {
      return;  // missing section, already reported
    }
    if (sv.tls && sv.tls->client_cert_file.has_value() != sv.tls->client_key_file.has_value()) {
      Error(sv.tls->source, sv.tls->client_cert_file ? "client_cert_file" : "client_key_file",
            "client_cert_file and client_key_file go together: the certificate the services "
            "present when they call each other, and its key");
    }
    const ServiceAuthConfig& auth = sv.auth;
    if (auth.principals.empty() && !c_.insecure_demo) {
      Error(sv.source, "auth",
            "required unless 'insecure_demo: true': list who may call the gRPC API, e.g. "
            "'auth: {principals: [{name: load-balancer, certificate: lb.depot-1, roles: "
            "[controller, viewer]}]}' (docs/security.md)");
    }
    std::set<std::string> names, certificates, token_files;
    bool any_certificate = false;
    for (const PrincipalConfig& p : auth.principals) {
      const SourceLines& s = p.source;
      if (!p.name.empty() && !names.insert(p.name).second) {
        Error(s, "name", absl::StrCat("principal '", p.name, "' is listed twice"));
      }
      if (p.certificate.has_value() == p.token_file.has_value()) {
        Error(s, p.certificate ? "token_file" : "name",
              "a principal has exactly one of 'certificate' (the client certificate's CN or "
              "SAN) and 'token_file' (a file holding its bearer token)");
      }
      if (p.certificate) {
        any_certificate = true;
        if (p.certificate->empty()) {
          Error(s, "certificate", "is empty; write the certificate's CN or a SAN");
        } else if (!certificates.insert(*p.certificate).second) {
          Error(s, "certificate",
                absl::StrCat("'", *p.certificate, "' already belongs to another principal"));
        }
      }
      if (p.token_file) {
        if (p.token_file->empty() || p.token_file->front() != '/') {
          Error(s, "token_file",
                absl::StrCat(Quoted(*p.token_file),
                             " is not an absolute path; write e.g. /etc/evgate/tokens/bms"));
        } else if (!token_files.insert(*p.token_file).second) {
          Error(s, "token_file",
                absl::StrCat(Quoted(*p.token_file), " is already another principal's token"));
        }
      }
      if (p.roles.empty()) {
        Error(s, "roles", "a principal needs at least one role");
      }
      for (size_t i = 0; i < p.roles.size(); ++i) {
        const auto& known = PrincipalRoleNames();
        if (std::find(known.begin(), known.end(), p.roles[i]) == known.end()) {
          Error(s, absl::StrCat("roles[", i, "]"),
                absl::StrCat("'", p.roles[i],
                             "' is not a role; allowed: ", absl::StrJoin(known, ", ")));
        }
      }
    }
    if (any_certificate && sv.tls && !sv.tls->client_ca_file) {
      Error(sv.tls->source, "client_ca_file",
            "required when a principal is identified by its certificate: the CA that signs "
            "the client certificates");
    }
  }

  // ---- simulation ----------------------------------------------------------
  void CheckSimulatedVehicles() {
    const SimulationConfig& sim = c_.simulation;
    const std::set<std::string> simulated(sim.devices.begin(), sim.devices.end());
    std::set<std::string> plugged;
    for (const SimulatedVehicleConfig& vehicle : sim.vehicles) {
      const SourceLines& s = vehicle.source;
      if (vehicle.evse.empty()) {
        continue;  // missing: reported while reading
      }
      auto evse = evses_.find(vehicle.evse);
      if (evse == evses_.end()) {
        Error(s, "evse", UnknownReference("EVSE", vehicle.evse, evse_ids_));
        continue;
      }
      if (!plugged.insert(vehicle.evse).second) {
        Error(s, "evse",
              absl::StrCat("EVSE '", vehicle.evse, "' has a vehicle already; one per EVSE"));
        continue;
      }
      std::string device;
      for (const StationConfig& station : c_.stations) {
        for (const EvseConfig& e : station.evses) {
          if (&e == evse->second) device = station.device;
        }
      }
      if (simulated.count(device) == 0) {
        Error(s, "evse",
              absl::StrCat("EVSE '", vehicle.evse, "' is on device '", device,
                           "', which is not in simulation.devices; only a simulated "
                           "device can have a simulated vehicle"));
        continue;
      }
      if (evse->second->dc) {
        if (!(vehicle.max_power_w > 0 && vehicle.max_power_w <= 1e6)) {
          Error(s, "max_power_w",
                absl::StrCat("must be above 0 and at most 1000000 W, got ",
                             Num(vehicle.max_power_w)));
        }
        if (vehicle.max_current_a != 0 || vehicle.phases != 0) {
          Error(s, vehicle.max_current_a != 0 ? "max_current_a" : "phases",
                absl::StrCat("'", vehicle.evse,
                             "' is a DC EVSE: its vehicle takes max_power_w, not a current or "
                             "phases"));
        }
      } else {
        if (vehicle.max_power_w != 0) {
          Error(s, "max_power_w",
                absl::StrCat("'", vehicle.evse,
                             "' is an AC EVSE: its vehicle takes max_current_a and phases"));
        }
        if (!(vehicle.max_current_a > 0 && vehicle.max_current_a <= 80)) {
          Error(s, "max_current_a",
                absl::StrCat("must be above 0 and at most 80 A, got ", Num(vehicle.max_current_a)));
        }
        if (vehicle.phases != 1 && vehicle.phases != 3) {
          Error(s, "phases", absl::StrCat("must be 1 or 3, got ", vehicle.phases));
        }
      }
      if (!(vehicle.energy_to_full_wh > 0)) {
        Error(s, "energy_to_full_wh",
              absl::StrCat("must be above 0 Wh, got ", Num(vehicle.energy_to_full_wh)));
      }
      if (vehicle.id_tag) {
        const std::string& uid = *vehicle.id_tag;
        const DeviceConfig* wallbox = Device(device);
        if (!IsHex(uid) || uid.size() % 2 != 0 || uid.size() < 8 || uid.size() > 20) {
          Error(s, "id_tag",
                absl::StrCat(Quoted(uid),
                             " is not a valid card UID; use 8–20 hex digits "
                             "(an even number, no separators), e.g. \"04A1B2C3D4E5F6\""));
        } else if (wallbox != nullptr && wallbox->profile != nullptr &&
                   wallbox->profile->bus != BusKind::kCan &&
                   wallbox->profile->bus != BusKind::kOcpp) {
          Error(s, "id_tag",
                absl::StrCat("device '", device, "' (", wallbox->profile->name,
                             ") has no RFID reader evgate can read; only the CAN wallboxes "
                             "and the OCPP chargers report cards"));
        }
      }
    }
  }

  void CheckSimulation() {
    const SimulationConfig& sim = c_.simulation;
    std::set<std::string> seen;
    for (size_t i = 0; i < sim.devices.size(); ++i) {
      const std::string field = absl::StrCat("devices[", i, "]");
      if (Device(sim.devices[i]) == nullptr) {
        Error(sim.source, field, UnknownReference("device", sim.devices[i], device_ids_));
      } else if (!seen.insert(sim.devices[i]).second) {
        Error(sim.source, field, absl::StrCat("device '", sim.devices[i], "' is listed twice"));
      }
    }
    CheckSimulatedVehicles();
    if (!sim.building_load) {
      return;
    }
    const BuildingLoadConfig& b = *sim.building_load;
    for (auto [field, values] :
         {std::pair<absl::string_view, const std::vector<double>*>{"base_a", &b.base_a},
          std::pair<absl::string_view, const std::vector<double>*>{"peak_a", &b.peak_a}}) {
      if (!b.source.Has(field)) {
        continue;
      }
      if (values->size() != c_.grid.phases.size()) {
        Error(b.source, field,
              absl::StrCat(values->size(), values->size() == 1 ? " value" : " values",
                           " given for the grid's ", c_.grid.phases.size(),
                           c_.grid.phases.size() == 1 ? " phase (" : " phases (",
                           PhaseListName(c_.grid.phases),
                           "); give one per grid phase or a single number"));
        return;
      }
      for (double value : *values) {
        if (value < 0) {
          Error(b.source, field, absl::StrCat("must be >= 0 A, got ", Num(value)));
          return;
        }
      }
    }
    for (size_t i = 0; i < b.base_a.size() && i < b.peak_a.size(); ++i) {
      if (b.peak_a[i] < b.base_a[i]) {
        Error(b.source, "peak_a",
              absl::StrCat("peak ", Num(b.peak_a[i]), " A on ", PhaseName(c_.grid.phases[i]),
                           " is below the base ", Num(b.base_a[i]), " A"));
        return;
      }
    }
  }

  const SiteConfig& c_;
  ErrorList* errors_;
  std::map<std::string, size_t> circuits_, buses_, devices_, stations_;
  std::vector<std::string> circuit_ids_, bus_ids_, device_ids_, station_ids_;
  std::map<std::string, const EvseConfig*> evses_;
  std::vector<std::string> evse_ids_;
  std::set<std::string> groups_;
  std::vector<std::pair<HostPort, std::string>> listening_;
};

}  // namespace

void ValidateSiteConfig(const SiteConfig& config, ErrorList* errors) {
  errors->FinishReading();
  Validator(config, errors).Run();
}

}  // namespace evgate::site::internal

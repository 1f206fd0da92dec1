// The typed configuration of one charging site: everything in `site.yaml`.
//
// A SiteConfig is produced by the loader (site_config_loader.h), which parses
// the YAML, fills in defaults (all of them are in `namespace defaults` below,
// and nowhere else) and validates the whole file. A SiteConfig returned by a
// successful load is complete and consistent: every reference resolves, every
// value is in range, every default is filled in. Code that consumes it does
// not re-check.
//
// Units are in the field names: amperes per phase (`_a`), watts (`_w`),
// milliseconds (`_ms`), seconds (`_s`), percent (`_pct`).
//
// Each struct carries a SourceLines that remembers where it and each of its
// fields were written, so that any later check (here or in a service) can
// point an operator at `site.yaml:LINE`.
//
// Thread-safety: plain value types; thread-compatible.

#ifndef EVGATE_SITE_CONTROLLER_CONFIG_SITE_CONFIG_H_
#define EVGATE_SITE_CONTROLLER_CONFIG_SITE_CONFIG_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "site_controller/config/device_profiles.h"

namespace evgate::site {

// Every default of site.yaml. docs/site-yaml.md lists the same values.
namespace defaults {
// grid
inline constexpr double kNominalVoltageV = 230;
// buses
inline constexpr int kModbusRtuDataBits = 8;
inline constexpr int kModbusRtuStopBits = 1;
inline constexpr bool kModbusRtuRs485 = true;
inline constexpr int kModbusRtuTimeoutMs = 500;
inline constexpr int kModbusTcpPort = 502;
inline constexpr int kModbusTcpTimeoutMs = 1000;
inline constexpr int kModbusRetries = 2;
inline constexpr int kCanBitrate = 250000;
inline constexpr char kCanUdpGroup[] = "239.255.0.1";
inline constexpr int kCanUdpPort = 15030;
// devices
inline constexpr int kPollPeriodMs = 1000;
inline constexpr int kStaleAfterMissedPolls = 3;
// AC EVSEs (IEC 61851-1: 6 A is the lowest current a vehicle must accept)
inline constexpr double kMinCurrentA = 6;
inline constexpr double kCurrentStepA = 0.1;
// DC EVSEs
inline constexpr double kMinPowerW = 0;
inline constexpr double kEfficiency = 0.95;
inline constexpr double kFailsafePowerW = 0;
inline constexpr int kStandbyCountdownS = 180;
inline constexpr int kResyncStableS = 30;
inline constexpr double kSocMinPct = 30;
inline constexpr double kSocMaxPct = 100;
inline constexpr int kPriority = 0;
// authorization
inline constexpr int64_t kOfflineCacheTtlS = 86400;
// Authorized but not plugged in within this time: the session is cancelled.
inline constexpr int64_t kConnectionTimeoutS = 120;
// ocpp
inline constexpr char kOcppLocalListen[] = "0.0.0.0:9000";
inline constexpr int kOcppSecurityProfile = 2;
// controller
inline constexpr double kMarginA = 1.0;
inline constexpr double kRampUpAPerS = 5;
inline constexpr double kHysteresisA = 0.5;
inline constexpr int kTickMs = 1000;
inline constexpr int kMeterTimeoutMs = 3000;
inline constexpr int kMinPauseS = 120;
inline constexpr double kFailsafeCurrentA = 6;
// simulation
inline constexpr double kSimVehicleEnergyToFullWh = 40000;
// services
inline constexpr char kApiListen[] = "127.0.0.1:50051";
inline constexpr char kMetricsListen[] = "127.0.0.1:9464";
}  // namespace defaults

// The site's phases. The grid names its conductors L1..L3; an EVSE's `phases`
// list says which site phase each of the EVSE's own conductors is wired to.
enum class Phase { kL1 = 0, kL2 = 1, kL3 = 2 };
// 0, 1, 2: the phase as an index of a three-phase array.
constexpr int PhaseIndex(Phase phase) { return static_cast<int>(phase); }
absl::string_view PhaseName(Phase phase);                     // "L1"
std::string PhaseListName(const std::vector<Phase>& phases);  // "L1, L2"

// Where a config struct and its fields were written in site.yaml.
class SourceLines {
 public:
  // Path of the struct in the file, e.g. "stations[3].evses[0]"; "" = root.
  const std::string& path() const { return path_; }
  // 1-based line of the struct (its list item or section key); 0 = absent.
  int line() const { return line_; }
  // True if `field` was written in the file.
  bool Has(absl::string_view field) const;
  // Line of `field`, or line() when the field was not written (that is where
  // a message about a missing field points).
  int LineOf(absl::string_view field) const;
  // "stations[3].evses[0].max_current_a".
  std::string PathOf(absl::string_view field) const;

  void SetPath(std::string path, int line);
  void SetFieldLine(std::string field, int line);

 private:
  std::string path_;
  int line_ = 0;
  std::map<std::string, int, std::less<>> field_lines_;
};

struct SiteInfo {
  std::string id;    // required
  std::string name;  // free text, default ""
  SourceLines source;
};

// The grid connection: the root of the circuit tree (id "grid").
struct GridConfig {
  std::vector<Phase> phases;  // default L1, L2, L3
  // Main fuse per phase; fuse_limit_a[i] is the limit of phases[i].
  std::vector<double> fuse_limit_a;
  double nominal_voltage_v = defaults::kNominalVoltageV;  // phase-to-neutral
  std::optional<double> contract_power_w;                 // unset = no contract limit
  // Unset = no export limit configured; 0 = no export allowed.
  std::optional<double> export_limit_w;
  std::optional<std::string> meter;  // device id of a meter profile
  SourceLines source;
};

// A protected circuit (breaker, sub-distribution) below the grid or another
// circuit.
struct CircuitConfig {
  std::string id;
  std::string parent;                // "grid" or a circuit id
  std::vector<Phase> phases;         // default: the parent's phases
  std::vector<double> limit_a;       // limit_a[i] is the limit of phases[i]
  std::optional<std::string> meter;  // device id of a meter profile
  SourceLines source;
};

enum class BusType { kModbusRtu, kModbusTcp, kCan };
absl::string_view BusTypeName(BusType type);  // "modbus_rtu"
BusKind BusKindOf(BusType type);

enum class CanTransport { kSocketCan, kUdp };

struct ModbusRtuSettings {
  std::string port;  // e.g. /dev/ttyUSB0
  int baud = 0;      // required
  Parity parity = Parity::kNone;
  int data_bits = defaults::kModbusRtuDataBits;
  int stop_bits = defaults::kModbusRtuStopBits;
  bool rs485 = defaults::kModbusRtuRs485;
  // Unset = 3.5 character times at `baud` (Modbus RTU), chosen by the driver.
  std::optional<int> inter_frame_gap_ms;
  int timeout_ms = defaults::kModbusRtuTimeoutMs;
  int retries = defaults::kModbusRetries;
};

struct ModbusTcpSettings {
  std::string host;
  int port = defaults::kModbusTcpPort;
  int timeout_ms = defaults::kModbusTcpTimeoutMs;
  int retries = defaults::kModbusRetries;
};

struct CanSettings {
  std::string interface;  // e.g. can0
  CanTransport transport = CanTransport::kSocketCan;
  int bitrate = defaults::kCanBitrate;
  // transport udp only: evgate's virtual CAN bus over UDP multicast.
  std::string udp_group = defaults::kCanUdpGroup;
  int udp_port = defaults::kCanUdpPort;
};

// A physical bus. Exactly one of the settings members is set, the one that
// matches `type`.
struct BusConfig {
  std::string id;
  BusType type = BusType::kModbusRtu;
  std::optional<ModbusRtuSettings> modbus_rtu;
  std::optional<ModbusTcpSettings> modbus_tcp;
  std::optional<CanSettings> can;
  SourceLines source;
};

struct DeviceConfig {
  std::string id;
  std::string profile_name;
  // The profile named by profile_name; never null in a loaded config.
  const DeviceProfile* profile = nullptr;
  std::optional<std::string> bus;              // Modbus and CAN devices
  std::optional<int> address;                  // Modbus and CAN devices
  std::optional<std::string> charge_point_id;  // OCPP devices
  // OCPP devices under security profiles 1 and 2: the file holding the
  // charger's basic-auth password (its AuthorizationKey), never the password.
  std::optional<std::string> password_file;
  // generic_meter only. A relative path is resolved against the directory of
  // site.yaml by LoadSiteConfigFile.
  std::optional<std::string> register_map;
  int poll_period_ms = defaults::kPollPeriodMs;
  int stale_after_missed_polls = defaults::kStaleAfterMissedPolls;
  SourceLines source;
};

// Limits of an EVSE on an AC wallbox, amperes per phase.
struct AcEvseLimits {
  double min_current_a = defaults::kMinCurrentA;
  double max_current_a = 0;  // default: the profile's maximum
  double current_step_a = defaults::kCurrentStepA;
  // 0 = pause on failsafe. Default: controller.failsafe_current_a, moved
  // into [min_current_a, max_current_a] when it is not 0.
  double failsafe_current_a = 0;
};

// Limits of an EVSE on a DC charger, watts (charging power at the vehicle).
struct DcEvseLimits {
  double min_power_w = defaults::kMinPowerW;
  double max_power_w = 0;                     // default: the station's max_power_w
  double efficiency = defaults::kEfficiency;  // AC input = DC / efficiency
  double failsafe_power_w = defaults::kFailsafePowerW;
  bool bidirectional = false;  // V2X discharge enabled
  // Bidirectional only. Defaults: the profile's limits.
  double max_discharge_power_w = 0;
  double max_discharge_power_offgrid_w = 0;
  double soc_min_pct = defaults::kSocMinPct;  // stop discharging below
  double soc_max_pct = defaults::kSocMaxPct;  // stop charging above
};

enum class ConnectorType { kType2, kCcs1, kCcs2, kChademo, kGbt };
absl::string_view ConnectorTypeName(ConnectorType type);

// One connector of a station: the unit the allocation engine controls.
struct EvseConfig {
  std::string id;  // unique across the site
  int connector = 1;
  // Site phase of the EVSE's L1, L2, L3 (one entry: single-phase).
  std::vector<Phase> phases;
  // Exactly one is set in a loaded config: `ac` for AC wallboxes, `dc` for
  // DC chargers.
  std::optional<AcEvseLimits> ac;
  std::optional<DcEvseLimits> dc;
  std::optional<ConnectorType> connector_type;
  int priority = defaults::kPriority;  // higher is served first
  std::vector<std::string> groups;     // authorization groups
  SourceLines source;
};

// A charger (one device) with one EVSE per connector.
struct StationConfig {
  std::string id;
  std::string device;
  std::string circuit;     // "grid" or a circuit id
  double max_power_w = 0;  // default: the profile's station maximum
  std::vector<EvseConfig> evses;
  SourceLines source;
};

struct CardConfig {
  std::string uid;  // upper-case hex
  std::string name;
  std::optional<absl::Time> valid_from;
  std::optional<absl::Time> valid_until;
  std::vector<std::string> evses;   // empty = any EVSE (subject to groups)
  std::vector<std::string> groups;  // empty = any group
  bool blocked = false;
  bool master = false;  // may stop anyone's session
  SourceLines source;
};

struct AuthorizationConfig {
  std::vector<std::string> free_vend_evses;
  std::vector<CardConfig> cards;
  int64_t offline_cache_ttl_s = defaults::kOfflineCacheTtlS;
  int64_t connection_timeout_s = defaults::kConnectionTimeoutS;
  SourceLines source;
};

// evgate's own OCPP Central System, which the DC chargers connect to.
struct OcppLocalConfig {
  std::string listen = defaults::kOcppLocalListen;
  // 0 plain ws (insecure_demo only), 1 basic auth, 2 TLS + basic auth,
  // 3 mutual TLS.
  int security_profile = defaults::kOcppSecurityProfile;
  std::optional<std::string> tls_cert_file;
  std::optional<std::string> tls_key_file;
  std::optional<std::string> ca_file;
  SourceLines source;
};

// The central CSMS evgate reports to, as one charge point.
struct OcppUpstreamConfig {
  std::string url;
  std::string charge_point_id;
  int security_profile = defaults::kOcppSecurityProfile;
  std::optional<std::string> password_file;
  std::optional<std::string> ca_file;
  std::optional<std::string> client_cert_file;
  std::optional<std::string> client_key_file;
  SourceLines source;
};

struct OcppConfig {
  std::optional<OcppLocalConfig> local;
  std::optional<OcppUpstreamConfig> upstream;
  SourceLines source;
};

// Tuning of the load balancer's control loop.
struct ControllerConfig {
  double margin_a = defaults::kMarginA;
  double ramp_up_a_per_s = defaults::kRampUpAPerS;
  double hysteresis_a = defaults::kHysteresisA;
  int tick_ms = defaults::kTickMs;
  int meter_timeout_ms = defaults::kMeterTimeoutMs;
  int min_pause_s = defaults::kMinPauseS;
  double failsafe_current_a = defaults::kFailsafeCurrentA;
  SourceLines source;
};

// The V2X grid modes (docs/v2x.md): the off-grid box that senses the grid and switches the
// backup loads, and how the grid controller runs the outage. Absent section: a plain
// grid-connected site (no grid controller). The bidirectional EVSEs of the site are the ones
// that may form the island (their soc_min_pct and max_discharge_power_offgrid_w apply).
struct GridModesConfig {
  std::string off_grid_box;  // device id (profile v2x_offgrid_box)
  // The ICE-22 "Off-grid Suicide Timer (Countdown)", s: 1–900, default 180.
  int standby_countdown_s = defaults::kStandbyCountdownS;
  // Start off-grid discharge by itself when a dischargeable vehicle is ready in an outage.
  bool auto_off_grid = true;
  // Grid present this long before the loads are transferred back, s.
  int resync_stable_s = defaults::kResyncStableS;
  // "Is P-N off grid Pull-in": bond N to PE while off grid (local regulations decide).
  bool pn_pull_in = false;
  SourceLines source;
};

struct TlsConfig {
  std::string cert_file;
  std::string key_file;
  // The site CA: verifies client certificates presented to this server, and
  // the servers this site's services call (default: cert_file itself, for a
  // self-signed server certificate).
  std::optional<std::string> client_ca_file;
  // The certificate a service presents when it calls another one (load
  // balancer -> drivers, session -> drivers). Both or neither.
  std::optional<std::string> client_cert_file;
  std::optional<std::string> client_key_file;
  SourceLines source;
};

// A caller of the gRPC API (docs/security.md): identified by exactly one of
// a client certificate (its subject CN or a SAN equals `certificate`) or a
// bearer token, whose value is in `token_file` (never in site.yaml).
struct PrincipalConfig {
  std::string name;
  std::optional<std::string> certificate;
  std::optional<std::string> token_file;  // absolute path
  std::vector<std::string> roles;         // viewer, integrator, operator, controller
  SourceLines source;
};

// Who may call the gRPC API. Required (non-empty) unless insecure_demo.
struct ServiceAuthConfig {
  std::vector<PrincipalConfig> principals;
  SourceLines source;
};

// The role names a principal may hold.
const std::vector<absl::string_view>& PrincipalRoleNames();

// Where one service listens and how its peers reach it (split deployment).
struct ServiceEndpointConfig {
  std::optional<std::string> listen;    // host:port
  std::optional<std::string> endpoint;  // host:port
  SourceLines source;
};

// The service names allowed under `services:`.
const std::vector<absl::string_view>& ServiceNames();

struct ServicesConfig {
  std::string api_listen = defaults::kApiListen;  // port 0 = pick a free port
  std::string metrics_listen = defaults::kMetricsListen;
  std::string session_database;  // absolute path
  std::optional<TlsConfig> tls;
  ServiceAuthConfig auth;
  std::map<std::string, ServiceEndpointConfig> endpoints;  // by service name
  SourceLines source;
};

struct BuildingLoadConfig {
  // One value per grid phase (same order as grid.phases), A.
  std::vector<double> base_a;
  std::vector<double> peak_a;
  SourceLines source;
};

// A vehicle the simulator plugs in when it starts, so a demo site charges
// without anyone touching it.
struct SimulatedVehicleConfig {
  std::string evse;  // an EVSE of a device in simulation.devices
  // The vehicle's on-board charger maximum per phase. Default: the EVSE's
  // max_current_a.
  double max_current_a = 0;
  // 1 (draws on the EVSE's L1 only) or 3. Default: the EVSE's phase count.
  int phases = 0;
  // Energy the battery takes until it is full and stops asking (C -> B).
  double energy_to_full_wh = defaults::kSimVehicleEnergyToFullWh;
  // A card (upper-case hex UID) the driver taps at the wallbox's reader once
  // a controller drives the wallbox, so a session starts; at a DC charger it
  // is presented at plug-in (OCPP Authorize); unset = no tap.
  std::optional<std::string> id_tag;
  // DC EVSEs: the vehicle's largest charging power. Default: the EVSE's
  // max_power_w. (max_current_a and phases are for AC EVSEs.)
  double max_power_w = 0;
  SourceLines source;
};

// Devices evgate simulates itself (demo sites, tests).
struct SimulationConfig {
  std::vector<std::string> devices;
  std::optional<BuildingLoadConfig> building_load;
  std::vector<SimulatedVehicleConfig> vehicles;
  SourceLines source;
};

struct SiteConfig {
  SiteInfo site;
  GridConfig grid;
  std::vector<CircuitConfig> circuits;
  std::vector<BusConfig> buses;
  std::vector<DeviceConfig> devices;
  std::vector<StationConfig> stations;
  AuthorizationConfig authorization;
  OcppConfig ocpp;
  ControllerConfig controller;
  std::optional<GridModesConfig> grid_modes;
  ServicesConfig services;
  SimulationConfig simulation;
  // Allows plaintext gRPC and OCPP security profile 0. Demo sites only.
  bool insecure_demo = false;
  // The file this was loaded from (as given to the loader).
  std::string source_path;

  // Lookups by id; nullptr when absent.
  const CircuitConfig* FindCircuit(absl::string_view id) const;
  const BusConfig* FindBus(absl::string_view id) const;
  const DeviceConfig* FindDevice(absl::string_view id) const;
  const StationConfig* FindStation(absl::string_view id) const;
  const EvseConfig* FindEvse(absl::string_view id) const;
};

// The reserved id of the grid connection in the circuit tree.
inline constexpr char kGridCircuitId[] = "grid";

}  // namespace evgate::site

#endif  // EVGATE_SITE_CONTROLLER_CONFIG_SITE_CONFIG_H_

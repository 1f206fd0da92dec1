// The simulated site: every device of site.yaml `simulation.devices`, served
// on the buses site.yaml names, wired together by the site's physics, and
// the `evgate.v1.Simulator` API to play the world around them. It is the
// `simulator` service of `evgate run` (demo sites, end-to-end tests).
//
// What is simulated, by profile:
//   - eastron_sdm630, heidelberg_energy_control, v2x_offgrid_box: one
//     ModbusServer per Modbus bus with one unit per device address. A
//     `modbus_tcp` bus is served on its host:port. A `modbus_rtu` bus names a
//     serial port the simulator cannot be (it is the other end of the line):
//     it is served on a new pseudo-terminal instead, with the bus's serial
//     format, and the pty's path is logged and shown in ListSimulatedDevices,
//     so a test site can point a driver at it.
//   - cabur_ev_plus_22kw / cabur_ev_plus_7kw: one CanWallboxSimHost per CAN
//     bus, on the bus's own transport (evgate's UDP virtual bus for
//     `transport: udp`, SocketCAN on `interface` otherwise), each wallbox at
//     its address with its Max Current setting = the EVSE's max_current_a.
//   - OCPP chargers (ds60, ice22_v2x): one OcppChargerSimulator each,
//     connecting as a charge point to site.yaml `ocpp.local` (the bridge of
//     the same `evgate run`, or any Central System there) over
//     OcppChargePointClients, with its charge_point_id and, under security
//     profile 1, the password of its password_file. Its connectors are the
//     station's EVSEs (max/min power, efficiency). Not simulated (said
//     once, listed with the reason): TLS profiles 2 and 3, and a listen
//     port of 0 (unknown until the bridge starts).
//   - generic_meter: not simulated; said once in the log and listed with
//     the reason.
//
// Physics, every `physics_period` (on the injected clock):
//   - building (non-EV) load per grid phase: site.yaml
//     `simulation.building_load`, base_a at night (20:00-06:00 UTC) rising
//     to peak_a at 13:00 UTC along a half sine, plus slowly varying noise
//     (a seeded Ornstein-Uhlenbeck process, `noise_a` standard deviation);
//     SetBuildingLoad overrides it with fixed values;
//   - each simulated EVSE's draw (its vehicle follows the wallbox's offer
//     after the vehicle's lag) is mapped from the EVSE's own L1..L3 to site
//     phases through its `phases` wiring;
//   - a meter measures its node of the circuit tree: the grid meter the
//     building load plus every simulated EVSE, a circuit meter the EVSEs of
//     its subtree. Its voltage is the nominal voltage less a small drop
//     across the supply's resistance (`supply_resistance_ohm`, scaled to the
//     connection's size, x current),
//     power is V x I (power factor 1), energy integrates that power.
//   - a DC charger's AC draw is its delivered power / efficiency, spread over
//     its phases at the nominal voltage; its power follows the composite
//     limit of the charging profiles the Central System set.
//   - The off-grid box sees the grid at the nominal voltage; its AC meter 1
//     (the V2X charger's connection point) reads 0 A.
//   - A grid outage (SetGridPresent(false)): every off-grid box sees it (its
//     switch opens, its standby countdown runs); the grid meter reads 0 V and
//     0 A (nothing flows through the connection point); the building's loads
//     are supplied only while a box's switch is on the island, by the
//     bidirectional DC EVSEs discharging: each one at most the building's
//     load (a grid-forming inverter supplies what the loads take), within
//     its negative limit; its vehicle's SOC falls and it stops at its SOC
//     lower limit. Simplification: the other chargers keep answering on
//     their buses (as if their controllers were on a UPS) and their vehicles
//     follow their offers; the load balancer pauses them all off grid.
//
// Start() serves every bus, computes the physics once (meters have values
// before the first poll), plugs in site.yaml `simulation.vehicles` and starts
// the physics thread.
//
// Thread-safety: thread-safe. The Service methods follow runtime/service.h.
#ifndef EVGATE_DEVICE_DRIVERS_SIM_SITE_SIMULATOR_H_
#define EVGATE_DEVICE_DRIVERS_SIM_SITE_SIMULATOR_H_

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "device_drivers/can/can_bus.h"
#include "device_drivers/sim/cabur_wallbox_simulator.h"
#include "device_drivers/sim/heidelberg_simulator.h"
#include "device_drivers/sim/modbus_server.h"
#include "device_drivers/sim/ocpp_charge_point_client.h"
#include "device_drivers/sim/ocpp_charger_simulator.h"
#include "device_drivers/sim/offgrid_box_simulator.h"
#include "device_drivers/sim/sdm630_simulator.h"
#include "evgate/v1/simulator.grpc.pb.h"
#include "runtime/clock.h"
#include "runtime/service.h"
#include "site_controller/config/site_config.h"

namespace evgate::sim {

struct SiteSimulatorOptions {
  absl::Duration physics_period = absl::Milliseconds(100);
  // false: no physics thread; the caller drives Step() (tests, FakeClock).
  bool physics_thread = true;
  // Seed of the building load's noise.
  uint64_t seed = 1;
  // Standard deviation of the building load's noise per phase, A.
  double noise_a = 0.3;
  // Time constant of the noise (how fast it wanders).
  absl::Duration noise_time_constant = absl::Seconds(10);
  // Resistance of the supply up to the grid meter of a 63 A connection, ohm
  // (voltage drop). A bigger connection has a stiffer supply: the resistance
  // scales with 63 A / grid.fuse_limit_a, so the drop at full load is the
  // same share of the nominal voltage (1.4 % by default) whatever the site's
  // size (a 20 kA depot would otherwise see a negative voltage).
  double supply_resistance_ohm = 0.05;
  // How often the CAN wallbox hosts tick (real time).
  absl::Duration can_tick = absl::Milliseconds(10);
  // false: the CAN wallbox hosts get no thread; Step() runs them (tests,
  // FakeClock): each Step() first applies the frames on the bus, then the
  // physics; a card tap goes out at the next Step().
  bool can_threads = true;
  // Tests: makes the transport of each CAN bus (e.g. a LoopbackCanNetwork
  // endpoint; never null) instead of the UDP virtual bus or SocketCAN of
  // site.yaml.
  std::function<std::unique_ptr<can::CanBus>(const site::BusConfig&)> can_transport;
  // Vehicle response time to a new offer (IEC 61851-1 allows up to 5 s).
  absl::Duration ev_lag = absl::Seconds(2);
  // How long a controller must have driven a wallbox before a vehicle's
  // card (VehicleParams::id_tag) is tapped: the session service, started
  // with the drivers, is listening by then.
  absl::Duration card_tap_delay = absl::Seconds(3);
  // Tests: the UDP virtual CAN buses send and join on this local address.
  std::string udp_interface_address = "127.0.0.1";
};

// What a vehicle is, for PlugIn. Zero fields take the EVSE's defaults.
struct VehicleParams {
  double max_current_a = 0;      // 0 = the EVSE's max_current_a
  int phases = 0;                // 1 or 3; 0 = the EVSE's phase count
  double energy_to_full_wh = 0;  // 0 = site::defaults::kSimVehicleEnergyToFullWh
  // A card the driver taps once a controller has driven the wallbox for
  // `card_tap_delay` (setpoints arrive, no failsafe), as a person taps after
  // plugging in; empty = none. CAN wallboxes (they have the reader), and
  // DC chargers, where it is presented at once (Authorize).
  std::string id_tag;
  double max_power_w = 0;         // DC chargers; 0 = the EVSE's max_power_w
  std::optional<double> soc_pct;  // DC chargers: SOC at plug-in, %; unset = 20
};

class SiteSimulator final : public Service, public v1::Simulator::Service {
 public:
  // Builds the simulators for `config` (which must outlive the simulator).
  // Nothing is served before Start(). Fails for a simulated Cabur wallbox
  // whose settings the simulator cannot take.
  static absl::StatusOr<std::unique_ptr<SiteSimulator>> Create(const site::SiteConfig& config,
                                                               const Clock& clock,
                                                               SiteSimulatorOptions options = {});
  ~SiteSimulator() override;
  SiteSimulator(const SiteSimulator&) = delete;
  SiteSimulator& operator=(const SiteSimulator&) = delete;

  // evgate::Service
  std::string_view name() const override { return "simulator"; }
  std::vector<grpc::Service*> grpc_services() override { return {this}; }
  std::vector<std::string> health_names() const override { return {"evgate.v1.Simulator"}; }
  // Fails (kUnavailable) when a bus cannot be served, e.g. its TCP port is
  // taken; everything already started is stopped again.
  absl::Status Start() override;
  void Stop() override;

  // Advances the site physics to clock.Now(): building load, EVSE draws,
  // meters (and, without can_threads, the CAN wallbox hosts first). The
  // physics thread calls it every physics_period.
  void Step();

  // The control API; the RPCs below call these. Ids are device or EVSE ids
  // from site.yaml.
  v1::ListSimulatedDevicesResponse List();
  absl::StatusOr<v1::SimulatedEvse> PlugIn(const std::string& evse_id, VehicleParams vehicle);
  absl::StatusOr<v1::SimulatedEvse> Unplug(const std::string& evse_id);
  absl::Status TapCard(const std::string& evse_id, const std::string& id_tag);
  absl::StatusOr<v1::SimulatedDevice> SetFault(const std::string& target_id,
                                               const std::string& vendor_code, bool active);
  absl::StatusOr<v1::SimulatedDevice> SetResponding(const std::string& target_id, bool responding);
  // nullopt: back to the daily profile. Values per site phase L1..L3, A.
  absl::StatusOr<v1::BuildingLoad> SetBuildingLoad(std::optional<std::array<double, 3>> current_a);
  // A grid outage (false) or its end (Simulator.SetGrid).
  void SetGridPresent(bool present);
  bool grid_present();
  // The backup battery button of an off-grid box; empty = the only one.
  absl::Status PressBackupBatteryButton(const std::string& device_id);

  // evgate.v1.Simulator
  grpc::Status ListSimulatedDevices(grpc::ServerContext* context,
                                    const v1::ListSimulatedDevicesRequest* request,
                                    v1::ListSimulatedDevicesResponse* response) override;
  grpc::Status PlugIn(grpc::ServerContext* context, const v1::PlugInRequest* request,
                      v1::PlugInResponse* response) override;
  grpc::Status Unplug(grpc::ServerContext* context, const v1::UnplugRequest* request,
                      v1::UnplugResponse* response) override;
  grpc::Status TapCard(grpc::ServerContext* context, const v1::TapCardRequest* request,
                       v1::TapCardResponse* response) override;
  grpc::Status InjectFault(grpc::ServerContext* context, const v1::InjectFaultRequest* request,
                           v1::InjectFaultResponse* response) override;
  grpc::Status ClearFault(grpc::ServerContext* context, const v1::ClearFaultRequest* request,
                          v1::ClearFaultResponse* response) override;
  grpc::Status SetDeviceResponding(grpc::ServerContext* context,
                                   const v1::SetDeviceRespondingRequest* request,
                                   v1::SetDeviceRespondingResponse* response) override;
  grpc::Status SetBuildingLoad(grpc::ServerContext* context,
                               const v1::SetBuildingLoadRequest* request,
                               v1::SetBuildingLoadResponse* response) override;
  grpc::Status SetGrid(grpc::ServerContext* context, const v1::SetGridRequest* request,
                       v1::SetGridResponse* response) override;
  grpc::Status PressBackupBatteryButton(grpc::ServerContext* context,
                                        const v1::PressBackupBatteryButtonRequest* request,
                                        v1::PressBackupBatteryButtonResponse* response) override;

 private:
  // The simulated grid's frequency, Hz.
  static constexpr double kGridFrequencyHz = 50;
  using PhaseArray = std::array<double, 3>;  // by site phase L1..L3

  enum class Kind { kNone, kSdm630, kHeidelberg, kOffGridBox, kCabur, kOcpp };

  struct Evse;
  struct ModbusBusSim {
    const site::BusConfig* config = nullptr;
    std::unique_ptr<ModbusServer> server;
    std::string endpoint;  // set by Start()
  };
  struct CanBusSim {
    const site::BusConfig* config = nullptr;
    std::unique_ptr<can::CanBus> transport;
    std::unique_ptr<CanWallboxSimHost> host;
    std::string endpoint;
  };
  struct Device {
    const site::DeviceConfig* config = nullptr;
    Kind kind = Kind::kNone;
    std::string not_simulated_reason;
    ModbusBusSim* modbus = nullptr;  // Modbus devices
    CanBusSim* can = nullptr;        // Cabur wallboxes
    std::unique_ptr<Sdm630Simulator> meter;
    std::unique_ptr<HeidelbergSimulator> heidelberg;
    std::unique_ptr<OffGridBoxSimulator> box;
    std::unique_ptr<OcppChargerSimulator> ocpp;  // DC chargers
    std::string ocpp_endpoint;                   // "ocpp ws://host:port/<id>"
    std::string measures;                        // meters: "grid", a circuit id, or ""
    std::vector<Evse*> evses;                    // wallboxes
  };
  struct Vehicle {
    double max_current_a = 0;
    int phases = 3;
    double energy_to_full_wh = 0;
    double energy_at_plug_in_wh = 0;  // Heidelberg: its register at plug-in
    bool full = false;
    std::vector<uint8_t> card;  // still to be tapped; empty = none
    std::string card_text;
    std::optional<absl::Time> driven_since;  // controller setpoints in force since
  };
  struct Evse {
    const site::EvseConfig* config = nullptr;
    Device* device = nullptr;
    std::set<std::string> circuits;  // every node above it, "grid" included
    std::optional<Vehicle> vehicle;
  };
  // What a meter showed at the last Step().
  struct MeterState {
    PhaseArray current_a{};
    PhaseArray voltage_v{};
  };

  SiteSimulator(const site::SiteConfig& config, const Clock& clock, SiteSimulatorOptions options);
  absl::Status Build();
  // Where an OCPP charger connects, or why it cannot be simulated.
  absl::StatusOr<OcppClientTarget> OcppTarget(const site::DeviceConfig& device) const;
  OcppChargerSimConfig OcppChargerConfig(const site::DeviceConfig& device) const;
  void StopServing();
  void RunPhysics();

  Device* FindDevice(const std::string& id);
  // The device with that id, or the device of the EVSE with that id.
  Device* FindTarget(const std::string& id);
  Evse* FindEvse(const std::string& id);

  // The building load now, updating the noise; by site phase.
  PhaseArray BuildingLoadLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // An EVSE's draw / offer by site phase.
  PhaseArray EvseDraw(const Evse& evse);
  PhaseArray ToSitePhases(const Evse& evse, const std::array<double, 3>& own) const;
  // Tells the bidirectional DC EVSEs what an island's loads take (the building's load while a
  // box's switch is on the island), or that there is no island.
  void UpdateIslandLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StepLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  v1::SimulatedDevice DescribeLocked(const Device& device) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  v1::SimulatedEvse DescribeEvseLocked(const Evse& evse) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<v1::SimulatedEvse> PlugInLocked(Evse& evse, VehicleParams params)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<v1::SimulatedEvse> PlugInOcppLocked(Evse& evse, VehicleParams params)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const site::SiteConfig& config_;
  const Clock& clock_;
  const SiteSimulatorOptions options_;

  // Built once by Create(); the structure is fixed afterwards (the device
  // simulators inside are thread-safe).
  std::vector<std::unique_ptr<ModbusBusSim>> modbus_buses_;
  std::vector<std::unique_ptr<CanBusSim>> can_buses_;
  std::vector<std::unique_ptr<Device>> devices_;  // simulation.devices order
  std::vector<std::unique_ptr<Evse>> evses_;
  // The DC chargers' connections; null when none is simulated.
  std::unique_ptr<OcppChargePointClients> ocpp_clients_;

  // Serialises the physics and the control calls, so a meter never shows a
  // half-applied change.
  absl::Mutex mu_;
  std::optional<PhaseArray> building_override_ ABSL_GUARDED_BY(mu_);
  PhaseArray noise_a_ ABSL_GUARDED_BY(mu_){};
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Time> last_step_ ABSL_GUARDED_BY(mu_);
  PhaseArray building_a_ ABSL_GUARDED_BY(mu_){};
  bool grid_present_ ABSL_GUARDED_BY(mu_) = true;
  std::map<const Device*, MeterState> meter_state_ ABSL_GUARDED_BY(mu_);
  // Vendor codes of faults injected on devices without their own fault
  // register (meters, Heidelberg, the off-grid box), by device.
  std::map<const Device*, std::set<std::string>> faults_ ABSL_GUARDED_BY(mu_);
  std::map<const Device*, bool> responding_ ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;

  absl::Mutex run_mu_;
  bool stop_ ABSL_GUARDED_BY(run_mu_) = false;
  std::thread thread_;
};

// The building load of `building` per grid phase at `t` without noise: the
// daily profile described above. Exposed for tests.
std::vector<double> BuildingLoadProfile(const site::BuildingLoadConfig& building, absl::Time t);

}  // namespace evgate::sim

#endif  // EVGATE_DEVICE_DRIVERS_SIM_SITE_SIMULATOR_H_

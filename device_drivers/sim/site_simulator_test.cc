#include "device_drivers/sim/site_simulator.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "device_drivers/can/loopback_can_bus.h"
#include "device_drivers/can/udp_can_bus.h"
#include "device_drivers/can/wallbox_protocol.h"
#include "device_drivers/modbus/libmodbus_transport.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "runtime/clock.h"
#include "runtime/server_host.h"
#include "site_controller/config/site_config_loader.h"

namespace evgate::sim {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

namespace wb = can::wallbox;

// 2026-11-21, 03:00 UTC: night, the building at its base load.
constexpr absl::Time kNight = absl::FromUnixSeconds(1'795'230'000);

// A vehicle; zeros take the EVSE's defaults.
VehicleParams Ev(double max_current_a, int phases, double energy_to_full_wh = 0,
                 std::string id_tag = "") {
  VehicleParams v;
  v.max_current_a = max_current_a;
  v.phases = phases;
  v.energy_to_full_wh = energy_to_full_wh;
  v.id_tag = std::move(id_tag);
  return v;
}

// A port nobody uses right now (the kernel's pick for port 0).
int FreePort(int type) {
  const int fd = socket(AF_INET, type, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0) close(fd);
    return 0;
  }
  close(fd);
  return ntohs(addr.sin_port);
}

// A garage with a meter, a 1-phase sub-circuit below it, two Cabur wallboxes
// (one rotated, one single-phase on L3), a Heidelberg wallbox on the grid, a
// grid meter, an off-grid box and an OCPP charger.
constexpr char kSite[] = R"(insecure_demo: true
site: {id: sim-test}
grid: {fuse_limit_a: 63, meter: gm, nominal_voltage_v: 230}
services: {session_database: /var/lib/evgate/test.db}
ocpp:
  local: {listen: 127.0.0.1:@OCPP_PORT@, security_profile: 0}
circuits:
  - {id: garage, parent: grid, limit_a: 32, meter: garage-meter}
  - {id: garage-1ph, parent: garage, phases: [L3], limit_a: [16]}
buses:
  - {id: rs485, type: modbus_tcp, host: 127.0.0.1, port: @MODBUS_PORT@}
  - {id: can, type: can, interface: vcan-test, transport: udp, udp_port: @CAN_PORT@}
devices:
  - {id: gm, profile: eastron_sdm630, bus: rs485, address: 1}
  - {id: garage-meter, profile: eastron_sdm630, bus: rs485, address: 3}
  - {id: box, profile: v2x_offgrid_box, bus: rs485, address: 2}
  - {id: hd, profile: heidelberg_energy_control, bus: rs485, address: 4}
  - {id: wallbox-1, profile: cabur_ev_plus_22kw, bus: can, address: 1}
  - {id: wallbox-3, profile: cabur_ev_plus_7kw, bus: can, address: 3}
  - {id: ds60-1, profile: ds60, charge_point_id: DS60-1}
stations:
  - {id: wb1, device: wallbox-1, circuit: garage, evses: [{id: wb1, phases: [L2, L3, L1]}]}
  - {id: wb3, device: wallbox-3, circuit: garage-1ph, evses: [{id: wb3, phases: [L3], max_current_a: 16}]}
  - {id: hd, device: hd, circuit: grid, evses: [{id: hd1, phases: [L1, L2, L3], max_current_a: 16}]}
  - {id: dc, device: ds60-1, circuit: grid, evses: [{id: dc1}]}
simulation:
  devices: [gm, garage-meter, box, hd, wallbox-1, wallbox-3, ds60-1]
  building_load: {base_a: [10, 20, 30], peak_a: [40, 50, 60]}
  vehicles:
    - {evse: wb1, max_current_a: 16}
)";

class SiteSimulatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    modbus_port_ = FreePort(SOCK_STREAM);
    can_port_ = FreePort(SOCK_DGRAM);
    ASSERT_GT(modbus_port_, 0);
    ASSERT_GT(can_port_, 0);
    const std::string yaml = absl::StrReplaceAll(
        kSite, {{"@MODBUS_PORT@", absl::StrCat(modbus_port_)},
                {"@CAN_PORT@", absl::StrCat(can_port_)},
                // Nobody listens there: the simulated DS60 keeps trying to connect.
                {"@OCPP_PORT@", absl::StrCat(FreePort(SOCK_STREAM))}});
    site::SiteConfigLoadResult loaded = site::LoadSiteConfig(yaml, "site.yaml");
    ASSERT_TRUE(loaded.ok()) << loaded.ErrorText();
    config_ = std::move(loaded.config);
    SiteSimulatorOptions options;
    options.physics_thread = false;
    options.noise_a = 0;  // exact sums; the noise has its own test
    Configure(options);
    auto simulator = SiteSimulator::Create(config_, clock_, options);
    ASSERT_TRUE(simulator.ok()) << simulator.status();
    sim_ = *std::move(simulator);
    ASSERT_TRUE(sim_->Start().ok());
  }
  void TearDown() override {
    if (sim_) sim_->Stop();
  }
  // Fixtures that change how the simulator is built.
  virtual void Configure(SiteSimulatorOptions& /*options*/) {}

  const v1::SimulatedDevice& Device(const v1::ListSimulatedDevicesResponse& list,
                                    const std::string& id) {
    for (const v1::SimulatedDevice& d : list.devices()) {
      if (d.device_id() == id) return d;
    }
    ADD_FAILURE() << "no device " << id;
    return v1::SimulatedDevice::default_instance();
  }
  v1::SimulatedEvse Evse(const std::string& device, const std::string& evse) {
    const v1::ListSimulatedDevicesResponse list = sim_->List();
    for (const v1::SimulatedEvse& e : Device(list, device).evses()) {
      if (e.evse_id() == evse) return e;
    }
    ADD_FAILURE() << "no EVSE " << evse;
    return {};
  }
  // Moves time in physics steps of 100 ms.
  void Run(absl::Duration d) {
    for (absl::Duration t; t < d; t += absl::Milliseconds(100)) {
      clock_.Advance(absl::Milliseconds(100));
      sim_->Step();
    }
  }
  // A register block of unit `unit` over Modbus TCP, as a driver reads it.
  absl::StatusOr<std::vector<uint16_t>> ReadInput(int unit, uint16_t address, int count) {
    auto transport =
        modbus::LibmodbusTransport::Tcp({"127.0.0.1", modbus_port_, absl::Milliseconds(300)});
    if (!transport.ok()) return transport.status();
    if (absl::Status s = (*transport)->Connect(); !s.ok()) return s;
    if (absl::Status s = (*transport)->SetSlave(unit); !s.ok()) return s;
    return (*transport)->ReadRegisters(modbus::RegisterTable::kInput, address, count);
  }
  static double Float(const std::vector<uint16_t>& r, int i) {
    const uint32_t bits = (static_cast<uint32_t>(r[i]) << 16) | r[i + 1];
    float f;
    std::memcpy(&f, &bits, sizeof(f));
    return f;
  }

  FakeClock clock_{kNight};
  // The CAN bus of SteppedCanTest (declared before sim_, which outlives none
  // of its endpoints).
  can::LoopbackCanNetwork network_{clock_};
  int modbus_port_ = 0;
  int can_port_ = 0;
  site::SiteConfig config_;
  std::unique_ptr<SiteSimulator> sim_;
};

// The supply is as stiff as the connection is big: a 20 kA depot at 15 kA
// sees the same 1 % drop as a 63 A house at 47 A, not a negative voltage.
TEST(SiteSimulatorSupplyTest, VoltageDropScalesWithTheConnection) {
  const int port = FreePort(SOCK_STREAM);
  ASSERT_GT(port, 0);
  site::SiteConfigLoadResult loaded =
      site::LoadSiteConfig(absl::StrReplaceAll(R"(insecure_demo: true
site: {id: depot}
grid: {fuse_limit_a: 20000, meter: gm, nominal_voltage_v: 230}
services: {session_database: /var/lib/evgate/test.db}
buses:
  - {id: rs485, type: modbus_tcp, host: 127.0.0.1, port: @PORT@}
devices:
  - {id: gm, profile: eastron_sdm630, bus: rs485, address: 1}
simulation:
  devices: [gm]
  building_load: {base_a: [15000, 15000, 15000], peak_a: [15000, 15000, 15000]}
)",
                                               {{"@PORT@", absl::StrCat(port)}}),
                           "site.yaml");
  ASSERT_TRUE(loaded.ok()) << loaded.ErrorText();
  FakeClock clock{kNight};
  SiteSimulatorOptions options;
  options.physics_thread = false;
  options.noise_a = 0;
  auto sim = SiteSimulator::Create(loaded.config, clock, options);
  ASSERT_TRUE(sim.ok()) << sim.status();
  ASSERT_TRUE((*sim)->Start().ok());
  clock.Advance(absl::Milliseconds(100));
  (*sim)->Step();
  v1::ListSimulatedDevicesResponse list = (*sim)->List();
  ASSERT_EQ(list.devices_size(), 1);
  // 0.05 ohm x 63 A / 20,000 A x 15,000 A = 2.36 V.
  EXPECT_NEAR(list.devices(0).meter().voltage_v().l1(), 230 - 0.05 * 63 / 20000 * 15000, 1e-6);
  (*sim)->Stop();
}

TEST_F(SiteSimulatorTest, MetersMeasureTheBuildingAndEveryEvseThroughItsWiring) {
  // wb1's vehicle was plugged in at start (site.yaml vehicles); wb3 gets a
  // 1-phase one now. Without a controller both wallboxes offer their 6 A
  // power-up failsafe; the vehicles follow after their 2 s lag.
  ASSERT_TRUE(sim_->PlugIn("wb3", {}).ok());
  Run(absl::Seconds(3));
  v1::SimulatedEvse wb1 = Evse("wallbox-1", "wb1");
  EXPECT_TRUE(wb1.failsafe_active());
  EXPECT_EQ(wb1.iec61851_state(), v1::IEC61851_STATE_C);
  EXPECT_EQ(wb1.vehicle().max_current_a(), 16);
  EXPECT_EQ(wb1.current_a().l1(), 6);
  EXPECT_EQ(wb1.current_a().l2(), 6);
  EXPECT_EQ(wb1.current_a().l3(), 6);
  v1::SimulatedEvse wb3 = Evse("wallbox-3", "wb3");
  EXPECT_FALSE(wb3.current_a().has_l1());  // not wired there
  EXPECT_EQ(wb3.current_a().l3(), 6);      // its L1 is the site's L3

  // The Heidelberg box (power-up limit 16 A) charges a vehicle on all phases.
  ASSERT_TRUE(sim_->PlugIn("hd1", Ev(10, 3)).ok());
  Run(absl::Seconds(3));

  // Night: the building is at its base load, 10/20/30 A.
  const v1::ListSimulatedDevicesResponse list = sim_->List();
  EXPECT_EQ(list.building_load().current_a().l1(), 10);
  EXPECT_EQ(list.building_load().current_a().l3(), 30);
  EXPECT_TRUE(list.building_load().from_profile());
  const v1::SimulatedDevice& gm = Device(list, "gm");
  EXPECT_EQ(gm.measures_circuit_id(), "grid");
  EXPECT_DOUBLE_EQ(gm.meter().current_a().l1(), 10 + 6 + 10);
  EXPECT_DOUBLE_EQ(gm.meter().current_a().l2(), 20 + 6 + 10);
  EXPECT_DOUBLE_EQ(gm.meter().current_a().l3(), 30 + 6 + 6 + 10);
  // The garage meter sees only its own subtree.
  const v1::SimulatedDevice& garage = Device(list, "garage-meter");
  EXPECT_EQ(garage.measures_circuit_id(), "garage");
  EXPECT_DOUBLE_EQ(garage.meter().current_a().l1(), 6);
  EXPECT_DOUBLE_EQ(garage.meter().current_a().l3(), 12);
  // Voltage drops across the supply; power is V x I.
  const double v3 = 230 - 0.05 * 52;
  EXPECT_NEAR(gm.meter().voltage_v().l3(), v3, 1e-9);
  EXPECT_NEAR(gm.meter().power_w().l3(), v3 * 52, 1e-6);

  // A driver reads the same over Modbus TCP on the bus's port.
  absl::StatusOr<std::vector<uint16_t>> regs = ReadInput(1, 0x0000, 12);
  ASSERT_TRUE(regs.ok()) << regs.status();
  EXPECT_NEAR(Float(*regs, 4), v3, 1e-3);   // 0x0004 voltage L3
  EXPECT_NEAR(Float(*regs, 10), 52, 1e-4);  // 0x000A current L3
  regs = ReadInput(3, 0x0006, 2);
  ASSERT_TRUE(regs.ok()) << regs.status();
  EXPECT_NEAR(Float(*regs, 0), 6, 1e-4);  // garage meter current L1

  // Energy counts the power over time: one hour later at the same load.
  const double before = gm.meter().energy_import_wh();
  clock_.Advance(absl::Hours(1));
  sim_->SetBuildingLoad(std::array<double, 3>{10, 20, 30}).IgnoreError();
  const double after = Device(sim_->List(), "gm").meter().energy_import_wh();
  const double power_w = (230 - 0.05 * 26) * 26 + (230 - 0.05 * 36) * 36 + v3 * 52;
  EXPECT_NEAR(after - before, power_w, power_w * 0.01);
}

TEST_F(SiteSimulatorTest, BuildingLoadOverrideAndBackToTheProfile) {
  absl::StatusOr<v1::BuildingLoad> set = sim_->SetBuildingLoad(std::array<double, 3>{5, 0, 70});
  ASSERT_TRUE(set.ok());
  EXPECT_FALSE(set->from_profile());
  EXPECT_EQ(set->current_a().l3(), 70);
  Run(absl::Seconds(3));
  EXPECT_EQ(Device(sim_->List(), "gm").meter().current_a().l1(), 5 + 6);  // + wb1
  EXPECT_FALSE(sim_->SetBuildingLoad(std::array<double, 3>{-1, 0, 0}).ok());
  set = sim_->SetBuildingLoad(std::nullopt);
  ASSERT_TRUE(set.ok());
  EXPECT_TRUE(set->from_profile());
  EXPECT_EQ(set->current_a().l3(), 30);
}

TEST(BuildingLoadProfile, BaseAtNightPeakAtOneOClockInBetweenInTheMorning) {
  site::BuildingLoadConfig building;
  building.base_a = {10, 20};
  building.peak_a = {40, 20};
  const absl::Time midnight = kNight - absl::Hours(3);
  EXPECT_THAT(BuildingLoadProfile(building, midnight + absl::Hours(3)), ElementsAre(10, 20));
  EXPECT_THAT(BuildingLoadProfile(building, midnight + absl::Hours(22)), ElementsAre(10, 20));
  EXPECT_THAT(BuildingLoadProfile(building, midnight + absl::Hours(13)), ElementsAre(40, 20));
  const std::vector<double> morning =
      BuildingLoadProfile(building, midnight + absl::Hours(9) + absl::Minutes(30));
  EXPECT_NEAR(morning[0], 10 + 30 * std::sin(3.14159265358979 * 3.5 / 14), 1e-9);
}

// Two simulators with the same seed see the same noisy building; the noise
// stays small around the profile.
TEST(SiteSimulatorNoise, SeededAndSmall) {
  site::SiteConfigLoadResult loaded = site::LoadSiteConfig(R"(insecure_demo: true
site: {id: noise}
grid: {fuse_limit_a: 63, meter: gm}
services: {session_database: /var/lib/evgate/test.db}
buses: [{id: rs485, type: modbus_tcp, host: 127.0.0.1, port: 1502}]
devices: [{id: gm, profile: eastron_sdm630, bus: rs485, address: 1}]
simulation:
  devices: [gm]
  building_load: {base_a: 20, peak_a: 40}
)",
                                                           "site.yaml");
  ASSERT_TRUE(loaded.ok()) << loaded.ErrorText();
  FakeClock clock_a(kNight), clock_b(kNight);
  SiteSimulatorOptions options;
  options.physics_thread = false;
  options.seed = 42;
  auto a = SiteSimulator::Create(loaded.config, clock_a, options);
  auto b = SiteSimulator::Create(loaded.config, clock_b, options);
  ASSERT_TRUE(a.ok() && b.ok());
  double sum = 0, max_dev = 0;
  const int steps = 3000;
  for (int i = 0; i < steps; ++i) {
    clock_a.Advance(absl::Milliseconds(100));
    clock_b.Advance(absl::Milliseconds(100));
    (*a)->Step();
    (*b)->Step();
    const double la = (*a)->List().building_load().current_a().l2();
    ASSERT_EQ(la, (*b)->List().building_load().current_a().l2()) << "step " << i;
    sum += la;
    max_dev = std::max(max_dev, std::abs(la - 20));
  }
  EXPECT_GT(max_dev, 0.05);  // there is noise
  EXPECT_LT(max_dev, 6 * options.noise_a);
  EXPECT_NEAR(sum / steps, 20, 3 * options.noise_a);
}

TEST_F(SiteSimulatorTest, ControlApiSaysWhatIsWrong) {
  EXPECT_EQ(sim_->PlugIn("wb1", {}).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(sim_->PlugIn("nope", {}).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(sim_->PlugIn("wb3", Ev(0, 2)).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(sim_->Unplug("wb3").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(sim_->TapCard("hd1", "04B2C3D4").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(sim_->TapCard("wb1", "04B2C").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(sim_->TapCard("wb1", "04B2XX").code(), absl::StatusCode::kInvalidArgument);
  absl::StatusOr<v1::SimulatedDevice> fault = sim_->SetFault("wb1", "BOOM", true);
  EXPECT_EQ(fault.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(fault.status().message(), HasSubstr("OCP OVP LVP"));
  EXPECT_EQ(sim_->SetFault("wb1", "ocp", false).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // The DC charger: a vehicle takes a power, its card is presented over
  // OCPP (no tap), a vendor code has 1 to 50 characters.
  VehicleParams dc;
  dc.max_power_w = -5;
  EXPECT_EQ(sim_->PlugIn("dc1", dc).status().code(), absl::StatusCode::kInvalidArgument);
  dc.max_power_w = 0;
  dc.id_tag = "04B2XX";
  EXPECT_EQ(sim_->PlugIn("dc1", dc).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(sim_->TapCard("dc1", "04B2C3D4").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(sim_->SetFault("dc1", "", true).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(sim_->SetFault("dc1", "012252", false).status().code(),
            absl::StatusCode::kFailedPrecondition);

  // The OCPP charger is simulated, connecting to ocpp.local.
  const v1::ListSimulatedDevicesResponse list = sim_->List();
  const v1::SimulatedDevice& ds60 = Device(list, "ds60-1");
  EXPECT_TRUE(ds60.simulated());
  EXPECT_EQ(ds60.address(), "DS60-1");
  EXPECT_THAT(ds60.endpoint(), testing::MatchesRegex("ocpp ws://127.0.0.1:[0-9]+/DS60-1"));
}

TEST_F(SiteSimulatorTest, ADcVehicleWaitsForTheCentralSystemAndDrawsNothingMeanwhile) {
  VehicleParams dc;
  dc.max_power_w = 50000;
  dc.id_tag = "04A1B2C3";
  absl::StatusOr<v1::SimulatedEvse> plugged = sim_->PlugIn("dc1", dc);
  ASSERT_TRUE(plugged.ok()) << plugged.status();
  EXPECT_EQ(plugged->ocpp_status(), "Preparing");
  EXPECT_EQ(plugged->vehicle().pending_id_tag(), "04A1B2C3");
  EXPECT_EQ(plugged->vehicle().max_power_w(), 50000);
  // No Central System: no transaction, so nothing flows (the charger does
  // not start charging on its own), and the meters see only the rest.
  Run(absl::Seconds(5));
  const v1::SimulatedEvse evse = Evse("ds60-1", "dc1");
  EXPECT_EQ(evse.power_w(), 0);
  EXPECT_EQ(evse.iec61851_state(), v1::IEC61851_STATE_B);
  EXPECT_EQ(evse.transaction_id(), 0);
  ASSERT_TRUE(sim_->SetFault("dc1", "012252", true).ok());
  EXPECT_EQ(Evse("ds60-1", "dc1").ocpp_status(), "Faulted");
  EXPECT_THAT(Evse("ds60-1", "dc1").active_faults(), ElementsAre("012252"));
  ASSERT_TRUE(sim_->Unplug("dc1").ok());
  EXPECT_EQ(Evse("ds60-1", "dc1").iec61851_state(), v1::IEC61851_STATE_F);
  ASSERT_TRUE(sim_->SetFault("dc1", "012252", false).ok());
  EXPECT_EQ(Evse("ds60-1", "dc1").ocpp_status(), "Available");
}

TEST_F(SiteSimulatorTest, FaultsStopChargingUntilCleared) {
  Run(absl::Seconds(3));
  ASSERT_EQ(Evse("wallbox-1", "wb1").current_a().l1(), 6);
  absl::StatusOr<v1::SimulatedDevice> faulted = sim_->SetFault("wb1", "ocp", true);
  ASSERT_TRUE(faulted.ok()) << faulted.status();
  ASSERT_EQ(faulted->evses_size(), 1);
  EXPECT_THAT(faulted->evses(0).active_faults(), ElementsAre("OCP"));
  EXPECT_EQ(faulted->evses(0).iec61851_state(), v1::IEC61851_STATE_F);
  EXPECT_EQ(faulted->evses(0).current_a().l1(), 0);
  Run(absl::Milliseconds(200));
  EXPECT_EQ(Device(sim_->List(), "gm").meter().current_a().l1(), 10);  // building only
  ASSERT_TRUE(sim_->SetFault("wallbox-1", "OCP", false).ok());
  Run(absl::Seconds(3));
  EXPECT_EQ(Evse("wallbox-1", "wb1").current_a().l1(), 6);

  // The off-grid box: a grid outage opens its transfer switch.
  absl::StatusOr<v1::SimulatedDevice> box = sim_->SetFault("box", "grid_loss", true);
  ASSERT_TRUE(box.ok()) << box.status();
  EXPECT_FALSE(box->off_grid_box().grid_present());
  EXPECT_EQ(box->off_grid_box().transfer_switch(), v1::TRANSFER_SWITCH_POSITION_OPEN);
  EXPECT_THAT(box->active_faults(), ElementsAre("GRID_LOSS"));
  box = sim_->SetFault("box", "GRID_LOSS", false);
  ASSERT_TRUE(box.ok());
  EXPECT_EQ(box->off_grid_box().transfer_switch(), v1::TRANSFER_SWITCH_POSITION_ON_GRID);

  // A meter whose current registers read NaN.
  ASSERT_TRUE(sim_->SetFault("gm", "NAN_CURRENT", true).ok());
  absl::StatusOr<std::vector<uint16_t>> regs = ReadInput(1, 0x0006, 2);
  ASSERT_TRUE(regs.ok()) << regs.status();
  EXPECT_TRUE(std::isnan(Float(*regs, 0)));
  ASSERT_TRUE(sim_->SetFault("gm", "NAN_CURRENT", false).ok());

  // The Heidelberg box shows an error state.
  absl::StatusOr<v1::SimulatedDevice> hd = sim_->SetFault("hd1", "STATE_F", true);
  ASSERT_TRUE(hd.ok()) << hd.status();
  EXPECT_EQ(hd->evses(0).iec61851_state(), v1::IEC61851_STATE_F);
}

// Bad inputs tried: the button of a box that does not exist.
TEST_F(SiteSimulatorTest, AGridOutageReachesTheBoxAndTheMeterAndEndsAgain) {
  Run(absl::Seconds(1));
  ASSERT_GT(Device(sim_->List(), "gm").meter().current_a().l1(), 0);
  sim_->SetGridPresent(false);
  EXPECT_FALSE(sim_->grid_present());
  Run(absl::Seconds(1));
  v1::ListSimulatedDevicesResponse list = sim_->List();
  EXPECT_FALSE(Device(list, "box").off_grid_box().grid_present());
  EXPECT_EQ(Device(list, "box").off_grid_box().transfer_switch(),
            v1::TRANSFER_SWITCH_POSITION_OPEN);
  EXPECT_EQ(Device(list, "gm").meter().current_a().l1(), 0);  // nothing flows in an outage
  EXPECT_EQ(Device(list, "gm").meter().voltage_v().l1(), 0);
  // The box sleeps after its countdown; the button wakes it.
  Run(absl::Seconds(181));
  EXPECT_TRUE(Device(sim_->List(), "box").off_grid_box().shut_down());
  ASSERT_TRUE(sim_->PressBackupBatteryButton("").ok());
  EXPECT_FALSE(Device(sim_->List(), "box").off_grid_box().shut_down());
  EXPECT_EQ(sim_->PressBackupBatteryButton("nope").code(), absl::StatusCode::kNotFound);
  sim_->SetGridPresent(true);
  Run(absl::Seconds(1));
  list = sim_->List();
  EXPECT_TRUE(Device(list, "box").off_grid_box().grid_present());
  EXPECT_EQ(Device(list, "box").off_grid_box().transfer_switch(),
            v1::TRANSFER_SWITCH_POSITION_ON_GRID);
  EXPECT_GT(Device(list, "gm").meter().current_a().l1(), 0);
  EXPECT_GT(Device(list, "gm").meter().voltage_v().l1(), 200);
}

TEST_F(SiteSimulatorTest, ADeadMeterStopsAnsweringAndComesBack) {
  ASSERT_TRUE(ReadInput(1, 0x0000, 2).ok());
  absl::StatusOr<v1::SimulatedDevice> gm = sim_->SetResponding("gm", false);
  ASSERT_TRUE(gm.ok());
  EXPECT_FALSE(gm->responding());
  EXPECT_FALSE(ReadInput(1, 0x0000, 2).ok());
  EXPECT_TRUE(ReadInput(3, 0x0000, 2).ok());  // the other meter on the bus still answers
  ASSERT_TRUE(sim_->SetResponding("gm", true).ok());
  EXPECT_TRUE(ReadInput(1, 0x0000, 2).ok());
}

TEST_F(SiteSimulatorTest, HeidelbergVehicleStopsWhenFull) {
  // 16 A x 3 x 230 V = 11 kW: 20 Wh take about 7 s after the lag.
  ASSERT_TRUE(sim_->PlugIn("hd1", Ev(32, 3, 20)).ok());
  Run(absl::Seconds(3));
  EXPECT_EQ(Evse("hd", "hd1").current_a().l2(), 16);
  Run(absl::Seconds(10));
  const v1::SimulatedEvse hd = Evse("hd", "hd1");
  EXPECT_TRUE(hd.vehicle().full());
  EXPECT_EQ(hd.current_a().l2(), 0);
  EXPECT_EQ(hd.iec61851_state(), v1::IEC61851_STATE_B);
  EXPECT_NEAR(hd.session_energy_wh(), 20, 1);
  ASSERT_TRUE(sim_->Unplug("hd1").ok());
  EXPECT_EQ(Evse("hd", "hd1").iec61851_state(), v1::IEC61851_STATE_A);
}

// The wallboxes talk on the site's UDP virtual CAN bus: a controller there
// hears them, a card tap comes out as the protocol's RFID frames, and a
// wallbox cut off the bus falls silent.
TEST_F(SiteSimulatorTest, CaburWallboxesAreOnTheSitesCanBus) {
  can::UdpCanBusOptions options;
  options.name = "controller";
  options.port = can_port_;
  can::UdpCanBus controller(options, clock_);
  ASSERT_TRUE(controller.Open().ok());
  ASSERT_TRUE(sim_->TapCard("wb1", "04:B2:C3:D4:E5:F6:07").ok());
  std::set<int> status_from;
  wb::RfidAssembler rfid;
  std::optional<wb::RfidTap> tap;
  const absl::Time limit = absl::Now() + absl::Seconds(10);
  while (absl::Now() < limit && (status_from.size() < 2 || !tap)) {
    clock_.Advance(absl::Milliseconds(20));
    can::BusEvent e = controller.Receive(absl::Milliseconds(20));
    if (e.kind != can::BusEventKind::kFrame) continue;
    absl::StatusOr<wb::Message> m = wb::Decode(*e.frame);
    if (!m.ok()) continue;
    if (auto* s = std::get_if<wb::Status>(&*m)) status_from.insert(s->address);
    if (auto* r = std::get_if<wb::RfidFragment>(&*m)) {
      if (auto done = rfid.Add(*r)) tap = done;
    }
  }
  EXPECT_THAT(status_from, ElementsAre(1, 3));
  ASSERT_TRUE(tap.has_value());
  EXPECT_EQ(tap->address, 1);
  EXPECT_THAT(tap->uid, ElementsAre(0x04, 0xB2, 0xC3, 0xD4, 0xE5, 0xF6, 0x07));

  ASSERT_TRUE(sim_->SetResponding("wb3", false).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  while (controller.Receive(absl::Milliseconds(10)).kind == can::BusEventKind::kFrame) {
  }
  status_from.clear();
  for (int i = 0; i < 50; ++i) {
    clock_.Advance(absl::Milliseconds(20));
    can::BusEvent e = controller.Receive(absl::Milliseconds(20));
    if (e.kind != can::BusEventKind::kFrame) continue;
    absl::StatusOr<wb::Message> m = wb::Decode(*e.frame);
    if (m.ok()) {
      if (auto* s = std::get_if<wb::Status>(&*m)) status_from.insert(s->address);
    }
  }
  EXPECT_THAT(status_from, ElementsAre(1));
  EXPECT_FALSE(Device(sim_->List(), "wallbox-3").responding());
  controller.Close();
}

// The site's CAN bus on a loopback network and its wallbox host run by
// Step(): the fake clock alone says when frames are handled.
class SteppedCanTest : public SiteSimulatorTest {
 protected:
  void Configure(SiteSimulatorOptions& options) override {
    options.can_threads = false;
    options.can_transport = [this](const site::BusConfig& bus) {
      return network_.Endpoint("site " + bus.id);
    };
  }
};

// A vehicle plugged in with a card: the driver taps it once a controller has
// driven the wallbox for card_tap_delay (3 s), not before.
TEST_F(SteppedCanTest, TheDriverTapsTheCardOnceAControllerDrivesTheWallbox) {
  std::unique_ptr<can::CanBus> controller = network_.Endpoint("controller");
  ASSERT_TRUE(controller->Open().ok());
  EXPECT_THAT(Device(sim_->List(), "wallbox-3").endpoint(), HasSubstr("loopback site can"));
  ASSERT_TRUE(sim_->PlugIn("wb3", Ev(0, 0, 0, "04B2C3D4E5F607")).ok());
  EXPECT_EQ(Evse("wallbox-3", "wb3").vehicle().pending_id_tag(), "04B2C3D4E5F607");
  EXPECT_EQ(sim_->PlugIn("hd1", Ev(0, 0, 0, "04B2C3D4")).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // Collects the card taps seen on the bus while time moves `d` in 100 ms
  // physics steps; with `drive`, the controller refreshes wallbox 3's setpoint.
  wb::RfidAssembler rfid;
  int sequence = 0;
  auto run = [&](absl::Duration d, bool drive) {
    std::vector<wb::RfidTap> taps;
    for (absl::Duration t; t < d; t += absl::Milliseconds(100)) {
      if (drive) {
        EXPECT_TRUE(controller->Send(*wb::Encode(wb::WatchdogConfig{3, 5000, 6})).ok());
        wb::Setpoint setpoint;
        setpoint.address = 3;
        setpoint.sequence = (++sequence % 15) + 1;
        setpoint.max_current_a = 10;
        EXPECT_TRUE(controller->Send(*wb::Encode(setpoint)).ok());
      }
      clock_.Advance(absl::Milliseconds(100));
      sim_->Step();
      while (true) {
        can::BusEvent e = controller->Receive(absl::ZeroDuration());
        if (e.kind != can::BusEventKind::kFrame) break;
        absl::StatusOr<wb::Message> m = wb::Decode(*e.frame);
        if (!m.ok()) continue;
        if (auto* r = std::get_if<wb::RfidFragment>(&*m)) {
          if (auto tap = rfid.Add(*r)) taps.push_back(*tap);
        }
      }
    }
    return taps;
  };
  EXPECT_TRUE(run(absl::Seconds(4), false).empty());  // nobody drives it: no tap
  EXPECT_TRUE(run(absl::Seconds(2), true).empty());   // driven, but not for 3 s yet
  std::vector<wb::RfidTap> taps = run(absl::Seconds(2), true);
  ASSERT_EQ(taps.size(), 1u);
  EXPECT_EQ(taps[0].address, 3);
  EXPECT_THAT(taps[0].uid, ElementsAre(0x04, 0xB2, 0xC3, 0xD4, 0xE5, 0xF6, 0x07));
  EXPECT_EQ(Evse("wallbox-3", "wb3").vehicle().pending_id_tag(), "");
  EXPECT_TRUE(run(absl::Seconds(4), true).empty());  // once only
  controller->Close();
}

// The API over gRPC, as evgatectl and tests use it.
TEST_F(SiteSimulatorTest, ServesTheSimulatorApi) {
  ServerOptions server;
  server.listen = "127.0.0.1:0";
  server.insecure = true;
  // The simulator is started already; host it without starting it twice.
  class Hosted final : public Service {
   public:
    explicit Hosted(SiteSimulator* sim) : sim_(sim) {}
    std::string_view name() const override { return "simulator"; }
    std::vector<grpc::Service*> grpc_services() override { return {sim_}; }
    std::vector<std::string> health_names() const override { return {"evgate.v1.Simulator"}; }

   private:
    SiteSimulator* sim_;
  } hosted(sim_.get());
  auto host = ServerHost::Start(server, {&hosted});
  ASSERT_TRUE(host.ok()) << host.status();
  auto stub = v1::Simulator::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", (*host)->port()), grpc::InsecureChannelCredentials()));
  {
    grpc::ClientContext context;
    v1::ListSimulatedDevicesResponse list;
    ASSERT_TRUE(stub->ListSimulatedDevices(&context, {}, &list).ok());
    EXPECT_EQ(list.devices_size(), 7);
    EXPECT_EQ(Device(list, "gm").endpoint(), absl::StrCat("modbus tcp 127.0.0.1:", modbus_port_));
    EXPECT_THAT(Device(list, "wallbox-1").endpoint(), HasSubstr(absl::StrCat(":", can_port_)));
  }
  {
    grpc::ClientContext context;
    v1::SetBuildingLoadRequest request;
    v1::SetBuildingLoadResponse response;
    EXPECT_EQ(stub->SetBuildingLoad(&context, request, &response).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  {
    grpc::ClientContext context;
    v1::PlugInRequest request;
    request.set_evse_id("wb1");
    v1::PlugInResponse response;
    grpc::Status status = stub->PlugIn(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_THAT(status.error_message(), HasSubstr("plugged into wb1 already"));
  }
  (*host)->Shutdown(absl::Seconds(1));
}

TEST(SiteSimulatorRtu, AnRtuBusIsServedOnAPseudoTerminal) {
  site::SiteConfigLoadResult loaded = site::LoadSiteConfig(R"(insecure_demo: true
site: {id: rtu}
grid: {fuse_limit_a: 63, meter: gm}
services: {session_database: /var/lib/evgate/test.db}
buses: [{id: rs485, type: modbus_rtu, port: /dev/ttyUSB0, baud: 9600}]
devices: [{id: gm, profile: eastron_sdm630, bus: rs485, address: 1}]
simulation:
  devices: [gm]
)",
                                                           "site.yaml");
  ASSERT_TRUE(loaded.ok()) << loaded.ErrorText();
  FakeClock clock(kNight);
  SiteSimulatorOptions options;
  options.physics_thread = false;
  auto sim = SiteSimulator::Create(loaded.config, clock, options);
  ASSERT_TRUE(sim.ok());
  ASSERT_TRUE((*sim)->Start().ok());
  const std::string endpoint = (*sim)->List().devices(0).endpoint();
  ASSERT_THAT(endpoint, HasSubstr("modbus rtu pty /dev/"));
  const std::string pty = endpoint.substr(std::string("modbus rtu pty ").size());
  auto transport = modbus::LibmodbusTransport::Rtu({.port = pty, .baud = 9600, .rs485 = false});
  ASSERT_TRUE(transport.ok());
  ASSERT_TRUE((*transport)->Connect().ok());
  ASSERT_TRUE((*transport)->SetSlave(1).ok());
  absl::StatusOr<std::vector<uint16_t>> regs =
      (*transport)->ReadRegisters(modbus::RegisterTable::kInput, 0x0000, 2);
  ASSERT_TRUE(regs.ok()) << regs.status();
  (*sim)->Stop();
}

}  // namespace
}  // namespace evgate::sim

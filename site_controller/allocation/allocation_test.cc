// The seed manuals' rules (DS60, Cabur, ICE-22), each as a named test, and the engine's other
// rules: per-phase limits with rotation, unmetered circuits, margin, contract power, priorities,
// max-min fairness, pausing and rotation, failsafe, quantisation.

#include "site_controller/allocation/allocation.h"

#include <limits>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "site_controller/allocation/scenario.h"

namespace evgate::allocation {
namespace {

using ::testing::HasSubstr;

Allocation AllocateScenario(const std::string& scenario) {
  absl::StatusOr<AllocationInput> input = ParseScenario(scenario);
  EXPECT_TRUE(input.ok()) << input.status();
  if (!input.ok()) return {};
  absl::StatusOr<Allocation> out = Allocate(*input);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : Allocation{};
}

const EvseAllocation& FindEvse(const Allocation& a, const std::string& id) {
  for (const EvseAllocation& e : a.evses) {
    if (e.id == id) return e;
  }
  static const EvseAllocation kMissing{};
  ADD_FAILURE() << "no EVSE " << id << " in " << AllocationToJson(a);
  return kMissing;
}

const CircuitLoad& FindCircuit(const Allocation& a, const std::string& id) {
  for (const CircuitLoad& c : a.circuits) {
    if (c.id == id) return c;
  }
  static const CircuitLoad kMissing{};
  ADD_FAILURE() << "no circuit " << id;
  return kMissing;
}

// ----- Reserved (not controlled) EVSEs. -----

TEST(Reserved, WorstCaseIsReservedOnEveryWiredPhaseOfEveryCircuitOnItsPath) {
  // x (wired L2, L3) under sub2 under sub cannot be commanded and may draw 20 A; y (3-phase, on
  // sub) gets what is left on its tightest phase: 32 − 20 = 12 A; z (L1, on the grid) the rest.
  const Allocation a = AllocateScenario(R"({
    "grid": {"limit_a": [40, 40, 40], "measured_a": [0, 0, 0]},
    "circuits": [{"id": "sub", "limit_a": [32, 32, 32]},
                 {"id": "sub2", "parent": "sub", "limit_a": [32, 32, 32]}],
    "evses": [
      {"id": "x", "type": "ac", "circuit": "sub2", "phases": ["L2", "L3"], "max_a": 32,
       "failsafe_a": 6, "setpoint_a": 32, "reserved_a": 20},
      {"id": "y", "type": "ac", "circuit": "sub", "phases": ["L1", "L2", "L3"], "max_a": 32},
      {"id": "z", "type": "ac", "phases": ["L1"], "max_a": 32}
    ]})");
  const EvseAllocation& x = FindEvse(a, "x");
  EXPECT_FALSE(x.controlled);
  EXPECT_DOUBLE_EQ(x.current_a, 6) << "reported at its failsafe value";
  EXPECT_EQ(x.limited_by, "failsafe");
  EXPECT_TRUE(FindEvse(a, "y").controlled);
  EXPECT_DOUBLE_EQ(FindEvse(a, "y").current_a, 12);
  EXPECT_EQ(FindEvse(a, "y").limited_by, "circuit sub L2");
  EXPECT_DOUBLE_EQ(FindEvse(a, "z").current_a, 28) << "grid L1: 40 − 12";
  // Its setpoint in force is not counted as its load (it is not trusted): only the 20 A.
  for (const char* node : {"sub2", "sub", "grid"}) {
    const CircuitLoad& c = FindCircuit(a, node);
    const double on_l1 = std::string(node) == "sub2" ? 0 : std::string(node) == "sub" ? 12 : 40;
    const double others = std::string(node) == "sub2" ? 20 : 32;
    EXPECT_DOUBLE_EQ(*c.load_a[0], on_l1) << node;
    EXPECT_DOUBLE_EQ(*c.load_a[1], others) << node;
    EXPECT_DOUBLE_EQ(*c.load_a[2], others) << node;
  }
}

TEST(Reserved, ReservationOverTheRoomPausesTheOthersAndIsValidated) {
  const std::string site = R"({
    "grid": {"limit_a": [16, 16, 16], "measured_a": [0, 0, 0]},
    "evses": [
      {"id": "x", "type": "ac", "phases": ["L1"], "max_a": 32, "reserved_a": %R%},
      {"id": "y", "type": "ac", "phases": ["L1", "L2", "L3"], "max_a": 32}
    ]})";
  std::string over = site;
  over.replace(over.find("%R%"), 3, "32");
  const Allocation a = AllocateScenario(over);
  EXPECT_TRUE(FindEvse(a, "y").paused);
  EXPECT_EQ(FindEvse(a, "y").pause_reason, PauseReason::kCapacity);
  EXPECT_EQ(FindEvse(a, "x").pause_reason, PauseReason::kFailsafe) << "failsafe 0: paused";
  std::string negative = site;
  negative.replace(negative.find("%R%"), 3, "-1");
  absl::StatusOr<AllocationInput> in = ParseScenario(negative);
  ASSERT_FALSE(in.ok());
  EXPECT_THAT(std::string(in.status().message()), HasSubstr("evses[0].reserved_a"));
}

// ----- DS60: two connectors share 60 kW. -----

constexpr char kDs60[] = R"({
  "grid": {"limit_a": [250, 250, 250], "measured_a": [0, 0, 0]},
  "stations": [{"id": "ds60", "max_power_w": 60000}],
  "evses": [
    {"id": "right", "type": "dc", "station": "ds60", "connector": 2, "phases": ["L1", "L2", "L3"],
     "min_w": %MIN%, "max_w": 60000, "efficiency": 0.95, "active": %RIGHT%, "plugged_at_s": 10},
    {"id": "left", "type": "dc", "station": "ds60", "connector": 1, "phases": ["L1", "L2", "L3"],
     "min_w": %MIN%, "max_w": 60000, "efficiency": 0.95, "active": %LEFT%, "plugged_at_s": 10}
  ]})";

std::string Ds60(const std::string& min_w, bool left, bool right) {
  std::string s = kDs60;
  for (const auto& [key, value] : {std::pair<std::string, std::string>{"%MIN%", min_w},
                                   {"%LEFT%", left ? "true" : "false"},
                                   {"%RIGHT%", right ? "true" : "false"}}) {
    for (size_t pos; (pos = s.find(key)) != std::string::npos;) s.replace(pos, key.size(), value);
  }
  return s;
}

TEST(Ds60, BothConnectorsChargingShareFiftyFifty) {
  const Allocation a = AllocateScenario(Ds60("0", true, true));
  EXPECT_EQ(FindEvse(a, "left").power_w, 30000);
  EXPECT_EQ(FindEvse(a, "right").power_w, 30000);
  EXPECT_EQ(FindEvse(a, "left").limited_by, "station ds60");
  EXPECT_EQ(FindEvse(a, "left").limit.kind, Limit::Kind::kStationPower);
  EXPECT_EQ(FindEvse(a, "left").limit.station, "ds60");
}

TEST(Ds60, OneConnectorLeftGetsAllOfIt) {
  const Allocation a = AllocateScenario(Ds60("0", false, true));
  EXPECT_EQ(FindEvse(a, "right").power_w, 60000);
  EXPECT_TRUE(FindEvse(a, "left").paused);
  EXPECT_EQ(FindEvse(a, "left").pause_reason, PauseReason::kInactive);
}

TEST(Ds60, LeftConnectorWinsOnSimultaneousPlugInWhenOnlyOneFits) {
  // Minimum 40 kW each: only one fits in 60 kW. Same plug-in time and energy: connector 1 wins,
  // whatever the input order (the right connector is listed first).
  const Allocation a = AllocateScenario(Ds60("40000", true, true));
  EXPECT_EQ(FindEvse(a, "left").power_w, 60000);
  EXPECT_FALSE(FindEvse(a, "left").paused);
  EXPECT_TRUE(FindEvse(a, "right").paused);
  EXPECT_EQ(FindEvse(a, "right").pause_reason, PauseReason::kCapacity);
  EXPECT_EQ(FindEvse(a, "right").limited_by, "station ds60");
}

TEST(Ds60, SitePrioritiesOverrideTheFiftyFiftySplit) {
  std::string s = Ds60("0", true, true);
  s.replace(s.find("\"connector\": 2"), 14, "\"connector\": 2, \"priority\": 1");
  const Allocation a = AllocateScenario(s);
  EXPECT_EQ(FindEvse(a, "right").power_w, 60000);
  EXPECT_TRUE(FindEvse(a, "left").paused);
}

// ----- Cabur: building loads first (P_charger = P_max − P_other_loads). -----

TEST(Cabur, BuildingLoadsFirstWorkedExample) {
  // Supply up to 3.7 kW (16 A at 230 V), other loads 2 kW → 1.7 kW for the EV:
  // 16 A − 2000/230 A = 7.304 A, quantised down to 7.3 A (1679 W ≤ 1.7 kW).
  const Allocation a = AllocateScenario(R"({
    "grid": {"limit_a": [16, null, null], "nominal_voltage_v": 230,
             "measured_a": [8.695652173913043, null, null], "meter_age_s": 0.2},
    "evses": [{"id": "cabur", "type": "ac", "phases": ["L1"], "min_a": 6, "max_a": 32,
               "step_a": 0.1, "measured_a": [0]}]})");
  EXPECT_FALSE(a.failsafe);
  EXPECT_DOUBLE_EQ(FindEvse(a, "cabur").current_a, 7.3);
  EXPECT_LE(FindEvse(a, "cabur").current_a * 230, 1700);
  EXPECT_EQ(FindEvse(a, "cabur").limited_by, "grid L1");
  EXPECT_EQ(FindEvse(a, "cabur").limit.kind, Limit::Kind::kCircuitPhase);
  EXPECT_EQ(FindEvse(a, "cabur").limit.circuit, "grid");
  EXPECT_EQ(FindEvse(a, "cabur").limit.phase, Phase::kL1);
}

TEST(Cabur, BuildingLoadsFirstWithContractPowerAndChargingEv) {
  // Same example as a 3.7 kW contract; the meter also sees the EV's own 5 A, which is not
  // building load.
  const Allocation a = AllocateScenario(R"({
    "grid": {"limit_a": [32, 32, 32], "contract_power_w": 3700,
             "measured_a": [13.695652173913043, 0, 0]},
    "evses": [{"id": "cabur", "type": "ac", "phases": ["L1"], "min_a": 6, "max_a": 32,
               "measured_a": [5]}]})");
  // (3700 − 2000) / 230 = 7.391 A → 7.3 A.
  EXPECT_DOUBLE_EQ(FindEvse(a, "cabur").current_a, 7.3);
  EXPECT_EQ(FindEvse(a, "cabur").limited_by, "grid contract power");
  EXPECT_EQ(FindEvse(a, "cabur").limit.kind, Limit::Kind::kContractPower);
}

TEST(Cabur, PausesWhenOtherLoadsLeaveLessThanTheMinimum) {
  const Allocation a = AllocateScenario(R"({
    "grid": {"limit_a": [16, null, null], "measured_a": [11, null, null]},
    "evses": [{"id": "cabur", "type": "ac", "phases": ["L1"], "max_a": 32}]})");
  EXPECT_TRUE(FindEvse(a, "cabur").paused);
  EXPECT_EQ(FindEvse(a, "cabur").current_a, 0);
  EXPECT_EQ(FindEvse(a, "cabur").pause_reason, PauseReason::kCapacity);
}

// ----- ICE-22 V2X. -----

std::string Ice22(double soc, double soc_min, double soc_max, double grid_measured_a) {
  std::string s = R"({
    "grid": {"limit_a": [63, 63, 63], "measured_a": [M, M, M]},
    "evses": [{"id": "v2x", "type": "dc", "bidirectional": true, "phases": ["L1", "L2", "L3"],
               "max_w": 22000, "max_discharge_w": 22000, "efficiency": 0.945, "soc_pct": SOC,
               "soc_min_pct": SMIN, "soc_max_pct": SMAX, "measured_w": 0}]})";
  for (const auto& [key, value] : {std::pair<std::string, double>{"SOC", soc},
                                   {"SMIN", soc_min},
                                   {"SMAX", soc_max},
                                   {"M", grid_measured_a}}) {
    for (size_t pos; (pos = s.find(key)) != std::string::npos;) {
      s.replace(pos, key.size(), std::to_string(value));
    }
  }
  return s;
}

TEST(Ice22, PeakShavingDischargesJustEnough) {
  // Base load 70 A per phase over a 63 A fuse: 7 A per phase = 4830 W AC = 5111.1 W DC at
  // η = 0.945, rounded up to 5112 W.
  const Allocation a = AllocateScenario(Ice22(55, 30, 100, 70));
  EXPECT_EQ(FindEvse(a, "v2x").power_w, -5112);
  EXPECT_FALSE(FindEvse(a, "v2x").paused);
  EXPECT_EQ(FindEvse(a, "v2x").limited_by, "grid L1");
  for (int p = 0; p < kPhaseCount; ++p) {
    EXPECT_LE(*FindCircuit(a, "grid").load_a[p], 63.0);
    EXPECT_GE(*FindCircuit(a, "grid").load_a[p], 62.99);
  }
}

TEST(Ice22, PeakShavingIsBoundedByTheDischargeLimit) {
  const Allocation a = AllocateScenario(Ice22(55, 30, 100, 120));
  EXPECT_EQ(FindEvse(a, "v2x").power_w, -22000);
}

TEST(Ice22, DischargeStopsAtTheSocLowerLimit) {
  EXPECT_EQ(FindEvse(AllocateScenario(Ice22(31, 30, 100, 70)), "v2x").power_w, -5112);
  const Allocation a = AllocateScenario(Ice22(30, 30, 100, 70));
  EXPECT_EQ(FindEvse(a, "v2x").power_w, 0);  // at the lower limit: no discharge (and no room)
  EXPECT_TRUE(FindEvse(a, "v2x").paused);
}

TEST(Ice22, ChargingStopsAtTheMaxSocLimit) {
  EXPECT_EQ(FindEvse(AllocateScenario(Ice22(95, 30, 96, 10)), "v2x").power_w, 22000);
  const Allocation a = AllocateScenario(Ice22(96, 30, 96, 10));
  EXPECT_EQ(FindEvse(a, "v2x").power_w, 0);
  EXPECT_EQ(FindEvse(a, "v2x").pause_reason, PauseReason::kSocLimit);
}

TEST(Ice22, NoDischargeWithoutOverload) {
  EXPECT_GT(FindEvse(AllocateScenario(Ice22(80, 30, 100, 40)), "v2x").power_w, 0);
}

TEST(Ice22, DischargeRespectsTheExportLimit) {
  // Grid L1 is overloaded only on a subcircuit; export limit 1000 W with almost no site load.
  const Allocation a = AllocateScenario(R"({
    "grid": {"limit_a": [63, 63, 63], "export_limit_w": 1000, "measured_a": [20, 0, 0]},
    "circuits": [{"id": "shop", "limit_a": [16, 16, 16], "measured_a": [20, 0, 0]}],
    "evses": [{"id": "v2x", "circuit": "shop", "type": "dc", "bidirectional": true,
               "phases": ["L1", "L2", "L3"], "max_w": 22000, "max_discharge_w": 22000,
               "efficiency": 1, "soc_pct": 80, "soc_min_pct": 30}]})");
  // Needed: 4 A per phase = 2760 W; export allowed: 1000 W + 20 A × 230 V import = 5600 W.
  EXPECT_EQ(FindEvse(a, "v2x").power_w, -2760);
  EXPECT_EQ(FindEvse(a, "v2x").limited_by, "circuit shop L1");
}

// ----- Per-phase allocation with phase rotation (evcc #29532). -----

constexpr char kRotation[] = R"({
  "grid": {"limit_a": [40, 40, 40], "measured_a": [36, 5, 5]},
  "evses": [
    {"id": "rotated", "type": "ac", "phases": ["L2", "L3", "L1"], "max_a": 16},
    {"id": "on_l1", "type": "ac", "phases": ["L1"], "max_a": 16},
    {"id": "on_l2", "type": "ac", "phases": ["L2"], "max_a": 16},
    {"id": "on_l3", "type": "ac", "phases": ["L3"], "max_a": 32}]})";

TEST(PhaseRotation, FullL1DoesNotStopEvsesOnOtherPhases) {
  // L1 has 4 A left: everything that loads L1 pauses, the others charge.
  const Allocation a = AllocateScenario(kRotation);
  EXPECT_TRUE(FindEvse(a, "rotated").paused);
  EXPECT_EQ(FindEvse(a, "rotated").limited_by, "grid L1");
  EXPECT_TRUE(FindEvse(a, "on_l1").paused);
  EXPECT_DOUBLE_EQ(FindEvse(a, "on_l2").current_a, 16);
  EXPECT_DOUBLE_EQ(FindEvse(a, "on_l3").current_a, 32);
}

TEST(PhaseRotation, MeasurementsAreMappedThroughTheWiring) {
  // EVSE L1/L2/L3 = site L2/L3/L1; measured 10/11/12 A in EVSE order. Base load:
  // L1 30 − 12 = 18, L2 20 − 10 = 10, L3 25 − 11 = 14; room 22/30/26 → 22 A.
  const Allocation a = AllocateScenario(R"({
    "grid": {"limit_a": [40, 40, 40], "measured_a": [30, 20, 25]},
    "evses": [{"id": "wb", "type": "ac", "phases": ["L2", "L3", "L1"], "max_a": 32,
               "measured_a": [10, 11, 12]}]})");
  EXPECT_DOUBLE_EQ(FindEvse(a, "wb").current_a, 22);
  EXPECT_EQ(FindEvse(a, "wb").limited_by, "grid L1");
  const CircuitLoad& grid = FindCircuit(a, "grid");
  EXPECT_DOUBLE_EQ(*grid.load_a[0], 40);
  EXPECT_DOUBLE_EQ(*grid.load_a[1], 32);
  EXPECT_DOUBLE_EQ(*grid.load_a[2], 36);
  EXPECT_DOUBLE_EQ(*grid.headroom_a[1], 8);
}

TEST(PhaseRotation, SinglePhaseEvsesOnDifferentPhasesDoNotShare) {
  const Allocation a = AllocateScenario(R"({
    "grid": {"limit_a": [20, 20, 20], "measured_a": [0, 0, 0]},
    "evses": [
      {"id": "a", "type": "ac", "phases": ["L1"], "max_a": 32},
      {"id": "b", "type": "ac", "phases": ["L2"], "max_a": 32},
      {"id": "c", "type": "ac", "phases": ["L2"], "max_a": 32}]})");
  EXPECT_DOUBLE_EQ(FindEvse(a, "a").current_a, 20);
  EXPECT_DOUBLE_EQ(FindEvse(a, "b").current_a, 10);
  EXPECT_DOUBLE_EQ(FindEvse(a, "c").current_a, 10);
}

// ----- Metering, margin, contract. -----

TEST(Circuits, UnmeteredCircuitHasNoBaseLoad) {
  const Allocation a = AllocateScenario(R"({
    "grid": {"limit_a": [63, 63, 63], "measured_a": [30, 30, 30]},
    "circuits": [{"id": "garage", "limit_a": [16, 16, 16], "measured_a": null}],
    "evses": [{"id": "wb", "circuit": "garage", "type": "ac", "phases": ["L1", "L2", "L3"],
               "max_a": 32}]})");
  EXPECT_DOUBLE_EQ(FindEvse(a, "wb").current_a, 16);
  EXPECT_EQ(FindEvse(a, "wb").limited_by, "circuit garage L1");
  EXPECT_DOUBLE_EQ(*FindCircuit(a, "garage").load_a[0], 16);
  EXPECT_DOUBLE_EQ(*FindCircuit(a, "grid").load_a[0], 46);
}

TEST(Circuits, MeteredCircuitCountsUnmeasuredEvseAtItsSetpoint) {
  // Circuit meter 10 A on L1, the EVSE has no meter and a 6 A setpoint in force → base 4 A.
  const Allocation a = AllocateScenario(R"({
    "grid": {"limit_a": [63, 63, 63], "measured_a": [10, 0, 0]},
    "circuits": [{"id": "shed", "limit_a": [16, null, null], "measured_a": [10, null, null]}],
    "evses": [{"id": "wb", "circuit": "shed", "type": "ac", "phases": ["L1"], "max_a": 32,
               "setpoint_a": 6}]})");
  EXPECT_DOUBLE_EQ(FindEvse(a, "wb").current_a, 12);
  EXPECT_EQ(FindEvse(a, "wb").limited_by, "circuit shed L1");
}

TEST(Circuits, NegativeBaseLoadIsNotCountedOn) {
  // EVSE measurements exceed the grid reading (generation or skew): base load taken as 0.
  const Allocation a = AllocateScenario(R"({
    "grid": {"limit_a": [20, 20, 20], "measured_a": [5, 5, 5]},
    "evses": [{"id": "wb", "type": "ac", "phases": ["L1", "L2", "L3"], "max_a": 32,
               "measured_a": [10, 10, 10]}]})");
  EXPECT_DOUBLE_EQ(FindEvse(a, "wb").current_a, 20);
}

TEST(Limits, MarginIsKeptOnEveryCircuitPhase) {
  const Allocation a = AllocateScenario(R"({
    "grid": {"limit_a": [63, 63, 63], "measured_a": [0, 0, 0]}, "margin_a": 2.5,
    "circuits": [{"id": "c", "limit_a": [16, 16, 16]}],
    "evses": [{"id": "wb", "circuit": "c", "type": "ac", "phases": ["L3"], "max_a": 32}]})");
  EXPECT_DOUBLE_EQ(FindEvse(a, "wb").current_a, 13.5);
  EXPECT_DOUBLE_EQ(*FindCircuit(a, "c").headroom_a[2], 0);
}

TEST(Limits, ContractPowerCapsTheSumOverPhases) {
  // 11 kW contract, 1 kW base: 10000 / 230 = 43.48 A over all phases; two 3-phase EVSEs →
  // 7.246 A per phase each, quantised to 7.2 A.
  const Allocation a = AllocateScenario(R"({
    "grid": {"limit_a": [63, 63, 63], "contract_power_w": 11000,
             "measured_a": [4.3478260869565215, 0, 0]},
    "evses": [
      {"id": "a", "type": "ac", "phases": ["L1", "L2", "L3"], "max_a": 16},
      {"id": "b", "type": "ac", "phases": ["L1", "L2", "L3"], "max_a": 16}]})");
  EXPECT_DOUBLE_EQ(FindEvse(a, "a").current_a, 7.2);
  EXPECT_DOUBLE_EQ(FindEvse(a, "b").current_a, 7.2);
  EXPECT_EQ(FindEvse(a, "a").limited_by, "grid contract power");
}

// ----- Priorities, fairness, pausing, rotation. -----

TEST(Priorities, HigherClassIsServedFirst) {
  const Allocation a = AllocateScenario(R"({
    "grid": {"limit_a": [40, 40, 40], "measured_a": [0, 0, 0]},
    "evses": [
      {"id": "low", "type": "ac", "phases": ["L1"], "max_a": 32, "priority": 0},
      {"id": "high", "type": "ac", "phases": ["L1"], "max_a": 32, "priority": 5}]})");
  EXPECT_DOUBLE_EQ(FindEvse(a, "high").current_a, 32);
  EXPECT_DOUBLE_EQ(FindEvse(a, "low").current_a, 8);
}

TEST(Priorities, LowerClassIsPausedFirstEvenWithLessEnergy) {
  const Allocation a = AllocateScenario(R"({
    "grid": {"limit_a": [10, 10, 10], "measured_a": [0, 0, 0]},
    "evses": [
      {"id": "low", "type": "ac", "phases": ["L1"], "max_a": 32, "session_energy_wh": 0},
      {"id": "high", "type": "ac", "phases": ["L1"], "max_a": 32, "priority": 1,
       "session_energy_wh": 9000}]})");
  EXPECT_DOUBLE_EQ(FindEvse(a, "high").current_a, 10);
  EXPECT_TRUE(FindEvse(a, "low").paused);
}

TEST(Fairness, MaxMinFairAcrossNestedCircuits) {
  // 48 A on L1 for four EVSEs; "capped" wants only 8 A, "sub" sits on a 10 A circuit.
  // Max-min fair: capped 8, sub 10, the other two share the remaining 30 → 15 each.
  const Allocation a = AllocateScenario(R"({
    "grid": {"limit_a": [48, 48, 48], "measured_a": [0, 0, 0]},
    "circuits": [{"id": "small", "limit_a": [10, 10, 10]}],
    "evses": [
      {"id": "capped", "type": "ac", "phases": ["L1"], "max_a": 8},
      {"id": "sub", "circuit": "small", "type": "ac", "phases": ["L1"], "max_a": 32},
      {"id": "x", "type": "ac", "phases": ["L1"], "max_a": 32},
      {"id": "y", "type": "ac", "phases": ["L1", "L2", "L3"], "max_a": 32}]})");
  EXPECT_DOUBLE_EQ(FindEvse(a, "capped").current_a, 8);
  EXPECT_EQ(FindEvse(a, "capped").limited_by, "");
  EXPECT_DOUBLE_EQ(FindEvse(a, "sub").current_a, 10);
  EXPECT_EQ(FindEvse(a, "sub").limited_by, "circuit small L1");
  EXPECT_DOUBLE_EQ(FindEvse(a, "x").current_a, 15);
  EXPECT_DOUBLE_EQ(FindEvse(a, "y").current_a, 15);
}

TEST(Fairness, DcFairnessIsInAcAmperesPerPhase) {
  // A 3-phase AC EVSE and a DC EVSE (η = 1) share 30 A per phase: 15 A each, the DC one at
  // 15 × 3 × 230 = 10350 W.
  const Allocation a = AllocateScenario(R"({
    "grid": {"limit_a": [30, 30, 30], "measured_a": [0, 0, 0]},
    "evses": [
      {"id": "ac", "type": "ac", "phases": ["L1", "L2", "L3"], "max_a": 32},
      {"id": "dc", "type": "dc", "phases": ["L1", "L2", "L3"], "max_w": 50000,
       "efficiency": 1}]})");
  EXPECT_DOUBLE_EQ(FindEvse(a, "ac").current_a, 15);
  EXPECT_EQ(FindEvse(a, "dc").power_w, 10350);
}

constexpr char kThreeOnSixteen[] = R"({
  "grid": {"limit_a": [16, 16, 16], "measured_a": [0, 0, 0]},
  "evses": [
    {"id": "a", "type": "ac", "phases": ["L1"], "max_a": 32, "session_energy_wh": 3000},
    {"id": "b", "type": "ac", "phases": ["L1"], "max_a": 32, "session_energy_wh": 1000},
    {"id": "c", "type": "ac", "phases": ["L1"], "max_a": 32, "session_energy_wh": 2000}]})";

TEST(Pausing, MostEnergyIsPausedWhenMinimumsDoNotFit) {
  const Allocation a = AllocateScenario(kThreeOnSixteen);
  EXPECT_TRUE(FindEvse(a, "a").paused);
  EXPECT_EQ(FindEvse(a, "a").pause_reason, PauseReason::kCapacity);
  EXPECT_DOUBLE_EQ(FindEvse(a, "b").current_a, 8);
  EXPECT_DOUBLE_EQ(FindEvse(a, "c").current_a, 8);
}

TEST(Pausing, EarlierPlugInWinsOnEqualEnergy) {
  const Allocation a = AllocateScenario(R"({
    "grid": {"limit_a": [10, 10, 10], "measured_a": [0, 0, 0]},
    "evses": [
      {"id": "a", "type": "ac", "phases": ["L1"], "max_a": 32, "plugged_at_s": 200},
      {"id": "b", "type": "ac", "phases": ["L1"], "max_a": 32, "plugged_at_s": 100}]})");
  EXPECT_TRUE(FindEvse(a, "a").paused);
  EXPECT_DOUBLE_EQ(FindEvse(a, "b").current_a, 10);
}

// Two EVSEs, one fits. "run" has charged more; "wait" is paused.
std::string Rotation(double now, double running_since, double paused_since) {
  return R"({
    "grid": {"limit_a": [10, 10, 10], "measured_a": [0, 0, 0]},
    "now_s": )" +
         std::to_string(now) +
         R"(, "min_pause_s": 300,
    "evses": [
      {"id": "run", "type": "ac", "phases": ["L1"], "max_a": 32, "session_energy_wh": 5000,
       "running_since_s": )" +
         std::to_string(running_since) + R"(},
      {"id": "wait", "type": "ac", "phases": ["L1"], "max_a": 32, "session_energy_wh": 1000,
       "paused_since_s": )" +
         std::to_string(paused_since) + R"(}]})";
}

TEST(Rotation, RunningEvseIsNotPausedBeforeItsMinimumRunTime) {
  const Allocation a =
      AllocateScenario(Rotation(/*now=*/1000, /*running_since=*/800, /*paused_since=*/0));
  EXPECT_DOUBLE_EQ(FindEvse(a, "run").current_a, 10);
  EXPECT_TRUE(FindEvse(a, "wait").paused);
}

TEST(Rotation, PausedEvseTakesOverAfterMinPauseTime) {
  const Allocation a =
      AllocateScenario(Rotation(/*now=*/1000, /*running_since=*/0, /*paused_since=*/700));
  EXPECT_TRUE(FindEvse(a, "run").paused);
  EXPECT_DOUBLE_EQ(FindEvse(a, "wait").current_a, 10);
}

TEST(Rotation, RecentlyPausedEvseDoesNotDisplaceARunningOne) {
  const Allocation a =
      AllocateScenario(Rotation(/*now=*/1000, /*running_since=*/0, /*paused_since=*/800));
  EXPECT_DOUBLE_EQ(FindEvse(a, "run").current_a, 10);
  EXPECT_TRUE(FindEvse(a, "wait").paused);
}

TEST(Rotation, RecentlyPausedEvseResumesWhenThereIsRoom) {
  std::string s = Rotation(/*now=*/1000, /*running_since=*/0, /*paused_since=*/800);
  s.replace(s.find("[10, 10, 10]"), 12, "[20, 20, 20]");
  const Allocation a = AllocateScenario(s);
  EXPECT_DOUBLE_EQ(FindEvse(a, "run").current_a, 10);
  EXPECT_DOUBLE_EQ(FindEvse(a, "wait").current_a, 10);
}

// ----- Failsafe. -----

constexpr char kFailsafe[] = R"({
  "grid": {"limit_a": [63, 63, 63], "measured_a": [10, 10, 10], "meter_age_s": AGE,
           "meter_timeout_s": 3},
  "evses": [
    {"id": "ac", "type": "ac", "phases": ["L1"], "max_a": 32, "failsafe_a": 6},
    {"id": "idle", "type": "ac", "phases": ["L2"], "max_a": 32, "failsafe_a": 6, "active": false},
    {"id": "dc", "type": "dc", "phases": ["L1", "L2", "L3"], "max_w": 50000, "efficiency": 0.95,
     "failsafe_w": 5000}]})";

std::string FailsafeScenario(const std::string& age) {
  std::string s = kFailsafe;
  s.replace(s.find("AGE"), 3, age);
  return s;
}

TEST(Failsafe, StaleGridMeterGivesFailsafeValues) {
  const Allocation a = AllocateScenario(FailsafeScenario("3.5"));
  EXPECT_TRUE(a.failsafe);
  EXPECT_THAT(a.failsafe_reason, HasSubstr("3.5 s old"));
  EXPECT_DOUBLE_EQ(FindEvse(a, "ac").current_a, 6);
  EXPECT_EQ(FindEvse(a, "idle").current_a, 0);
  EXPECT_TRUE(FindEvse(a, "idle").paused);
  EXPECT_EQ(FindEvse(a, "dc").power_w, 5000);
  EXPECT_TRUE(a.circuits.empty());
}

TEST(Failsafe, FreshMeterAllocatesNormally) {
  const Allocation a = AllocateScenario(FailsafeScenario("3"));
  EXPECT_FALSE(a.failsafe);
  EXPECT_DOUBLE_EQ(FindEvse(a, "ac").current_a, 26.5);  // shares L1 (53 A) with the DC EVSE
}

TEST(Failsafe, MissingReadingOfAConfiguredMeter) {
  const Allocation a = AllocateScenario(R"({
    "grid": {"limit_a": [63, 63, 63], "meter_timeout_s": 3},
    "evses": [{"id": "ac", "type": "ac", "phases": ["L1"], "max_a": 32, "failsafe_a": 10}]})");
  EXPECT_TRUE(a.failsafe);
  EXPECT_DOUBLE_EQ(FindEvse(a, "ac").current_a, 10);
}

// ----- Quantisation. -----

TEST(Quantisation, NeverRoundsAboveALimit) {
  const Allocation a = AllocateScenario(R"({
    "grid": {"limit_a": [63, 63, 63], "measured_a": [0, 0, 0]},
    "circuits": [{"id": "c1", "limit_a": [15.9, 13.74, 16]},
                 {"id": "c2", "limit_a": [10, 10, 10]}],
    "evses": [
      {"id": "whole", "circuit": "c1", "type": "ac", "phases": ["L1"], "max_a": 32, "step_a": 1},
      {"id": "half", "circuit": "c1", "type": "ac", "phases": ["L2"], "max_a": 32, "step_a": 0.5},
      {"id": "dc", "circuit": "c2", "type": "dc", "phases": ["L1", "L2", "L3"], "max_w": 20000,
       "step_w": 100, "efficiency": 0.93}]})");
  EXPECT_DOUBLE_EQ(FindEvse(a, "whole").current_a, 15);
  EXPECT_DOUBLE_EQ(FindEvse(a, "half").current_a, 13.5);
  // 10 A × 3 × 230 V × 0.93 = 6417 W → 6400 W.
  EXPECT_EQ(FindEvse(a, "dc").power_w, 6400);
}

TEST(Quantisation, MaxIsRoundedDownToTheStep) {
  const Allocation a = AllocateScenario(R"({
    "grid": {"limit_a": [63, 63, 63], "measured_a": [0, 0, 0]},
    "evses": [{"id": "wb", "type": "ac", "phases": ["L1"], "max_a": 31.9, "step_a": 1}]})");
  EXPECT_DOUBLE_EQ(FindEvse(a, "wb").current_a, 31);
}

// ----- The issue's example. -----

TEST(IssueExample, AllocatesUnderTheContractPower) {
  // Contract 43 kW is the binding limit (the grid meter reads less than the EVSEs' own
  // measurements, so base load is 0). Max-min fair: 62.32 A over phases / 3 = 20.77 A each:
  // wb1 20.7 A (step 0.1), the DC EVSEs about 20.77 A per phase.
  const Allocation a = AllocateScenario(R"({
    "grid": {"limit_a": [63, 63, 63], "contract_power_w": 43000, "nominal_voltage_v": 230,
             "measured_a": [40, 22, 18], "meter_age_s": 0.4, "meter_timeout_s": 3},
    "margin_a": 0,
    "circuits": [{"id": "garage", "parent": "grid", "limit_a": [32, 32, 32], "measured_a": null}],
    "stations": [{"id": "ds60", "max_power_w": 60000}],
    "evses": [
      {"id": "wb1", "circuit": "garage", "type": "ac", "phases": ["L2", "L3", "L1"],
       "min_a": 6, "max_a": 32, "step_a": 0.1, "active": true, "measured_a": [10, 10, 10],
       "priority": 0, "failsafe_a": 6, "session_energy_wh": 1200, "plugged_at_s": 100},
      {"id": "dc1", "circuit": "grid", "type": "dc", "station": "ds60", "connector": 1,
       "phases": ["L1", "L2", "L3"], "min_w": 0, "max_w": 60000, "efficiency": 0.95,
       "active": true, "measured_w": 20000, "priority": 0, "failsafe_w": 0},
      {"id": "v2x", "circuit": "grid", "type": "dc", "bidirectional": true,
       "phases": ["L1", "L2", "L3"], "max_w": 22000, "max_discharge_w": 22000, "efficiency": 0.945,
       "soc_pct": 55, "soc_min_pct": 30, "soc_max_pct": 100, "active": true, "measured_w": 0}
    ]})");
  EXPECT_DOUBLE_EQ(FindEvse(a, "wb1").current_a, 20.7);
  const double dc1 = FindEvse(a, "dc1").power_w;
  const double v2x = FindEvse(a, "v2x").power_w;
  EXPECT_NEAR(dc1 / (3 * 230 * 0.95), 20.77, 0.1);
  EXPECT_NEAR(v2x / (3 * 230 * 0.945), 20.77, 0.1);
  const double contract_w = 20.7 * 3 * 230 + dc1 / 0.95 + v2x / 0.945;
  EXPECT_LE(contract_w, 43000);
  EXPECT_GT(contract_w, 43000 - 3 * 230 * 0.1);  // less than one AC step left over
}

// ----- Validation. -----

TEST(Validation, ReportsEveryErrorWithItsPath) {
  AllocationInput in;
  in.grid.limit_a = {63, 63, 63};
  Circuit c;
  c.id = "sub";
  c.parent = "nowhere";
  c.limit_a = {16, std::nullopt, std::nullopt};
  in.circuits.push_back(c);
  Evse e;
  e.id = "wb";
  e.circuit = "sub";
  e.phases = {Phase::kL1, Phase::kL2};
  e.min_a = 10;
  e.max_a = 8;
  in.evses.push_back(e);
  const absl::Status status = Allocate(in).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("circuits[0].parent: unknown circuit \"nowhere\""));
  EXPECT_THAT(status.message(),
              HasSubstr("evses[0].phases[1]: phase L2 does not exist on circuit \"sub\""));
  EXPECT_THAT(status.message(), HasSubstr("evses[0].max_a: must be >= min_a"));
}

TEST(Validation, RejectsCircuitCycles) {
  AllocationInput in;
  in.grid.limit_a = {63, 63, 63};
  in.circuits = {{"a", "b", {16, 16, 16}, std::nullopt}, {"b", "a", {16, 16, 16}, std::nullopt}};
  EXPECT_THAT(ValidateInput(in).message(), HasSubstr("circuits form a cycle"));
}

// ----- PreparedSite: the control loop's fast path. -----

TEST(PreparedSite, FollowsNewMeasurementsLikeThePlainPath) {
  absl::StatusOr<AllocationInput> in = ParseScenario(Ds60("0", true, true));
  ASSERT_TRUE(in.ok()) << in.status();
  absl::StatusOr<PreparedSite> site = PreparedSite::Create(*in);
  ASSERT_TRUE(site.ok()) << site.status();
  for (bool right : {true, false, true}) {
    in->evses[0].active = right;
    absl::StatusOr<Allocation> fast = site->Allocate(*in);
    absl::StatusOr<Allocation> plain = Allocate(*in);
    ASSERT_TRUE(fast.ok() && plain.ok());
    EXPECT_EQ(AllocationToJson(*fast), AllocationToJson(*plain));
    EXPECT_EQ(FindEvse(*fast, "left").power_w, right ? 30000 : 60000);
  }
}

TEST(PreparedSite, RejectsBadSnapshotValuesWithTheFieldPath) {
  absl::StatusOr<AllocationInput> in = ParseScenario(Ds60("0", true, true));
  ASSERT_TRUE(in.ok());
  absl::StatusOr<PreparedSite> site = PreparedSite::Create(*in);
  ASSERT_TRUE(site.ok());
  in->evses[1].measured_w = std::numeric_limits<double>::quiet_NaN();
  absl::StatusOr<Allocation> out = site->Allocate(*in);
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(out.status().message(), HasSubstr("evses[1].measured_w"));
}

TEST(PreparedSite, DetectsAChangedStructure) {
  absl::StatusOr<AllocationInput> in = ParseScenario(Ds60("0", true, true));
  ASSERT_TRUE(in.ok());
  absl::StatusOr<PreparedSite> site = PreparedSite::Create(*in);
  ASSERT_TRUE(site.ok());
  EXPECT_TRUE(site->SameStructure(*in));
  in->stations[0].max_power_w = 50000;
  EXPECT_FALSE(site->SameStructure(*in));
  in->evses.pop_back();
  EXPECT_FALSE(site->Allocate(*in).ok());
}

TEST(PreparedSite, CreateValidatesTheStructure) {
  AllocationInput in;
  in.grid.limit_a = {16.0, std::nullopt, std::nullopt};
  Evse e;
  e.id = "wb";
  e.phases = {Phase::kL2};
  in.evses.push_back(e);
  absl::StatusOr<PreparedSite> site = PreparedSite::Create(in);
  ASSERT_FALSE(site.ok());
  EXPECT_THAT(site.status().message(), HasSubstr("evses[0].phases[0]"));
}

}  // namespace
}  // namespace evgate::allocation

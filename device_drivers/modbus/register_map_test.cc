#include "device_drivers/modbus/register_map.h"

#include <cmath>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "device_drivers/modbus/builtin_profiles.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace evgate::modbus {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// SDM630 input registers 0x0000..0x0047 with `values` at their addresses.
std::vector<uint16_t> Sdm630Block(const std::vector<std::pair<int, float>>& values) {
  std::vector<uint16_t> regs(0x48, 0);
  for (const auto& [address, value] : values) {
    const auto words = EncodeFloat32(value, /*high_word_first=*/true);
    regs[address] = words[0];
    regs[address + 1] = words[1];
  }
  return regs;
}

TEST(Sdm630Profile, PlansOneFastReadAndSlowEnergyReads) {
  absl::StatusOr<const RegisterMap*> map = BuiltinRegisterMap("eastron_sdm630");
  ASSERT_TRUE(map.ok()) << map.status();
  const RegisterMap& m = **map;
  EXPECT_EQ(m.table, RegisterTable::kInput);
  ASSERT_EQ(m.blocks.size(), 3u);
  EXPECT_EQ(m.blocks[0].poll, PollClass::kFast);
  EXPECT_EQ(m.blocks[0].address, 0x0000);
  EXPECT_EQ(m.blocks[0].count, 0x48);  // 0x0000..0x0047: V, A, W, total W, Hz
  EXPECT_EQ(m.blocks[1].poll, PollClass::kSlow);
  EXPECT_EQ(m.blocks[1].address, 0x0048);  // import + export kWh
  EXPECT_EQ(m.blocks[1].count, 4);
  EXPECT_EQ(m.blocks[2].address, 0x0156);  // total kWh
  EXPECT_EQ(m.blocks[2].count, 2);
}

TEST(Sdm630Profile, DecodesFloatsHighWordFirst) {
  const RegisterMap& m = **BuiltinRegisterMap("eastron_sdm630");
  std::vector<uint16_t> regs = Sdm630Block({{0x00, 230.5f},
                                            {0x02, 231.0f},
                                            {0x04, 229.0f},
                                            {0x06, 10.25f},
                                            {0x08, -2.0f},
                                            {0x0A, 0.0f},
                                            {0x0C, 2300.0f},
                                            {0x34, 2000.0f},
                                            {0x46, 50.0f}});
  absl::StatusOr<DecodeResult> result = DecodeBlock(m, m.blocks[0], regs, "grid-meter");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->rejected.empty());
  EXPECT_EQ(result->values.Get(Quantity::kVoltageL1), 230.5);
  EXPECT_EQ(result->values.Get(Quantity::kVoltageL3), 229.0);
  EXPECT_EQ(result->values.Get(Quantity::kCurrentL1), 10.25);
  EXPECT_EQ(result->values.Get(Quantity::kCurrentL2), -2.0);
  EXPECT_EQ(result->values.Get(Quantity::kPowerL1), 2300.0);
  EXPECT_EQ(result->values.Get(Quantity::kTotalPower), 2000.0);
  EXPECT_EQ(result->values.Get(Quantity::kFrequency), 50.0);
  EXPECT_FALSE(result->values.Has(Quantity::kEnergyImport));

  std::vector<uint16_t> energy(4);
  auto imp = EncodeFloat32(1234.5f, true);
  auto exp = EncodeFloat32(0.5f, true);
  energy = {imp[0], imp[1], exp[0], exp[1]};
  result = DecodeBlock(m, m.blocks[1], energy, "grid-meter");
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->values.Get(Quantity::kEnergyImport), 1234500.0);  // kWh -> Wh
  EXPECT_EQ(result->values.Get(Quantity::kEnergyExport), 500.0);
}

TEST(Sdm630Profile, RejectsNanInfinityAndAbsurdValuesWithDeviceAndRegister) {
  const RegisterMap& m = **BuiltinRegisterMap("eastron_sdm630");
  std::vector<uint16_t> regs = Sdm630Block({{0x00, 230.0f},
                                            {0x06, std::numeric_limits<float>::quiet_NaN()},
                                            {0x34, std::numeric_limits<float>::infinity()},
                                            {0x04, 1e9f}});
  absl::StatusOr<DecodeResult> result = DecodeBlock(m, m.blocks[0], regs, "grid-meter");
  ASSERT_TRUE(result.ok());
  EXPECT_THAT(result->rejected,
              ElementsAre("device grid-meter input 0x0004 voltage_l3: 1e+09 outside plausible "
                          "range [0, 1000], rejected",
                          "device grid-meter input 0x0006 current_l1: NaN rejected",
                          "device grid-meter input 0x0034 total_power: infinity rejected"));
  EXPECT_FALSE(result->values.Has(Quantity::kCurrentL1));
}

TEST(Sdm630Profile, WrongRegisterCountIsAnErrorNotACrash) {
  const RegisterMap& m = **BuiltinRegisterMap("eastron_sdm630");
  std::vector<uint16_t> regs(3);
  absl::StatusOr<DecodeResult> result = DecodeBlock(m, m.blocks[0], regs, "grid-meter");
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(result.status().message(), HasSubstr("device grid-meter input 0x0000"));
}

TEST(GenericMeter, SameLoaderReadsIntegerHoldingRegisterMap) {
  absl::StatusOr<RegisterMap> map =
      LoadRegisterMapFile("device_drivers/modbus/testdata/generic_meter.yaml");
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_EQ(map->table, RegisterTable::kHolding);
  ASSERT_EQ(map->blocks.size(), 2u);  // fast 100..103, slow 200..201
  EXPECT_EQ(map->blocks[0].address, 100);
  EXPECT_EQ(map->blocks[0].count, 4);  // contiguous fields share one read
  EXPECT_EQ(map->blocks[1].address, 200);
  EXPECT_EQ(map->blocks[1].poll, PollClass::kSlow);
}

TEST(GenericMeter, DecodesScaledIntegersLowWordFirst) {
  RegisterMap map = *LoadRegisterMapFile("device_drivers/modbus/testdata/generic_meter.yaml");
  // 2301 * 0.1 V, -1500 mA, -70000 W as int32 low word first.
  const uint32_t power = static_cast<uint32_t>(-70000);
  std::vector<uint16_t> regs = {2301, static_cast<uint16_t>(-1500),
                                static_cast<uint16_t>(power & 0xFFFF),
                                static_cast<uint16_t>(power >> 16)};
  absl::StatusOr<DecodeResult> result = DecodeBlock(map, map.blocks[0], regs, "sub-meter");
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result->rejected.empty());
  EXPECT_DOUBLE_EQ(*result->values.Get(Quantity::kVoltageL1), 230.1);
  EXPECT_DOUBLE_EQ(*result->values.Get(Quantity::kCurrentL1), -1.5);
  EXPECT_DOUBLE_EQ(*result->values.Get(Quantity::kTotalPower), -70000);
}

TEST(RegisterMapFile, ReportsEveryProblemWithLine) {
  absl::StatusOr<RegisterMap> map = ParseRegisterMap(R"(name: bad
function: 5
colour: red
fields:
  - {quantity: voltage_l1, address: 0x10}
  - {quantity: voltage_l1, address: 0x12}
  - {quantity: volts, address: 0}
  - {quantity: current_l1, address: -1, unit: V}
  - {quantity: power_l1, address: 4, type: float64, min: 5, max: 1}
)",
                                                     "bad.yaml");
  ASSERT_FALSE(map.ok());
  const std::string message(map.status().message());
  EXPECT_THAT(message, HasSubstr("bad.yaml:2: function: must be 3"));
  EXPECT_THAT(message, HasSubstr("bad.yaml:3: unknown key 'colour'"));
  EXPECT_THAT(message, HasSubstr("bad.yaml:6: fields[1].quantity: voltage_l1 already mapped at "
                                 "line 5"));
  EXPECT_THAT(message, HasSubstr("bad.yaml:7: fields[2].quantity: required, one of voltage_l1"));
  EXPECT_THAT(message, HasSubstr("bad.yaml:8: fields[3].address: required, 0x0000-0xFFFE"));
  EXPECT_THAT(message, HasSubstr("bad.yaml:8: fields[3].unit: for current_l1 one of A, mA"));
  EXPECT_THAT(message, HasSubstr("bad.yaml:9: fields[4].type: one of float32"));
  EXPECT_THAT(message, HasSubstr("bad.yaml:9: fields[4]: min 5 must be below max 1"));
}

TEST(BuiltinProfiles, HeidelbergMapsTheDataSheetRegisters) {
  absl::StatusOr<const RegisterMap*> map = BuiltinRegisterMap("heidelberg_energy_control");
  ASSERT_TRUE(map.ok()) << map.status();
  const RegisterMap& m = **map;
  ASSERT_EQ(m.blocks.size(), 3u);
  // One fast read of input 5..14, energy 17..18 slowly, settings 257..262.
  EXPECT_EQ(m.blocks[0].table, RegisterTable::kInput);
  EXPECT_EQ(m.blocks[0].address, 5);
  EXPECT_EQ(m.blocks[0].count, 10);
  EXPECT_EQ(m.blocks[1].address, 17);
  EXPECT_EQ(m.blocks[1].count, 2);
  EXPECT_EQ(m.blocks[2].table, RegisterTable::kHolding);
  EXPECT_EQ(m.blocks[2].address, 257);
  EXPECT_EQ(m.blocks[2].count, 6);
  absl::StatusOr<DecodeResult> r = DecodeBlock(m, m.blocks[1], {0x0001, 0x86A0}, "wb");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->values.Get(Quantity::kEnergyTotal), 100000);  // uint32, high word first
  const FieldSpec& max_current = *m.Find(Quantity::kMaxCurrent);
  EXPECT_EQ(max_current.address, 261);
  EXPECT_THAT(*EncodeField(m, max_current, 16, "wb"), ElementsAre(160));
  EXPECT_FALSE(EncodeField(m, max_current, 16.1, "wb").ok());  // at most 160
  EXPECT_THAT(*EncodeField(m, *m.Find(Quantity::kWatchdogTimeout), 15, "wb"), ElementsAre(15000));
  EXPECT_EQ(m.Find(Quantity::kFailsafeCurrent)->address, 262);
  EXPECT_EQ(m.Find(Quantity::kStandbyMode)->address, 258);
  EXPECT_EQ(m.Find(Quantity::kRemoteLock)->address, 259);
}

TEST(BuiltinProfiles, OffGridBoxIsOneFastReadAndWritableCommands) {
  absl::StatusOr<const RegisterMap*> map = BuiltinRegisterMap("v2x_offgrid_box");
  ASSERT_TRUE(map.ok()) << map.status();
  const RegisterMap& m = **map;
  EXPECT_EQ(m.blocks[0].poll, PollClass::kFast);
  EXPECT_EQ(m.blocks[0].address, 0);
  EXPECT_EQ(m.blocks[0].count, 0x16);  // energy 0x0016-0x0019 is slow
  EXPECT_EQ(m.blocks[1].poll, PollClass::kSlow);
  EXPECT_EQ(m.blocks[1].address, 0x16);
  EXPECT_EQ(m.blocks[1].count, 4);
  EXPECT_TRUE(m.Find(Quantity::kTransferCommand)->writable);
  EXPECT_EQ(m.Find(Quantity::kTransferCommand)->poll, PollClass::kNever);
  EXPECT_THAT(*EncodeField(m, *m.Find(Quantity::kStandbyCountdown), 180, "box"), ElementsAre(180));
  std::vector<uint16_t> regs(0x16, 0);
  regs[0] = 2301;
  regs[3] = 4998;
  regs[5] = 2;
  regs[8] = 2640;
  regs[0x10] = static_cast<uint16_t>(-1250);  // exporting 12.5 A
  regs[0x14] = 0xFFFF;                        // -8625 W, int32 high word first
  regs[0x15] = static_cast<uint16_t>(-8625);
  absl::StatusOr<DecodeResult> r = DecodeBlock(m, m.blocks[0], regs, "box");
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->rejected.empty()) << r->rejected[0];
  EXPECT_DOUBLE_EQ(*r->values.Get(Quantity::kVoltageL1), 230.1);
  EXPECT_DOUBLE_EQ(*r->values.Get(Quantity::kFrequency), 49.98);
  EXPECT_EQ(r->values.Get(Quantity::kTransferSwitch), 2);
  EXPECT_DOUBLE_EQ(*r->values.Get(Quantity::kBackupBatteryVoltage), 26.4);
  EXPECT_DOUBLE_EQ(*r->values.Get(Quantity::kCurrentL1), -12.5);
  EXPECT_EQ(r->values.Get(Quantity::kTotalPower), -8625);
}

TEST(RegisterMapFile, EveryQuantityNameRoundTrips) {
  for (int q = 0; q < kQuantityCount; ++q) {
    const std::string name(QuantityName(static_cast<Quantity>(q)));
    absl::StatusOr<RegisterMap> map = ParseRegisterMap(
        absl::StrCat("name: x\nfields:\n  - {quantity: ", name, ", address: 1, type: uint16}\n"),
        "x.yaml");
    ASSERT_TRUE(map.ok()) << name << ": " << map.status();
    EXPECT_EQ(static_cast<int>(map->fields[0].quantity), q) << name;
  }
}

// A wallbox-like map: input and holding registers, writable settings.
constexpr char kWallboxMap[] = R"(name: wallbox
function: 4
max_gap_registers: 3
fields:
  - {quantity: charging_state, address: 5, type: uint16}
  - {quantity: current_l1, address: 6, type: uint16, unit: A, scale: 0.1}
  - {quantity: energy_total, address: 17, type: uint32, unit: Wh}
  - {quantity: watchdog_timeout, table: holding, address: 257, type: uint16, unit: ms, writable: true, poll: slow}
  - {quantity: max_current, table: holding, address: 261, type: uint16, unit: A, scale: 0.1, min: 0, max: 16, writable: true, poll: slow}
  - {quantity: remote_lock, table: holding, address: 259, type: uint16, min: 0, max: 1, writable: true, poll: never}
  - {quantity: temperature, address: 9, type: int16, unit: C, scale: 0.1}
)";

TEST(RegisterMapFile, PlansBlocksPerTableAndPollClass) {
  absl::StatusOr<RegisterMap> map = ParseRegisterMap(kWallboxMap, "wallbox.yaml");
  ASSERT_TRUE(map.ok()) << map.status();
  ASSERT_EQ(map->blocks.size(), 3u);
  EXPECT_EQ(map->blocks[0].poll, PollClass::kFast);  // input 5..9
  EXPECT_EQ(map->blocks[0].table, RegisterTable::kInput);
  EXPECT_EQ(map->blocks[0].address, 5);
  EXPECT_EQ(map->blocks[0].count, 5);
  EXPECT_EQ(map->blocks[1].poll, PollClass::kSlow);  // energy 17..18
  EXPECT_EQ(map->blocks[1].table, RegisterTable::kInput);
  EXPECT_EQ(map->blocks[1].address, 17);
  EXPECT_EQ(map->blocks[2].table, RegisterTable::kHolding);  // settings 257..261
  EXPECT_EQ(map->blocks[2].address, 257);
  EXPECT_EQ(map->blocks[2].count, 5);
  ASSERT_NE(map->Find(Quantity::kRemoteLock), nullptr);  // never polled, still known
  EXPECT_EQ(map->Find(Quantity::kRemoteLock)->poll, PollClass::kNever);
  EXPECT_EQ(map->Find(Quantity::kFrequency), nullptr);

  absl::StatusOr<DecodeResult> r =
      DecodeBlock(*map, map->blocks[0], {7, 160, 0, 0, static_cast<uint16_t>(-55)}, "wb");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->rejected.empty());
  EXPECT_EQ(r->values.Get(Quantity::kChargingState), 7);
  EXPECT_DOUBLE_EQ(*r->values.Get(Quantity::kCurrentL1), 16.0);
  EXPECT_DOUBLE_EQ(*r->values.Get(Quantity::kTemperature), -5.5);
  r = DecodeBlock(*map, map->blocks[2], {15000, 0, 0, 0, 160}, "wb");
  ASSERT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ(*r->values.Get(Quantity::kWatchdogTimeout), 15.0);  // ms -> s
  EXPECT_DOUBLE_EQ(*r->values.Get(Quantity::kMaxCurrent), 16.0);
}

TEST(RegisterMapFile, EncodesWritableFieldsAndRefusesOthers) {
  RegisterMap map = *ParseRegisterMap(kWallboxMap, "wallbox.yaml");
  const FieldSpec& max_current = *map.Find(Quantity::kMaxCurrent);
  EXPECT_THAT(*EncodeField(map, max_current, 16, "wb"), ElementsAre(160));
  EXPECT_THAT(*EncodeField(map, max_current, 6.1, "wb"), ElementsAre(61));
  EXPECT_THAT(*EncodeField(map, max_current, 0, "wb"), ElementsAre(0));
  absl::StatusOr<std::vector<uint16_t>> bad = EncodeField(map, max_current, 16.5, "wb");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(bad.status().message(),
              HasSubstr("device wb holding 0x0105 max_current: 16.5 outside the writable range "
                        "[0, 16]"));
  EXPECT_EQ(EncodeField(map, max_current, std::nan(""), "wb").status().code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_THAT(*EncodeField(map, *map.Find(Quantity::kWatchdogTimeout), 60, "wb"),
              ElementsAre(60000));  // s -> ms
  EXPECT_EQ(EncodeField(map, *map.Find(Quantity::kWatchdogTimeout), 70, "wb").status().code(),
            absl::StatusCode::kOutOfRange);  // 70000 ms does not fit uint16
  EXPECT_EQ(EncodeField(map, *map.Find(Quantity::kCurrentL1), 1, "wb").status().code(),
            absl::StatusCode::kFailedPrecondition);
  // Read-back decoding of one field.
  EXPECT_DOUBLE_EQ(*DecodeField(map, max_current, std::vector<uint16_t>{61}, "wb"), 6.1);
  EXPECT_EQ(DecodeField(map, max_current, std::vector<uint16_t>{170}, "wb").status().code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(DecodeField(map, max_current, std::vector<uint16_t>{1, 2}, "wb").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(RegisterMapFile, Encodes32BitValuesInTheMapsWordOrder) {
  RegisterMap map = *ParseRegisterMap(R"(name: x
word_order: low_word_first
fields:
  - {quantity: energy_total, address: 0, type: uint32}
  - {quantity: standby_countdown, table: holding, address: 0, type: int32, writable: true}
  - {quantity: max_current, table: holding, address: 2, type: float32, writable: true}
)",
                                      "x.yaml");
  EXPECT_THAT(*EncodeField(map, *map.Find(Quantity::kStandbyCountdown), 70000, "x"),
              ElementsAre(70000 & 0xFFFF, 70000 >> 16));
  const auto f = EncodeFloat32(12.5f, /*high_word_first=*/false);
  EXPECT_THAT(*EncodeField(map, *map.Find(Quantity::kMaxCurrent), 12.5, "x"),
              ElementsAre(f[0], f[1]));
}

TEST(RegisterMapFile, ReportsWritableInputOverlapsCodesWithUnitsAndNothingPolled) {
  absl::StatusOr<RegisterMap> map = ParseRegisterMap(R"(name: bad
fields:
  - {quantity: max_current, address: 10, type: uint16, writable: true, poll: never}
  - {quantity: current_l1, address: 11, type: float32, poll: never}
  - {quantity: current_l2, address: 12, type: float32, poll: never}
  - {quantity: charging_state, address: 20, type: uint16, unit: A, table: coil, poll: sometimes}
)",
                                                     "bad.yaml");
  ASSERT_FALSE(map.ok());
  const std::string message(map.status().message());
  EXPECT_THAT(message, HasSubstr("bad.yaml:3: fields[0]: writable needs table: holding"));
  EXPECT_THAT(
      message,
      HasSubstr("bad.yaml:5: fields[2]: input registers 12+2 overlap current_l1 at line 4"));
  EXPECT_THAT(message, HasSubstr("bad.yaml:6: fields[3].unit: charging_state is a code"));
  EXPECT_THAT(message, HasSubstr("bad.yaml:6: fields[3].table: input or holding"));
  EXPECT_THAT(message, HasSubstr("bad.yaml:6: fields[3].poll: fast, slow or never"));
  map = ParseRegisterMap(
      "name: x\nfields:\n  - {quantity: max_current, table: holding, address: 1, type: uint16, "
      "writable: true, poll: never}\n",
      "x.yaml");
  EXPECT_THAT(map.status().message(),
              HasSubstr("x.yaml:3: fields: at least one field must be polled"));
}

TEST(RegisterMapFile, OddYamlIsAnErrorNotACrash) {
  for (const char* text :
       {"", "[1, 2]", "name: x\nfields: 3", "{[a]: b}", "name: [x]\nfields:\n  - 7",
        "name: x\nfields:\n  - {quantity: [a], address: {b: c}}", "\t\x01"}) {
    EXPECT_FALSE(ParseRegisterMap(text, "odd.yaml").ok()) << text;
  }
}

}  // namespace
}  // namespace evgate::modbus

#include "device_drivers/modbus/register_map.h"

#include <cmath>
#include <limits>
#include <vector>

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
  EXPECT_EQ(result->values.voltage_v[0], 230.5);
  EXPECT_EQ(result->values.voltage_v[2], 229.0);
  EXPECT_EQ(result->values.current_a[0], 10.25);
  EXPECT_EQ(result->values.current_a[1], -2.0);
  EXPECT_EQ(result->values.power_w[0], 2300.0);
  EXPECT_EQ(result->values.total_power_w, 2000.0);
  EXPECT_EQ(result->values.frequency_hz, 50.0);
  EXPECT_FALSE(result->values.energy_import_wh.has_value());

  std::vector<uint16_t> energy(4);
  auto imp = EncodeFloat32(1234.5f, true);
  auto exp = EncodeFloat32(0.5f, true);
  energy = {imp[0], imp[1], exp[0], exp[1]};
  result = DecodeBlock(m, m.blocks[1], energy, "grid-meter");
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->values.energy_import_wh, 1234500.0);  // kWh -> Wh
  EXPECT_EQ(result->values.energy_export_wh, 500.0);
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
  EXPECT_FALSE(result->values.current_a[0].has_value());
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
  EXPECT_DOUBLE_EQ(*result->values.voltage_v[0], 230.1);
  EXPECT_DOUBLE_EQ(*result->values.current_a[0], -1.5);
  EXPECT_DOUBLE_EQ(*result->values.total_power_w, -70000);
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

}  // namespace
}  // namespace evgate::modbus

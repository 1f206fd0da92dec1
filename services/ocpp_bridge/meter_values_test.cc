// MeterValues sampled values into base units. Bad inputs tried: a value that
// is not a number, "NaN", SignedData, a unit that does not fit the measurand,
// an EV-side value, a line-to-line phase, an unused measurand, a timestamp
// that is not RFC 3339.
#include "services/ocpp_bridge/meter_values.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace evgate::ocpp {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

MeterReading Parse(const json& sampled_values) {
  absl::StatusOr<MeterReading> reading = ParseMeterValue(
      {{"timestamp", "2027-01-15T08:00:00.250Z"}, {"sampledValue", sampled_values}});
  EXPECT_TRUE(reading.ok()) << reading.status();
  return reading.ok() ? *reading : MeterReading{};
}

TEST(MeterValuesTest, DefaultsAreTheImportRegisterInWh) {
  MeterReading reading = Parse(json::array({{{"value", "12345"}}}));
  EXPECT_EQ(reading.timestamp,
            absl::FromCivil(absl::CivilSecond(2027, 1, 15, 8, 0, 0), absl::UTCTimeZone()) +
                absl::Milliseconds(250));
  EXPECT_EQ(reading.energy_import_wh, 12345);
  EXPECT_EQ(reading.context, "Sample.Periodic");
  EXPECT_TRUE(reading.skipped.empty());
}

TEST(MeterValuesTest, ScalesKiloUnitsAndSplitsPhases) {
  MeterReading reading = Parse(json::array({
      {{"value", "12.5"}, {"unit", "kWh"}, {"context", "Transaction.Begin"}},
      {{"value", "3.25"}, {"unit", "kWh"}, {"measurand", "Energy.Active.Export.Register"}},
      {{"value", "11"}, {"unit", "kW"}, {"measurand", "Power.Active.Import"}},
      {{"value", "-0"}, {"unit", "W"}, {"measurand", "Power.Active.Export"}},
      {{"value", "16.1"}, {"measurand", "Current.Import"}, {"phase", "L1"}, {"unit", "A"}},
      {{"value", "16.2"}, {"measurand", "Current.Import"}, {"phase", "L2"}},
      {{"value", "16.3"}, {"measurand", "Current.Import"}, {"phase", "L3"}},
      {{"value", "231"}, {"measurand", "Voltage"}, {"phase", "L2-N"}, {"unit", "V"}},
      {{"value", "120"}, {"measurand", "Current.Import"}},
      {{"value", "55"}, {"measurand", "SoC"}, {"unit", "Percent"}, {"location", "EV"}},
      {{"value", "32"}, {"measurand", "Current.Offered"}},
      {{"value", "22000"}, {"measurand", "Power.Offered"}},
  }));
  EXPECT_EQ(reading.context, "Transaction.Begin");
  EXPECT_EQ(reading.energy_import_wh, 12500);
  EXPECT_EQ(reading.energy_export_wh, 3250);
  EXPECT_EQ(reading.power_import_w, 11000);
  EXPECT_EQ(reading.power_export_w, 0);
  EXPECT_THAT(reading.current_import_a,
              ElementsAre(std::optional<double>(16.1), std::optional<double>(16.2),
                          std::optional<double>(16.3)));
  EXPECT_EQ(reading.voltage_v[1], 231);
  EXPECT_FALSE(reading.voltage_v[0].has_value());
  EXPECT_EQ(reading.current_import_total_a, 120);
  EXPECT_EQ(reading.soc_pct, 55);
  EXPECT_EQ(reading.current_offered_a, 32);
  EXPECT_EQ(reading.power_offered_w, 22000);
  EXPECT_TRUE(reading.skipped.empty()) << reading.skipped[0];
}

TEST(MeterValuesTest, UnusableValuesAreSkippedWithAReasonAndTheRestKept) {
  MeterReading reading = Parse(json::array({
      {{"value", "abc"}, {"measurand", "Power.Active.Import"}},
      {{"value", "NaN"}, {"measurand", "Power.Active.Export"}},
      {{"value", "0A1B"}, {"format", "SignedData"}},
      {{"value", "16"}, {"measurand", "Energy.Active.Import.Register"}, {"unit", "A"}},
      {{"value", "400"}, {"measurand", "Voltage"}, {"phase", "L1-L2"}},
      {{"value", "10"}, {"measurand", "Current.Import"}, {"location", "EV"}},
      {{"value", "50"}, {"measurand", "Frequency"}},
      {{"value", "7"}, {"measurand", "Current.Import"}, {"phase", "L1"}},
  }));
  EXPECT_FALSE(reading.power_import_w.has_value());
  EXPECT_FALSE(reading.power_export_w.has_value());
  EXPECT_FALSE(reading.energy_import_wh.has_value());
  EXPECT_FALSE(reading.current_import_total_a.has_value());
  EXPECT_EQ(reading.current_import_a[0], 7);
  EXPECT_THAT(reading.skipped,
              ElementsAre(HasSubstr("\"abc\" is not a number"), HasSubstr("\"NaN\" is not"),
                          HasSubstr("signed data"), HasSubstr("unit \"A\" does not fit"),
                          HasSubstr("phase \"L1-L2\""), HasSubstr("at the EV"),
                          HasSubstr("Frequency: not used")));
}

TEST(MeterValuesTest, ABadTimestampIsAnError) {
  absl::StatusOr<MeterReading> reading =
      ParseMeterValue({{"timestamp", "yesterday"}, {"sampledValue", json::array()}});
  ASSERT_FALSE(reading.ok());
  EXPECT_THAT(std::string(reading.status().message()), HasSubstr("\"yesterday\""));
}

TEST(MeterValuesTest, TimesRoundTripWithOffsetsAndMilliseconds) {
  absl::StatusOr<absl::Time> t = ParseOcppTime("2027-01-15T09:00:00.5+01:00");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(FormatOcppTime(*t), "2027-01-15T08:00:00.500Z");
}

}  // namespace
}  // namespace evgate::ocpp

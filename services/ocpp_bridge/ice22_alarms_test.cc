#include "services/ocpp_bridge/ice22_alarms.h"

#include <set>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace evgate::ocpp {
namespace {

using ::testing::HasSubstr;

constexpr v1::FaultSeverity kCritical = v1::FAULT_SEVERITY_CRITICAL;
constexpr v1::FaultSeverity kError = v1::FAULT_SEVERITY_ERROR;
constexpr v1::FaultSeverity kWarning = v1::FAULT_SEVERITY_WARNING;

// Every row of the manual's "Table: Charger Alarms", with what it says the
// alarm does to charging.
TEST(Ice22AlarmsTest, EveryAlarmOfTheManualsTable) {
  struct Row {
    const char* vendor_code;
    const char* code;
    v1::FaultSeverity severity;
    bool blocks;
    const char* manual_name;
  };
  const std::vector<Row> rows = {
      {"CA 1", "SYSTEM_NOT_AVAILABLE", kCritical, true, "System Not Available"},
      {"MA 2", "SYSTEM_DISABLED", kError, true, "System Disabled"},
      {"CA 3", "CCU_COMM_LOST", kCritical, true, "All CCU Comm Fail"},
      {"MA 4", "SERVER_COMM_LOST", kWarning, false, "Server Comm Fail"},
      {"MA 5", "METER_NOT_INSTALLED", kCritical, true, "All kWhMeter Not Installed"},
      {"CA 6", "CCU_COMM_LOST", kCritical, true, "CCU Comm Fail"},
      {"CA 7", "EMERGENCY_STOP", kCritical, true, "EPO is pressed"},
      {"CA 8", "DOOR_OPEN", kCritical, true, "Door is opened"},
      {"CA 9", "SURGE_PROTECTION", kCritical, true, "SPD alarm"},
      {"CA 10", "MAINS_FAILURE", kCritical, true, "Mains Fail Alarm"},
      {"MA 11", "CONNECTOR_DISABLED", kError, true, "Gun is disabled"},
      {"MA 12", "OVER_TEMPERATURE", kWarning, false, "does not stop charging"},
      {"CA 13", "POWER_MODULE_FAILURE", kCritical, true, "All Rectifier Failure"},
      {"CA 14", "POWER_MODULE_COMM_LOST", kCritical, true, "All Rectifier Comm Fail"},
      {"CA 15", "POWER_MODULE_FAILURE", kError, true, "Rectifiers Failure"},
      {"CA 16", "POWER_MODULE_COMM_LOST", kError, true, "Rectifiers Comm Fail"},
      {"CA 17", "INSULATION_MONITOR_COMM_LOST", kError, true, "Insulation Comm Fail"},
      {"CA 18", "OUTPUT_SHORT_CIRCUIT", kCritical, true, "Output Shorted"},
      {"CA 19", "INSULATION_FAULT", kCritical, true, "Insulation Alarm"},
      {"CA 20", "EV_COMM_LOST", kError, true, "PLC ComFail Alarm"},
      {"CA 21", "GROUND_FAULT", kCritical, true, "Ground Fault"},
      {"CA 22", "AC_INPUT_FAILURE", kError, true, "AC Fail Alarm"},
      {"CA 301", "READER_COMM_LOST", kWarning, false, "CR CommFail"},
      {"CA 401", "METER_COMM_LOST", kError, true, "kWhMeterCommFail"},
      {"CA 402", "METER_INVALID_CURRENT", kWarning, false, "Sampled Invalid Current"},
  };
  const absl::Time since = absl::FromUnixSeconds(1'800'000'000);
  for (const Row& row : rows) {
    const v1::Fault fault = Ice22AlarmFault(row.vendor_code, since);
    EXPECT_EQ(fault.code(), row.code) << row.vendor_code;
    EXPECT_EQ(fault.severity(), row.severity) << row.vendor_code;
    EXPECT_EQ(fault.blocks_charging(), row.blocks) << row.vendor_code;
    EXPECT_THAT(fault.description(), HasSubstr(row.manual_name)) << row.vendor_code;
    EXPECT_EQ(fault.vendor(), "ice22_alarm");
    EXPECT_EQ(fault.vendor_code(), row.vendor_code);
    EXPECT_NE(fault.component(), v1::FAULT_COMPONENT_UNSPECIFIED) << row.vendor_code;
    EXPECT_NE(fault.ocpp_error_code(), v1::OCPP_ERROR_CODE_UNSPECIFIED) << row.vendor_code;
    EXPECT_EQ(fault.since().seconds(), 1'800'000'000);
  }
}

TEST(Ice22AlarmsTest, SafetyAlarmsMapToTheirComponentAndOcppCode) {
  const v1::Fault ground = Ice22AlarmFault("CA 21", absl::UnixEpoch());
  EXPECT_EQ(ground.component(), v1::FAULT_COMPONENT_GROUND);
  EXPECT_EQ(ground.ocpp_error_code(), v1::OCPP_ERROR_CODE_GROUND_FAILURE);
  const v1::Fault epo = Ice22AlarmFault("CA 7", absl::UnixEpoch());
  EXPECT_EQ(epo.component(), v1::FAULT_COMPONENT_ENCLOSURE);
  const v1::Fault hot = Ice22AlarmFault("MA 12", absl::UnixEpoch());
  EXPECT_EQ(hot.ocpp_error_code(), v1::OCPP_ERROR_CODE_HIGH_TEMPERATURE);
  const v1::Fault meter = Ice22AlarmFault("CA 401", absl::UnixEpoch());
  EXPECT_EQ(meter.ocpp_error_code(), v1::OCPP_ERROR_CODE_POWER_METER_FAILURE);
}

TEST(Ice22AlarmsTest, TheIdDecidesWhateverTheSpelling) {
  for (const char* spelling : {"CA 21", "CA21", "ca 21", " CA  21 ", "21", "MA 21", "OA 21"}) {
    EXPECT_EQ(Ice22AlarmFault(spelling, absl::UnixEpoch()).code(), "GROUND_FAULT") << spelling;
  }
}

// Bad codes tried: empty, only a level, unknown ids (0, 23, 300, 999),
// negative, non-numeric, trailing junk, a number too large for int.
TEST(Ice22AlarmsTest, UnknownCodesAreSeriousAndKeptAsReceived) {
  for (const char* code : {"", "CA", "CA 0", "CA 23", "CA 300", "999", "CA -21", "CA x", "CA 21b",
                           "CA 99999999999999999999", "XX 21"}) {
    const v1::Fault fault = Ice22AlarmFault(code, absl::UnixEpoch());
    EXPECT_EQ(fault.code(), "UNKNOWN_VENDOR_CODE") << code;
    EXPECT_EQ(fault.severity(), kError) << code;
    EXPECT_TRUE(fault.blocks_charging()) << code;
    EXPECT_EQ(fault.vendor_code(), code);
  }
}

}  // namespace
}  // namespace evgate::ocpp

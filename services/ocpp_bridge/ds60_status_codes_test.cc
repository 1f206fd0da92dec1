#include "services/ocpp_bridge/ds60_status_codes.h"

#include <google/protobuf/util/time_util.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace evgate::ocpp {
namespace {

const absl::Time kSince = absl::FromUnixSeconds(1796000000);

struct Case {
  const char* vendor_code;
  const char* code;
  v1::FaultSeverity severity;
  bool blocks;
  v1::FaultComponent component;
};

TEST(Ds60StatusCodesTest, NamedCodesFromTheManual) {
  for (const Case& c : std::vector<Case>{
           {"011001", "OUTPUT_FUSE_BLOWN", v1::FAULT_SEVERITY_ERROR, true,
            v1::FAULT_COMPONENT_POWER_MODULE},
           {"011004", "RCD_FAILURE", v1::FAULT_SEVERITY_CRITICAL, true, v1::FAULT_COMPONENT_RCD},
           {"011013", "RELAY_FAILURE", v1::FAULT_SEVERITY_CRITICAL, true,
            v1::FAULT_COMPONENT_RELAY},
           {"011022", "COMMUNICATION_MODULE_FAILURE", v1::FAULT_SEVERITY_WARNING, false,
            v1::FAULT_COMPONENT_COMMUNICATION},
           {"011026", "CONNECTOR_LOCK_FAILURE", v1::FAULT_SEVERITY_ERROR, true,
            v1::FAULT_COMPONENT_CONNECTOR},
           {"012201", "OVER_VOLTAGE", v1::FAULT_SEVERITY_ERROR, true, v1::FAULT_COMPONENT_GRID},
           {"012205", "UNDER_VOLTAGE", v1::FAULT_SEVERITY_ERROR, true, v1::FAULT_COMPONENT_GRID},
           {"012213", "MISSING_PHASE", v1::FAULT_SEVERITY_ERROR, true, v1::FAULT_COMPONENT_GRID},
           {"012220", "OVER_CURRENT", v1::FAULT_SEVERITY_ERROR, true,
            v1::FAULT_COMPONENT_POWER_MODULE},
           {"012219", "OUTPUT_OVER_VOLTAGE", v1::FAULT_SEVERITY_ERROR, true,
            v1::FAULT_COMPONENT_POWER_MODULE},
           {"012224", "OVER_TEMPERATURE", v1::FAULT_SEVERITY_ERROR, true,
            v1::FAULT_COMPONENT_TEMPERATURE},
           {"012230", "CONNECTOR_OVER_TEMPERATURE", v1::FAULT_SEVERITY_ERROR, true,
            v1::FAULT_COMPONENT_TEMPERATURE},
           {"012235", "GROUND_FAULT", v1::FAULT_SEVERITY_CRITICAL, true,
            v1::FAULT_COMPONENT_GROUND},
           {"012237", "SURGE_PROTECTION", v1::FAULT_SEVERITY_CRITICAL, true,
            v1::FAULT_COMPONENT_GRID},
           {"012238", "BREAKER_TRIP", v1::FAULT_SEVERITY_CRITICAL, true, v1::FAULT_COMPONENT_GRID},
           {"012243", "READER_COMM_LOST", v1::FAULT_SEVERITY_WARNING, false,
            v1::FAULT_COMPONENT_READER},
           {"012251", "EMERGENCY_STOP", v1::FAULT_SEVERITY_CRITICAL, true,
            v1::FAULT_COMPONENT_ENCLOSURE},
           {"012252", "DOOR_OPEN", v1::FAULT_SEVERITY_CRITICAL, true,
            v1::FAULT_COMPONENT_ENCLOSURE},
           {"012304", "INTERNAL_COMM_LOST", v1::FAULT_SEVERITY_ERROR, true,
            v1::FAULT_COMPONENT_COMMUNICATION},
           {"012343", "TILT_SENSOR_FAILURE", v1::FAULT_SEVERITY_CRITICAL, true,
            v1::FAULT_COMPONENT_ENCLOSURE},
           {"013601", "TIME_LIMIT_REACHED", v1::FAULT_SEVERITY_INFO, false,
            v1::FAULT_COMPONENT_OTHER},
           {"023701", "EV_COMM_LOST", v1::FAULT_SEVERITY_ERROR, true, v1::FAULT_COMPONENT_EV},
           {"023979", "EV_STOPPED", v1::FAULT_SEVERITY_INFO, false, v1::FAULT_COMPONENT_EV},
           {"033901", "BACKEND_DISCONNECTED", v1::FAULT_SEVERITY_WARNING, false,
            v1::FAULT_COMPONENT_COMMUNICATION},
           {"033904", "REMOTE_CONTROL", v1::FAULT_SEVERITY_INFO, false,
            v1::FAULT_COMPONENT_COMMUNICATION},
       }) {
    const v1::Fault f = Ds60StatusFault(c.vendor_code, kSince);
    EXPECT_EQ(f.code(), c.code) << c.vendor_code;
    EXPECT_EQ(f.severity(), c.severity) << c.vendor_code;
    EXPECT_EQ(f.blocks_charging(), c.blocks) << c.vendor_code;
    EXPECT_EQ(f.component(), c.component) << c.vendor_code;
    EXPECT_EQ(f.vendor(), "ds60");
    EXPECT_EQ(f.vendor_code(), c.vendor_code);  // as received
    EXPECT_FALSE(f.description().empty()) << c.vendor_code;
    EXPECT_EQ(google::protobuf::util::TimeUtil::TimestampToSeconds(f.since()),
              absl::ToUnixSeconds(kSince));
  }
  EXPECT_EQ(Ds60StatusFault("012252", kSince).description(), "The cabinet door has been opened");
  EXPECT_EQ(Ds60StatusFault("012252", kSince).ocpp_error_code(), v1::OCPP_ERROR_CODE_OTHER_ERROR);
  EXPECT_EQ(Ds60StatusFault("012235", kSince).ocpp_error_code(),
            v1::OCPP_ERROR_CODE_GROUND_FAILURE);
}

TEST(Ds60StatusCodesTest, CodesTheTableDoesNotNameTakeTheirFamilysRule) {
  for (const Case& c : std::vector<Case>{
           // 011: parts fault, serviced by a technician.
           {"011099", "CHARGER_PART_FAULT", v1::FAULT_SEVERITY_ERROR, true,
            v1::FAULT_COMPONENT_OTHER},
           // 012: a warning; charging goes on.
           {"012273", "CHARGER_WARNING", v1::FAULT_SEVERITY_WARNING, false,
            v1::FAULT_COMPONENT_OTHER},
           // 013: a message; no impact on charging.
           {"013622", "CHARGER_MESSAGE", v1::FAULT_SEVERITY_INFO, false, v1::FAULT_COMPONENT_OTHER},
           // 023: from the EV; that session cannot go on.
           {"023740", "EV_ERROR", v1::FAULT_SEVERITY_ERROR, true, v1::FAULT_COMPONENT_EV},
           // The manual prints some EV codes without the leading 0.
           {"23809", "EV_ERROR", v1::FAULT_SEVERITY_ERROR, true, v1::FAULT_COMPONENT_EV},
           {"033999", "NETWORK_MESSAGE", v1::FAULT_SEVERITY_WARNING, false,
            v1::FAULT_COMPONENT_COMMUNICATION},
           // AC models: 041/042/043 as 011/012/013.
           {"041004", "RCD_FAILURE", v1::FAULT_SEVERITY_CRITICAL, true, v1::FAULT_COMPONENT_RCD},
           {"042252", "DOOR_OPEN", v1::FAULT_SEVERITY_CRITICAL, true,
            v1::FAULT_COMPONENT_ENCLOSURE},
           {"043600", "NORMAL_STOP", v1::FAULT_SEVERITY_INFO, false, v1::FAULT_COMPONENT_OTHER},
       }) {
    const v1::Fault f = Ds60StatusFault(c.vendor_code, kSince);
    EXPECT_EQ(f.code(), c.code) << c.vendor_code;
    EXPECT_EQ(f.severity(), c.severity) << c.vendor_code;
    EXPECT_EQ(f.blocks_charging(), c.blocks) << c.vendor_code;
    EXPECT_EQ(f.component(), c.component) << c.vendor_code;
  }
}

TEST(Ds60StatusCodesTest, WhatIsNoCodeIsUnknownAndSerious) {
  // Bad inputs tried: empty, letters, too short / long, other families,
  // signs and spaces inside, the "00001" the manual prints for "Charger not
  // ready".
  for (const char* code :
       {"", "abc", "1234", "0110011", "099001", "01-001", "+11001", "011 01", "00001", "ERR OCP"}) {
    const v1::Fault f = Ds60StatusFault(code, kSince);
    EXPECT_EQ(f.code(), "UNKNOWN_VENDOR_CODE") << code;
    EXPECT_EQ(f.severity(), v1::FAULT_SEVERITY_ERROR) << code;
    EXPECT_TRUE(f.blocks_charging()) << code;
    EXPECT_EQ(f.vendor_code(), code);
  }
  // Surrounding spaces are tolerated; the code is kept as received.
  EXPECT_EQ(Ds60StatusFault(" 012252 ", kSince).code(), "DOOR_OPEN");
  EXPECT_EQ(Ds60StatusFault(" 012252 ", kSince).vendor_code(), " 012252 ");
}

}  // namespace
}  // namespace evgate::ocpp

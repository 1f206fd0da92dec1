#include "services/ocpp_bridge/ocpp16_enums.h"

#include "gtest/gtest.h"

namespace evgate::ocpp {
namespace {

TEST(Ocpp16EnumsTest, EveryChargePointStatus) {
  EXPECT_EQ(ParseChargePointStatus("Available"), v1::CONNECTOR_STATUS_AVAILABLE);
  EXPECT_EQ(ParseChargePointStatus("Preparing"), v1::CONNECTOR_STATUS_PREPARING);
  EXPECT_EQ(ParseChargePointStatus("Charging"), v1::CONNECTOR_STATUS_CHARGING);
  EXPECT_EQ(ParseChargePointStatus("SuspendedEV"), v1::CONNECTOR_STATUS_SUSPENDED_EV);
  EXPECT_EQ(ParseChargePointStatus("SuspendedEVSE"), v1::CONNECTOR_STATUS_SUSPENDED_EVSE);
  EXPECT_EQ(ParseChargePointStatus("Finishing"), v1::CONNECTOR_STATUS_FINISHING);
  EXPECT_EQ(ParseChargePointStatus("Reserved"), v1::CONNECTOR_STATUS_RESERVED);
  EXPECT_EQ(ParseChargePointStatus("Unavailable"), v1::CONNECTOR_STATUS_UNAVAILABLE);
  EXPECT_EQ(ParseChargePointStatus("Faulted"), v1::CONNECTOR_STATUS_FAULTED);
  EXPECT_EQ(ParseChargePointStatus("charging"), v1::CONNECTOR_STATUS_UNSPECIFIED);
  EXPECT_EQ(ParseChargePointStatus(""), v1::CONNECTOR_STATUS_UNSPECIFIED);
}

TEST(Ocpp16EnumsTest, EveryChargePointErrorCode) {
  const std::pair<const char*, v1::OcppErrorCode> cases[] = {
      {"ConnectorLockFailure", v1::OCPP_ERROR_CODE_CONNECTOR_LOCK_FAILURE},
      {"EVCommunicationError", v1::OCPP_ERROR_CODE_EV_COMMUNICATION_ERROR},
      {"GroundFailure", v1::OCPP_ERROR_CODE_GROUND_FAILURE},
      {"HighTemperature", v1::OCPP_ERROR_CODE_HIGH_TEMPERATURE},
      {"InternalError", v1::OCPP_ERROR_CODE_INTERNAL_ERROR},
      {"LocalListConflict", v1::OCPP_ERROR_CODE_LOCAL_LIST_CONFLICT},
      {"NoError", v1::OCPP_ERROR_CODE_NO_ERROR},
      {"OtherError", v1::OCPP_ERROR_CODE_OTHER_ERROR},
      {"OverCurrentFailure", v1::OCPP_ERROR_CODE_OVER_CURRENT_FAILURE},
      {"OverVoltage", v1::OCPP_ERROR_CODE_OVER_VOLTAGE},
      {"PowerMeterFailure", v1::OCPP_ERROR_CODE_POWER_METER_FAILURE},
      {"PowerSwitchFailure", v1::OCPP_ERROR_CODE_POWER_SWITCH_FAILURE},
      {"ReaderFailure", v1::OCPP_ERROR_CODE_READER_FAILURE},
      {"ResetFailure", v1::OCPP_ERROR_CODE_RESET_FAILURE},
      {"UnderVoltage", v1::OCPP_ERROR_CODE_UNDER_VOLTAGE},
      {"WeakSignal", v1::OCPP_ERROR_CODE_WEAK_SIGNAL},
  };
  for (const auto& [name, code] : cases) EXPECT_EQ(ParseChargePointErrorCode(name), code) << name;
  EXPECT_EQ(ParseChargePointErrorCode("Mode3Error"), v1::OCPP_ERROR_CODE_UNSPECIFIED);
}

TEST(Ocpp16EnumsTest, RegistrationStatusNames) {
  EXPECT_STREQ(RegistrationStatusName(v1::REGISTRATION_STATUS_ACCEPTED), "Accepted");
  EXPECT_STREQ(RegistrationStatusName(v1::REGISTRATION_STATUS_PENDING), "Pending");
  EXPECT_STREQ(RegistrationStatusName(v1::REGISTRATION_STATUS_REJECTED), "Rejected");
}

}  // namespace
}  // namespace evgate::ocpp

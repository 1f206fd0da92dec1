#include "services/ocpp_bridge/connector_faults.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace evgate::ocpp {
namespace {

v1::ChargePointConnector Connector(v1::ConnectorStatus status, v1::OcppErrorCode error,
                                   const std::string& vendor_code = "",
                                   const std::string& info = "") {
  v1::ChargePointConnector c;
  c.set_connector_id(1);
  c.set_status(status);
  c.set_error_code(error);
  c.set_vendor_error_code(vendor_code);
  c.set_info(info);
  c.mutable_updated_at()->set_seconds(1796000000);
  return c;
}

TEST(ConnectorFaultsTest, NoErrorReportsNothing) {
  for (v1::ConnectorStatus status :
       {v1::CONNECTOR_STATUS_AVAILABLE, v1::CONNECTOR_STATUS_CHARGING,
        v1::CONNECTOR_STATUS_UNAVAILABLE, v1::CONNECTOR_STATUS_UNSPECIFIED}) {
    EXPECT_TRUE(ConnectorFaults("ds60", Connector(status, v1::OCPP_ERROR_CODE_NO_ERROR)).empty());
    EXPECT_TRUE(
        ConnectorFaults("ds60", Connector(status, v1::OCPP_ERROR_CODE_UNSPECIFIED)).empty());
  }
}

TEST(ConnectorFaultsTest, TheProfilesVendorTableReadsTheVendorCode) {
  std::vector<v1::Fault> ds60 = ConnectorFaults(
      "ds60", Connector(v1::CONNECTOR_STATUS_FAULTED, v1::OCPP_ERROR_CODE_OTHER_ERROR, "012252"));
  ASSERT_EQ(ds60.size(), 1u);
  EXPECT_EQ(ds60[0].vendor(), "ds60");
  EXPECT_EQ(ds60[0].code(), "DOOR_OPEN");
  EXPECT_TRUE(ds60[0].blocks_charging());
  EXPECT_EQ(ds60[0].since().seconds(), 1796000000);

  std::vector<v1::Fault> ice22 = ConnectorFaults(
      "ice22_v2x",
      Connector(v1::CONNECTOR_STATUS_FAULTED, v1::OCPP_ERROR_CODE_GROUND_FAILURE, "CA 21"));
  ASSERT_EQ(ice22.size(), 1u);
  EXPECT_EQ(ice22[0].vendor(), "ice22_alarm");
  EXPECT_EQ(ice22[0].code(), "GROUND_FAULT");

  // Another charger's vendor code stays with the errorCode's fault.
  std::vector<v1::Fault> other = ConnectorFaults(
      "generic_dc",
      Connector(v1::CONNECTOR_STATUS_FAULTED, v1::OCPP_ERROR_CODE_HIGH_TEMPERATURE, "T42"));
  ASSERT_EQ(other.size(), 1u);
  EXPECT_EQ(other[0].vendor(), "ocpp");
  EXPECT_EQ(other[0].code(), "OVER_TEMPERATURE");
  EXPECT_EQ(other[0].vendor_code(), "T42");
}

TEST(ConnectorFaultsTest, AnErrorCodeBlocksOnlyWhenTheConnectorIsFaulted) {
  std::vector<v1::Fault> warning = ConnectorFaults(
      "ds60",
      Connector(v1::CONNECTOR_STATUS_CHARGING, v1::OCPP_ERROR_CODE_WEAK_SIGNAL, "", "RSSI -101"));
  ASSERT_EQ(warning.size(), 1u);
  EXPECT_EQ(warning[0].code(), "WEAK_SIGNAL");
  EXPECT_EQ(warning[0].vendor_code(), "WeakSignal");
  EXPECT_EQ(warning[0].severity(), v1::FAULT_SEVERITY_WARNING);
  EXPECT_FALSE(warning[0].blocks_charging());
  EXPECT_EQ(warning[0].description(),
            "Wireless communication device reports a weak signal (RSSI -101)");

  std::vector<v1::Fault> faulted = ConnectorFaults(
      "ds60", Connector(v1::CONNECTOR_STATUS_FAULTED, v1::OCPP_ERROR_CODE_POWER_SWITCH_FAILURE));
  ASSERT_EQ(faulted.size(), 1u);
  EXPECT_EQ(faulted[0].code(), "RELAY_FAILURE");
  EXPECT_EQ(faulted[0].severity(), v1::FAULT_SEVERITY_ERROR);
  EXPECT_TRUE(faulted[0].blocks_charging());
  EXPECT_EQ(faulted[0].ocpp_error_code(), v1::OCPP_ERROR_CODE_POWER_SWITCH_FAILURE);
}

TEST(ConnectorFaultsTest, FaultedAlwaysBlocksEvenWhenTheCodeWouldNot) {
  // A DS60 warning code with status Faulted: the charger says it cannot
  // deliver energy, so evgate does not count on it.
  std::vector<v1::Fault> faults = ConnectorFaults(
      "ds60", Connector(v1::CONNECTOR_STATUS_FAULTED, v1::OCPP_ERROR_CODE_OTHER_ERROR, "012253"));
  ASSERT_EQ(faults.size(), 2u);
  EXPECT_EQ(faults[0].code(), "FAN_DEGRADED");
  EXPECT_FALSE(faults[0].blocks_charging());
  EXPECT_EQ(faults[1].code(), "CONNECTOR_FAULTED");
  EXPECT_TRUE(faults[1].blocks_charging());
  EXPECT_EQ(faults[1].ocpp_error_code(), v1::OCPP_ERROR_CODE_OTHER_ERROR);

  // Faulted with NoError (the spec allows it): still blocking.
  faults = ConnectorFaults("ds60",
                           Connector(v1::CONNECTOR_STATUS_FAULTED, v1::OCPP_ERROR_CODE_NO_ERROR));
  ASSERT_EQ(faults.size(), 1u);
  EXPECT_EQ(faults[0].code(), "CONNECTOR_FAULTED");
  EXPECT_TRUE(faults[0].blocks_charging());
}

TEST(ConnectorFaultsTest, EveryOcppErrorCodeHasAFault) {
  for (int code = v1::OCPP_ERROR_CODE_CONNECTOR_LOCK_FAILURE;
       code <= v1::OCPP_ERROR_CODE_WEAK_SIGNAL; ++code) {
    if (code == v1::OCPP_ERROR_CODE_NO_ERROR) continue;
    std::vector<v1::Fault> faults = ConnectorFaults(
        "ds60", Connector(v1::CONNECTOR_STATUS_FAULTED, static_cast<v1::OcppErrorCode>(code)));
    ASSERT_EQ(faults.size(), 1u) << code;
    EXPECT_NE(faults[0].code(), "") << code;
    EXPECT_EQ(faults[0].ocpp_error_code(), code);
    EXPECT_TRUE(faults[0].blocks_charging()) << code;
  }
}

}  // namespace
}  // namespace evgate::ocpp

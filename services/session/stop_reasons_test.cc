#include "services/session/stop_reasons.h"

#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace evgate::session {
namespace {

TEST(StopReasonsTest, Ice22StopReasonCodesFromTheManual) {
  struct Case {
    const char* code;
    v1::StopReason reason;
    const char* description;
  };
  for (const Case& c : std::vector<Case>{
           {"1", v1::STOP_REASON_OTHER, "Normal Stop: condition satisfied"},
           {"2", v1::STOP_REASON_EV_REQUESTED, "Normal Stop: EV Request Stop"},
           {"207", v1::STOP_REASON_FAULT, "EV Relay Pull-In timeout"},
           {"215", v1::STOP_REASON_EMERGENCY_STOP, "EPO"},
           {"218", v1::STOP_REASON_POWER_LOSS, "MainsFailAlm"},
           {"252", v1::STOP_REASON_FAULT, "CCU Comm Fail"},
           {"309", v1::STOP_REASON_FAULT, "EV Error: PLC Low Level Comm Fail"},
           {"401", v1::STOP_REASON_LOCAL, "Canceled: Local Stop"},
           {"402", v1::STOP_REASON_REMOTE, "Canceled: Server Stop"},
           {"403", v1::STOP_REASON_NETWORK_FAULT, "Canceled: Network fault"},
           {"404", v1::STOP_REASON_REBOOT, "Canceled: Reboot"},
           {"405", v1::STOP_REASON_DEAUTHORIZED, "Canceled: DeAuthorized"},
           {"407", v1::STOP_REASON_HARD_RESET, "Canceled: Hard Reset"},
           {"408", v1::STOP_REASON_SOFT_RESET, "Canceled: Soft Reset"},
           {"501", v1::STOP_REASON_OTHER, "Other"},
           // Not in the table: the class of its hundred, no description.
           {"222", v1::STOP_REASON_FAULT, ""},
           {"399", v1::STOP_REASON_FAULT, ""},
           {"x", v1::STOP_REASON_OTHER, ""},
       }) {
    VendorStop stop = MapVendorStopCode(kIce22StopReasonCatalog, c.code, false);
    EXPECT_EQ(stop.reason, c.reason) << c.code;
    EXPECT_EQ(stop.description, c.description) << c.code;
  }
  EXPECT_TRUE(IsStopReasonCatalog(kIce22StopReasonCatalog));
  EXPECT_FALSE(IsStopReasonCatalog(kDs60Catalog));
}

TEST(StopReasonsTest, OcppStopTransactionReasons) {
  struct Case {
    const char* reason;
    v1::StopReason expected;
  };
  for (const Case& c : std::vector<Case>{
           {"", v1::STOP_REASON_LOCAL},  // absent: Local by the spec
           {"DeAuthorized", v1::STOP_REASON_DEAUTHORIZED},
           {"EmergencyStop", v1::STOP_REASON_EMERGENCY_STOP},
           {"EVDisconnected", v1::STOP_REASON_EV_DISCONNECTED},
           {"HardReset", v1::STOP_REASON_HARD_RESET},
           {"Local", v1::STOP_REASON_LOCAL},
           {"Other", v1::STOP_REASON_OTHER},
           {"PowerLoss", v1::STOP_REASON_POWER_LOSS},
           {"Reboot", v1::STOP_REASON_REBOOT},
           {"Remote", v1::STOP_REASON_REMOTE},
           {"SoftReset", v1::STOP_REASON_SOFT_RESET},
           {"UnlockCommand", v1::STOP_REASON_REMOTE},
           {"evdisconnected", v1::STOP_REASON_OTHER},  // the enum is case-sensitive
       }) {
    VendorStop stop = MapVendorStopCode(kOcppStopReasonCatalog, c.reason, true);
    EXPECT_EQ(stop.reason, c.expected) << c.reason;
  }
  EXPECT_TRUE(IsStopReasonCatalog(kOcppStopReasonCatalog));
  // The ICE-22's "Canceled" codes and the OCPP Reason it sends for them
  // end the session the same way.
  for (const auto& [ice22, ocpp] :
       std::vector<std::pair<const char*, const char*>>{{"401", "Local"},
                                                        {"402", "Remote"},
                                                        {"404", "Reboot"},
                                                        {"405", "DeAuthorized"},
                                                        {"407", "HardReset"},
                                                        {"408", "SoftReset"}}) {
    EXPECT_EQ(MapVendorStopCode(kIce22StopReasonCatalog, ice22, false).reason,
              MapVendorStopCode(kOcppStopReasonCatalog, ocpp, false).reason)
        << ice22;
  }
}

TEST(StopReasonsTest, Ds60StatusCodesByCodeAndClass) {
  EXPECT_EQ(MapVendorStopCode(kDs60Catalog, "012251", true).reason, v1::STOP_REASON_EMERGENCY_STOP);
  EXPECT_EQ(MapVendorStopCode(kDs60Catalog, "033904", false).reason, v1::STOP_REASON_REMOTE);
  EXPECT_EQ(MapVendorStopCode(kDs60Catalog, "023979", false).reason, v1::STOP_REASON_EV_REQUESTED);
  EXPECT_EQ(MapVendorStopCode(kDs60Catalog, "012207", true).description, "Abnormal input voltage");
  EXPECT_EQ(MapVendorStopCode(kDs60Catalog, "012243", true).reason, v1::STOP_REASON_NETWORK_FAULT);
  VendorStop part = MapVendorStopCode(kDs60Catalog, "011013", true);
  EXPECT_EQ(part.reason, v1::STOP_REASON_FAULT);
  EXPECT_EQ(part.description, "Charger part or connection fault");
  EXPECT_EQ(MapVendorStopCode(kDs60Catalog, "023741", true).description, "Message from the EV");
  EXPECT_EQ(MapVendorStopCode(kDs60Catalog, "013001", false).reason, v1::STOP_REASON_OTHER);
}

TEST(StopReasonsTest, CaburErrCodes) {
  VendorStop ocp = MapVendorStopCode(kCaburCatalog, "ERR OCP", true);
  EXPECT_EQ(ocp.reason, v1::STOP_REASON_FAULT);
  EXPECT_EQ(ocp.description, "Over-current fault");
  EXPECT_EQ(MapVendorStopCode(kCaburCatalog, "err mis", true).description,
            "Missing power phase fault");
  EXPECT_EQ(MapVendorStopCode(kCaburCatalog, "ERR XYZ", true).description, "");
}

TEST(StopReasonsTest, UnknownCatalogsFollowWhetherTheFaultBlocksCharging) {
  EXPECT_EQ(MapVendorStopCode("ocpp", "GroundFailure", true).reason, v1::STOP_REASON_FAULT);
  EXPECT_EQ(MapVendorStopCode("ocpp", "NoError", false).reason, v1::STOP_REASON_OTHER);
}

}  // namespace
}  // namespace evgate::session

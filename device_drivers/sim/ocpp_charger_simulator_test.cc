#include "device_drivers/sim/ocpp_charger_simulator.h"

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/ocpp_bridge/meter_values.h"
#include "services/ocpp_bridge/ocpp_schemas.h"
#include "services/ocpp_bridge/rpc_frame.h"

namespace evgate::sim {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;

const absl::Time kT0 = absl::FromUnixSeconds(1800000000);

OcppChargerSimConfig Ds60() {
  OcppChargerSimConfig config;
  config.charge_point_id = "DS60-1";
  config.model = "DSWx601";
  config.station_max_power_w = 60000;
  config.connectors = {{1, 60000, 0, 0.95, 3}, {2, 60000, 0, 0.95, 3}};
  return config;
}

// The ICE-22 V2X: one bidirectional CCS1 connector, 22 kW both ways, lower SOC limit 30 %.
OcppChargerSimConfig Ice22() {
  OcppChargerSimConfig config;
  config.charge_point_id = "ICE22-1";
  config.model = "ICE-22 V2X";
  config.station_max_power_w = 22000;
  config.connectors = {{1, 22000, 0, 0.95, 3, true, 22000, 30}};
  return config;
}

// Plays the Central System: answers the charger's CALLs, and checks every
// CALL and every answer of the charger against the OCPP 1.6 schemas.
class OcppChargerSimulatorTest : public ::testing::Test {
 protected:
  explicit OcppChargerSimulatorTest(OcppChargerSimConfig config = Ds60())
      : sim_(std::move(config)) {}

  // Takes every CALL due at `now_`, answering each with `answer(action, payload)`.
  std::vector<OcppSimCall> Drain(
      const std::function<std::optional<json>(const OcppSimCall&)>& answer) {
    std::vector<OcppSimCall> calls;
    while (std::optional<OcppSimCall> call = sim_.TakeNext(now_)) {
      ocpp::Call frame{absl::StrCat("m", call->seq), call->action, call->payload};
      std::optional<ocpp::CallError> invalid = ocpp::ValidateCall(schemas_, frame);
      EXPECT_FALSE(invalid.has_value())
          << call->action << " " << call->payload.dump() << ": " << invalid->description;
      calls.push_back(*call);
      OcppSimResult result;
      result.result = answer(*call);
      sim_.OnResult(call->seq, result, now_);
    }
    return calls;
  }
  // A Central System that accepts everything.
  std::vector<OcppSimCall> DrainAccepting() {
    return Drain([this](const OcppSimCall& call) -> std::optional<json> {
      if (call.action == "BootNotification") {
        return json{
            {"status", "Accepted"}, {"currentTime", "2027-01-15T08:00:00Z"}, {"interval", 300}};
      }
      if (call.action == "Authorize") return json{{"idTagInfo", {{"status", "Accepted"}}}};
      if (call.action == "StartTransaction") {
        return json{{"transactionId", ++transaction_id_}, {"idTagInfo", {{"status", "Accepted"}}}};
      }
      if (call.action == "StopTransaction") return json::object();
      if (call.action == "Heartbeat") return json{{"currentTime", "2027-01-15T08:00:00Z"}};
      return json::object();
    });
  }
  static std::vector<std::string> Actions(const std::vector<OcppSimCall>& calls) {
    std::vector<std::string> out;
    for (const OcppSimCall& c : calls) out.push_back(c.action);
    return out;
  }
  json Handle(const std::string& action, json payload) {
    ocpp::Call call{"cs1", action, std::move(payload)};
    EXPECT_FALSE(ocpp::ValidateCall(schemas_, call).has_value()) << action;
    auto answer = sim_.Handle(call, now_);
    if (auto* error = std::get_if<ocpp::CallError>(&answer))
      return json{{"error", error->code_name}};
    ocpp::CallResult result{"cs1", std::get<json>(answer)};
    std::optional<ocpp::CallError> invalid = ocpp::ValidateCallResult(schemas_, action, result);
    EXPECT_FALSE(invalid.has_value())
        << action << " " << result.payload.dump() << ": " << invalid->description;
    return result.payload;
  }
  void Advance(absl::Duration d) {
    for (absl::Duration done; done < d; done += absl::Milliseconds(500)) {
      now_ += absl::Milliseconds(500);
      sim_.Step(now_);
    }
  }
  json Profile(int id, int stack, double limit_w, std::optional<absl::Time> valid_to = {}) {
    json cp = {
        {"chargingProfileId", id},
        {"stackLevel", stack},
        {"chargingProfilePurpose", "TxDefaultProfile"},
        {"chargingProfileKind", "Absolute"},
        {"chargingSchedule",
         {{"chargingRateUnit", "W"},
          {"startSchedule", ocpp::FormatOcppTime(now_)},
          {"chargingSchedulePeriod", json::array({{{"startPeriod", 0}, {"limit", limit_w}}})}}}};
    if (valid_to) cp["validTo"] = ocpp::FormatOcppTime(*valid_to);
    return cp;
  }
  void Boot() {
    sim_.Connected(now_);
    sim_.Step(now_);
    DrainAccepting();
  }

  const ocpp::OcppSchemas& schemas_ = ocpp::OcppSchemas::Ocpp16();
  absl::Time now_ = kT0;
  OcppChargerSimulator sim_;
  int64_t transaction_id_ = 100;
};

TEST_F(OcppChargerSimulatorTest, BootsFirstThenReportsEveryConnector) {
  sim_.Connected(now_);
  // Pending: nothing but the boot again, after the interval given.
  std::vector<OcppSimCall> calls = Drain([](const OcppSimCall&) -> std::optional<json> {
    return json{{"status", "Pending"}, {"currentTime", "2027-01-15T08:00:00Z"}, {"interval", 30}};
  });
  EXPECT_THAT(Actions(calls), ElementsAre("BootNotification"));
  EXPECT_FALSE(sim_.accepted());
  now_ += absl::Seconds(29);
  EXPECT_FALSE(sim_.TakeNext(now_).has_value());
  // The Central System triggers the boot at once.
  EXPECT_EQ(Handle("TriggerMessage", {{"requestedMessage", "BootNotification"}})["status"],
            "Accepted");
  calls = DrainAccepting();
  ASSERT_FALSE(calls.empty());
  EXPECT_EQ(calls[0].action, "BootNotification");
  EXPECT_EQ(calls[0].payload["chargePointModel"], "DSWx601");
  EXPECT_TRUE(sim_.accepted());
  EXPECT_THAT(Actions(calls), ElementsAre("BootNotification", "StatusNotification",
                                          "StatusNotification", "StatusNotification"));
  EXPECT_EQ(calls[1].payload["connectorId"], 0);
  EXPECT_EQ(calls[2].payload["status"], "Available");
  // Heartbeat after the interval of the accepted boot.
  now_ += absl::Seconds(300);
  EXPECT_THAT(Actions(DrainAccepting()), ElementsAre("Heartbeat"));
}

TEST_F(OcppChargerSimulatorTest, AVehicleWithACardIsAuthorizedStartedMeteredAndStopped) {
  Boot();
  ASSERT_TRUE(Handle("ChangeConfiguration", {{"key", "MeterValueSampleInterval"},
                                             {"value", "10"}})["status"] == "Accepted");
  ASSERT_TRUE(sim_.PlugIn(1, {50000, 20000, 20, "04A1B2C3"}, now_).ok());
  sim_.Step(now_);
  std::vector<OcppSimCall> calls = DrainAccepting();
  EXPECT_THAT(Actions(calls), ElementsAre("StatusNotification", "Authorize", "StartTransaction",
                                          "StatusNotification"));
  EXPECT_EQ(calls[0].payload["status"], "Preparing");
  EXPECT_EQ(calls[3].payload["status"], "Charging");
  EXPECT_EQ(calls[2].payload["idTag"], "04A1B2C3");
  EXPECT_EQ(calls[2].payload["meterStart"], 0);
  // No profile: up to the vehicle's 50 kW, after the ramp.
  Advance(absl::Seconds(3));
  EXPECT_EQ(sim_.Describe(1, now_)->power_w, 50000);
  EXPECT_EQ(sim_.Describe(1, now_)->status, "Charging");
  Advance(absl::Seconds(10));
  calls = DrainAccepting();
  ASSERT_THAT(Actions(calls), ElementsAre("MeterValues"));
  const json& mv = calls[0].payload;
  EXPECT_EQ(mv["transactionId"], 101);
  EXPECT_EQ(mv["meterValue"][0]["sampledValue"][1]["value"], "50000");
  // AC side: 50 kW / 0.95 over three phases at 230 V.
  EXPECT_NEAR(sim_.AcCurrent(1)[0], 50000 / 0.95 / 690, 0.01);

  const double register_wh = sim_.Describe(1, now_)->energy_register_wh;
  // 13 s, at 50 kW but for the ramp (0 to 60 kW in 2 s) of the first 1.7 s.
  EXPECT_NEAR(register_wh, 50000.0 * (13 - 50.0 / 60 * 2 / 2) / 3600, 15);
  ASSERT_TRUE(sim_.Unplug(1, now_).ok());
  calls = DrainAccepting();
  ASSERT_THAT(Actions(calls), ElementsAre("StopTransaction", "StatusNotification"));
  EXPECT_EQ(calls[0].payload["transactionId"], 101);
  EXPECT_EQ(calls[0].payload["reason"], "EVDisconnected");
  EXPECT_EQ(calls[0].payload["meterStop"], std::llround(register_wh));
  EXPECT_EQ(calls[1].payload["status"], "Available");
}

TEST_F(OcppChargerSimulatorTest, ProfilesStackAndExpireToTheFailsafeAndAreReadBackTruthfully) {
  Boot();
  ASSERT_TRUE(sim_.PlugIn(2, {0, 100000, 20, "04A1B2C3"}, now_).ok());
  sim_.Step(now_);
  DrainAccepting();
  // Failsafe stack 0 (no end) and a live stack 1 for 3 s.
  EXPECT_EQ(Handle("SetChargingProfile",
                   {{"connectorId", 2}, {"csChargingProfiles", Profile(1002, 0, 7000)}})["status"],
            "Accepted");
  EXPECT_EQ(
      Handle("SetChargingProfile",
             {{"connectorId", 2},
              {"csChargingProfiles", Profile(2002, 1, 25000, now_ + absl::Seconds(3))}})["status"],
      "Accepted");
  json composite = Handle("GetCompositeSchedule",
                          {{"connectorId", 2}, {"duration", 60}, {"chargingRateUnit", "W"}});
  EXPECT_EQ(composite["status"], "Accepted");
  EXPECT_EQ(composite["chargingSchedule"]["chargingSchedulePeriod"],
            json::array({{{"startPeriod", 0}, {"limit", 25000.0}},
                         {{"startPeriod", 3}, {"limit", 7000.0}}}));
  Advance(absl::Seconds(2.5));
  EXPECT_EQ(sim_.Describe(2, now_)->power_w, 25000);
  Advance(absl::Seconds(3));
  EXPECT_EQ(sim_.Describe(2, now_)->limit_w, 7000);
  EXPECT_EQ(sim_.Describe(2, now_)->power_w, 7000);
  // A pause: the live profile at 0 W suspends the connector.
  Handle(
      "SetChargingProfile",
      {{"connectorId", 2}, {"csChargingProfiles", Profile(2002, 1, 0, now_ + absl::Seconds(3))}});
  Advance(absl::Seconds(2.5));
  EXPECT_EQ(sim_.Describe(2, now_)->status, "SuspendedEVSE");
  EXPECT_EQ(sim_.Describe(2, now_)->power_w, 0);
  // Cleared by id: Accepted once, then Unknown.
  EXPECT_EQ(Handle("ClearChargingProfile", {{"id", 2002}})["status"], "Accepted");
  EXPECT_EQ(Handle("ClearChargingProfile", {{"id", 2002}})["status"], "Unknown");
  // A schedule in A (3 phases at 230 V) and the station maximum.
  json amps = Profile(1002, 0, 16);
  amps["chargingSchedule"]["chargingRateUnit"] = "A";
  Handle("SetChargingProfile", {{"connectorId", 2}, {"csChargingProfiles", amps}});
  EXPECT_DOUBLE_EQ(sim_.Describe(2, now_)->limit_w, 16 * 230 * 3);
  json station = Profile(1, 0, 5000);
  station["chargingProfilePurpose"] = "ChargePointMaxProfile";
  EXPECT_EQ(
      Handle("SetChargingProfile", {{"connectorId", 2}, {"csChargingProfiles", station}})["status"],
      "Rejected");
  EXPECT_EQ(
      Handle("SetChargingProfile", {{"connectorId", 0}, {"csChargingProfiles", station}})["status"],
      "Accepted");
  EXPECT_EQ(sim_.Describe(2, now_)->limit_w, 5000);
}

TEST_F(OcppChargerSimulatorTest, TransactionMessagesSurviveALostConnectionInOrder) {
  Boot();
  ASSERT_TRUE(sim_.PlugIn(1, {0, 100000, 20, "04A1B2C3"}, now_).ok());
  sim_.Step(now_);
  // The StartTransaction goes out, and the connection drops before its answer.
  std::optional<OcppSimCall> call;
  while ((call = sim_.TakeNext(now_)) && call->action != "StartTransaction") {
    OcppSimResult r;
    r.result = call->action == "Authorize" ? json{{"idTagInfo", {{"status", "Accepted"}}}}
                                           : json::object();
    sim_.OnResult(call->seq, r, now_);
  }
  ASSERT_TRUE(call.has_value());
  sim_.Disconnected();
  sim_.OnResult(call->seq, {}, now_);  // too late: ignored
  Advance(absl::Seconds(5));
  ASSERT_TRUE(sim_.Unplug(1, now_).ok());  // while offline
  EXPECT_FALSE(sim_.TakeNext(now_).has_value());
  now_ += absl::Seconds(1);
  sim_.Connected(now_);
  std::vector<OcppSimCall> calls = DrainAccepting();
  std::vector<std::string> tx;
  for (const OcppSimCall& c : calls) {
    if (c.action == "StartTransaction" || c.action == "StopTransaction") tx.push_back(c.action);
  }
  EXPECT_THAT(tx, ElementsAre("StartTransaction", "StopTransaction"));
  EXPECT_EQ(calls.back().action, "StatusNotification");
  for (const OcppSimCall& c : calls) {
    if (c.action == "StopTransaction") {
      EXPECT_EQ(c.payload["transactionId"], 101);
    }
  }
}

TEST_F(OcppChargerSimulatorTest, BadRequestsAreRefusedNotCrashed) {
  Boot();
  // Tried: unknown connector, TxProfile without a transaction, a stack
  // level above ChargeProfileMaxStackLevel, a read-only key, a non-number
  // interval, an unknown key, remote stop of an unknown transaction, an
  // action the charger does not take.
  EXPECT_EQ(Handle("SetChargingProfile",
                   {{"connectorId", 7}, {"csChargingProfiles", Profile(1, 0, 1000)}})["status"],
            "Rejected");
  json tx = Profile(5, 0, 1000);
  tx["chargingProfilePurpose"] = "TxProfile";
  EXPECT_EQ(
      Handle("SetChargingProfile", {{"connectorId", 1}, {"csChargingProfiles", tx}})["status"],
      "Rejected");
  EXPECT_EQ(Handle("SetChargingProfile",
                   {{"connectorId", 1}, {"csChargingProfiles", Profile(6, 9, 1000)}})["status"],
            "Rejected");
  EXPECT_EQ(
      Handle("ChangeConfiguration", {{"key", "NumberOfConnectors"}, {"value", "4"}})["status"],
      "Rejected");
  EXPECT_EQ(
      Handle("ChangeConfiguration", {{"key", "HeartbeatInterval"}, {"value", "soon"}})["status"],
      "Rejected");
  EXPECT_EQ(Handle("ChangeConfiguration", {{"key", "Nope"}, {"value", "1"}})["status"],
            "NotSupported");
  EXPECT_EQ(
      Handle("GetConfiguration", {{"key", json::array({"Nope", "NumberOfConnectors"})}}),
      json({{"configurationKey",
             json::array({{{"key", "NumberOfConnectors"}, {"readonly", true}, {"value", "2"}}})},
            {"unknownKey", json::array({"Nope"})}}));
  EXPECT_EQ(Handle("RemoteStopTransaction", {{"transactionId", 42}})["status"], "Rejected");
  EXPECT_EQ(Handle("ReserveNow", {{"connectorId", 1},
                                  {"expiryDate", "2027-01-15T09:00:00Z"},
                                  {"idTag", "AB"},
                                  {"reservationId", 1}})["error"],
            "NotSupported");
}

TEST_F(OcppChargerSimulatorTest, AFaultCodeMakesTheConnectorFaultedUntilCleared) {
  Boot();
  ASSERT_TRUE(sim_.SetFault(1, "012252", true, now_).ok());
  std::vector<OcppSimCall> calls = DrainAccepting();
  ASSERT_THAT(Actions(calls), ElementsAre("StatusNotification"));
  EXPECT_EQ(calls[0].payload["status"], "Faulted");
  EXPECT_EQ(calls[0].payload["errorCode"], "OtherError");
  EXPECT_EQ(calls[0].payload["vendorErrorCode"], "012252");
  ASSERT_TRUE(sim_.SetFault(1, "012252", false, now_).ok());
  calls = DrainAccepting();
  ASSERT_THAT(Actions(calls), ElementsAre("StatusNotification"));
  EXPECT_EQ(calls[0].payload["status"], "Available");
}

}  // namespace
}  // namespace evgate::sim

namespace evgate::sim {
namespace {

class Ice22SimulatorTest : public OcppChargerSimulatorTest {
 protected:
  Ice22SimulatorTest() : OcppChargerSimulatorTest(Ice22()) {}
};

TEST_F(Ice22SimulatorTest, ANegativeLimitDischargesTheVehicleUntilItsSocLowerLimit) {
  Boot();
  // What evgate's Central System configures at boot.
  EXPECT_EQ(
      Handle("ChangeConfiguration", {{"key", "MeterValuesSampledData"},
                                     {"value",
                                      "Energy.Active.Import.Register,Energy.Active.Export.Register,"
                                      "Power.Active.Import,Power.Active.Export,SoC"}})["status"],
      "Accepted");
  ASSERT_TRUE(sim_.PlugIn(1, {0, 40000, 31, "04A1B2C3"}, now_).ok());
  sim_.Step(now_);
  DrainAccepting();
  EXPECT_EQ(Handle("SetChargingProfile",
                   {{"connectorId", 1}, {"csChargingProfiles", Profile(7, 0, -10000)}})["status"],
            "Accepted");
  Advance(absl::Seconds(3));  // 0 to 10 kW in under the 2 s ramp
  OcppSimConnectorView v = *sim_.Describe(1, now_);
  EXPECT_EQ(v.limit_w, -10000);
  EXPECT_EQ(v.power_w, -10000);
  EXPECT_EQ(v.status, "Charging");
  // The AC side feeds DC x efficiency back, spread over three phases.
  EXPECT_NEAR(sim_.AcCurrent(1)[0], -10000 * 0.95 / (3 * 230), 1e-9);
  const double import_before = v.energy_register_wh;

  // Meter values report the export; the import register does not move.
  Advance(absl::Seconds(60));
  std::optional<ocpp::MeterReading> reading;
  for (const OcppSimCall& call : DrainAccepting()) {
    if (call.action != "MeterValues") continue;
    auto parsed = ocpp::ParseMeterValue(call.payload["meterValue"][0]);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    reading = *parsed;
  }
  ASSERT_TRUE(reading.has_value());
  EXPECT_EQ(reading->power_export_w, 10000);
  EXPECT_EQ(reading->power_import_w, 0);
  ASSERT_TRUE(reading->energy_export_wh.has_value());
  EXPECT_GT(*reading->energy_export_wh, 150);  // ~10 kW for ~61 s
  v = *sim_.Describe(1, now_);
  EXPECT_EQ(v.energy_register_wh, import_before);
  EXPECT_LT(v.soc_pct, 31);

  // 1 % of this vehicle (1,000 Wh at 10 kW) is 6 minutes: the charger stops at 30 % by itself.
  Advance(absl::Minutes(7));
  v = *sim_.Describe(1, now_);
  EXPECT_EQ(v.power_w, 0);
  EXPECT_EQ(v.status, "SuspendedEVSE");
  EXPECT_NEAR(v.soc_pct, 30, 0.1);
  EXPECT_GE(v.soc_pct, 29.9);

  // Charging again lifts the SOC; more than the discharge maximum is capped at it.
  Handle("SetChargingProfile", {{"connectorId", 1}, {"csChargingProfiles", Profile(7, 0, 5000)}});
  Advance(absl::Seconds(60));
  EXPECT_GT(sim_.Describe(1, now_)->soc_pct, 30.05);
  Handle("SetChargingProfile", {{"connectorId", 1}, {"csChargingProfiles", Profile(7, 0, -30000)}});
  Advance(absl::Seconds(3));
  EXPECT_EQ(sim_.Describe(1, now_)->power_w, -22000);
}

TEST_F(Ice22SimulatorTest, FormingAnIslandItSuppliesWhatTheLoadsTakeWithinItsLimit) {
  Boot();
  ASSERT_TRUE(sim_.PlugIn(1, {0, 40000, 80, "04A1B2C3"}, now_).ok());
  sim_.Step(now_);
  DrainAccepting();
  Handle("SetChargingProfile", {{"connectorId", 1}, {"csChargingProfiles", Profile(7, 0, -19800)}});
  sim_.SetIslandLoad(1, 6500);
  Advance(absl::Seconds(3));
  EXPECT_EQ(sim_.Describe(1, now_)->power_w, -6500);
  sim_.SetIslandLoad(1, 25000);  // more than the limit allows: the limit holds
  Advance(absl::Seconds(3));
  EXPECT_EQ(sim_.Describe(1, now_)->power_w, -19800);
  sim_.SetIslandLoad(1, std::nullopt);  // back on the grid: the limit itself
  Advance(absl::Seconds(3));
  EXPECT_EQ(sim_.Describe(1, now_)->power_w, -19800);
}

TEST_F(OcppChargerSimulatorTest, AChargerThatIsNotBidirectionalTakesANegativeLimitAsZero) {
  Boot();
  ASSERT_TRUE(sim_.PlugIn(1, {0, 40000, 50, "04A1B2C3"}, now_).ok());
  sim_.Step(now_);
  DrainAccepting();
  Handle("SetChargingProfile", {{"connectorId", 1}, {"csChargingProfiles", Profile(7, 0, -10000)}});
  Advance(absl::Seconds(3));
  EXPECT_EQ(sim_.Describe(1, now_)->limit_w, 0);
  EXPECT_EQ(sim_.Describe(1, now_)->power_w, 0);
  EXPECT_EQ(sim_.Describe(1, now_)->status, "SuspendedEVSE");
}

}  // namespace
}  // namespace evgate::sim

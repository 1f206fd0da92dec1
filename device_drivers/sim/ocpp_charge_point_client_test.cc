// The simulated chargers' websocket client against the bridge's own
// websocket server (Boost.Beast both sides, real sockets on loopback): basic
// auth and subprotocol, a refused password retried, a dropped connection
// booted again, and CALLs both ways validated by both endpoints.
#include "device_drivers/sim/ocpp_charge_point_client.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/clock.h"
#include "services/ocpp_bridge/ocpp_schemas.h"
#include "services/ocpp_bridge/ws_server.h"

namespace evgate::sim {
namespace {

using nlohmann::json;
using ::testing::Contains;
using ::testing::HasSubstr;

// A Central System that accepts every boot and records what it got.
class RecordingCentralSystem final : public ocpp::ConnectionObserver {
 public:
  ocpp::RpcEndpoint::CallHandler OnConnected(std::shared_ptr<ocpp::ChargePointLink> link) override {
    absl::MutexLock lock(&mu_);
    link_ = link;
    ++connections_;
    return [this](const ocpp::Call& call) -> std::variant<json, ocpp::CallError> {
      absl::MutexLock lock(&mu_);
      actions_.push_back(call.action);
      if (call.action == "BootNotification") {
        ++boots_;
        return json{
            {"status", "Accepted"}, {"currentTime", "2027-01-15T08:00:00Z"}, {"interval", 300}};
      }
      if (call.action == "StatusNotification") {
        ++statuses_;
        return json::object();
      }
      if (call.action == "Heartbeat") return json{{"currentTime", "2027-01-15T08:00:00Z"}};
      return json::object();
    };
  }
  void OnDisconnected(const ocpp::ChargePointLink&, absl::string_view) override {
    absl::MutexLock lock(&mu_);
    ++disconnects_;
  }
  void OnRefused(absl::string_view, absl::string_view, int http_status,
                 absl::string_view) override {
    absl::MutexLock lock(&mu_);
    refusals_.push_back(http_status);
  }

  // Waits (at most 10 s of real time, for a hung socket) until `cond` over
  // the recorded state holds; re-checked whenever a callback records
  // something, no polling.
  bool WaitFor(const std::function<bool()>& cond) {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&cond), absl::Seconds(10));
  }
  json CallCharger(const std::string& action, json payload) {
    std::shared_ptr<ocpp::ChargePointLink> link;
    {
      absl::MutexLock lock(&mu_);
      link = link_;
    }
    absl::Notification done;
    json answer;
    link->Call(action, std::move(payload), [&](ocpp::CallOutcome outcome) {
      answer = outcome.result
                   ? *outcome.result
                   : json{{"failed", outcome.error ? outcome.error->code_name
                                                   : std::string(outcome.status.message())}};
      done.Notify();
    });
    done.WaitForNotificationWithTimeout(absl::Seconds(10));
    return answer;
  }
  void CloseLink() {
    absl::MutexLock lock(&mu_);
    link_->Close(1001, "test closes it");
  }

  absl::Mutex mu_;
  std::shared_ptr<ocpp::ChargePointLink> link_ ABSL_GUARDED_BY(mu_);
  int connections_ ABSL_GUARDED_BY(mu_) = 0;
  int disconnects_ ABSL_GUARDED_BY(mu_) = 0;
  int boots_ ABSL_GUARDED_BY(mu_) = 0;
  int statuses_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::string> actions_ ABSL_GUARDED_BY(mu_);
  std::vector<int> refusals_ ABSL_GUARDED_BY(mu_);
};

class OcppChargePointClientTest : public ::testing::Test {
 protected:
  void StartServer(const std::string& password) {
    ocpp::WsServerOptions options;
    options.listen = "127.0.0.1:0";
    options.security_profile = 1;
    options.charge_points["DS60-1"] = password;
    auto server = ocpp::WsServer::Start(options, ocpp::OcppSchemas::Ocpp16(), clock_, &cs_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }
  void StartClient(const std::string& password) {
    OcppChargerSimConfig config;
    config.charge_point_id = "DS60-1";
    config.model = "DSWx601";
    config.station_max_power_w = 60000;
    config.connectors = {{1, 60000, 0, 0.95, 3}, {2, 60000, 0, 0.95, 3}};
    charger_ = std::make_unique<OcppChargerSimulator>(config);
    OcppClientOptions options;
    options.tick = absl::Milliseconds(10);
    options.reconnect_min = absl::Milliseconds(50);
    options.reconnect_max = absl::Milliseconds(200);
    clients_ = std::make_unique<OcppChargePointClients>(clock_, options);
    clients_->Add(charger_.get(), {"127.0.0.1", server_->port(), password});
    clients_->Start();
  }
  void TearDown() override {
    if (clients_) clients_->Stop();
    if (server_) server_->Stop();
  }

  SystemClock clock_;
  RecordingCentralSystem cs_;
  std::unique_ptr<ocpp::WsServer> server_;
  std::unique_ptr<OcppChargerSimulator> charger_;
  std::unique_ptr<OcppChargePointClients> clients_;
};

TEST_F(OcppChargePointClientTest, BootsReportsAndAnswersTheCentralSystem) {
  StartServer("s3cret");
  StartClient("s3cret");
  // Boot, then a StatusNotification for connectors 0, 1 and 2.
  ASSERT_TRUE(cs_.WaitFor([&] { return cs_.statuses_ >= 3; }));
  EXPECT_TRUE(charger_->accepted());
  EXPECT_TRUE(clients_->Link("DS60-1").connected);
  EXPECT_EQ(cs_.CallCharger(
                "GetConfiguration",
                {{"key", json::array({"NumberOfConnectors"})}})["configurationKey"][0]["value"],
            "2");
  json profile = {
      {"chargingProfileId", 2001},
      {"stackLevel", 1},
      {"chargingProfilePurpose", "TxDefaultProfile"},
      {"chargingProfileKind", "Relative"},
      {"chargingSchedule",
       {{"chargingRateUnit", "W"},
        {"chargingSchedulePeriod", json::array({{{"startPeriod", 0}, {"limit", 11000}}})}}}};
  EXPECT_EQ(cs_.CallCharger("SetChargingProfile",
                            {{"connectorId", 1}, {"csChargingProfiles", profile}})["status"],
            "Accepted");
  json composite = cs_.CallCharger("GetCompositeSchedule", {{"connectorId", 1}, {"duration", 60}});
  EXPECT_EQ(composite["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"], 11000.0);
  // An action the charger does not take is a CALLERROR, not a crash.
  EXPECT_EQ(cs_.CallCharger("UpdateFirmware", {{"location", "ftp://x/fw.bin"},
                                               {"retrieveDate", "2027-01-15T08:00:00Z"}})["failed"],
            "NotSupported");
}

TEST_F(OcppChargePointClientTest, AWrongPasswordIsRefusedAndRetried) {
  StartServer("s3cret");
  StartClient("wrong");
  ASSERT_TRUE(cs_.WaitFor([&] { return cs_.refusals_.size() >= 2; }));
  EXPECT_THAT(cs_.refusals_, Contains(401));
  EXPECT_FALSE(charger_->accepted());
  const OcppClientLink link = clients_->Link("DS60-1");
  EXPECT_FALSE(link.connected);
  EXPECT_GE(link.attempts, 2);
  EXPECT_THAT(link.last_error, HasSubstr("401"));
}

TEST_F(OcppChargePointClientTest, ADroppedConnectionBootsAgainAndGoingOfflineStaysOffline) {
  StartServer("s3cret");
  StartClient("s3cret");
  ASSERT_TRUE(cs_.WaitFor([&] { return cs_.boots_ >= 1 && cs_.statuses_ >= 3; }));
  cs_.CloseLink();
  ASSERT_TRUE(cs_.WaitFor([&] { return cs_.connections_ >= 2 && cs_.boots_ >= 2; }));
  // Switched offline: the connection drops and no new one comes.
  charger_->SetOnline(false);
  ASSERT_TRUE(cs_.WaitFor([&] { return cs_.disconnects_ >= 2; }));
  charger_->SetOnline(true);
  ASSERT_TRUE(cs_.WaitFor([&] { return cs_.connections_ >= 3 && cs_.boots_ >= 3; }));
}

}  // namespace
}  // namespace evgate::sim

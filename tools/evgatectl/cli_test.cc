#include "tools/evgatectl/cli.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "evgate/v1/device.grpc.pb.h"
#include "evgate/v1/load_balancer.grpc.pb.h"
#include "evgate/v1/session.grpc.pb.h"
#include "evgate/v1/simulator.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/server_host.h"

namespace evgate::ctl {
namespace {

namespace v1 = ::evgate::v1;
using ::testing::HasSubstr;

// A session service holding fixed records, paging two at a time, so export
// must follow next_page_token to get them all.
class FakeSessions final : public v1::SessionService::Service {
 public:
  grpc::Status ListSessions(grpc::ServerContext*, const v1::ListSessionsRequest* request,
                            v1::ListSessionsResponse* response) override {
    last_request = *request;
    size_t start = request->page_token().empty() ? 0 : std::stoul(request->page_token());
    for (size_t i = start; i < sessions.size() && i < start + 2; ++i) {
      *response->add_sessions() = sessions[i];
    }
    if (start + 2 < sessions.size()) response->set_next_page_token(std::to_string(start + 2));
    return grpc::Status::OK;
  }
  grpc::Status StartSession(grpc::ServerContext*, const v1::StartSessionRequest* request,
                            v1::StartSessionResponse*) override {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        absl::StrCat("card ", request->id_tag(), " is blocked"));
  }
  grpc::Status UpsertCards(grpc::ServerContext*, const v1::UpsertCardsRequest* request,
                           v1::UpsertCardsResponse* response) override {
    upserted = *request;
    *response->mutable_cards() = request->cards();
    return grpc::Status::OK;
  }
  grpc::Status Authorize(grpc::ServerContext*, const v1::AuthorizeRequest* request,
                         v1::AuthorizeResponse* response) override {
    response->set_status(request->id_tag() == "04A1B2C3" ? v1::AUTHORIZATION_STATUS_ACCEPTED
                                                         : v1::AUTHORIZATION_STATUS_INVALID);
    response->set_source(v1::AUTHORIZATION_SOURCE_LOCAL_LIST);
    return grpc::Status::OK;
  }
  std::vector<v1::Session> sessions;
  v1::ListSessionsRequest last_request;
  v1::UpsertCardsRequest upserted;
};

class FakeLoadBalancer final : public v1::LoadBalancer::Service {
 public:
  grpc::Status Simulate(grpc::ServerContext*, const v1::SimulateRequest* request,
                        v1::SimulateResponse* response) override {
    scenario = request->scenario_json();
    response->set_allocation_json(R"({"failsafe": false, "evses": []})");
    return grpc::Status::OK;
  }
  grpc::Status SetDynamicLimits(grpc::ServerContext*, const v1::SetDynamicLimitsRequest* request,
                                v1::SetDynamicLimitsResponse* response) override {
    limits = *request;
    for (const auto& update : request->updates()) {
      if (!update.has_ttl() || update.ttl().seconds() > 0) {
        *response->add_active_limits() = update.limit();
      }
    }
    return grpc::Status::OK;
  }
  grpc::Status SetEvsePriority(grpc::ServerContext*, const v1::SetEvsePriorityRequest* request,
                               v1::SetEvsePriorityResponse* response) override {
    priority = *request;
    response->set_evse_id(request->evse_id());
    response->set_priority(request->priority());
    return grpc::Status::OK;
  }
  std::string scenario;
  v1::SetDynamicLimitsRequest limits;
  v1::SetEvsePriorityRequest priority;
};

class FakeDrivers final : public v1::DeviceDriver::Service {
 public:
  grpc::Status ListBuses(grpc::ServerContext*, const v1::ListBusesRequest*,
                         v1::ListBusesResponse* response) override {
    v1::BusHealth* modbus = response->add_buses();
    modbus->set_bus_id("rs485-1");
    modbus->set_kind("modbus");
    modbus->set_requests_total(1000);
    modbus->set_errors_total(3);
    modbus->set_timeouts_total(7);
    v1::DurationHistogram* d = modbus->mutable_request_duration();
    for (double bound : {0.005, 0.025, 0.1}) d->add_upper_bounds_s(bound);
    for (uint64_t count : {900, 985, 990}) d->add_cumulative_counts(count);
    d->set_count(990);
    d->set_sum_s(9.9);
    v1::BusHealth* can = response->add_buses();
    can->set_bus_id("can0");
    can->set_kind("can");
    can->set_frames_sent_total(120);
    can->set_frames_received_total(4500);
    can->set_error_warning_total(2);
    can->set_bus_off_total(1);
    can->set_interface_down_total(4);
    can->set_setpoints_expired_total(2);
    return grpc::Status::OK;
  }
};

class HostedFakes : public Service {
 public:
  explicit HostedFakes(std::vector<grpc::Service*> services, std::vector<std::string> names)
      : services_(std::move(services)), names_(std::move(names)) {}
  std::string_view name() const override { return "fakes"; }
  std::vector<grpc::Service*> grpc_services() override { return services_; }
  std::vector<std::string> health_names() const override { return names_; }

 private:
  std::vector<grpc::Service*> services_;
  std::vector<std::string> names_;
};

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    v1::Session a;
    a.set_session_id("s-1");
    a.set_evse_id("wb1");
    a.set_id_tag("04A1B2C3");
    a.set_state(v1::SESSION_STATE_COMPLETED);
    a.mutable_start_time()->set_seconds(1795250000);
    a.mutable_end_time()->set_seconds(1795253600);
    a.set_energy_charged_wh(11000);
    a.set_meter_start_wh(500);
    a.set_meter_stop_wh(11500);
    a.set_stop_reason(v1::STOP_REASON_LOCAL);
    a.set_vendor_stop_code("ERR OCP");
    a.set_vendor_stop_description("Over-current fault, phase L2");
    sessions_.sessions = {a, a, a};
    sessions_.sessions[1].set_session_id("s-2");
    sessions_.sessions[2].set_session_id("s-3");
    ServerOptions options;
    options.listen = "127.0.0.1:0";
    options.insecure = true;
    auto host = ServerHost::Start(options, {&fakes_});
    ASSERT_TRUE(host.ok()) << host.status();
    host_ = *std::move(host);
  }

  int Run(std::vector<std::string> argv) {
    out_.str("");
    err_.str("");
    argv.insert(argv.begin(), {"--server", absl::StrCat("127.0.0.1:", host_->port())});
    return RunCli(argv, out_, err_);
  }

  FakeSessions sessions_;
  FakeLoadBalancer balancer_;
  FakeDrivers drivers_;
  HostedFakes fakes_{
      {&sessions_, &balancer_, &drivers_},
      {"evgate.v1.SessionService", "evgate.v1.LoadBalancer", "evgate.v1.DeviceDriver"}};
  std::unique_ptr<ServerHost> host_;
  std::ostringstream out_, err_;
};

TEST_F(CliTest, HealthListsOnlyHostedServicesAllServing) {
  EXPECT_EQ(Run({"health"}), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(),
            "SERVICE                    STATUS\n"
            "(server)                   SERVING\n"
            "evgate.v1.LoadBalancer     SERVING\n"
            "evgate.v1.DeviceDriver     SERVING\n"
            "evgate.v1.SessionService   SERVING\n");
}

TEST_F(CliTest, ExportCsvFollowsEveryPageAndQuotesFields) {
  EXPECT_EQ(Run({"sessions", "export", "--format", "csv", "--from", "2026-11-01"}), kExitOk)
      << err_.str();
  std::istringstream lines(out_.str());
  std::string header, line;
  std::getline(lines, header);
  EXPECT_THAT(header, HasSubstr("session_id,evse_id,station_id,connector_id,id_tag,state"));
  int rows = 0;
  while (std::getline(lines, line)) {
    ++rows;
    EXPECT_THAT(line, HasSubstr(",\"Over-current fault, phase L2\",500.0,11500.0,11000.0,"));
    EXPECT_THAT(line, HasSubstr(",2026-11-21T08:33:20Z,2026-11-21T09:33:20Z,"));
  }
  EXPECT_EQ(rows, 3);
  // --from is sent as the start-time filter (UTC midnight).
  EXPECT_EQ(sessions_.last_request.start_time_from().seconds(), 1793491200);
}

TEST_F(CliTest, ExportCsvAddsBillingColumnsAtTheEnd) {
  sessions_.sessions[0].set_card_name("Van 12");
  EXPECT_EQ(Run({"sessions", "export", "--format", "csv"}), kExitOk) << err_.str();
  std::istringstream lines(out_.str());
  std::string header, first;
  std::getline(lines, header);
  std::getline(lines, first);
  header.pop_back();  // RFC 4180 lines end in CR LF
  first.pop_back();
  EXPECT_THAT(header, ::testing::EndsWith(",peak_power_w,card_name,meter_export_start_wh,"
                                          "meter_export_stop_wh,soc_start_pct,soc_end_pct,"
                                          "ocpp_transaction_id"));
  EXPECT_THAT(first, ::testing::EndsWith(",0,Van 12,0.0,,,,"));
}

TEST_F(CliTest, CardsAddSendsEveryOption) {
  EXPECT_EQ(Run({"cards", "add", "04a1b2c3", "--name", "Van 7", "--evse", "wb1,wb2", "--group",
                 "fleet", "--valid-until", "2027-01-01", "--master"}),
            kExitOk)
      << err_.str();
  ASSERT_EQ(sessions_.upserted.cards_size(), 1);
  const v1::Card& card = sessions_.upserted.cards(0);
  EXPECT_EQ(card.uid(), "04a1b2c3");  // the server normalises
  EXPECT_EQ(card.name(), "Van 7");
  EXPECT_THAT(card.allowed_evse_ids(), ::testing::ElementsAre("wb1", "wb2"));
  EXPECT_THAT(card.allowed_groups(), ::testing::ElementsAre("fleet"));
  EXPECT_EQ(card.valid_until().seconds(), 1798761600);
  EXPECT_TRUE(card.master());
  EXPECT_FALSE(card.blocked());
  EXPECT_EQ(out_.str(), "card 04a1b2c3 stored\n");
}

TEST_F(CliTest, AuthorizeExitCodeSaysWhetherTheCardIsAccepted) {
  EXPECT_EQ(Run({"authorize", "04A1B2C3", "--evse", "wb1"}), kExitOk) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("ACCEPTED"));
  EXPECT_EQ(Run({"authorize", "0BADCAFE"}), kExitFailure);
  EXPECT_THAT(out_.str(), HasSubstr("INVALID"));
}

TEST_F(CliTest, ListHonoursLimit) {
  EXPECT_EQ(Run({"sessions", "list", "--limit", "1"}), kExitOk) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("s-1"));
  EXPECT_THAT(out_.str(), ::testing::Not(HasSubstr("s-2")));
  EXPECT_THAT(out_.str(), HasSubstr("11.000"));  // energy in kWh
}

TEST_F(CliTest, RefusalIsOneLineWithTheServersReason) {
  EXPECT_EQ(Run({"sessions", "start", "--evse", "wb1", "--id-tag", "DEAD"}), kExitFailure);
  EXPECT_EQ(err_.str(), "evgatectl: permission_denied: card DEAD is blocked\n");
}

TEST_F(CliTest, CredentialFlagsAreCheckedBeforeAnyCall) {
  EXPECT_EQ(Run({"devices", "list", "--cert", "/x.pem"}), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("--cert and --key go together"));
  err_.str("");
  EXPECT_EQ(Run({"devices", "list", "--token", "/nonexistent/token"}), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("--token needs --ca"));
  err_.str("");
  std::ostringstream out, err;
  EXPECT_EQ(RunCli({"devices", "list"}, {{"EVGATECTL_CA", "/nonexistent/ca.pem"}}, out, err),
            kExitUsage);
  EXPECT_THAT(err.str(), HasSubstr("cannot read --ca file /nonexistent/ca.pem"));
}

TEST_F(CliTest, ServiceNotHostedSaysWhatWouldHostIt) {
  EXPECT_EQ(Run({"devices", "list"}), kExitNotHosted);
  EXPECT_THAT(err_.str(), HasSubstr("does not host evgate.v1.DeviceDriver"));
  const std::string err = err_.str();
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1);
}

TEST_F(CliTest, SimulateSendsTheScenarioFileAndPrintsTheJson) {
  const std::string path = absl::StrCat(getenv("TEST_TMPDIR"), "/scenario.json");
  std::ofstream(path) << R"({"grid": {"limit_a": [63, 63, 63]}})";
  EXPECT_EQ(Run({"allocation", "simulate", "--scenario", path}), kExitOk) << err_.str();
  EXPECT_EQ(balancer_.scenario, R"({"grid": {"limit_a": [63, 63, 63]}})");
  EXPECT_EQ(out_.str(), "{\"failsafe\": false, \"evses\": []}\n");
}

TEST_F(CliTest, LimitSetSendsTheLimitAndClearSendsAZeroTtl) {
  ASSERT_EQ(Run({"allocation", "limit", "set", "--source", "utility", "--current-a", "40,40,35",
                 "--power-w", "20000", "--ttl", "15m"}),
            0)
      << err_.str();
  ASSERT_EQ(balancer_.limits.updates_size(), 1);
  const v1::DynamicLimitUpdate& set = balancer_.limits.updates(0);
  EXPECT_EQ(set.limit().source(), "utility");
  EXPECT_EQ(set.limit().circuit_id(), "grid");
  EXPECT_DOUBLE_EQ(set.limit().current_limit_a().l3(), 35);
  EXPECT_DOUBLE_EQ(set.limit().power_limit_w(), 20000);
  EXPECT_EQ(set.ttl().seconds(), 900);
  EXPECT_THAT(out_.str(), HasSubstr("1 limit(s) in force"));

  ASSERT_EQ(Run({"allocation", "limit", "clear", "--source", "utility", "--circuit", "garage"}), 0);
  const v1::DynamicLimitUpdate& clear = balancer_.limits.updates(0);
  EXPECT_EQ(clear.limit().circuit_id(), "garage");
  EXPECT_TRUE(clear.has_ttl());
  EXPECT_EQ(clear.ttl().seconds(), 0);

  EXPECT_EQ(Run({"allocation", "limit", "set", "--source", "utility"}), 2) << "no value";
  EXPECT_EQ(Run({"allocation", "limit", "set", "--current-a", "10"}), 2) << "no source";
  EXPECT_EQ(Run({"allocation", "limit", "set", "--source", "u", "--current-a", "1,2"}), 2);
}

TEST_F(CliTest, PrioritySendsEvseClassAndExpiry) {
  ASSERT_EQ(Run({"allocation", "priority", "wb2", "5", "--ttl", "2h"}), 0) << err_.str();
  EXPECT_EQ(balancer_.priority.evse_id(), "wb2");
  EXPECT_EQ(balancer_.priority.priority(), 5);
  EXPECT_EQ(balancer_.priority.ttl().seconds(), 7200);
  EXPECT_THAT(out_.str(), HasSubstr("wb2: priority 5"));
  EXPECT_EQ(Run({"allocation", "priority", "wb2", "high"}), 2);
}

TEST_F(CliTest, DevicesBusesShowsEachBusesCountersAndDurations) {
  ASSERT_EQ(Run({"devices", "buses"}), kExitOk) << err_.str();
  const std::string text = out_.str();
  EXPECT_THAT(text, HasSubstr("P99 <="));
  // 990 answers averaging 10 ms; 99 % (980.1) of them within 25 ms.
  EXPECT_THAT(text, ::testing::ContainsRegex(
                        "rs485-1 +modbus +1000 +3 +7 +10.0 ms +25.0 ms +- +- +- +- +0"));
  // Error frames: 2 warnings + 1 bus-off.
  EXPECT_THAT(text, ::testing::ContainsRegex("can0 +can +- +- +- +- +- +120/4500 +3 +1 +4 +2"));
  ASSERT_EQ(Run({"devices", "buses", "--output", "json"}), kExitOk) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("\"bus_off_total\": \"1\""));
  // Bad input tried: an extra word, an unknown flag.
  EXPECT_EQ(Run({"devices", "buses", "can0"}), kExitUsage);
  EXPECT_EQ(Run({"devices", "buses", "--kind", "can"}), kExitUsage);
}

TEST_F(CliTest, UsageErrorsExitTwo) {
  EXPECT_EQ(Run({"sessions", "export", "--format", "xml"}), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("--format must be csv or json"));
  EXPECT_EQ(Run({"sessions", "list", "--from", "yesterday"}), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("--from 'yesterday' is not a time"));
  EXPECT_EQ(Run({"frobnicate"}), kExitUsage);
  EXPECT_EQ(
      Run({"sessions", "start", "--evse", "wb1", "--id-tag", "04A1B2C3", "--time-limit", "soon"}),
      kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("--time-limit must be a positive duration"));
}

// `ocpp` against a real charger is e2e/ocpp_charger_test; here the usage and
// a server without the bridge.
TEST_F(CliTest, OcppUsageAndAServerWithoutTheBridge) {
  EXPECT_EQ(Run({"ocpp", "frob"}), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("ocpp list|show|command"));
  EXPECT_EQ(Run({"ocpp", "command", "DS60-1"}), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("CHARGE_POINT_ID ACTION [PAYLOAD_JSON]"));
  EXPECT_EQ(Run({"ocpp", "show"}), kExitUsage);
  EXPECT_EQ(Run({"ocpp", "list"}), kExitNotHosted);
  EXPECT_THAT(err_.str(), HasSubstr("the ocpp_bridge service"));
}

// A simulator that records what it was asked and answers with a fixed site.
class FakeSimulator final : public v1::Simulator::Service {
 public:
  grpc::Status ListSimulatedDevices(grpc::ServerContext*, const v1::ListSimulatedDevicesRequest*,
                                    v1::ListSimulatedDevicesResponse* response) override {
    v1::SimulatedDevice* meter = response->add_devices();
    meter->set_device_id("grid-meter");
    meter->set_profile("eastron_sdm630");
    meter->set_kind(v1::DEVICE_KIND_METER);
    meter->set_simulated(true);
    meter->set_responding(true);
    meter->set_endpoint("modbus tcp 127.0.0.1:15020");
    meter->set_measures_circuit_id("grid");
    meter->mutable_meter()->mutable_current_a()->set_l1(40.5);
    meter->mutable_meter()->mutable_current_a()->set_l2(20);
    meter->mutable_meter()->mutable_current_a()->set_l3(12.25);
    meter->mutable_meter()->set_total_power_w(16500);
    v1::SimulatedDevice* wallbox = response->add_devices();
    wallbox->set_device_id("wallbox-1");
    wallbox->set_profile("cabur_ev_plus_22kw");
    wallbox->set_kind(v1::DEVICE_KIND_AC_WALLBOX);
    wallbox->set_simulated(true);
    wallbox->set_responding(false);
    wallbox->set_endpoint("can udp vcan-demo 239.255.0.1:15030");
    v1::SimulatedEvse* evse = wallbox->add_evses();
    evse->set_evse_id("wb1");
    evse->mutable_vehicle()->set_max_current_a(32);
    evse->mutable_vehicle()->set_phases(3);
    evse->set_iec61851_state(v1::IEC61851_STATE_C);
    evse->mutable_offered_current_a()->set_l1(6);
    evse->mutable_current_a()->set_l1(6);
    evse->set_failsafe_active(true);
    evse->set_failsafe_current_a(6);
    evse->set_session_energy_wh(1234);
    evse->add_active_faults("OCP");
    v1::SimulatedDevice* ds60 = response->add_devices();
    ds60->set_device_id("ds60-1");
    ds60->set_profile("ds60");
    ds60->set_simulated(true);
    ds60->set_responding(true);
    ds60->set_endpoint("ocpp ws://127.0.0.1:9000/DS60-1");
    v1::SimulatedEvse* dc = ds60->add_evses();
    dc->set_evse_id("dc1");
    dc->mutable_vehicle()->set_max_power_w(30000);
    dc->mutable_vehicle()->set_soc_pct(42.4);
    dc->set_iec61851_state(v1::IEC61851_STATE_C);
    dc->mutable_offered_current_a()->set_l1(19.1);
    dc->mutable_current_a()->set_l1(19.1);
    dc->set_session_energy_wh(2500);
    v1::SimulatedDevice* generic = response->add_devices();
    generic->set_device_id("sub-meter");
    generic->set_profile("generic_meter");
    generic->set_not_simulated_reason("generic meters have an installer-defined register map");
    response->mutable_building_load()->mutable_current_a()->set_l1(12);
    response->mutable_building_load()->mutable_current_a()->set_l2(8);
    response->mutable_building_load()->mutable_current_a()->set_l3(10);
    response->mutable_building_load()->set_from_profile(true);
    return grpc::Status::OK;
  }
  grpc::Status PlugIn(grpc::ServerContext*, const v1::PlugInRequest* request,
                      v1::PlugInResponse* response) override {
    plug = *request;
    response->mutable_evse()->set_evse_id(request->evse_id());
    response->mutable_evse()->mutable_vehicle()->set_max_current_a(16);
    response->mutable_evse()->mutable_vehicle()->set_phases(1);
    response->mutable_evse()->mutable_vehicle()->set_energy_to_full_wh(40000);
    return grpc::Status::OK;
  }
  grpc::Status TapCard(grpc::ServerContext*, const v1::TapCardRequest* request,
                       v1::TapCardResponse*) override {
    tap = *request;
    if (request->evse_id() == "hd1") {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "hd has no RFID reader");
    }
    return grpc::Status::OK;
  }
  grpc::Status InjectFault(grpc::ServerContext*, const v1::InjectFaultRequest* request,
                           v1::InjectFaultResponse* response) override {
    fault = *request;
    response->mutable_device()->set_device_id("wallbox-1");
    return grpc::Status::OK;
  }
  grpc::Status SetDeviceResponding(grpc::ServerContext*,
                                   const v1::SetDeviceRespondingRequest* request,
                                   v1::SetDeviceRespondingResponse* response) override {
    responding = *request;
    response->mutable_device()->set_device_id(request->target_id());
    return grpc::Status::OK;
  }
  grpc::Status SetBuildingLoad(grpc::ServerContext*, const v1::SetBuildingLoadRequest* request,
                               v1::SetBuildingLoadResponse* response) override {
    building = *request;
    if (request->has_current_a()) {
      *response->mutable_building_load()->mutable_current_a() = request->current_a();
    }
    response->mutable_building_load()->set_from_profile(request->follow_profile());
    return grpc::Status::OK;
  }
  v1::PlugInRequest plug;
  v1::TapCardRequest tap;
  v1::InjectFaultRequest fault;
  v1::SetDeviceRespondingRequest responding;
  v1::SetBuildingLoadRequest building;
};

class SimCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions options;
    options.listen = "127.0.0.1:0";
    options.insecure = true;
    auto host = ServerHost::Start(options, {&fakes_});
    ASSERT_TRUE(host.ok()) << host.status();
    host_ = *std::move(host);
  }
  int Run(std::vector<std::string> argv) {
    out_.str("");
    err_.str("");
    argv.insert(argv.begin(), {"--server", absl::StrCat("127.0.0.1:", host_->port())});
    return RunCli(argv, out_, err_);
  }

  FakeSimulator simulator_;
  HostedFakes fakes_{{&simulator_}, {"evgate.v1.Simulator"}};
  std::unique_ptr<ServerHost> host_;
  std::ostringstream out_, err_;
};

TEST_F(SimCliTest, ListShowsDevicesEvsesAndTheBuilding) {
  EXPECT_EQ(Run({"sim", "list"}), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(),
            "DEVICE       PROFILE              SERVED ON                             STATE        "
            "   NOW\n"
            "grid-meter   eastron_sdm630       modbus tcp 127.0.0.1:15020            answering    "
            "   grid 40.5/20.0/12.2 A, 16.5 kW\n"
            "wallbox-1    cabur_ev_plus_22kw   can udp vcan-demo 239.255.0.1:15030   NOT "
            "ANSWERING   wb1\n"
            "ds60-1       ds60                 ocpp ws://127.0.0.1:9000/DS60-1       answering    "
            "   dc1\n"
            "sub-meter    generic_meter        -                                     not "
            "simulated   generic meters have an installer-defined register map\n"
            "\n"
            "EVSE   VEHICLE     IEC   OFFERED A (L1/L2/L3)   DRAWN A (L1/L2/L3)   FAILSAFE    "
            "SESSION kWh   FAULTS\n"
            "wb1    32 A 3ph    C     6.0/-/-                6.0/-/-              YES 6.0 A   "
            "1.234         OCP\n"
            "dc1    30 kW 42%   C     19.1/-/-               19.1/-/-             no          "
            "2.500         -\n"
            "\n"
            "building load 12.0/8.0/10.0 A (daily profile)\n");
  EXPECT_EQ(Run({"-o", "json", "sim", "list"}), kExitOk) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("\"not_simulated_reason\": \"generic meters"));
}

TEST_F(SimCliTest, CommandsSendWhatTheOperatorTyped) {
  EXPECT_EQ(Run({"sim", "plug", "wb3", "--max-current-a", "16", "--phases", "1", "--energy-kwh",
                 "40", "--id-tag", "04B2C3D4"}),
            kExitOk)
      << err_.str();
  EXPECT_EQ(simulator_.plug.evse_id(), "wb3");
  EXPECT_EQ(simulator_.plug.max_current_a(), 16);
  EXPECT_EQ(simulator_.plug.phases(), 1);
  EXPECT_EQ(simulator_.plug.energy_to_full_wh(), 40000);
  EXPECT_EQ(simulator_.plug.id_tag(), "04B2C3D4");
  EXPECT_EQ(out_.str(), "wb3: vehicle plugged in (16.0 A, 1-phase, full after 40.0 kWh)\n");
  EXPECT_EQ(Run({"sim", "plug", "dc1", "--max-power-kw", "50", "--id-tag", "04B2C3D4"}), kExitOk)
      << err_.str();
  EXPECT_EQ(simulator_.plug.max_power_w(), 50000);
  EXPECT_EQ(Run({"sim", "plug", "dc1", "--max-power-kw", "-1"}), kExitUsage);

  EXPECT_EQ(Run({"sim", "tap", "wb1", "04B2C3D4E5F607"}), kExitOk) << err_.str();
  EXPECT_EQ(simulator_.tap.id_tag(), "04B2C3D4E5F607");
  EXPECT_EQ(out_.str(), "card 04B2C3D4E5F607 tapped at wb1\n");
  EXPECT_EQ(Run({"sim", "tap", "hd1", "04B2C3D4"}), kExitFailure);
  EXPECT_EQ(err_.str(), "evgatectl: failed_precondition: hd has no RFID reader\n");

  EXPECT_EQ(Run({"sim", "fault", "wb1", "ocp"}), kExitOk) << err_.str();
  EXPECT_EQ(simulator_.fault.target_id(), "wb1");
  EXPECT_EQ(simulator_.fault.vendor_code(), "ocp");
  EXPECT_EQ(out_.str(), "wallbox-1: fault OCP raised\n");

  EXPECT_EQ(Run({"sim", "stop-device", "grid-meter"}), kExitOk) << err_.str();
  EXPECT_FALSE(simulator_.responding.responding());
  EXPECT_EQ(out_.str(), "grid-meter: stopped answering on its bus\n");
  EXPECT_EQ(Run({"sim", "start-device", "grid-meter"}), kExitOk) << err_.str();
  EXPECT_TRUE(simulator_.responding.responding());

  EXPECT_EQ(Run({"sim", "building-load", "20,15.5,0"}), kExitOk) << err_.str();
  EXPECT_EQ(simulator_.building.current_a().l2(), 15.5);
  EXPECT_EQ(out_.str(), "building load 20.0/15.5/0.0 A (fixed)\n");
  EXPECT_EQ(Run({"sim", "building-load", "7"}), kExitOk) << err_.str();
  EXPECT_EQ(simulator_.building.current_a().l3(), 7);
  EXPECT_EQ(Run({"sim", "building-load", "profile"}), kExitOk) << err_.str();
  EXPECT_TRUE(simulator_.building.follow_profile());
}

TEST_F(SimCliTest, UsageErrorsAndMissingServiceAreOneLine) {
  EXPECT_EQ(Run({"sim", "plug", "wb1", "--phases", "2"}), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("--phases must be 1 or 3"));
  EXPECT_EQ(Run({"sim", "building-load", "1,2"}), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("building-load takes A, A1,A2,A3"));
  EXPECT_EQ(Run({"sim", "tap", "wb1"}), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("usage: evgatectl sim tap EVSE ID_TAG"));
  EXPECT_EQ(Run({"sim", "launch"}), kExitUsage);
  // Unplug is not implemented by the fake: a server without it says so.
  EXPECT_EQ(Run({"sim", "unplug", "wb1"}), kExitNotHosted);
  EXPECT_THAT(err_.str(), HasSubstr("does not host evgate.v1.Simulator"));
  EXPECT_THAT(err_.str(), HasSubstr("simulation.devices"));
}

TEST(CliUnreachableTest, OneLineErrorAndExitThree) {
  // Nothing listens on port 1 on loopback.
  std::ostringstream out, err;
  int code = RunCli({"--server", "127.0.0.1:1", "--timeout", "2", "health"}, out, err);
  EXPECT_EQ(code, kExitUnreachable);
  const std::string text = err.str();
  EXPECT_THAT(text, HasSubstr("evgatectl: cannot reach evgate at 127.0.0.1:1"));
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1);
}

}  // namespace
}  // namespace evgate::ctl

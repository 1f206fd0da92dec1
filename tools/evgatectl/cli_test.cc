#include "tools/evgatectl/cli.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "evgate/v1/device.grpc.pb.h"
#include "evgate/v1/load_balancer.grpc.pb.h"
#include "evgate/v1/session.grpc.pb.h"
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
  std::string scenario;
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
  HostedFakes fakes_{{&sessions_, &balancer_},
                     {"evgate.v1.SessionService", "evgate.v1.LoadBalancer"}};
  std::unique_ptr<ServerHost> host_;
  std::ostringstream out_, err_;
};

TEST_F(CliTest, HealthListsOnlyHostedServicesAllServing) {
  EXPECT_EQ(Run({"health"}), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(),
            "SERVICE                    STATUS\n"
            "(server)                   SERVING\n"
            "evgate.v1.LoadBalancer     SERVING\n"
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

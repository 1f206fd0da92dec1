#include "services/load_balancer/load_balancer_service.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "site_controller/config/site_config_loader.h"

namespace evgate::load_balancer {
namespace {

using ::testing::HasSubstr;

constexpr char kSite[] = R"(
site:
  id: test-site
grid:
  fuse_limit_a: [63, 63, 63]
  nominal_voltage_v: 230
  contract_power_w: 43000
circuits:
  - id: garage
    parent: grid
    limit_a: [32, 32, 32]
buses:
  - id: can-wallboxes
    type: can
    interface: vcan0
    transport: udp
devices:
  - id: wallbox-1
    profile: cabur_ev_plus_22kw
    bus: can-wallboxes
    address: 1
stations:
  - id: wb1
    device: wallbox-1
    circuit: garage
    evses:
      - id: wb1
        phases: [L2, L3, L1]
        max_current_a: 32
services:
  session_database: /var/lib/evgate/test.db
insecure_demo: true
)";

class LoadBalancerServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto config = site::LoadSiteConfigString(kSite, "test.yaml");
    ASSERT_TRUE(config.ok()) << config.status();
    service_ = std::make_unique<LoadBalancerService>(*config, clock_, LoadBalancerService::Links());
    ASSERT_TRUE(service_->Start().ok());
  }
  void TearDown() override { service_->Stop(); }
  FakeClock clock_;
  std::unique_ptr<LoadBalancerService> service_;
};

TEST_F(LoadBalancerServiceTest, SimulateAnswersInTheDocumentedJsonAndTyped) {
  v1::SimulateRequest request;
  request.set_scenario_json(R"({
    "grid": {"limit_a": [63, 63, 63], "nominal_voltage_v": 230, "measured_a": [40, 22, 18],
             "meter_age_s": 0.4, "meter_timeout_s": 3},
    "margin_a": 0,
    "circuits": [{"id": "garage", "parent": "grid", "limit_a": [20, 20, 20], "measured_a": null}],
    "evses": [{"id": "wb1", "circuit": "garage", "type": "ac", "phases": ["L2", "L3", "L1"],
               "min_a": 6, "max_a": 32, "step_a": 0.1, "active": true,
               "measured_a": [10, 10, 10]}]})");
  v1::SimulateResponse response;
  grpc::Status status = service_->Simulate(nullptr, &request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_THAT(response.allocation_json(), HasSubstr("\"failsafe\": false"));
  ASSERT_EQ(response.allocation().evses_size(), 1);
  const v1::EvseAllocation& wb1 = response.allocation().evses(0);
  EXPECT_EQ(wb1.evse_id(), "wb1");
  EXPECT_DOUBLE_EQ(wb1.current_a(), 20.0);  // the 20 A garage binds, on every phase
  EXPECT_FALSE(wb1.paused());
  EXPECT_EQ(wb1.limited_by().kind(), v1::CONSTRAINT_KIND_CIRCUIT_PHASE);
  EXPECT_EQ(wb1.limited_by().circuit_id(), "garage");
  EXPECT_EQ(response.allocation().trigger(), v1::ALLOCATION_TRIGGER_SIMULATION);
  ASSERT_GE(response.allocation().circuits_size(), 2);
  EXPECT_EQ(response.allocation().circuits(0).circuit_id(), "grid");
}

TEST_F(LoadBalancerServiceTest, MalformedScenarioIsInvalidArgumentNamingTheField) {
  v1::SimulateRequest request;
  request.set_scenario_json(R"({"grid": {"limit_a": [63, 63]}, "evses": []})");
  v1::SimulateResponse response;
  grpc::Status status = service_->Simulate(nullptr, &request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("grid.limit_a"));
}

TEST_F(LoadBalancerServiceTest, SiteStatusShowsTheConfiguredTopology) {
  v1::GetSiteStatusResponse response;
  ASSERT_TRUE(service_->GetSiteStatus(nullptr, nullptr, &response).ok());
  EXPECT_DOUBLE_EQ(response.grid().limit_a().l2(), 63);
  EXPECT_DOUBLE_EQ(response.grid().contract_power_w(), 43000);
  ASSERT_EQ(response.circuits_size(), 1);
  EXPECT_EQ(response.circuits(0).circuit_id(), "garage");
  EXPECT_THAT(response.circuits(0).evse_ids(), ::testing::ElementsAre("wb1"));
  ASSERT_EQ(response.evses_size(), 1);
  EXPECT_THAT(response.evses(0).phases(),
              ::testing::ElementsAre(v1::PHASE_L2, v1::PHASE_L3, v1::PHASE_L1));
  // Without a grid meter nothing can go stale: not in failsafe, before and
  // after the loop's first decision alike (this used to race with it).
  EXPECT_FALSE(response.failsafe());
  EXPECT_EQ(response.failsafe_reason(), v1::FAILSAFE_REASON_UNSPECIFIED);
}

TEST_F(LoadBalancerServiceTest, BadLimitsAndUnknownEvsesAreRejectedWithTheirPath) {
  v1::SetDynamicLimitsRequest request;
  v1::DynamicLimitUpdate* update = request.add_updates();
  update->mutable_limit()->set_source("utility");
  update->mutable_limit()->set_circuit_id("nowhere");
  v1::SetDynamicLimitsResponse response;
  grpc::Status status = service_->SetDynamicLimits(nullptr, &request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("updates[0].limit.circuit_id"));

  update->mutable_limit()->set_circuit_id("garage");
  update->mutable_limit()->set_source("");
  status = service_->SetDynamicLimits(nullptr, &request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("source"));

  v1::SetEvsePriorityRequest priority;
  priority.set_evse_id("ghost");
  v1::SetEvsePriorityResponse priority_response;
  status = service_->SetEvsePriority(nullptr, &priority, &priority_response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
}

// With TLS on, a peer's channel needs the site CA and the client
// certificate. When they cannot be read the load balancer must not start:
// without its session service it would let every vehicle charge.
TEST(LoadBalancerServiceStart, UnreadableClientCredentialsStopTheStartNotTheAuthorization) {
  auto config = site::LoadSiteConfigString(kSite, "test.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  site::TlsConfig tls;
  tls.cert_file = "/nonexistent/server.pem";
  tls.key_file = "/nonexistent/server.key";
  tls.client_ca_file = "/nonexistent/ca.pem";
  config->services.tls = tls;
  config->insecure_demo = false;
  config->services.endpoints["session"].endpoint = "127.0.0.1:1";
  LoadBalancerService service(*config, SystemClock::Get());
  service.OnHosted(HostInfo{});
  absl::Status status = service.Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_THAT(status.message(), HasSubstr("session"));
  EXPECT_THAT(status.message(), HasSubstr("/nonexistent/ca.pem"));
  EXPECT_EQ(service.control_loop(), nullptr);
}

}  // namespace
}  // namespace evgate::load_balancer

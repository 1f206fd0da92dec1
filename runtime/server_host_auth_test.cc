// The authorization of runtime/server_host over real TLS connections: each
// role against representative RPCs of every service, bad tokens, a foreign
// CA, an unknown certificate, no credentials, and the open demo.
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "evgate/v1/device.grpc.pb.h"
#include "evgate/v1/grid.grpc.pb.h"
#include "evgate/v1/load_balancer.grpc.pb.h"
#include "evgate/v1/ocpp.grpc.pb.h"
#include "evgate/v1/session.grpc.pb.h"
#include "evgate/v1/simulator.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "runtime/auth.h"
#include "runtime/server_host.h"
#include "runtime/test_certificates.h"

namespace evgate {
namespace {

using testing::CertificatePair;
using ::testing::HasSubstr;
using testing::ReadFileOrEmpty;
using testing::TestPki;

// Hosts the generated base class of every evgate service: a call the
// authorizer lets through reaches its handler and ends UNIMPLEMENTED; one
// it stops ends with its own code and no handler runs.
class AllServices : public Service {
 public:
  std::string_view name() const override { return "all"; }
  std::vector<grpc::Service*> grpc_services() override {
    return {&driver_, &grid_, &balancer_, &ocpp_, &session_, &simulator_};
  }
  std::vector<std::string> health_names() const override { return {"test.all"}; }

 private:
  v1::DeviceDriver::Service driver_;
  v1::GridController::Service grid_;
  v1::LoadBalancer::Service balancer_;
  v1::OcppBridge::Service ocpp_;
  v1::SessionService::Service session_;
  v1::Simulator::Service simulator_;
};

constexpr char kToken[] = "integrator-token-0123456789abcdef";

struct Client {
  std::shared_ptr<grpc::Channel> channel;
  std::string authorization;  // metadata value, "" = none
};

// One unary call with an empty request to `method`; waits for its status.
grpc::Status Call(const Client& client, const std::string& method) {
  grpc::GenericStub stub(client.channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (!client.authorization.empty()) context.AddMetadata("authorization", client.authorization);
  grpc::Slice empty("");
  grpc::ByteBuffer request(&empty, 1), response;
  std::mutex mu;
  std::condition_variable done_cv;
  bool done = false;
  grpc::Status result;
  stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &response,
                 [&](grpc::Status status) {
                   std::lock_guard<std::mutex> lock(mu);
                   result = std::move(status);
                   done = true;
                   done_cv.notify_all();
                 });
  std::unique_lock<std::mutex> lock(mu);
  done_cv.wait(lock, [&] { return done; });
  return result;
}

class ServerHostAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string dir = std::getenv("TEST_TMPDIR");
    auto pki = TestPki::Create(dir);
    ASSERT_TRUE(pki.ok()) << pki.status() << " (is the openssl command installed?)";
    pki_.emplace(*pki);
    const std::string token_file = dir + "/integrator.token";
    std::ofstream(token_file) << kToken << "\n";
    auto authorizer = Authorizer::Create({
        {"dashboard", "viewer.depot-1", "", {Role::kViewer}},
        {"bms", "", token_file, {Role::kIntegrator}},
        {"ops", "ops.depot-1", "", {Role::kOperator}},
        {"load-balancer", "lb.depot-1", "", {Role::kController}},
    });
    ASSERT_TRUE(authorizer.ok()) << authorizer.status();
    authorizer_ = *std::move(authorizer);
    ServerOptions options;
    options.listen = "127.0.0.1:0";
    options.tls = {pki_->server().cert_file, pki_->server().key_file, pki_->ca_file()};
    options.authorizer = authorizer_.get();
    auto host = ServerHost::Start(options, {&services_});
    ASSERT_TRUE(host.ok()) << host.status();
    host_ = *std::move(host);
  }

  // A TLS client trusting the site CA, with `cert` as client certificate.
  Client WithCertificate(const CertificatePair* cert, const std::string& authorization = "") {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ReadFileOrEmpty(pki_->ca_file());
    if (cert != nullptr) {
      ssl.pem_cert_chain = ReadFileOrEmpty(cert->cert_file);
      ssl.pem_private_key = ReadFileOrEmpty(cert->key_file);
    }
    return {
        grpc::CreateChannel(absl::StrCat("localhost:", host_->port()), grpc::SslCredentials(ssl)),
        authorization};
  }
  Client Issued(const std::string& common_name) {
    auto cert = pki_->IssueClient(common_name);
    EXPECT_TRUE(cert.ok()) << cert.status();
    return WithCertificate(&*cert);
  }

  std::optional<TestPki> pki_;
  std::unique_ptr<Authorizer> authorizer_;
  AllServices services_;
  std::unique_ptr<ServerHost> host_;
};

// Written out by hand rather than derived from RpcAccessTable(), so that a
// wrong table entry shows here.
struct Expectation {
  const char* method;
  bool viewer, integrator, op, controller;
};
constexpr Expectation kExpectations[] = {
    {"/evgate.v1.DeviceDriver/ListDevices", true, true, true, false},
    {"/evgate.v1.DeviceDriver/WatchDevices", true, true, true, false},
    {"/evgate.v1.DeviceDriver/ApplySetpoints", false, false, false, true},
    {"/evgate.v1.DeviceDriver/GetControllerSequence", false, false, false, true},
    {"/evgate.v1.DeviceDriver/Command", false, false, true, false},
    {"/evgate.v1.GridController/GetGridState", true, true, true, false},
    {"/evgate.v1.GridController/RequestGridMode", false, false, true, false},
    {"/evgate.v1.LoadBalancer/GetSiteStatus", true, true, true, false},
    {"/evgate.v1.LoadBalancer/SetDynamicLimits", false, true, true, false},
    {"/evgate.v1.LoadBalancer/SetEvsePriority", false, false, true, false},
    {"/evgate.v1.OcppBridge/ListChargePoints", true, true, true, false},
    {"/evgate.v1.OcppBridge/SendChargerCommand", false, false, true, false},
    {"/evgate.v1.SessionService/ListSessions", true, true, true, false},
    {"/evgate.v1.SessionService/StartSession", false, true, true, false},
    {"/evgate.v1.SessionService/StopSession", false, true, true, false},
    {"/evgate.v1.SessionService/UpsertCards", false, false, true, false},
    {"/evgate.v1.SessionService/ListCards", false, false, true, false},
    {"/evgate.v1.Simulator/ListSimulatedDevices", true, true, true, false},
    {"/evgate.v1.Simulator/PlugIn", false, false, true, false},
};

void ExpectAllowed(const Client& client, const std::string& who, const char* method, bool allowed) {
  grpc::Status status = Call(client, method);
  if (allowed) {
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED)
        << who << " should reach " << method << ": " << status.error_message();
  } else {
    EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
        << who << " should be refused " << method << ": " << status.error_message();
  }
}

TEST_F(ServerHostAuthTest, EachRoleReachesExactlyItsRpcsOfEveryService) {
  const Client viewer = Issued("viewer.depot-1");
  const Client ops = Issued("ops.depot-1");
  const Client controller = Issued("lb.depot-1");
  const Client integrator = WithCertificate(nullptr, absl::StrCat("Bearer ", kToken));
  for (const Expectation& e : kExpectations) {
    ExpectAllowed(viewer, "viewer", e.method, e.viewer);
    ExpectAllowed(integrator, "integrator", e.method, e.integrator);
    ExpectAllowed(ops, "operator", e.method, e.op);
    ExpectAllowed(controller, "controller", e.method, e.controller);
  }
  const AuthCounts counts = authorizer_->counts();
  int allowed = 0, denied = 0;
  for (const Expectation& e : kExpectations) {
    for (bool ok : {e.viewer, e.integrator, e.op, e.controller}) (ok ? allowed : denied)++;
  }
  EXPECT_EQ(counts.allowed, static_cast<uint64_t>(allowed));
  EXPECT_EQ(counts.permission_denied, static_cast<uint64_t>(denied));
  EXPECT_EQ(counts.unauthenticated, 0u);
}

TEST_F(ServerHostAuthTest, DeniedCallsSayWhoWasRefusedAndWhatIsNeeded) {
  grpc::Status status = Call(Issued("viewer.depot-1"), "/evgate.v1.DeviceDriver/ApplySetpoints");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(status.error_message(), HasSubstr("'dashboard'"));
  EXPECT_THAT(status.error_message(), HasSubstr("controller"));
}

TEST_F(ServerHostAuthTest, NoCredentialsIsUnauthenticatedButHealthStaysOpen) {
  const Client anonymous = WithCertificate(nullptr);
  EXPECT_EQ(Call(anonymous, "/evgate.v1.DeviceDriver/ApplySetpoints").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Call(anonymous, "/evgate.v1.DeviceDriver/ListDevices").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  // Health answers (the request is empty: overall health).
  EXPECT_TRUE(Call(anonymous, "/grpc.health.v1.Health/Check").ok());
  EXPECT_EQ(authorizer_->counts().unauthenticated, 2u);
}

TEST_F(ServerHostAuthTest, BadTokensAreUnauthenticated) {
  for (const std::string& authorization :
       {absl::StrCat("Bearer ", kToken, "x"), std::string("Bearer wrong-token-0123456789"),
        std::string("Bearer"), std::string(kToken), std::string("Basic dXNlcjpwYXNz")}) {
    grpc::Status status =
        Call(WithCertificate(nullptr, authorization), "/evgate.v1.LoadBalancer/SetDynamicLimits");
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << authorization;
    EXPECT_THAT(status.error_message(), ::testing::Not(HasSubstr(kToken)));
  }
}

TEST_F(ServerHostAuthTest, ACertificateOfAnotherCaCannotConnect) {
  auto foreign = pki_->IssueClient("ops.depot-1", /*by_other_ca=*/true);
  ASSERT_TRUE(foreign.ok()) << foreign.status();
  grpc::Status status = Call(WithCertificate(&*foreign), "/evgate.v1.DeviceDriver/Command");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_EQ(authorizer_->counts().allowed, 0u);
}

TEST_F(ServerHostAuthTest, ASiteCertificateThatIsNoPrincipalIsDenied) {
  grpc::Status status = Call(Issued("stranger.depot-1"), "/evgate.v1.DeviceDriver/ListDevices");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(status.error_message(), HasSubstr("stranger.depot-1"));
}

TEST(ServerHostDemoTest, TheInsecureDemoIsOpenToCallersWithoutCredentials) {
  AllServices services;
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.insecure = true;
  auto host = ServerHost::Start(options, {&services});
  ASSERT_TRUE(host.ok()) << host.status();
  const Client anonymous{grpc::CreateChannel(absl::StrCat("127.0.0.1:", (*host)->port()),
                                             grpc::InsecureChannelCredentials()),
                         ""};
  for (const Expectation& e : kExpectations) {
    EXPECT_EQ(Call(anonymous, e.method).error_code(), grpc::StatusCode::UNIMPLEMENTED) << e.method;
  }
}

TEST(ServerHostDemoTest, TlsWithoutPrincipalsRefusesToStart) {
  const std::string dir = std::getenv("TEST_TMPDIR");
  auto pki = TestPki::Create(dir);
  ASSERT_TRUE(pki.ok()) << pki.status();
  AllServices services;
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.tls = {pki->server().cert_file, pki->server().key_file, pki->ca_file()};
  auto host = ServerHost::Start(options, {&services});
  ASSERT_FALSE(host.ok());
  EXPECT_EQ(host.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(host.status().message(), HasSubstr("services.auth"));
}

}  // namespace
}  // namespace evgate

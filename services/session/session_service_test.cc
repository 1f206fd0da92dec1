#include "services/session/session_service.h"

#include <cstdlib>
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "runtime/server_host.h"
#include "services/session/testing/device_events.h"
#include "services/session/testing/fake_device_events.h"
#include "services/session/testing/test_site.h"
#include "site_controller/config/site_config_loader.h"

namespace evgate::session {
namespace {

using ::testing::HasSubstr;
using namespace ::evgate::session::testing;  // NOLINT: event builders and cards

// The service as integrators see it: hosted on a gRPC server, device events
// from a fake source, a real gRPC client.
class SessionServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    database_ = absl::StrCat(std::getenv("TEST_TMPDIR"), "/service/sessions.db");
    std::filesystem::remove_all(std::filesystem::path(database_).parent_path());
    auto config = site::LoadSiteConfigString(TestSiteYaml(database_), "site.yaml");
    ASSERT_TRUE(config.ok()) << config.status();
    config_ = *config;
    StartService();
  }
  void TearDown() override { StopService(); }

  void StartService() {
    auto source = std::make_unique<FakeDeviceEvents>();
    events_ = source.get();
    SessionServiceOptions options;
    options.tick = absl::Milliseconds(20);
    auto service = SessionService::Create(config_, SystemClock::Get(), std::move(source), options);
    ASSERT_TRUE(service.ok()) << service.status();
    service_ = *std::move(service);
    ServerOptions server;
    server.listen = "127.0.0.1:0";
    server.insecure = true;
    auto host = ServerHost::Start(server, {service_.get()});
    ASSERT_TRUE(host.ok()) << host.status();
    host_ = *std::move(host);
    stub_ = v1::SessionService::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", host_->port()), grpc::InsecureChannelCredentials()));
  }

  void StopService() {
    if (host_) host_->Shutdown(absl::Seconds(1));
    host_.reset();
    service_.reset();
  }

  // Device events reach the manager through the service's worker thread.
  template <typename Predicate>
  bool Eventually(Predicate predicate) {
    for (int i = 0; i < 250; ++i) {
      if (predicate()) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return predicate();
  }

  v1::ListSessionsResponse List(const v1::ListSessionsRequest& request = {}) {
    grpc::ClientContext context;
    v1::ListSessionsResponse response;
    grpc::Status status = stub_->ListSessions(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  std::string database_;
  site::SiteConfig config_;
  FakeDeviceEvents* events_ = nullptr;
  std::unique_ptr<SessionService> service_;
  std::unique_ptr<ServerHost> host_;
  std::unique_ptr<v1::SessionService::Stub> stub_;
};

TEST_F(SessionServiceTest, TheDatabaseDirectoryIsCreatedAndTheSourceStarted) {
  EXPECT_TRUE(std::filesystem::exists(database_));
  EXPECT_TRUE(events_->started());
}

TEST_F(SessionServiceTest, ATapStartsASessionListedWithLiveEnergyAndASecondTapStopsIt) {
  events_->StreamStarted();
  events_->Event(Snapshot("wallbox-1", {Evse("wb1", v1::CONNECTOR_STATUS_AVAILABLE,
                                             v1::IEC61851_STATE_A, Meter(1000, 0))}));
  events_->Event(SnapshotComplete());
  events_->Event(Tap("wallbox-1", "wb1", kVanCard));
  events_->Event(StateChange("wallbox-1", Evse("wb1", v1::CONNECTOR_STATUS_CHARGING,
                                               v1::IEC61851_STATE_C, Meter(1000, 11000))));
  events_->Event(Telemetry("wallbox-1", "wb1", Meter(1750, 11000)));
  ASSERT_TRUE(Eventually([&] {
    v1::ListSessionsResponse list = List();
    return list.sessions_size() == 1 && list.sessions(0).energy_charged_wh() == 750;
  }));
  const v1::Session live = List().sessions(0);
  EXPECT_EQ(live.state(), v1::SESSION_STATE_ACTIVE);
  EXPECT_EQ(live.power_w(), 11000);

  events_->Event(Tap("wallbox-1", "wb1", kVanCard));
  events_->Event(StateChange("wallbox-1", Evse("wb1", v1::CONNECTOR_STATUS_SUSPENDED_EVSE,
                                               v1::IEC61851_STATE_B, Meter(1760, 0))));
  ASSERT_TRUE(
      Eventually([&] { return List().sessions(0).state() == v1::SESSION_STATE_COMPLETED; }));
  grpc::ClientContext context;
  v1::GetSessionRequest get;
  get.set_session_id(live.session_id());
  v1::GetSessionResponse got;
  ASSERT_TRUE(stub_->GetSession(&context, get, &got).ok());
  EXPECT_EQ(got.session().stop_reason(), v1::STOP_REASON_LOCAL);
  EXPECT_EQ(got.session().meter_stop_wh(), 1760);
}

TEST_F(SessionServiceTest, ErrorsCarryTheCanonicalCodeAndAReadableMessage) {
  {
    grpc::ClientContext context;
    v1::StartSessionRequest request;
    request.set_evse_id("wb9");
    request.set_id_tag(kVanCard);
    v1::StartSessionResponse response;
    grpc::Status status = stub_->StartSession(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_THAT(status.error_message(), HasSubstr("unknown EVSE 'wb9'; site.yaml defines"));
  }
  {
    grpc::ClientContext context;
    v1::StartSessionRequest request;
    request.set_evse_id("wb1");
    request.set_id_tag(kBlockedCard);
    v1::StartSessionResponse response;
    grpc::Status status = stub_->StartSession(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_THAT(status.error_message(), HasSubstr("BLOCKED: card DEADBEEF (Lost card) is blocked"));
  }
  {
    grpc::ClientContext context;
    v1::GetSessionRequest request;
    request.set_session_id("01NOPE");
    v1::GetSessionResponse response;
    EXPECT_EQ(stub_->GetSession(&context, request, &response).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext context;
    v1::ListSessionsRequest request;
    request.set_page_token("garbage");
    v1::ListSessionsResponse response;
    EXPECT_EQ(stub_->ListSessions(&context, request, &response).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  EXPECT_EQ(List().sessions_size(), 0);  // nothing was written
}

TEST_F(SessionServiceTest, WatchSessionsStreamsTheSnapshotThenChangesAndEndsAtShutdown) {
  v1::StartSessionRequest start;
  start.set_evse_id("wb2");
  start.set_id_tag(kOtherVanCard);
  {
    grpc::ClientContext context;
    v1::StartSessionResponse response;
    ASSERT_TRUE(stub_->StartSession(&context, start, &response).ok());
  }
  grpc::ClientContext context;
  v1::WatchSessionsRequest request;
  auto reader = stub_->WatchSessions(&context, request);
  v1::WatchSessionsResponse event;
  ASSERT_TRUE(reader->Read(&event));
  EXPECT_EQ(event.event(), v1::SESSION_EVENT_TYPE_SNAPSHOT);
  EXPECT_EQ(event.session().evse_id(), "wb2");
  EXPECT_TRUE(event.session().energy_authorized());
  ASSERT_TRUE(reader->Read(&event));
  EXPECT_EQ(event.event(), v1::SESSION_EVENT_TYPE_SNAPSHOT_COMPLETE);

  start.set_evse_id("wb1");
  start.set_id_tag(kVanCard);
  {
    grpc::ClientContext start_context;
    v1::StartSessionResponse response;
    ASSERT_TRUE(stub_->StartSession(&start_context, start, &response).ok());
  }
  ASSERT_TRUE(reader->Read(&event));
  EXPECT_EQ(event.event(), v1::SESSION_EVENT_TYPE_STARTED);
  EXPECT_EQ(event.session().evse_id(), "wb1");
  EXPECT_EQ(event.sequence(), 3u);

  std::thread stop([this] { StopService(); });
  EXPECT_FALSE(reader->Read(&event));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
  stop.join();
}

TEST_F(SessionServiceTest, CardsCanBeManagedAndSurviveARestart) {
  {
    grpc::ClientContext context;
    v1::UpsertCardsRequest request;
    v1::Card* card = request.add_cards();
    card->set_uid("0a0b0c0d");
    card->set_name("Van 30");
    v1::UpsertCardsResponse response;
    ASSERT_TRUE(stub_->UpsertCards(&context, request, &response).ok());
    EXPECT_EQ(response.cards(0).uid(), "0A0B0C0D");
  }
  StopService();
  StartService();
  grpc::ClientContext context;
  v1::AuthorizeRequest request;
  request.set_id_tag("0A0B0C0D");
  request.set_evse_id("wb1");
  v1::AuthorizeResponse response;
  ASSERT_TRUE(stub_->Authorize(&context, request, &response).ok());
  EXPECT_EQ(response.status(), v1::AUTHORIZATION_STATUS_ACCEPTED);
  EXPECT_EQ(response.card_name(), "Van 30");
  grpc::ClientContext delete_context;
  v1::DeleteCardRequest del;
  del.set_uid(kMasterCard);
  v1::DeleteCardResponse deleted;
  EXPECT_EQ(stub_->DeleteCard(&delete_context, del, &deleted).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

}  // namespace
}  // namespace evgate::session

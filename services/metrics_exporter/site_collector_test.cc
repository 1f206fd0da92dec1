#include "services/metrics_exporter/site_collector.h"

#include <memory>
#include <string>

#include "absl/synchronization/notification.h"
#include "evgate/v1/load_balancer.grpc.pb.h"
#include "evgate/v1/session.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "prometheus/text_serializer.h"

namespace evgate::metrics {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class FakeLoadBalancer final : public v1::LoadBalancer::Service {
 public:
  grpc::Status GetSiteStatus(grpc::ServerContext*, const v1::GetSiteStatusRequest*,
                             v1::GetSiteStatusResponse* response) override {
    response->mutable_grid()->mutable_measured_a()->set_l1(12.5);
    return grpc::Status::OK;
  }
};

// Answers only when released: a peer that hangs.
class HangingSessions final : public v1::SessionService::Service {
 public:
  grpc::Status ListSessions(grpc::ServerContext*, const v1::ListSessionsRequest*,
                            v1::ListSessionsResponse*) override {
    release.WaitForNotification();
    return grpc::Status::OK;
  }
  absl::Notification release;
};

class SiteCollectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&load_balancer_);
    builder.RegisterService(&sessions_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }
  void TearDown() override {
    if (!sessions_.release.HasBeenNotified()) sessions_.release.Notify();
    server_->Shutdown();
  }
  std::shared_ptr<grpc::Channel> Channel() {
    return grpc::CreateChannel("127.0.0.1:" + std::to_string(port_),
                               grpc::InsecureChannelCredentials());
  }
  static std::string Scrape(const SiteCollector& collector) {
    return prometheus::TextSerializer().Serialize(collector.Collect());
  }

  FakeLoadBalancer load_balancer_;
  HangingSessions sessions_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

TEST_F(SiteCollectorTest, ReadsEachPeerAndMarksTheOnesThatDoNotAnswer) {
  PeerChannels peers;
  peers.load_balancer = Channel();
  peers.session = Channel();  // hangs past the deadline
  // Nothing listens on port 1: refused at once.
  peers.device_drivers = grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials());
  SiteCollector collector(peers, std::make_shared<StreamMetrics>(), BuildInfo{"1.2.3", "abc"},
                          absl::Milliseconds(300));
  const std::string text = Scrape(collector);
  EXPECT_THAT(text, HasSubstr("evgate_up{service=\"load_balancer\"} 1"));
  EXPECT_THAT(text,
              HasSubstr("evgate_circuit_current_amperes{circuit=\"grid\",phase=\"L1\"} 12.5"));
  EXPECT_THAT(text, HasSubstr("evgate_up{service=\"session\"} 0"));
  EXPECT_THAT(text, Not(HasSubstr("evgate_sessions_open")));
  EXPECT_THAT(text, HasSubstr("evgate_up{service=\"device_drivers\"} 0"));
  EXPECT_THAT(text, Not(HasSubstr("evgate_device_online")));
  // Not configured and not hosted: no series at all.
  EXPECT_THAT(text, Not(HasSubstr("service=\"ocpp_bridge\"")));
  EXPECT_THAT(text, HasSubstr("evgate_build_info{version=\"1.2.3\",revision=\"abc\"} 1"));
  EXPECT_THAT(text, HasSubstr("process_resident_memory_bytes"));
}

TEST_F(SiteCollectorTest, APeerThatComesBackIsReadAgain) {
  PeerChannels peers;
  peers.session = Channel();
  SiteCollector collector(peers, nullptr, BuildInfo{"1", "r"}, absl::Milliseconds(300));
  EXPECT_THAT(Scrape(collector), HasSubstr("evgate_up{service=\"session\"} 0"));
  sessions_.release.Notify();
  const std::string text = Scrape(collector);
  EXPECT_THAT(text, HasSubstr("evgate_up{service=\"session\"} 1"));
  EXPECT_THAT(text, HasSubstr("evgate_sessions_open{state=\"active\"} 0"));
}

}  // namespace
}  // namespace evgate::metrics

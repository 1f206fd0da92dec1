// The load balancer's view of the session service: which EVSEs may draw
// energy. DeviceDriver has no "authorize" command; instead an EVSE gets
// current only while it has an open session with `energy_authorized`
// (SessionService.WatchSessions, whose contract is written in session.proto).
//
// GrpcSessionLink follows WatchSessions with reconnects (StreamFollower).
//
// Thread-safety: Start()/Stop() from one thread; the callbacks run on the
// link's own thread, one at a time.
#ifndef EVGATE_SERVICES_LOAD_BALANCER_SESSION_LINK_H_
#define EVGATE_SERVICES_LOAD_BALANCER_SESSION_LINK_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "evgate/v1/session.grpc.pb.h"
#include "grpcpp/channel.h"
#include "runtime/stream_follower.h"

namespace evgate::load_balancer {

class SessionLink {
 public:
  using EventHandler = std::function<void(const v1::WatchSessionsResponse&)>;
  using DownHandler = std::function<void(const absl::Status&)>;

  virtual ~SessionLink() = default;
  virtual void Start(EventHandler on_event, DownHandler on_down) = 0;
  virtual void Stop() = 0;
};

class GrpcSessionLink final : public SessionLink {
 public:
  GrpcSessionLink(const std::string& endpoint, std::shared_ptr<grpc::Channel> channel)
      : stub_(v1::SessionService::NewStub(std::move(channel))),
        watch_("session service " + endpoint, [this](grpc::ClientContext* context) {
          return stub_->WatchSessions(context, v1::WatchSessionsRequest());
        }) {}
  ~GrpcSessionLink() override { Stop(); }

  void Start(EventHandler on_event, DownHandler on_down) override {
    watch_.Start(std::move(on_event), std::move(on_down));
  }
  void Stop() override { watch_.Stop(); }

 private:
  const std::unique_ptr<v1::SessionService::Stub> stub_;
  StreamFollower<v1::WatchSessionsResponse> watch_;
};

}  // namespace evgate::load_balancer

#endif  // EVGATE_SERVICES_LOAD_BALANCER_SESSION_LINK_H_

// The load balancer's view of the grid controller (services/grid_controller): whether the site
// has a grid to charge from, and which EVSE forms the island with what discharge limit
// (GridController.WatchGridState; GridState.forming_discharge_limit_w).
//
// GrpcGridLink follows WatchGridState with reconnects (StreamFollower). While the stream is down
// the last known mode stays in force: a load balancer that lost its grid controller during an
// outage must not start charging on the island.
//
// Thread-safety: Start()/Stop() from one thread; the callbacks run on the link's own thread, one
// at a time.
#ifndef EVGATE_SERVICES_LOAD_BALANCER_GRID_LINK_H_
#define EVGATE_SERVICES_LOAD_BALANCER_GRID_LINK_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "evgate/v1/grid.grpc.pb.h"
#include "grpcpp/channel.h"
#include "runtime/stream_follower.h"
#include "site_controller/control/control_policy.h"

namespace evgate::load_balancer {

// What the load balancer applies of a grid state.
control::GridModeDirective DirectiveOf(const v1::GridState& state);

class GridLink {
 public:
  using EventHandler = std::function<void(const v1::WatchGridStateResponse&)>;
  using DownHandler = std::function<void(const absl::Status&)>;

  virtual ~GridLink() = default;
  virtual void Start(EventHandler on_event, DownHandler on_down) = 0;
  virtual void Stop() = 0;
};

class GrpcGridLink final : public GridLink {
 public:
  // States every `interval` besides the transitions, so that a directive that changes without
  // a mode change (the island's former told to start or stop) arrives within it.
  static constexpr absl::Duration kInterval = absl::Milliseconds(250);

  GrpcGridLink(const std::string& endpoint, std::shared_ptr<grpc::Channel> channel)
      : stub_(v1::GridController::NewStub(std::move(channel))),
        watch_("grid controller " + endpoint, [this](grpc::ClientContext* context) {
          v1::WatchGridStateRequest request;
          request.mutable_interval()->set_nanos(
              static_cast<int32_t>(absl::ToInt64Nanoseconds(kInterval)));
          return stub_->WatchGridState(context, request);
        }) {}
  ~GrpcGridLink() override { Stop(); }

  void Start(EventHandler on_event, DownHandler on_down) override {
    watch_.Start(std::move(on_event), std::move(on_down));
  }
  void Stop() override { watch_.Stop(); }

 private:
  const std::unique_ptr<v1::GridController::Stub> stub_;
  StreamFollower<v1::WatchGridStateResponse> watch_;
};

}  // namespace evgate::load_balancer

#endif  // EVGATE_SERVICES_LOAD_BALANCER_GRID_LINK_H_

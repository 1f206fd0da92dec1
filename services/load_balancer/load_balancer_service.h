// The LoadBalancer gRPC service (proto/evgate/v1/load_balancer.proto).
//
// Hosts the control loop (control_loop.h) on live device data and serves it:
// GetSiteStatus (topology with measured load, headroom, allocation, failsafe
// state and external limits), WatchAllocations, SetDynamicLimits and
// SetEvsePriority; plus Simulate, the allocation engine on a documented
// scenario (docs/scenario-format.md), which touches no device.
//
// Where the device drivers are: `services.endpoints.device_drivers.endpoint`
// in site.yaml when set (split deployment); otherwise the DeviceDriver
// service of this same process, reached in-process (`evgate run`). With
// neither, the loop runs without devices, i.e. in failsafe, and says so.
// The session service, which gates energy by authorization, is found the
// same way (`services.endpoints.session.endpoint`, else in-process); without
// one, every connected vehicle may charge, and the log says so.
//
// Thread-safe.
#ifndef EVGATE_SERVICES_LOAD_BALANCER_LOAD_BALANCER_SERVICE_H_
#define EVGATE_SERVICES_LOAD_BALANCER_LOAD_BALANCER_SERVICE_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "evgate/v1/load_balancer.grpc.pb.h"
#include "runtime/clock.h"
#include "runtime/service.h"
#include "services/load_balancer/control_loop.h"
#include "services/load_balancer/device_link.h"
#include "services/load_balancer/grid_link.h"
#include "services/load_balancer/session_link.h"
#include "site_controller/config/site_config.h"

namespace evgate::load_balancer {

class LoadBalancerService final : public Service, public v1::LoadBalancer::Service {
 public:
  // What the loop connects to; nullopt = decide from site.yaml and the
  // hosting process (see above).
  struct Links {
    std::vector<std::unique_ptr<DeviceLink>> drivers;
    std::unique_ptr<SessionLink> sessions;  // nullptr: no authorization gating
    std::unique_ptr<GridLink> grid;         // nullptr: no grid modes (always on grid)
  };
  LoadBalancerService(const site::SiteConfig& config, const Clock& clock,
                      std::optional<Links> links = std::nullopt);
  ~LoadBalancerService() override;

  // evgate::Service
  std::string_view name() const override { return "load_balancer"; }
  std::vector<grpc::Service*> grpc_services() override { return {this}; }
  std::vector<std::string> health_names() const override { return {"evgate.v1.LoadBalancer"}; }
  void OnHosted(const HostInfo& host) override;
  absl::Status Start() override;
  void Stop() override;

  // The running loop (after Start), e.g. for benchmarks; nullptr before.
  ControlLoop* control_loop() { return loop_.get(); }

  // evgate.v1.LoadBalancer
  grpc::Status GetSiteStatus(grpc::ServerContext* context, const v1::GetSiteStatusRequest* request,
                             v1::GetSiteStatusResponse* response) override;
  grpc::Status Simulate(grpc::ServerContext* context, const v1::SimulateRequest* request,
                        v1::SimulateResponse* response) override;
  grpc::Status WatchAllocations(grpc::ServerContext* context,
                                const v1::WatchAllocationsRequest* request,
                                grpc::ServerWriter<v1::WatchAllocationsResponse>* writer) override;
  grpc::Status SetDynamicLimits(grpc::ServerContext* context,
                                const v1::SetDynamicLimitsRequest* request,
                                v1::SetDynamicLimitsResponse* response) override;
  grpc::Status SetEvsePriority(grpc::ServerContext* context,
                               const v1::SetEvsePriorityRequest* request,
                               v1::SetEvsePriorityResponse* response) override;

 private:
  const site::SiteConfig config_;
  const Clock& clock_;
  std::optional<Links> links_;
  // Followed once the loop runs; its directives go to the loop when they change.
  std::unique_ptr<GridLink> grid_;
  std::optional<control::GridModeDirective> last_grid_mode_;  // the grid link's thread only
  // Why a configured peer's channel could not be made (Start() refuses to
  // run without it: a load balancer without its session service would let
  // every vehicle charge unauthorized).
  absl::Status links_error_;
  // The configured topology, built once; live values are added per call.
  v1::GetSiteStatusResponse topology_;
  std::unique_ptr<ControlLoop> loop_;
};

}  // namespace evgate::load_balancer

#endif  // EVGATE_SERVICES_LOAD_BALANCER_LOAD_BALANCER_SERVICE_H_

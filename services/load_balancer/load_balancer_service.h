// The LoadBalancer gRPC service (proto/evgate/v1/load_balancer.proto).
//
// Serves the allocation engine (site_controller/allocation) to integrators:
// Simulate runs it on a documented scenario (docs/scenario-format.md), and
// GetSiteStatus reports the configured site with the controller's state.
//
// The control loop that feeds live meter and device data into the engine
// (WatchAllocations, SetDynamicLimits, SetEvsePriority) needs the device
// drivers; until it runs, those RPCs answer UNIMPLEMENTED with that reason,
// and GetSiteStatus reports failsafe / no meter data, which is what the site
// is in without data. Thread-safe.
#ifndef EVGATE_SERVICES_LOAD_BALANCER_LOAD_BALANCER_SERVICE_H_
#define EVGATE_SERVICES_LOAD_BALANCER_LOAD_BALANCER_SERVICE_H_

#include <string>
#include <vector>

#include "evgate/v1/load_balancer.grpc.pb.h"
#include "runtime/service.h"
#include "site_controller/allocation/allocation.h"
#include "site_controller/config/site_config.h"

namespace evgate::load_balancer {

// Converts an engine result to the API's typed Allocation.
v1::Allocation ToProto(const allocation::Allocation& allocation);

class LoadBalancerService final : public Service, public v1::LoadBalancer::Service {
 public:
  explicit LoadBalancerService(const site::SiteConfig& config);

  // evgate::Service
  std::string_view name() const override { return "load_balancer"; }
  std::vector<grpc::Service*> grpc_services() override { return {this}; }
  std::vector<std::string> health_names() const override { return {"evgate.v1.LoadBalancer"}; }

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
  // The configured topology, built once; read-only afterwards.
  v1::GetSiteStatusResponse topology_;
};

}  // namespace evgate::load_balancer

#endif  // EVGATE_SERVICES_LOAD_BALANCER_LOAD_BALANCER_SERVICE_H_

// The GridController gRPC API (proto/evgate/v1/grid.proto) as an evgate Service: the grid
// controller (grid_controller.h) fed by DeviceDriver.WatchDevices, ticked every second, its box
// commands sent as DeviceDriver.Command `off_grid_box`.
//
// Without `grid_modes` in site.yaml the service answers with mode UNSPECIFIED and refuses mode
// requests (FAILED_PRECONDITION): the site is a plain grid-connected one.
//
// Not here yet, said by the API: SetV2xParameters is UNIMPLEMENTED (evgate takes the V2X
// parameters from site.yaml; the ICE-22 manual names no OCPP configuration keys to write them
// to the charger); GetV2xParameters returns site.yaml's values.
//
// Thread-safe: RPCs run on gRPC's threads.
#ifndef EVGATE_SERVICES_GRID_CONTROLLER_GRID_CONTROLLER_SERVICE_H_
#define EVGATE_SERVICES_GRID_CONTROLLER_GRID_CONTROLLER_SERVICE_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "evgate/v1/grid.grpc.pb.h"
#include "runtime/clock.h"
#include "runtime/service.h"
#include "services/grid_controller/grid_controller.h"
#include "services/session/device_events.h"
#include "site_controller/config/site_config.h"

namespace evgate::grid_controller {

struct GridControllerServiceOptions {
  absl::Duration tick = absl::Seconds(1);
  // Deadline of one box command.
  absl::Duration command_deadline = absl::Seconds(3);
};

class GridControllerService final : public Service,
                                    public v1::GridController::Service,
                                    private BoxCommander {
 public:
  // `source` / `commander` null: OnHosted() connects them to `services.device_drivers.endpoint`,
  // else to the DeviceDriver service of this process. `clock` outlives the service.
  static absl::StatusOr<std::unique_ptr<GridControllerService>> Create(
      const site::SiteConfig& config, const Clock& clock,
      std::unique_ptr<session::DeviceEventSource> source = nullptr,
      std::unique_ptr<BoxCommander> commander = nullptr, GridControllerServiceOptions options = {});
  ~GridControllerService() override;

  // Null for a site without grid_modes.
  GridController* controller() { return controller_.get(); }

  // evgate::Service
  std::string_view name() const override { return "grid_controller"; }
  std::vector<grpc::Service*> grpc_services() override { return {this}; }
  std::vector<std::string> health_names() const override { return {"evgate.v1.GridController"}; }
  void OnHosted(const HostInfo& host) override;
  absl::Status Start() override;
  void Stop() override;

  // evgate.v1.GridController
  grpc::Status GetGridState(grpc::ServerContext* context, const v1::GetGridStateRequest* request,
                            v1::GetGridStateResponse* response) override;
  grpc::Status WatchGridState(grpc::ServerContext* context,
                              const v1::WatchGridStateRequest* request,
                              grpc::ServerWriter<v1::WatchGridStateResponse>* writer) override;
  grpc::Status SetV2xParameters(grpc::ServerContext* context,
                                const v1::SetV2xParametersRequest* request,
                                v1::SetV2xParametersResponse* response) override;
  grpc::Status GetV2xParameters(grpc::ServerContext* context,
                                const v1::GetV2xParametersRequest* request,
                                v1::GetV2xParametersResponse* response) override;
  grpc::Status RequestGridMode(grpc::ServerContext* context,
                               const v1::RequestGridModeRequest* request,
                               v1::RequestGridModeResponse* response) override;

 private:
  GridControllerService(const site::SiteConfig& config, const Clock& clock,
                        GridControllerServiceOptions options);
  v1::GridState StateNow() const;
  // BoxCommander: through commander_ (connected by OnHosted() unless given).
  absl::Status Send(const std::string& box_device_id,
                    const v1::OffGridBoxCommand& command) override;

  const site::SiteConfig config_;
  const Clock& clock_;
  const GridControllerServiceOptions options_;
  std::unique_ptr<BoxCommander> commander_;
  std::unique_ptr<GridController> controller_;
  std::unique_ptr<session::DeviceEventSource> source_;
  std::thread ticker_;
  absl::Notification stopping_;
  bool started_ = false;
};

}  // namespace evgate::grid_controller

#endif  // EVGATE_SERVICES_GRID_CONTROLLER_GRID_CONTROLLER_SERVICE_H_

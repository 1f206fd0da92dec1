#include "services/grid_controller/grid_controller_service.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "evgate/v1/device.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "runtime/grpc_status.h"
#include "runtime/log.h"
#include "services/session/grpc_device_events.h"
#include "site_controller/config/api_conversions.h"

namespace evgate::grid_controller {
namespace {

constexpr log::Logger kLog("grid_controller");
constexpr absl::Duration kDefaultWatchInterval = absl::Seconds(1);
// How often a watch without news checks whether its client went away.
constexpr absl::Duration kCancelCheck = absl::Milliseconds(500);

// Box commands as DeviceDriver.Command.
class GrpcBoxCommander final : public BoxCommander {
 public:
  GrpcBoxCommander(std::shared_ptr<grpc::Channel> channel, std::string where,
                   absl::Duration deadline)
      : stub_(v1::DeviceDriver::NewStub(std::move(channel))),
        where_(std::move(where)),
        deadline_(deadline) {}

  absl::Status Send(const std::string& box_device_id,
                    const v1::OffGridBoxCommand& command) override {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + deadline_));
    v1::CommandRequest request;
    request.set_device_id(box_device_id);
    *request.mutable_off_grid_box() = command;
    v1::CommandResponse response;
    const grpc::Status status = stub_->Command(&context, request, &response);
    if (!status.ok()) {
      return absl::Status(FromGrpc(status).code(), absl::StrCat("DeviceDriver.Command at ", where_,
                                                                ": ", status.error_message()));
    }
    if (response.status() != v1::COMMAND_STATUS_ACCEPTED) {
      return absl::FailedPreconditionError(
          absl::StrCat(v1::CommandStatus_Name(response.status()), ": ", response.message()));
    }
    return absl::OkStatus();
  }

 private:
  std::unique_ptr<v1::DeviceDriver::Stub> stub_;
  const std::string where_;
  const absl::Duration deadline_;
};

}  // namespace

GridControllerService::GridControllerService(const site::SiteConfig& config, const Clock& clock,
                                             GridControllerServiceOptions options)
    : config_(config), clock_(clock), options_(options) {}

absl::StatusOr<std::unique_ptr<GridControllerService>> GridControllerService::Create(
    const site::SiteConfig& config, const Clock& clock,
    std::unique_ptr<session::DeviceEventSource> source, std::unique_ptr<BoxCommander> commander,
    GridControllerServiceOptions options) {
  std::unique_ptr<GridControllerService> service(new GridControllerService(config, clock, options));
  service->source_ = std::move(source);
  service->commander_ = std::move(commander);
  if (!config.grid_modes) {
    kLog.Info("no grid_modes in site.yaml: a plain grid-connected site, no grid modes");
    return service;
  }
  // The controller sends through this service, whose commander OnHosted() may connect later.
  absl::StatusOr<std::unique_ptr<GridController>> controller =
      GridController::Create(service->config_, clock, service.get());
  if (!controller.ok()) return controller.status();
  service->controller_ = *std::move(controller);
  return service;
}

GridControllerService::~GridControllerService() { Stop(); }

absl::Status GridControllerService::Send(const std::string& box_device_id,
                                         const v1::OffGridBoxCommand& command) {
  if (commander_ == nullptr) {
    return absl::FailedPreconditionError("no DeviceDriver to send off-grid box commands to");
  }
  return commander_->Send(box_device_id, command);
}

void GridControllerService::OnHosted(const HostInfo& host) {
  if (controller_ == nullptr || (source_ != nullptr && commander_ != nullptr)) return;
  absl::StatusOr<session::GrpcDeviceEventsOptions> endpoint =
      session::DeviceDriverEndpoint(config_);
  std::shared_ptr<grpc::Channel> channel;
  std::string where;
  if (endpoint.ok()) {
    where = endpoint->endpoint;
    channel = grpc::CreateChannel(endpoint->endpoint, endpoint->credentials);
  } else if (!absl::IsNotFound(endpoint.status())) {
    kLog.Error("cannot connect to the DeviceDriver service: %s", endpoint.status().message());
    return;
  } else if (host.Hosts("evgate.v1.DeviceDriver") && host.in_process_channel) {
    session::GrpcDeviceEventsOptions options;
    options.endpoint = where = "this process";
    options.channel = channel = host.in_process_channel();
    endpoint = options;
  } else {
    kLog.Warning(
        "no device driver in this process and services.device_drivers.endpoint is not set: "
        "the grid controller cannot see the off-grid box");
    return;
  }
  kLog.Info("off-grid box %s and V2X EVSEs through DeviceDriver at %s",
            config_.grid_modes->off_grid_box, where);
  if (source_ == nullptr) {
    endpoint->channel = channel;
    source_ = std::make_unique<session::GrpcDeviceEvents>(*std::move(endpoint));
  }
  if (commander_ == nullptr) {
    commander_ = std::make_unique<GrpcBoxCommander>(channel, where, options_.command_deadline);
  }
}

absl::Status GridControllerService::Start() {
  if (controller_ == nullptr) return absl::OkStatus();
  started_ = true;
  if (source_ != nullptr) source_->Start(controller_.get());
  ticker_ = std::thread([this] {
    while (!stopping_.WaitForNotificationWithTimeout(options_.tick)) controller_->Tick();
  });
  return absl::OkStatus();
}

void GridControllerService::Stop() {
  if (!started_) return;
  started_ = false;
  if (source_ != nullptr) source_->Stop();
  controller_->Shutdown();
  if (!stopping_.HasBeenNotified()) stopping_.Notify();
  if (ticker_.joinable()) ticker_.join();
}

v1::GridState GridControllerService::StateNow() const {
  if (controller_ != nullptr) return controller_->State();
  v1::GridState state;
  state.set_mode(v1::GRID_MODE_UNSPECIFIED);
  state.set_last_transition_detail("no grid_modes in site.yaml: a plain grid-connected site");
  *state.mutable_at() = api::ToProto(clock_.Now());
  return state;
}

grpc::Status GridControllerService::GetGridState(grpc::ServerContext*,
                                                 const v1::GetGridStateRequest*,
                                                 v1::GetGridStateResponse* response) {
  *response->mutable_state() = StateNow();
  return grpc::Status::OK;
}

grpc::Status GridControllerService::WatchGridState(
    grpc::ServerContext* context, const v1::WatchGridStateRequest* request,
    grpc::ServerWriter<v1::WatchGridStateResponse>* writer) {
  absl::Duration interval = kDefaultWatchInterval;
  if (request->has_interval()) {
    interval = api::FromProto(request->interval());
    if (interval < absl::ZeroDuration()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "interval must not be negative");
    }
    if (interval > absl::ZeroDuration()) {
      interval = std::clamp(interval, absl::Milliseconds(100), absl::Hours(1));
    }
  }
  uint64_t sequence = 0;
  auto send = [&](const v1::GridState& state, bool mode_changed) {
    v1::WatchGridStateResponse message;
    message.set_sequence(++sequence);
    message.set_mode_changed(mode_changed);
    *message.mutable_state() = state;
    return writer->Write(message);
  };
  uint64_t seen = controller_ != nullptr ? controller_->transitions() : 0;
  if (!send(StateNow(), false)) return grpc::Status::OK;
  if (controller_ == nullptr) {
    return grpc::Status::OK;  // nothing will change: no grid modes on this site
  }
  absl::Time next = clock_.MonotonicNow() + interval;
  while (!context->IsCancelled() && !controller_->shut_down()) {
    absl::Duration wait = kCancelCheck;
    if (interval > absl::ZeroDuration()) {
      wait = std::clamp(next - clock_.MonotonicNow(), absl::ZeroDuration(), kCancelCheck);
    }
    controller_->WaitForTransition(seen, wait);
    std::vector<v1::GridState> transitions = controller_->TransitionsAfter(seen, &seen);
    for (const v1::GridState& state : transitions) {
      if (!send(state, true)) return grpc::Status::OK;
    }
    if (!transitions.empty()) {
      next = clock_.MonotonicNow() + interval;
      continue;
    }
    if (interval > absl::ZeroDuration() && clock_.MonotonicNow() >= next) {
      if (!send(controller_->State(), false)) return grpc::Status::OK;
      next += interval;
    }
  }
  if (controller_->shut_down()) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "the grid controller is shutting down; reconnect later");
  }
  return grpc::Status::OK;
}

grpc::Status GridControllerService::SetV2xParameters(grpc::ServerContext*,
                                                     const v1::SetV2xParametersRequest*,
                                                     v1::SetV2xParametersResponse*) {
  return grpc::Status(
      grpc::StatusCode::UNIMPLEMENTED,
      "V2X parameters come from site.yaml (soc_min_pct, soc_max_pct, the discharge powers, "
      "grid_modes); writing them to the charger is not supported: the ICE-22 manual names no "
      "OCPP configuration keys for them");
}

grpc::Status GridControllerService::GetV2xParameters(grpc::ServerContext*,
                                                     const v1::GetV2xParametersRequest* request,
                                                     v1::GetV2xParametersResponse* response) {
  if (controller_ == nullptr) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "no grid_modes in site.yaml: no V2X parameters");
  }
  absl::StatusOr<v1::V2xParameters> parameters = controller_->Parameters(request->evse_id());
  if (!parameters.ok()) return ToGrpc(parameters.status());
  *response->mutable_parameters() = *std::move(parameters);
  return grpc::Status::OK;
}

grpc::Status GridControllerService::RequestGridMode(grpc::ServerContext*,
                                                    const v1::RequestGridModeRequest* request,
                                                    v1::RequestGridModeResponse* response) {
  if (controller_ == nullptr) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "no grid_modes in site.yaml: this site has no off-grid mode");
  }
  absl::StatusOr<v1::GridState> state = controller_->Request(*request);
  if (!state.ok()) return ToGrpc(state.status());
  *response->mutable_state() = *std::move(state);
  return grpc::Status::OK;
}

}  // namespace evgate::grid_controller

#include "services/load_balancer/device_link.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "runtime/grpc_status.h"

namespace evgate::load_balancer {
namespace {

void SetDeadline(grpc::ClientContext* context, absl::Duration deadline) {
  context->set_deadline(std::chrono::system_clock::now() + absl::ToChronoNanoseconds(deadline));
}

}  // namespace

GrpcDeviceLink::GrpcDeviceLink(std::string endpoint, std::shared_ptr<grpc::Channel> channel,
                               absl::Duration telemetry_interval)
    : endpoint_(std::move(endpoint)),
      stub_(v1::DeviceDriver::NewStub(std::move(channel))),
      telemetry_interval_(telemetry_interval),
      watch_("device driver " + endpoint_, [this](grpc::ClientContext* context) {
        v1::WatchDevicesRequest request;
        *request.mutable_telemetry_interval() =
            google::protobuf::util::TimeUtil::NanosecondsToDuration(
                absl::ToInt64Nanoseconds(telemetry_interval_));
        return stub_->WatchDevices(context, request);
      }) {}

GrpcDeviceLink::~GrpcDeviceLink() { Stop(); }

void GrpcDeviceLink::Start(EventHandler on_event, DownHandler on_down) {
  watch_.Start(std::move(on_event), std::move(on_down));
}

void GrpcDeviceLink::Stop() { watch_.Stop(); }

absl::StatusOr<v1::ApplySetpointsResponse> GrpcDeviceLink::Apply(
    const v1::ApplySetpointsRequest& request, absl::Duration deadline) {
  grpc::ClientContext context;
  SetDeadline(&context, deadline);
  v1::ApplySetpointsResponse response;
  grpc::Status status = stub_->ApplySetpoints(&context, request, &response);
  if (!status.ok()) {
    return absl::Status(FromGrpc(status).code(), absl::StrCat("ApplySetpoints on ", endpoint_, ": ",
                                                              status.error_message()));
  }
  return response;
}

absl::StatusOr<v1::GetControllerSequenceResponse> GrpcDeviceLink::ControllerSequence(
    const std::string& controller_id, absl::Duration deadline) {
  grpc::ClientContext context;
  SetDeadline(&context, deadline);
  v1::GetControllerSequenceRequest request;
  request.set_controller_id(controller_id);
  v1::GetControllerSequenceResponse response;
  grpc::Status status = stub_->GetControllerSequence(&context, request, &response);
  if (!status.ok()) {
    return absl::Status(
        FromGrpc(status).code(),
        absl::StrCat("GetControllerSequence on ", endpoint_, ": ", status.error_message()));
  }
  return response;
}

}  // namespace evgate::load_balancer

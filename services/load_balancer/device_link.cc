#include "services/load_balancer/device_link.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "runtime/log.h"

namespace evgate::load_balancer {
namespace {

log::Logger kLog("load_balancer");

constexpr absl::Duration kMinBackoff = absl::Milliseconds(100);
constexpr absl::Duration kMaxBackoff = absl::Seconds(2);

absl::Status FromGrpc(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

}  // namespace

GrpcDeviceLink::GrpcDeviceLink(std::string endpoint, std::shared_ptr<grpc::Channel> channel,
                               absl::Duration telemetry_interval, absl::Duration apply_deadline)
    : endpoint_(std::move(endpoint)),
      stub_(v1::DeviceDriver::NewStub(std::move(channel))),
      telemetry_interval_(telemetry_interval),
      apply_deadline_(apply_deadline) {}

GrpcDeviceLink::~GrpcDeviceLink() { Stop(); }

void GrpcDeviceLink::Start(EventHandler on_event, DownHandler on_down) {
  thread_ =
      std::thread([this, on_event = std::move(on_event), on_down = std::move(on_down)]() mutable {
        Run(std::move(on_event), std::move(on_down));
      });
}

void GrpcDeviceLink::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
    if (watch_ != nullptr) watch_->TryCancel();
  }
  if (thread_.joinable()) thread_.join();
}

void GrpcDeviceLink::Run(EventHandler on_event, DownHandler on_down) {
  absl::Duration backoff = kMinBackoff;
  bool reported_down = false;
  while (true) {
    grpc::ClientContext context;
    {
      absl::MutexLock lock(&mu_);
      if (stop_) return;
      watch_ = &context;
    }
    v1::WatchDevicesRequest request;
    *request.mutable_telemetry_interval() = google::protobuf::util::TimeUtil::NanosecondsToDuration(
        absl::ToInt64Nanoseconds(telemetry_interval_));
    std::unique_ptr<grpc::ClientReader<v1::WatchDevicesResponse>> reader =
        stub_->WatchDevices(&context, request);
    v1::WatchDevicesResponse event;
    bool got_any = false;
    while (reader->Read(&event)) {
      if (!got_any) {
        got_any = true;
        backoff = kMinBackoff;
        if (reported_down) kLog.Info("device driver %s: connected again", endpoint_);
        reported_down = false;
      }
      on_event(event);
    }
    grpc::Status status = reader->Finish();
    {
      absl::MutexLock lock(&mu_);
      watch_ = nullptr;
      if (stop_) return;
    }
    if (!reported_down) {
      kLog.Warning("device driver %s: stream lost (%s); reconnecting", endpoint_,
                   status.error_message().empty() ? "ended" : status.error_message());
      reported_down = true;
    }
    on_down(status.ok() ? absl::UnavailableError("stream ended") : FromGrpc(status));
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&stop_), backoff);
    backoff = std::min(backoff * 2, kMaxBackoff);
  }
}

absl::StatusOr<v1::ApplySetpointsResponse> GrpcDeviceLink::Apply(
    const v1::ApplySetpointsRequest& request) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       absl::ToChronoNanoseconds(apply_deadline_));
  v1::ApplySetpointsResponse response;
  grpc::Status status = stub_->ApplySetpoints(&context, request, &response);
  if (!status.ok()) {
    return absl::Status(FromGrpc(status).code(), absl::StrCat("ApplySetpoints on ", endpoint_, ": ",
                                                              status.error_message()));
  }
  return response;
}

}  // namespace evgate::load_balancer

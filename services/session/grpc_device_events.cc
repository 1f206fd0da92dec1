#include "services/session/grpc_device_events.h"

#include <fstream>
#include <random>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "evgate/v1/device.grpc.pb.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/create_channel.h"
#include "runtime/client_credentials.h"
#include "runtime/log.h"

namespace evgate::session {
namespace {

constexpr log::Logger kLog("session");

absl::Status ToAbsl(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

}  // namespace

absl::StatusOr<GrpcDeviceEventsOptions> DeviceDriverEndpoint(const site::SiteConfig& config) {
  GrpcDeviceEventsOptions options;
  auto endpoint = config.services.endpoints.find("device_drivers");
  if (endpoint == config.services.endpoints.end() || !endpoint->second.endpoint) {
    return absl::NotFoundError("services.device_drivers.endpoint is not set");
  }
  options.endpoint = *endpoint->second.endpoint;
  ClientTls tls;
  if (config.services.tls) {
    const site::TlsConfig& site_tls = *config.services.tls;
    tls.ca_file = site_tls.client_ca_file.value_or(site_tls.cert_file);
    tls.cert_file = site_tls.client_cert_file.value_or("");
    tls.key_file = site_tls.client_key_file.value_or("");
  }
  auto credentials = MakeClientCredentials(!config.services.tls, tls);
  if (!credentials.ok()) return credentials.status();
  options.credentials = *std::move(credentials);
  return options;
}

GrpcDeviceEvents::GrpcDeviceEvents(GrpcDeviceEventsOptions options)
    : options_(std::move(options)),
      channel_(options_.channel != nullptr
                   ? options_.channel
                   : grpc::CreateChannel(options_.endpoint, options_.credentials)) {}

GrpcDeviceEvents::~GrpcDeviceEvents() { Stop(); }

void GrpcDeviceEvents::Start(DeviceEventHandler* handler) {
  thread_ = std::thread([this, handler] { Run(handler); });
}

void GrpcDeviceEvents::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    if (context_ != nullptr) context_->TryCancel();
  }
  if (thread_.joinable()) thread_.join();
}

bool GrpcDeviceEvents::RunStream(DeviceEventHandler* handler, grpc::Status* status) {
  grpc::ClientContext context;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return false;
    context_ = &context;
  }
  auto stub = v1::DeviceDriver::NewStub(channel_);
  v1::WatchDevicesRequest request;
  *request.mutable_telemetry_interval() = google::protobuf::util::TimeUtil::MicrosecondsToDuration(
      absl::ToInt64Microseconds(options_.telemetry_interval));
  std::unique_ptr<grpc::ClientReader<v1::WatchDevicesResponse>> reader =
      stub->WatchDevices(&context, request);
  v1::WatchDevicesResponse event;
  bool delivered = false;
  while (reader->Read(&event)) {
    if (!delivered) {
      kLog.Info("receiving device events from DeviceDriver at %s", options_.endpoint);
      handler->OnStreamStarted();
      delivered = true;
    }
    handler->OnDeviceEvent(event);
  }
  *status = reader->Finish();
  absl::MutexLock lock(&mu_);
  context_ = nullptr;
  return delivered;
}

void GrpcDeviceEvents::Run(DeviceEventHandler* handler) {
  std::minstd_rand jitter(static_cast<unsigned>(absl::ToUnixNanos(absl::Now())));
  absl::Duration backoff = options_.initial_backoff;
  bool warned = false;
  while (true) {
    grpc::Status status;
    const bool delivered = RunStream(handler, &status);
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) break;
    }
    const std::string why =
        status.error_message().empty() ? "stream ended" : status.error_message();
    if (delivered) {
      handler->OnStreamLost(ToAbsl(status));
      backoff = options_.initial_backoff;
      kLog.Warning("device events from DeviceDriver at %s stopped (%s); reconnecting",
                   options_.endpoint, why);
      warned = true;
    } else if (!warned) {
      kLog.Warning(
          "no device events from DeviceDriver at %s (%s); open sessions keep their last values "
          "until it answers, retrying",
          options_.endpoint, why);
      warned = true;
    }
    const double factor = 0.8 + 0.4 * static_cast<double>(jitter() % 1000) / 1000.0;
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), backoff * factor);
    if (stopping_) break;
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

}  // namespace evgate::session

#include "services/metrics_exporter/site_collector.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <utility>

#include "evgate/v1/device.grpc.pb.h"
#include "evgate/v1/grid.grpc.pb.h"
#include "evgate/v1/load_balancer.grpc.pb.h"
#include "evgate/v1/ocpp.grpc.pb.h"
#include "evgate/v1/session.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "runtime/log.h"
#include "services/metrics_exporter/family_set.h"
#include "services/metrics_exporter/process_metrics.h"
#include "services/metrics_exporter/site_metrics.h"

namespace evgate::metrics {

namespace {

constexpr log::Logger kLog("metrics_exporter");

// Nice value of the threads that collect a scrape.
constexpr int kScrapeNice = 10;

// Pages of the List calls; a 1,000-EVSE site is one or two pages.
constexpr int kPageSize = 500;

// What one peer's read gave: `ok` false = the peer is down (its samples are
// dropped), with how long the read took.
struct PeerRead {
  bool ok = false;
  double seconds = 0;
  FamilySet samples;
};

void SetDeadline(grpc::ClientContext& context, absl::Duration deadline) {
  context.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(deadline));
}

// Runs `read` (true = answered) and times it.
template <typename Read>
PeerRead Timed(const char* service, Read read) {
  PeerRead out;
  const auto start = std::chrono::steady_clock::now();
  grpc::Status status = read(out.samples);
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  out.ok = status.ok();
  if (!out.ok) {
    kLog.Debug("%s did not answer this scrape: %s", service, status.error_message());
  }
  return out;
}

grpc::Status ReadLoadBalancer(const std::shared_ptr<grpc::Channel>& channel,
                              absl::Duration deadline, FamilySet& out) {
  auto stub = v1::LoadBalancer::NewStub(channel);
  grpc::ClientContext context;
  SetDeadline(context, deadline);
  v1::GetSiteStatusResponse status;
  grpc::Status result = stub->GetSiteStatus(&context, v1::GetSiteStatusRequest(), &status);
  if (result.ok()) AddSiteStatus(status, out);
  return result;
}

// Every page of a List call: `call(context, request, page)` issues one,
// `items(page)` moves its entries out, each page under its own deadline.
template <typename Request, typename Response, typename Item, typename Call, typename Items>
grpc::Status ReadAllPages(Request request, absl::Duration deadline, Call call, Items items,
                          std::vector<Item>& out) {
  request.set_page_size(kPageSize);
  while (true) {
    grpc::ClientContext context;
    SetDeadline(context, deadline);
    Response page;
    grpc::Status result = call(&context, request, &page);
    if (!result.ok()) return result;
    for (Item& item : *items(page)) out.push_back(std::move(item));
    if (page.next_page_token().empty()) return grpc::Status::OK;
    request.set_page_token(page.next_page_token());
  }
}

grpc::Status ReadDevices(const std::shared_ptr<grpc::Channel>& channel, absl::Duration deadline,
                         FamilySet& out) {
  auto stub = v1::DeviceDriver::NewStub(channel);
  std::vector<v1::DeviceState> devices;
  grpc::Status result = ReadAllPages<v1::ListDevicesRequest, v1::ListDevicesResponse>(
      v1::ListDevicesRequest(), deadline,
      [&](grpc::ClientContext* c, const v1::ListDevicesRequest& r, v1::ListDevicesResponse* p) {
        return stub->ListDevices(c, r, p);
      },
      [](v1::ListDevicesResponse& p) { return p.mutable_devices(); }, devices);
  if (!result.ok()) return result;
  AddDevices(devices, out);
  grpc::ClientContext context;
  SetDeadline(context, deadline);
  v1::ListBusesResponse buses;
  result = stub->ListBuses(&context, v1::ListBusesRequest(), &buses);
  if (result.ok()) {
    AddBuses({buses.buses().begin(), buses.buses().end()}, out);
  } else if (result.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
    // A driver of an earlier version: its devices are served, its bus
    // durations and frame counts are not.
    kLog.Debug("the device drivers do not list their buses: %s", result.error_message());
    result = grpc::Status::OK;
  }
  return result;
}

grpc::Status ReadSessions(const std::shared_ptr<grpc::Channel>& channel, absl::Duration deadline,
                          FamilySet& out) {
  auto stub = v1::SessionService::NewStub(channel);
  std::vector<v1::Session> sessions;
  v1::ListSessionsRequest request;
  request.set_state(v1::SESSION_STATE_FILTER_OPEN);
  grpc::Status result = ReadAllPages<v1::ListSessionsRequest, v1::ListSessionsResponse>(
      request, deadline,
      [&](grpc::ClientContext* c, const v1::ListSessionsRequest& r, v1::ListSessionsResponse* p) {
        return stub->ListSessions(c, r, p);
      },
      [](v1::ListSessionsResponse& p) { return p.mutable_sessions(); }, sessions);
  if (result.ok()) AddOpenSessions(sessions, out);
  return result;
}

grpc::Status ReadOcpp(const std::shared_ptr<grpc::Channel>& channel, absl::Duration deadline,
                      FamilySet& out) {
  auto stub = v1::OcppBridge::NewStub(channel);
  std::vector<v1::ChargePoint> charge_points;
  grpc::Status pages = ReadAllPages<v1::ListChargePointsRequest, v1::ListChargePointsResponse>(
      v1::ListChargePointsRequest(), deadline,
      [&](grpc::ClientContext* c, const v1::ListChargePointsRequest& r,
          v1::ListChargePointsResponse* p) { return stub->ListChargePoints(c, r, p); },
      [](v1::ListChargePointsResponse& p) { return p.mutable_charge_points(); }, charge_points);
  if (!pages.ok()) return pages;
  AddChargePoints(charge_points, out);
  grpc::ClientContext context;
  SetDeadline(context, deadline);
  v1::GetUpstreamStatusResponse upstream;
  grpc::Status result =
      stub->GetUpstreamStatus(&context, v1::GetUpstreamStatusRequest(), &upstream);
  // A bridge without an upstream client answers UNIMPLEMENTED for a
  // configured upstream: the bridge is up, the upstream figures are absent.
  if (result.ok()) AddUpstream(upstream, out);
  return result.ok() || result.error_code() == grpc::StatusCode::UNIMPLEMENTED ? grpc::Status::OK
                                                                               : result;
}

grpc::Status ReadGrid(const std::shared_ptr<grpc::Channel>& channel, absl::Duration deadline,
                      FamilySet& out) {
  auto stub = v1::GridController::NewStub(channel);
  grpc::ClientContext context;
  SetDeadline(context, deadline);
  v1::GetGridStateResponse response;
  grpc::Status result = stub->GetGridState(&context, v1::GetGridStateRequest(), &response);
  if (result.ok()) AddGridState(response.state(), out);
  return result;
}

// The threads that collect a scrape yield the CPU to the control loop: a
// scrape is never more urgent than a setpoint (on Linux a thread's nice
// value is its own).
void LowerThisThreadsPriority() {
  thread_local bool lowered = false;
  if (lowered) return;
  lowered = true;
  if (setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), kScrapeNice) != 0) {
    kLog.Debug("cannot lower the scrape thread's priority: %s", std::strerror(errno));
  }
}

}  // namespace

SiteCollector::SiteCollector(PeerChannels peers, std::shared_ptr<const StreamMetrics> streams,
                             BuildInfo build, absl::Duration deadline)
    : peers_(std::move(peers)),
      streams_(std::move(streams)),
      build_(std::move(build)),
      deadline_(deadline) {}

std::vector<prometheus::MetricFamily> SiteCollector::Collect() const {
  LowerThisThreadsPriority();
  FamilySet out;
  out.Gauge("evgate_build_info", {build_.version, build_.revision}, 1);
  // One peer after the other on the scrape's own thread: a thread per peer
  // and scrape made the exporter's RSS 79 MB instead of 52 MB at 1,000 EVSEs
  // (a glibc malloc arena each; docs/performance.md), for a few ms less.
  auto read = [&](const char* service, const std::shared_ptr<grpc::Channel>& channel,
                  grpc::Status (*reader)(const std::shared_ptr<grpc::Channel>&, absl::Duration,
                                         FamilySet&)) {
    if (channel == nullptr) return false;
    PeerRead result =
        Timed(service, [&](FamilySet& samples) { return reader(channel, deadline_, samples); });
    out.Gauge("evgate_up", {service}, result.ok ? 1 : 0);
    out.Gauge("evgate_peer_read_seconds", {service}, result.seconds);
    if (result.ok) out.Merge(std::move(result.samples));
    return result.ok;
  };
  const bool load_balancer_up = read("load_balancer", peers_.load_balancer, &ReadLoadBalancer);
  read("device_drivers", peers_.device_drivers, &ReadDevices);
  const bool session_up = read("session", peers_.session, &ReadSessions);
  read("ocpp_bridge", peers_.ocpp_bridge, &ReadOcpp);
  read("grid_controller", peers_.grid_controller, &ReadGrid);
  if (streams_ != nullptr) streams_->AddTo(out, load_balancer_up, session_up);
  AddProcessMetrics(out);
  for (const std::string& error : out.errors()) kLog.Error("metric not served: %s", error);
  return out.Take();
}

}  // namespace evgate::metrics

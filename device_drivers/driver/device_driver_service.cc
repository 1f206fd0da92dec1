#include "device_drivers/driver/device_driver_service.h"

#include <algorithm>
#include <deque>
#include <optional>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/util/time_util.h"
#include "runtime/log.h"
#include "site_controller/config/api_conversions.h"

namespace evgate::devices {
namespace {

using ::google::protobuf::util::TimeUtil;

log::Logger kLog("device_drivers");

constexpr int kDefaultPageSize = 100;
constexpr int kMaxPageSize = 1000;
constexpr absl::Duration kMinTelemetryInterval = absl::Milliseconds(100);
constexpr absl::Duration kMaxTelemetryInterval = absl::Hours(1);
// How often a waiting stream looks at cancellation and held-back telemetry.
constexpr absl::Duration kStreamPoll = absl::Milliseconds(50);

// How a setpoint changes what its EVSE may draw, in the order a bus gets
// them: decreases first (they make the room the increases then use), then
// setpoints whose EVSE's value in force is unknown (each may be a decrease),
// then the rest (increases, unchanged values).
enum class Change { kDecrease = 0, kUnknown = 1, kOther = 2 };

Change ChangeOf(const v1::SetpointValue& next, const std::optional<v1::SetpointValue>& now) {
  if (next.has_pause()) {
    return now.has_value() && now->has_pause() ? Change::kOther : Change::kDecrease;
  }
  if (!now.has_value()) return Change::kUnknown;
  if (now->has_pause()) return Change::kOther;  // anything but a pause is more
  if (next.has_current_limit_a() && now->has_current_limit_a()) {
    // Lower on any phase: it frees room on that phase.
    const v1::PhaseValues& a = next.current_limit_a();
    const v1::PhaseValues& b = now->current_limit_a();
    const bool lower = (a.has_l1() && b.has_l1() && a.l1() < b.l1()) ||
                       (a.has_l2() && b.has_l2() && a.l2() < b.l2()) ||
                       (a.has_l3() && b.has_l3() && a.l3() < b.l3());
    return lower ? Change::kDecrease : Change::kOther;
  }
  if (next.has_power_limit_w() && now->has_power_limit_w()) {
    // Negative is discharge: a lower value always draws less from the site.
    return next.power_limit_w() < now->power_limit_w() ? Change::kDecrease : Change::kOther;
  }
  return Change::kUnknown;  // a current after a power limit or the reverse
}

}  // namespace

// One WatchDevices call: its filter, its queue and its telemetry throttle.
class DeviceDriverService::Stream {
 public:
  Stream(std::set<std::string> devices, absl::Duration telemetry_interval, size_t max_queued)
      : devices_(std::move(devices)),
        telemetry_interval_(telemetry_interval),
        max_queued_(max_queued) {}

  bool Selects(const std::string& device_id) const {
    return devices_.empty() || devices_.count(device_id) > 0;
  }

  // Called from any thread with each published event.
  void Offer(const v1::WatchDevicesResponse& event, absl::Time now) {
    if (!Selects(event.device_id())) return;
    absl::MutexLock lock(&mu_);
    if (ended_.has_value()) return;
    if (event.has_telemetry()) {
      if (telemetry_interval_ == absl::ZeroDuration()) return;
      auto last = last_telemetry_.find(event.device_id());
      if (last != last_telemetry_.end() && now - last->second < telemetry_interval_) {
        held_[event.device_id()] = event;  // the latest sample wins
        return;
      }
      last_telemetry_[event.device_id()] = now;
      held_.erase(event.device_id());
    } else if (auto held = held_.find(event.device_id()); held != held_.end()) {
      // A held-back sample is never overtaken by a later event of its
      // device: a session that ends on this event ends with the last meter
      // value, not the one before it.
      if (!Push(std::move(held->second))) return;
      held_.erase(held);
      last_telemetry_[event.device_id()] = now;
    }
    Push(event);
  }

  // Queues `event`; false (and the stream ends) when the client is too far
  // behind.
  bool Push(v1::WatchDevicesResponse event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (queue_.size() >= max_queued_) {
      ended_ = grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                            absl::StrFormat("the client fell more than %d events behind; reconnect "
                                            "for fresh snapshots",
                                            max_queued_));
      return false;
    }
    queue_.push_back(std::move(event));
    return true;
  }

  void End(grpc::Status status) {
    absl::MutexLock lock(&mu_);
    if (!ended_.has_value()) ended_ = std::move(status);
  }

  // Waits up to `wait` for the next event. Returns the event, or nullopt when
  // there is none yet; sets `*ended` when the stream must end.
  std::optional<v1::WatchDevicesResponse> Take(absl::Time now, absl::Duration wait,
                                               std::optional<grpc::Status>* ended) {
    absl::MutexLock lock(&mu_);
    ReleaseHeldLocked(now);
    if (queue_.empty() && !ended_.has_value()) {
      mu_.AwaitWithTimeout(absl::Condition(
                               +[](Stream* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu_) {
                                 return !s->queue_.empty() || s->ended_.has_value();
                               },
                               this),
                           wait);
    }
    if (ended_.has_value()) {
      *ended = ended_;
      return std::nullopt;
    }
    if (queue_.empty()) return std::nullopt;
    v1::WatchDevicesResponse event = std::move(queue_.front());
    queue_.pop_front();
    return event;
  }

 private:
  void ReleaseHeldLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (auto it = held_.begin(); it != held_.end();) {
      absl::Time& last = last_telemetry_[it->first];
      if (now - last >= telemetry_interval_) {
        last = now;
        queue_.push_back(std::move(it->second));
        it = held_.erase(it);
      } else {
        ++it;
      }
    }
  }

  const std::set<std::string> devices_;  // empty = all
  const absl::Duration telemetry_interval_;
  const size_t max_queued_;

  absl::Mutex mu_;
  std::deque<v1::WatchDevicesResponse> queue_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, absl::Time> last_telemetry_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, v1::WatchDevicesResponse> held_ ABSL_GUARDED_BY(mu_);
  std::optional<grpc::Status> ended_ ABSL_GUARDED_BY(mu_);
};

DeviceDriverService::DeviceDriverService(std::vector<std::unique_ptr<DeviceBackend>> backends,
                                         const Clock& clock, DeviceDriverOptions options)
    : backends_(std::move(backends)), clock_(clock), options_(options) {
  for (size_t lane = 0; lane < backends_.size(); ++lane) {
    DeviceBackend* backend = backends_[lane].get();
    for (const std::string& id : backend->DeviceIds()) device_owner_[id] = backend;
    for (const std::string& id : backend->EvseIds()) evse_lane_[id] = lane;
    lanes_.push_back(std::make_unique<Lane>());
  }
  absl::MutexLock lock(&sequence_mu_);
  next_ticket_.assign(backends_.size(), 0);
}

DeviceDriverService::~DeviceDriverService() { Stop(); }

absl::Status DeviceDriverService::Start() {
  for (const auto& backend : backends_) {
    backend->SetSink(this);
    absl::Status status = backend->Start();
    if (!status.ok()) {
      Stop();
      return absl::Status(status.code(),
                          absl::StrCat("bus ", backend->bus_id(), ": ", status.message()));
    }
    ++started_;
    kLog.Info("bus %s: %d devices", backend->bus_id(), backend->DeviceIds().size());
  }
  return absl::OkStatus();
}

void DeviceDriverService::Stop() {
  {
    absl::MutexLock lock(&streams_mu_);
    stopping_ = true;
    for (Stream* stream : streams_) {
      stream->End(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the device driver is stopping"));
    }
  }
  while (started_ > 0) {
    backends_[--started_]->Stop();
  }
}

void DeviceDriverService::Publish(v1::WatchDevicesResponse event) {
  const absl::Time now = clock_.Now();
  absl::MutexLock lock(&streams_mu_);
  for (Stream* stream : streams_) stream->Offer(event, now);
}

DeviceBackend* DeviceDriverService::BackendOfDevice(const std::string& device_id) const {
  auto it = device_owner_.find(device_id);
  return it == device_owner_.end() ? nullptr : it->second;
}

grpc::Status DeviceDriverService::ListDevices(grpc::ServerContext*,
                                              const v1::ListDevicesRequest* request,
                                              v1::ListDevicesResponse* response) {
  if (request->page_size() < 0) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "page_size must not be negative");
  }
  const int page_size =
      request->page_size() == 0 ? kDefaultPageSize : std::min(request->page_size(), kMaxPageSize);
  // The page token is the last device id of the previous page: device ids are
  // stable, so paging survives devices going stale or coming back.
  auto it = request->page_token().empty() ? device_owner_.begin()
                                          : device_owner_.upper_bound(request->page_token());
  for (; it != device_owner_.end(); ++it) {
    std::optional<v1::DeviceState> state = it->second->GetDevice(it->first);
    if (!state.has_value()) continue;
    if (request->kind() != v1::DEVICE_KIND_UNSPECIFIED && state->kind() != request->kind()) {
      continue;
    }
    if (response->devices_size() == page_size) {
      response->set_next_page_token(response->devices(page_size - 1).device_id());
      break;
    }
    *response->add_devices() = std::move(*state);
  }
  return grpc::Status::OK;
}

grpc::Status DeviceDriverService::ListBuses(grpc::ServerContext*, const v1::ListBusesRequest*,
                                            v1::ListBusesResponse* response) {
  std::vector<v1::BusHealth> buses;
  buses.reserve(backends_.size());
  for (const std::unique_ptr<DeviceBackend>& backend : backends_) {
    buses.push_back(backend->GetBusHealth());
  }
  std::sort(buses.begin(), buses.end(),
            [](const v1::BusHealth& a, const v1::BusHealth& b) { return a.bus_id() < b.bus_id(); });
  for (v1::BusHealth& bus : buses) *response->add_buses() = std::move(bus);
  return grpc::Status::OK;
}

grpc::Status DeviceDriverService::GetDevice(grpc::ServerContext*,
                                            const v1::GetDeviceRequest* request,
                                            v1::GetDeviceResponse* response) {
  DeviceBackend* backend = BackendOfDevice(request->device_id());
  std::optional<v1::DeviceState> state;
  if (backend != nullptr) state = backend->GetDevice(request->device_id());
  if (!state.has_value()) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("no device \"", request->device_id(),
                                     "\" on this driver; `evgatectl devices list` shows them"));
  }
  *response->mutable_device() = std::move(*state);
  return grpc::Status::OK;
}

grpc::Status DeviceDriverService::WatchDevices(
    grpc::ServerContext* context, const v1::WatchDevicesRequest* request,
    grpc::ServerWriter<v1::WatchDevicesResponse>* writer) {
  std::set<std::string> selected(request->device_ids().begin(), request->device_ids().end());
  for (const std::string& id : selected) {
    if (BackendOfDevice(id) == nullptr) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND,
                          absl::StrCat("no device \"", id, "\" on this driver"));
    }
  }
  absl::Duration interval = options_.default_telemetry_interval;
  if (request->has_telemetry_interval()) {
    interval = api::FromProto(request->telemetry_interval());
    if (interval < absl::ZeroDuration()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "telemetry_interval must not be negative");
    }
    if (interval != absl::ZeroDuration()) {
      interval = std::clamp(interval, kMinTelemetryInterval, kMaxTelemetryInterval);
    }
  }

  // Registered before the snapshots are read, so that no change between the
  // snapshot and the first event can be lost (it may arrive twice).
  Stream stream(selected, interval, options_.max_queued_events);
  {
    absl::MutexLock lock(&streams_mu_);
    if (stopping_) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the device driver is stopping");
    }
    streams_.insert(&stream);
  }
  struct Unregister {
    DeviceDriverService* service;
    Stream* stream;
    ~Unregister() {
      absl::MutexLock lock(&service->streams_mu_);
      service->streams_.erase(stream);
    }
  } unregister{this, &stream};

  uint64_t sequence = 0;
  auto write = [&](v1::WatchDevicesResponse& event) {
    event.set_sequence(++sequence);
    return writer->Write(event);
  };
  for (const auto& [id, backend] : device_owner_) {
    if (!stream.Selects(id)) continue;
    std::optional<v1::DeviceState> state = backend->GetDevice(id);
    if (!state.has_value()) continue;
    v1::WatchDevicesResponse event;
    *event.mutable_at() = api::ToProto(clock_.Now());
    event.set_device_id(id);
    *event.mutable_snapshot() = std::move(*state);
    if (!write(event)) return grpc::Status::OK;  // the client went away
  }
  v1::WatchDevicesResponse complete;
  *complete.mutable_at() = api::ToProto(clock_.Now());
  complete.mutable_initial_snapshot_complete();
  if (!write(complete)) return grpc::Status::OK;

  while (!context->IsCancelled()) {
    std::optional<grpc::Status> ended;
    std::optional<v1::WatchDevicesResponse> event = stream.Take(clock_.Now(), kStreamPoll, &ended);
    if (ended.has_value()) return *ended;
    if (event.has_value() && !write(*event)) break;
  }
  return grpc::Status::OK;
}

grpc::Status DeviceDriverService::ApplySetpoints(grpc::ServerContext*,
                                                 const v1::ApplySetpointsRequest* request,
                                                 v1::ApplySetpointsResponse* response) {
  std::set<std::string> seen;
  for (int i = 0; i < request->setpoints_size(); ++i) {
    const v1::Setpoint& setpoint = request->setpoints(i);
    if (setpoint.evse_id().empty()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          absl::StrFormat("setpoints[%d].evse_id is empty", i));
    }
    if (!seen.insert(setpoint.evse_id()).second) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          absl::StrFormat("setpoints[%d]: EVSE \"%s\" appears more than once", i,
                                          setpoint.evse_id()));
    }
    if (setpoint.value().kind_case() == v1::SetpointValue::KIND_NOT_SET) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          absl::StrFormat("setpoints[%d].value: set exactly one of "
                                          "current_limit_a, power_limit_w, pause",
                                          i));
    }
  }
  if (request->sequence() == 0) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "sequence is required (not 0); GetControllerSequence says where this "
                        "controller_id stands");
  }
  absl::Duration ttl = std::min(options_.default_setpoint_ttl, options_.setpoint_ttl_cap);
  std::string ttl_note;  // set when the requested TTL was clamped
  if (request->has_ttl()) {
    ttl = api::FromProto(request->ttl());
    if (ttl <= absl::ZeroDuration()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "ttl must be positive (leave it out for the site default)");
    }
    if (ttl > options_.setpoint_ttl_cap) {
      ttl_note = absl::StrCat("ttl ", absl::FormatDuration(ttl), " capped to ",
                              absl::FormatDuration(options_.setpoint_ttl_cap),
                              " (the site's setpoint TTL)");
      ttl = options_.setpoint_ttl_cap;
    }
  }

  // Each backend's part, by lane (= index in backends_); unknown EVSEs are
  // answered here.
  std::vector<std::vector<int>> parts(backends_.size());
  std::vector<v1::SetpointResult> results(request->setpoints_size());
  for (int i = 0; i < request->setpoints_size(); ++i) {
    const std::string& evse_id = request->setpoints(i).evse_id();
    auto owner = evse_lane_.find(evse_id);
    if (owner == evse_lane_.end()) {
      results[i].set_evse_id(evse_id);
      results[i].set_status(v1::SETPOINT_STATUS_REJECTED);
      results[i].set_reason(v1::SETPOINT_REJECT_REASON_UNKNOWN_EVSE);
      results[i].set_message(absl::StrCat("EVSE \"", evse_id, "\" is not on this driver"));
      continue;
    }
    parts[owner->second].push_back(i);
  }

  // The only section all buses share: accept the sequence and take a ticket
  // on each lane the batch uses, so that on every bus batches are applied in
  // the order they were accepted.
  std::vector<Part> work;
  {
    absl::MutexLock lock(&sequence_mu_);
    if (grpc::Status status = CheckSequenceLocked(*request); !status.ok()) return status;
    last_sequence_[request->controller_id()] = request->sequence();
    for (size_t lane = 0; lane < parts.size(); ++lane) {
      if (parts[lane].empty()) continue;
      work.push_back(Part{lane, next_ticket_[lane]++, std::move(parts[lane])});
    }
  }

  // Every part runs at once (the last on this thread); each waits only for
  // its own bus. Every ticket taken above is served, whatever happens, or
  // its lane would stop.
  const BatchContext batch{request, ttl, ttl_note, &results};
  std::vector<std::thread> others;
  others.reserve(work.empty() ? 0 : work.size() - 1);
  for (size_t k = 0; k + 1 < work.size(); ++k) {
    others.emplace_back([this, &batch, &part = work[k]] { ApplyPart(part, batch); });
  }
  if (!work.empty()) ApplyPart(work.back(), batch);
  for (std::thread& thread : others) thread.join();

  response->set_batch_id(request->batch_id());
  response->set_sequence(request->sequence());
  for (v1::SetpointResult& result : results) *response->add_results() = std::move(result);
  return grpc::Status::OK;
}

void DeviceDriverService::ApplyPart(const Part& part, const BatchContext& batch) {
  Lane& lane = *lanes_[part.lane];
  struct Turn {
    Lane* lane;
    uint64_t ticket;
  } turn{&lane, part.ticket};
  lane.mu.LockWhen(absl::Condition(
      +[](Turn* t) ABSL_NO_THREAD_SAFETY_ANALYSIS { return t->lane->now_serving == t->ticket; },
      &turn));
  lane.mu.Unlock();  // later tickets wait for now_serving, not for the lock

  // Decreases first, judged against what is in force now that every earlier
  // batch on this bus is done; otherwise in request order.
  DeviceBackend* backend = backends_[part.lane].get();
  const size_t n = part.indices.size();
  std::vector<std::string> evse_ids;
  evse_ids.reserve(n);
  for (int i : part.indices) evse_ids.push_back(batch.request->setpoints(i).evse_id());
  std::vector<std::optional<v1::SetpointValue>> in_force = backend->SetpointsInForce(evse_ids);
  in_force.resize(n);  // a short answer counts as unknown
  std::vector<Change> change(n);
  for (size_t k = 0; k < n; ++k) {
    change[k] = ChangeOf(batch.request->setpoints(part.indices[k]).value(), in_force[k]);
  }
  std::vector<size_t> order(n);  // positions in part.indices, in bus order
  for (size_t k = 0; k < n; ++k) order[k] = k;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return change[a] < change[b]; });
  std::vector<v1::Setpoint> setpoints;
  setpoints.reserve(n);
  for (size_t k : order) setpoints.push_back(batch.request->setpoints(part.indices[k]));

  std::vector<v1::SetpointResult> answers =
      backend->ApplySetpoints(setpoints, batch.ttl, batch.request->batch_id());

  {
    absl::MutexLock lock(&lane.mu);
    ++lane.now_serving;
  }
  // Each part writes only its own indices of `results`.
  for (size_t k = 0; k < n; ++k) {
    v1::SetpointResult& result = (*batch.results)[part.indices[order[k]]];
    if (k < answers.size()) {
      result = std::move(answers[k]);
      if (!batch.ttl_note.empty()) {
        result.set_message(result.message().empty()
                               ? batch.ttl_note
                               : absl::StrCat(result.message(), "; ", batch.ttl_note));
      }
    } else {  // a backend bug; say so rather than pretend
      result.set_evse_id(setpoints[k].evse_id());
      result.set_status(v1::SETPOINT_STATUS_REJECTED);
      result.set_reason(v1::SETPOINT_REJECT_REASON_DEVICE_REJECTED);
      result.set_message(absl::StrCat("bus ", backend->bus_id(), " returned no result"));
    }
  }
}

grpc::Status DeviceDriverService::CheckSequenceLocked(const v1::ApplySetpointsRequest& request) {
  const uint64_t sequence = request.sequence();
  auto last = last_sequence_.find(request.controller_id());
  if (last == last_sequence_.end()) {
    if (sequence > options_.max_first_sequence) {
      return grpc::Status(
          grpc::StatusCode::INVALID_ARGUMENT,
          absl::StrFormat("sequence %d of controller \"%s\" (not seen yet) is above the "
                          "maximum first sequence %d; GetControllerSequence says where to start",
                          sequence, request.controller_id(), options_.max_first_sequence));
    }
    return grpc::Status::OK;
  }
  if (sequence <= last->second) {
    return grpc::Status(
        grpc::StatusCode::ABORTED,
        absl::StrFormat("sequence %d of controller \"%s\" is not newer than the last applied %d",
                        sequence, request.controller_id(), last->second));
  }
  if (sequence - last->second > options_.sequence_window) {
    return grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrFormat("sequence %d of controller \"%s\" is more than the window %d past the "
                        "last applied %d; GetControllerSequence says where to continue",
                        sequence, request.controller_id(), options_.sequence_window, last->second));
  }
  return grpc::Status::OK;
}

grpc::Status DeviceDriverService::GetControllerSequence(
    grpc::ServerContext*, const v1::GetControllerSequenceRequest* request,
    v1::GetControllerSequenceResponse* response) {
  {
    absl::MutexLock lock(&sequence_mu_);
    auto last = last_sequence_.find(request->controller_id());
    response->set_last_applied_sequence(last == last_sequence_.end() ? 0 : last->second);
  }
  response->set_window(options_.sequence_window);
  response->set_max_sequence(options_.max_first_sequence);
  return grpc::Status::OK;
}

grpc::Status DeviceDriverService::Command(grpc::ServerContext*, const v1::CommandRequest* request,
                                          v1::CommandResponse* response) {
  DeviceBackend* backend = BackendOfDevice(request->device_id());
  if (backend == nullptr) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("no device \"", request->device_id(), "\" on this driver"));
  }
  if (request->command_case() == v1::CommandRequest::COMMAND_NOT_SET) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no command set");
  }
  *response = backend->Command(*request);
  return grpc::Status::OK;
}

}  // namespace evgate::devices

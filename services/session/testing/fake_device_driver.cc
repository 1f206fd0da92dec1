#include "services/session/testing/fake_device_driver.h"

namespace evgate::session::testing {

void FakeDeviceDriver::SetDevice(const v1::DeviceState& device) {
  v1::WatchDevicesResponse event;
  event.set_device_id(device.device_id());
  *event.mutable_snapshot() = device;
  Publish(event);
}

void FakeDeviceDriver::Apply(const v1::WatchDevicesResponse& event) {
  if (event.has_snapshot()) {
    devices_[event.device_id()] = event.snapshot();
    return;
  }
  auto device = devices_.find(event.device_id());
  if (device == devices_.end()) return;
  auto evse_of = [&](const std::string& evse_id) -> v1::EvseState* {
    for (v1::EvseState& e : *device->second.mutable_evses()) {
      if (e.evse_id() == evse_id) return &e;
    }
    return nullptr;
  };
  if (event.has_evse_state_change()) {
    if (v1::EvseState* e = evse_of(event.evse_state_change().state().evse_id())) {
      *e = event.evse_state_change().state();
    }
  } else if (event.has_telemetry()) {
    for (const v1::EvseTelemetry& t : event.telemetry().evses()) {
      if (v1::EvseState* e = evse_of(t.evse_id())) {
        e->mutable_measurements()->MergeFrom(t.measurements());
      }
    }
  } else if (event.has_link_state_change()) {
    *device->second.mutable_link() = event.link_state_change().link();
  }
}

void FakeDeviceDriver::Publish(const v1::WatchDevicesResponse& event) {
  absl::MutexLock lock(&mu_);
  Apply(event);
  for (Stream* stream : streams_) stream->queue.push_back(event);
}

void FakeDeviceDriver::EndStreams(const grpc::Status& status) {
  absl::MutexLock lock(&mu_);
  for (Stream* stream : streams_) stream->end = status;
}

int FakeDeviceDriver::streams_opened() const {
  absl::MutexLock lock(&mu_);
  return opened_;
}

int FakeDeviceDriver::streams_open() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(streams_.size());
}

grpc::Status FakeDeviceDriver::WatchDevices(grpc::ServerContext* context,
                                            const v1::WatchDevicesRequest*,
                                            grpc::ServerWriter<v1::WatchDevicesResponse>* writer) {
  Stream stream;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, device] : devices_) {
      v1::WatchDevicesResponse& snapshot = stream.queue.emplace_back();
      snapshot.set_device_id(id);
      *snapshot.mutable_snapshot() = device;
    }
    stream.queue.emplace_back().mutable_initial_snapshot_complete();
    streams_.insert(&stream);
    ++opened_;
  }
  uint64_t sequence = 0;
  grpc::Status result = grpc::Status::OK;
  while (!context->IsCancelled()) {
    v1::WatchDevicesResponse event;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [&stream]() -> bool { return !stream.queue.empty() || stream.end.has_value(); };
      mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Milliseconds(100));
      if (stream.end) {
        result = *stream.end;
        break;
      }
      if (stream.queue.empty()) continue;
      event = std::move(stream.queue.front());
      stream.queue.pop_front();
    }
    event.set_sequence(++sequence);
    if (!writer->Write(event)) break;
  }
  absl::MutexLock lock(&mu_);
  streams_.erase(&stream);
  return result;
}

}  // namespace evgate::session::testing

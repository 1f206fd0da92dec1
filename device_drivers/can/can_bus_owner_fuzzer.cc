// Fuzz entry for the CAN bus owner as a whole: arbitrary frames from the bus
// (any id, DLC and payload), time passing and setpoint batches, in any order.
// The owner must never crash, and everything it puts on the bus must be a
// valid frame of the protocol within the EVSE's limits: a bad frame never
// turns into a wrong setpoint.
//
// Input: a sequence of records, each starting with an op byte:
//   op % 4 == 0  a frame: 2 bytes id (11 bits; op bit 2 = extended, 29 bits
//                from 4 bytes), 1 byte DLC, 8 bytes data
//   op % 4 == 1  time passes: 1 byte x 20 ms
//   op % 4 == 2  ApplySetpoints: 1 byte EVSE (a, b or unknown), 1 byte
//                current in 0.25 A (pause when 255), 1 byte TTL in 100 ms
//                (op bit 4 set: a Command instead: 1 byte device, 1 byte
//                kind, 2 bytes arguments: availability, SetFailsafe current
//                in 0.25 A and timeout in 100 ms, or a status report)
//   op % 4 == 3  a well-formed Status of wallbox a or b from 8 bytes
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "device_drivers/can/can_bus_owner.h"
#include "device_drivers/can/testdata/queue_can_bus.h"
#include "device_drivers/can/wallbox_protocol.h"
#include "runtime/clock.h"
#include "runtime/log.h"

namespace evgate::can {
namespace {

namespace v1 = evgate::v1;

class NullSink : public devices::DeviceEventSink {
 public:
  void Publish(v1::WatchDevicesResponse) override {}
};

class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  uint8_t Byte() { return pos_ < size_ ? data_[pos_++] : 0; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

struct Limits {
  int address;
  double min;
  double max;
};
constexpr Limits kLimits[] = {{1, 6, 32}, {3, 6, 16}};

// Every frame the owner sent must decode and respect the EVSE's limits.
void CheckSent(CanBus& peer) {
  while (true) {
    BusEvent event = peer.Receive(absl::ZeroDuration());
    if (event.kind != BusEventKind::kFrame) return;
    absl::StatusOr<wallbox::Message> m = wallbox::Decode(*event.frame);
    if (!m.ok()) std::abort();
    auto limits_of = [](int address) -> const Limits* {
      for (const Limits& l : kLimits) {
        if (l.address == address) return &l;
      }
      return nullptr;
    };
    if (const auto* sp = std::get_if<wallbox::Setpoint>(&*m)) {
      const Limits* l = limits_of(sp->address);
      if (l == nullptr) std::abort();
      if (sp->max_current_a != 0 && (sp->max_current_a < l->min || sp->max_current_a > l->max)) {
        std::abort();
      }
    } else if (const auto* wd = std::get_if<wallbox::WatchdogConfig>(&*m)) {
      const Limits* l = limits_of(wd->address);
      if (l == nullptr || wd->failsafe_current_a > l->max) std::abort();
    } else if (!std::holds_alternative<wallbox::AvailableCurrent>(*m)) {
      std::abort();  // the owner only sends controller messages
    }
  }
}

int RunOne(const uint8_t* data, size_t size) {
  log::SetMinLevel(log::Level::kError);
  FakeClock clock;
  std::deque<CanFrame> to_owner, to_peer;
  auto peer = std::make_unique<QueueCanBus>(&to_peer, &to_owner);

  CanWallboxConfig a;
  a.device_id = "a";
  a.evse_id = "wa";
  a.address = 1;
  a.phases = {site::Phase::kL2, site::Phase::kL3, site::Phase::kL1};
  a.failsafe_current_a = 8;
  CanWallboxConfig b;
  b.device_id = "b";
  b.evse_id = "wb";
  b.address = 3;
  b.phases = {site::Phase::kL1};
  b.max_current_a = 16;
  b.failsafe_current_a = 0;
  CanBusOwnerOptions options;
  options.bus_id = "fuzz";
  CanBusOwner owner(options, {a, b}, std::make_unique<QueueCanBus>(&to_owner, &to_peer), clock);
  NullSink sink;
  owner.SetSink(&sink);
  if (!owner.Open().ok()) std::abort();

  Input in(data, size);
  int ops = 0;
  while (!in.empty() && ++ops < 256) {
    const uint8_t op = in.Byte();
    switch (op % 4) {
      case 0: {
        CanFrame frame;
        frame.extended = (op & 4) != 0;
        if (frame.extended) {
          frame.id = (static_cast<uint32_t>(in.Byte()) << 24 | in.Byte() << 16 | in.Byte() << 8 |
                      in.Byte()) &
                     0x1FFFFFFF;
        } else {
          frame.id = (static_cast<uint32_t>(in.Byte()) << 8 | in.Byte()) & 0x7FF;
        }
        frame.remote = (op & 8) != 0;
        frame.dlc = in.Byte() % 9;
        for (uint8_t& d : frame.data) d = in.Byte();
        if (!peer->Send(frame).ok()) std::abort();
        break;
      }
      case 1:
        clock.Advance(absl::Milliseconds(20) * in.Byte());
        break;
      case 2: {
        if (op & 16) {
          v1::CommandRequest request;
          request.set_device_id(in.Byte() % 2 ? "a" : "b");
          const uint8_t kind = in.Byte();
          const uint8_t arg1 = in.Byte();
          const uint8_t arg2 = in.Byte();
          if (kind % 3 == 0) {
            request.mutable_change_availability()->set_availability(
                static_cast<v1::Availability>(arg1 % 3));
          } else if (kind % 3 == 1) {
            v1::SetFailsafeCommand* set = request.mutable_set_failsafe();
            v1::PhaseValues* c = set->mutable_value()->mutable_current_limit_a();
            c->set_l1(arg1 * 0.25);
            c->set_l2(arg1 * 0.25);
            c->set_l3(arg1 * 0.25);
            set->mutable_watchdog_timeout()->set_seconds(arg2 / 10);
            set->mutable_watchdog_timeout()->set_nanos((arg2 % 10) * 100'000'000);
          } else {
            request.mutable_trigger_status_report();
          }
          owner.Command(request);
          break;
        }
        const uint8_t which = in.Byte();
        const uint8_t amps = in.Byte();
        const absl::Duration ttl = absl::Milliseconds(100) * in.Byte();
        v1::Setpoint sp;
        sp.set_evse_id(which % 3 == 0 ? "wa" : which % 3 == 1 ? "wb" : "nope");
        if (amps == 255) {
          sp.mutable_value()->mutable_pause();
        } else {
          v1::PhaseValues* c = sp.mutable_value()->mutable_current_limit_a();
          c->set_l1(amps * 0.25);
          c->set_l2(amps * 0.25 + (which & 8));
          c->set_l3(amps * 0.25);
        }
        owner.ApplySetpoints({sp}, ttl, "fuzz");
        break;
      }
      case 3: {
        wallbox::Status s;
        s.address = (op & 4) ? 3 : 1;
        const uint8_t flags = in.Byte();
        s.state = static_cast<wallbox::IecState>(flags % 6);
        s.relay_closed = flags & 8;
        s.failsafe_active = flags & 16;
        s.paused = flags & 32;
        s.watchdog_configured = flags & 64;
        s.counter = in.Byte() % 16;
        s.applied_sequence = in.Byte() % 16;
        s.errors = static_cast<uint16_t>(in.Byte() << 8 | in.Byte());
        for (double& c : s.current_a) c = (in.Byte() % 200) * 0.5;
        absl::StatusOr<CanFrame> frame = wallbox::Encode(s);
        if (!frame.ok() || !peer->Send(*frame).ok()) std::abort();
        break;
      }
    }
    for (int i = 0; i < 64 && owner.PollOnce(absl::ZeroDuration()); ++i) {
    }
    CheckSent(*peer);
    if (!owner.GetDevice("a").has_value() || !owner.GetDevice("b").has_value()) std::abort();
  }
  return 0;
}

}  // namespace
}  // namespace evgate::can

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return evgate::can::RunOne(data, size);
}

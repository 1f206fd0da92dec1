// A CanBus over two caller-owned queues, for fuzzers and benchmarks: what
// one end sends, the other end's Receive() returns at once; an empty queue is
// an immediate kTimeout (the loopback bus waits on a condition variable even
// for a zero timeout, which would dominate a fuzz run or a benchmark).
//
// Thread-compatible (single-threaded use only).
#ifndef EVGATE_DEVICE_DRIVERS_CAN_TESTDATA_QUEUE_CAN_BUS_H_
#define EVGATE_DEVICE_DRIVERS_CAN_TESTDATA_QUEUE_CAN_BUS_H_

#include <deque>
#include <string>

#include "device_drivers/can/can_bus.h"

namespace evgate::can {

class QueueCanBus : public CanBus {
 public:
  // Receives from `in`, sends to `out`; both must outlive the bus.
  QueueCanBus(std::deque<CanFrame>* in, std::deque<CanFrame>* out) : in_(in), out_(out) {}
  absl::Status Open() override { return absl::OkStatus(); }
  void Close() override {}
  absl::Status Send(const CanFrame& frame) override {
    if (absl::Status status = CheckFrame(frame); !status.ok()) return status;
    out_->push_back(frame);
    return absl::OkStatus();
  }
  BusEvent Receive(absl::Duration) override {
    BusEvent event;
    if (in_->empty()) return event;  // kTimeout
    event.kind = BusEventKind::kFrame;
    event.frame = in_->front();
    in_->pop_front();
    return event;
  }
  std::string Describe() const override { return "queue"; }

 private:
  std::deque<CanFrame>* in_;
  std::deque<CanFrame>* out_;
};

}  // namespace evgate::can

#endif  // EVGATE_DEVICE_DRIVERS_CAN_TESTDATA_QUEUE_CAN_BUS_H_

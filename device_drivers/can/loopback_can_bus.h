// An in-memory CAN bus for tests: one LoopbackCanNetwork is the wire, each
// Endpoint() is a node on it implementing CanBus. Every frame one open
// endpoint sends is received, in order, by every other open endpoint (not by
// the sender, as SocketCAN does by default without CAN_RAW_RECV_OWN_MSGS).
//
// Besides frames, tests can make the bus misbehave the way the transports
// report it: SetInterfaceUp(false) fails Send() with UNAVAILABLE and makes
// Receive() report kInterfaceDown (at once the first time, then after each
// timeout) and kRestarted once the bus is up again; InjectEvent() delivers any
// BusEvent (bus-off, error-passive ...) to one endpoint. An endpoint that does not read keeps at
// most `queue_limit` frames; older ones are dropped and counted, like a full socket buffer.
//
// Receive() waits in real time (it is a condition variable); received_at is
// stamped with the network's Clock, so with a FakeClock the stamps are
// deterministic.
//
// Thread-safety: thread-safe. Endpoints may be used from any threads; the
// network must outlive its endpoints.
#ifndef EVGATE_DEVICE_DRIVERS_CAN_LOOPBACK_CAN_BUS_H_
#define EVGATE_DEVICE_DRIVERS_CAN_LOOPBACK_CAN_BUS_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "device_drivers/can/can_bus.h"
#include "runtime/clock.h"

namespace evgate::can {

class LoopbackCanNetwork {
 public:
  explicit LoopbackCanNetwork(const Clock& clock = SystemClock::Get(), size_t queue_limit = 4096);
  ~LoopbackCanNetwork();
  LoopbackCanNetwork(const LoopbackCanNetwork&) = delete;
  LoopbackCanNetwork& operator=(const LoopbackCanNetwork&) = delete;

  // A new node on the bus, closed until Open(). `name` appears in Describe().
  std::unique_ptr<CanBus> Endpoint(const std::string& name = "");

  // Takes the whole bus down or up (every endpoint sees it).
  void SetInterfaceUp(bool up);
  // Delivers `event` to the endpoint named `name` as its next Receive().
  void InjectEvent(const std::string& name, const BusEvent& event);

  // Frames put on the wire since construction (by any endpoint).
  int64_t frames_sent() const;
  // Frames dropped because the endpoint named `name` did not read in time.
  int64_t frames_dropped(const std::string& name) const;

 private:
  class Node;
  friend class Node;

  absl::Status Send(Node* from, const CanFrame& frame);
  BusEvent Receive(Node* node, absl::Duration timeout);
  void Detach(Node* node);

  const Clock& clock_;
  const size_t queue_limit_;
  mutable absl::Mutex mu_;
  absl::CondVar changed_;
  std::vector<Node*> nodes_ ABSL_GUARDED_BY(mu_);
  bool up_ ABSL_GUARDED_BY(mu_) = true;
  int64_t frames_sent_ ABSL_GUARDED_BY(mu_) = 0;
  int next_id_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace evgate::can

#endif  // EVGATE_DEVICE_DRIVERS_CAN_LOOPBACK_CAN_BUS_H_

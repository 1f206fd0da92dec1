// A Linux SocketCAN interface (can0 on a gateway box, vcan0 in tests) as a
// CanBus: one CAN_RAW socket bound to the interface.
//
// - Receive filters (CAN_RAW_FILTER) from SocketCanOptions::filters, so the
//   kernel drops frames of other protocols on a shared bus.
// - Error frames are enabled (CAN_RAW_ERR_FILTER, every class) and come out
//   of Receive() as bus events: bus-off, error-passive, error-warning,
//   restarted (controller restarted or back to error-active), and kOtherError
//   for protocol violations, missing ACK, lost arbitration, transceiver
//   faults and buffer overflows. TranslateErrorFrame() is that mapping.
// - Interface down/up: when the interface goes down (ENETDOWN) or away
//   (ENODEV), Receive() closes the socket and reports kInterfaceDown; from
//   then on every Receive() tries to reopen every `reopen_interval` (the
//   interface must exist and be up), reports kRestarted as soon as it is back
//   and kInterfaceDown again after each timeout while it is not. Send() while
//   down fails with UNAVAILABLE.
// - Send() waits at most `send_timeout` for room in the socket and in the
//   interface's transmit queue (full when nobody ACKs on a real bus), then
//   fails with DEADLINE_EXCEEDED; it never blocks longer.
// - Received frames carry the kernel's reception time (SO_TIMESTAMPNS,
//   CLOCK_REALTIME), not the time the process got to read them.
//
// Thread-safety: as CanBus: Send() may run concurrently with Receive() on
// another thread; Open()/Close() are not concurrent with either. Stats() is
// thread-safe.
#ifndef EVGATE_DEVICE_DRIVERS_CAN_SOCKETCAN_BUS_H_
#define EVGATE_DEVICE_DRIVERS_CAN_SOCKETCAN_BUS_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "device_drivers/can/can_bus.h"
#include "runtime/clock.h"

namespace evgate::can {

struct SocketCanOptions {
  std::string interface;  // "can0"
  // Frames passing none of these are dropped by the kernel; empty = all.
  std::vector<CanFilter> filters;
  absl::Duration send_timeout = absl::Milliseconds(100);
  // While the interface is down, how often Receive() tries to reopen it.
  absl::Duration reopen_interval = absl::Milliseconds(500);
};

// Counters since construction.
struct SocketCanStats {
  uint64_t frames_sent_total = 0;
  uint64_t frames_received_total = 0;
  uint64_t error_frames_total = 0;
  uint64_t send_timeouts_total = 0;
  uint64_t interface_down_total = 0;  // times the interface was lost
  uint64_t reopened_total = 0;        // times it came back
};

// The bus event for one SocketCAN error frame (`can_id` with CAN_ERR_FLAG set
// and the class bits of linux/can/error.h, `data` its 8 bytes). When a frame
// reports several conditions, the kind is the most serious (bus-off,
// error-passive, error-warning, restarted, other) and `detail` names all of
// them, e.g. "error-passive (tx); tx errors 130, rx errors 0".
BusEvent TranslateErrorFrame(uint32_t can_id, const std::array<uint8_t, 8>& data);

class SocketCanBus final : public CanBus {
 public:
  // `clock` stamps a received frame only when the kernel gave no timestamp.
  SocketCanBus(SocketCanOptions options, const Clock& clock);
  ~SocketCanBus() override;
  SocketCanBus(const SocketCanBus&) = delete;
  SocketCanBus& operator=(const SocketCanBus&) = delete;

  // Opens and binds the socket. NOT_FOUND when the interface does not exist,
  // FAILED_PRECONDITION when it is down, UNAVAILABLE when the kernel has no
  // SocketCAN (module can-raw not loaded) or a socket call fails; every
  // message names the interface and what to do.
  absl::Status Open() override;
  void Close() override;
  absl::Status Send(const CanFrame& frame) override;
  BusEvent Receive(absl::Duration timeout) override;
  std::string Describe() const override;  // "socketcan can0"

  SocketCanStats Stats() const;

 private:
  // Opens a bound socket on the interface (or an error, as Open()).
  absl::StatusOr<int> OpenSocket() const;
  // Replaces the socket (-1 = none) and closes the old one.
  void ReplaceSocket(int fd);
  // Drops the socket after an interface loss; returns the event.
  BusEvent LoseInterface(const std::string& why);
  // Reopen attempts until `deadline` while the interface is gone.
  BusEvent Reopen(absl::Duration timeout);
  bool InterfaceUp(int fd) const;

  const SocketCanOptions options_;
  const Clock& clock_;

  // The socket: replaced only by Open(), Close() and Receive() (the receive
  // thread), under a writer lock; Send() uses it under a reader lock.
  mutable absl::Mutex fd_mu_;
  int fd_ ABSL_GUARDED_BY(fd_mu_) = -1;
  // True after Open() until Close(): the socket may be missing because the
  // interface is down, and Receive() then reopens it.
  bool opened_ = false;

  mutable absl::Mutex stats_mu_;
  SocketCanStats stats_ ABSL_GUARDED_BY(stats_mu_);
};

}  // namespace evgate::can

#endif  // EVGATE_DEVICE_DRIVERS_CAN_SOCKETCAN_BUS_H_

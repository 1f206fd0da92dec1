// A CAN bus as the CAN bus owner and the CAN simulators see it: send and
// receive classic CAN 2.0 frames. Two implementations: SocketCAN (a real or
// virtual Linux CAN interface, can0 / vcan0) and evgate's virtual CAN bus
// over UDP multicast (demo sites and containers, where there is no SocketCAN).
//
// Thread-safety: Send() may be called from any thread concurrently with
// Receive() on another thread. Open()/Close() are not concurrent with either.
#ifndef EVGATE_DEVICE_DRIVERS_CAN_CAN_BUS_H_
#define EVGATE_DEVICE_DRIVERS_CAN_CAN_BUS_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace evgate::can {

// One classic CAN frame.
struct CanFrame {
  uint32_t id = 0;        // 11-bit standard or 29-bit extended identifier
  bool extended = false;  // 29-bit identifier
  bool remote = false;    // RTR frame
  uint8_t dlc = 0;        // 0..8
  std::array<uint8_t, 8> data{};
  // Reception time (set by the bus on Receive; ignored on Send).
  absl::Time received_at;

  friend bool operator==(const CanFrame& a, const CanFrame& b) {
    return a.id == b.id && a.extended == b.extended && a.remote == b.remote && a.dlc == b.dlc &&
           a.data == b.data;
  }
};

// OK when `frame` can go on a classic CAN bus: identifier within 11 bits
// (standard) or 29 bits (extended), dlc at most 8. Both transports check this
// in Send(), so a bad frame never reaches the wire.
absl::Status CheckFrame(const CanFrame& frame);

// "0x18FF0101 [8] 01 02 03 04 05 06 07 08", "0x123 [0] RTR" — for logs.
std::string FrameToString(const CanFrame& frame);

// What Receive() returns besides frames: bus errors reported by the
// controller (SocketCAN error frames) and interface state changes.
enum class BusEventKind {
  kFrame,          // `frame` is set
  kTimeout,        // nothing arrived within the timeout
  kErrorPassive,   // controller error-passive
  kErrorWarning,   // controller error counters above the warning level
  kBusOff,         // controller went bus-off (the bus restarts it)
  kRestarted,      // controller recovered / interface came back up
  kInterfaceDown,  // interface down or gone; Receive keeps trying to reopen
  kOtherError,     // any other error frame (protocol, ACK, transceiver)
};

// A receive filter, with SocketCAN's CAN_RAW_FILTER meaning: a frame passes
// when (frame id & mask) == (id & mask) and its format (standard / extended)
// equals `extended`. A bus given several filters passes a frame that matches
// any of them; an empty list passes everything.
struct CanFilter {
  uint32_t id = 0;
  uint32_t mask = 0;
  bool extended = false;

  bool Matches(const CanFrame& frame) const {
    return frame.extended == extended && (frame.id & mask) == (id & mask);
  }
};

// True when `filters` is empty or one of them matches `frame`.
inline bool PassesFilters(const std::vector<CanFilter>& filters, const CanFrame& frame) {
  if (filters.empty()) return true;
  for (const CanFilter& filter : filters) {
    if (filter.Matches(frame)) return true;
  }
  return false;
}

struct BusEvent {
  BusEventKind kind = BusEventKind::kTimeout;
  std::optional<CanFrame> frame;
  std::string detail;  // human-readable, e.g. "bus-off (tx error counter 256)"
};

class CanBus {
 public:
  virtual ~CanBus() = default;

  // Opens the interface / joins the multicast group.
  virtual absl::Status Open() = 0;
  virtual void Close() = 0;

  // Sends one frame; an error (buffer full, interface down) is returned, not
  // retried.
  virtual absl::Status Send(const CanFrame& frame) = 0;

  // Waits up to `timeout` for the next frame or bus event.
  virtual BusEvent Receive(absl::Duration timeout) = 0;

  // "socketcan can0", "udp 239.255.0.1:15030" — for messages.
  virtual std::string Describe() const = 0;
};

}  // namespace evgate::can

#endif  // EVGATE_DEVICE_DRIVERS_CAN_CAN_BUS_H_

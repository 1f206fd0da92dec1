// evgate's virtual CAN bus: classic CAN frames carried in UDP multicast
// datagrams, for machines without SocketCAN (the demo, containers, CI).
//
// Every endpoint joins one multicast group:port (site.yaml `udp_group` /
// `udp_port`) on one local interface (loopback by default) and sends each
// frame as one datagram to the group. Every other endpoint on the group
// receives it, like every other node on a CAN bus sees a frame; the sender
// recognises its own datagrams by their sender id and drops them (CAN nodes do
// not receive their own frames either). The datagram format is specified in
// docs/protocols/can-udp.md; EncodeUdpCanDatagram / DecodeUdpCanDatagram below
// are its only implementation.
//
// Several processes on one host share the bus: the socket sets SO_REUSEADDR
// (they all bind the same port) and IP_MULTICAST_LOOP (a host's own datagrams
// come back to it), and TTL 0 keeps the frames on the host unless the site
// asks for TTL 1 (the local link).
//
// Unlike a real bus there is no arbitration, no ACK and no error frames: a
// frame nobody listens to is not an error, and Receive() never returns bus
// error events. Datagrams that are not well-formed evgate CAN datagrams
// (wrong magic, unknown version, bad length or fields) are counted in
// Stats().malformed_total, logged, and dropped; they never reach the caller.
//
// Thread-safety: as CanBus: Send() may run concurrently with Receive();
// Open()/Close() are not concurrent with either. Stats() is thread-safe.
#ifndef EVGATE_DEVICE_DRIVERS_CAN_UDP_CAN_BUS_H_
#define EVGATE_DEVICE_DRIVERS_CAN_UDP_CAN_BUS_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "device_drivers/can/can_bus.h"
#include "runtime/clock.h"

namespace evgate::can {

// The datagram format (docs/protocols/can-udp.md).
inline constexpr uint8_t kUdpCanMagic[4] = {'E', 'V', 'C', 'B'};
inline constexpr uint8_t kUdpCanVersion = 1;
inline constexpr size_t kUdpCanHeaderSize = 23;  // everything before the data bytes
inline constexpr size_t kUdpCanMaxDatagramSize = kUdpCanHeaderSize + 8;

// One decoded datagram.
struct UdpCanDatagram {
  uint64_t sender_id = 0;
  uint32_t sequence = 0;
  CanFrame frame;  // received_at is not carried
};

// The datagram for `frame` (which must pass CheckFrame()).
std::vector<uint8_t> EncodeUdpCanDatagram(const UdpCanDatagram& datagram);

// Parses one datagram; InvalidArgument with the reason when it is not a
// well-formed version-1 evgate CAN datagram.
absl::StatusOr<UdpCanDatagram> DecodeUdpCanDatagram(absl::Span<const uint8_t> bytes);

struct UdpCanBusOptions {
  // Name of the virtual bus (site.yaml `interface`), for messages only: the
  // group and port are what identify the bus.
  std::string name;
  std::string group = "239.255.0.1";  // IPv4 multicast group
  // 0 = a free port picked at Open() (tests: later endpoints join port()).
  int port = 15030;
  // Local IPv4 address of the interface to send and join on. Loopback keeps
  // the bus inside the host (several processes, containers with host
  // networking).
  std::string interface_address = "127.0.0.1";
  int ttl = 0;  // multicast TTL: 0 = never leaves the host, 1 = local link
  // Frames not passing these are dropped on receive (counted in
  // filtered_total); empty = receive everything.
  std::vector<CanFilter> filters;
  // Identifies this endpoint's datagrams; 0 = pick a random one at Open().
  uint64_t sender_id = 0;
};

// Counters since construction.
struct UdpCanBusStats {
  uint64_t frames_sent_total = 0;
  uint64_t frames_received_total = 0;  // delivered to the caller
  uint64_t own_dropped_total = 0;      // this endpoint's own datagrams, looped back
  uint64_t filtered_total = 0;         // well-formed, but no filter matched
  uint64_t malformed_total = 0;        // not an evgate CAN datagram, dropped
  uint64_t lost_total = 0;             // gaps in a sender's sequence numbers
  std::string last_malformed;          // reason and source of the last malformed datagram
};

class UdpCanBus final : public CanBus {
 public:
  // `clock` stamps received frames (CanFrame::received_at).
  UdpCanBus(UdpCanBusOptions options, const Clock& clock);
  ~UdpCanBus() override;
  UdpCanBus(const UdpCanBus&) = delete;
  UdpCanBus& operator=(const UdpCanBus&) = delete;

  // Creates the socket, binds group:port, joins the group on the interface.
  // InvalidArgument for a bad group/interface address, Unavailable when a
  // socket call fails (with errno text).
  absl::Status Open() override;
  void Close() override;
  // FailedPrecondition when not open, InvalidArgument for a frame failing
  // CheckFrame(), Unavailable when sendto() fails.
  absl::Status Send(const CanFrame& frame) override;
  // kFrame, kTimeout, or kOtherError when the socket fails (detail = errno
  // text); kInterfaceDown when not open.
  BusEvent Receive(absl::Duration timeout) override;
  std::string Describe() const override;  // "udp vcan-demo 239.255.0.1:15030"

  UdpCanBusStats Stats() const;
  // This endpoint's sender id (valid after Open()).
  uint64_t sender_id() const;
  // The UDP port in use (valid after Open(); the picked one for port 0).
  int port() const { return port_; }

 private:
  // Counts one received datagram (decoded, or the reason it is malformed);
  // true (and `*frame`) when it is for the caller.
  bool Accept(const absl::StatusOr<UdpCanDatagram>& datagram, const std::string& source,
              CanFrame* frame);

  const UdpCanBusOptions options_;
  const Clock& clock_;
  // Written only by Open()/Close(), which are not concurrent with anything.
  int fd_ = -1;
  int port_ = 0;

  mutable absl::Mutex mu_;
  uint64_t sender_id_ ABSL_GUARDED_BY(mu_) = 0;
  uint32_t next_sequence_ ABSL_GUARDED_BY(mu_) = 0;
  UdpCanBusStats stats_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, uint32_t> last_sequence_ ABSL_GUARDED_BY(mu_);
};

}  // namespace evgate::can

#endif  // EVGATE_DEVICE_DRIVERS_CAN_UDP_CAN_BUS_H_

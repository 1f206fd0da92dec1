#include "device_drivers/can/udp_can_bus.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/log.h"

namespace evgate::can {
namespace {

constexpr log::Logger kLog("can-udp");

// Flags byte of the datagram.
constexpr uint8_t kFlagExtended = 0x01;
constexpr uint8_t kFlagRemote = 0x02;
constexpr uint8_t kKnownFlags = kFlagExtended | kFlagRemote;

// The sender tracks at most this many peers' sequence numbers (a virtual bus
// has a few dozen endpoints; a flood of forged ids must not grow memory).
constexpr size_t kMaxTrackedSenders = 256;

// Malformed datagrams are logged individually up to this many, then every
// kMalformedLogEvery-th, so garbage on the port cannot flood the log.
constexpr uint64_t kMalformedLogFirst = 10;
constexpr uint64_t kMalformedLogEvery = 1000;

void PutBe(uint64_t value, int bytes, std::vector<uint8_t>* out) {
  for (int i = bytes - 1; i >= 0; --i) out->push_back(static_cast<uint8_t>(value >> (8 * i)));
}

uint64_t GetBe(absl::Span<const uint8_t> bytes, size_t offset, int count) {
  uint64_t value = 0;
  for (int i = 0; i < count; ++i) value = (value << 8) | bytes[offset + i];
  return value;
}

std::string ErrnoText(int err) {
  char buffer[128];
  // GNU strerror_r returns the message (maybe not in `buffer`).
  return strerror_r(err, buffer, sizeof(buffer));
}

absl::Status SocketError(const std::string& what, int err) {
  return absl::UnavailableError(absl::StrCat(what, ": ", ErrnoText(err)));
}

}  // namespace

std::vector<uint8_t> EncodeUdpCanDatagram(const UdpCanDatagram& datagram) {
  const CanFrame& frame = datagram.frame;
  std::vector<uint8_t> out;
  out.reserve(kUdpCanMaxDatagramSize);
  out.insert(out.end(), std::begin(kUdpCanMagic), std::end(kUdpCanMagic));
  out.push_back(kUdpCanVersion);
  out.push_back((frame.extended ? kFlagExtended : 0) | (frame.remote ? kFlagRemote : 0));
  PutBe(datagram.sender_id, 8, &out);
  PutBe(datagram.sequence, 4, &out);
  PutBe(frame.id, 4, &out);
  out.push_back(frame.dlc);
  if (!frame.remote) {
    for (int i = 0; i < frame.dlc && i < 8; ++i) out.push_back(frame.data[i]);
  }
  return out;
}

absl::StatusOr<UdpCanDatagram> DecodeUdpCanDatagram(absl::Span<const uint8_t> bytes) {
  if (bytes.size() < kUdpCanHeaderSize) {
    return absl::InvalidArgumentError(absl::StrFormat("%d bytes, shorter than the %d-byte header",
                                                      bytes.size(), kUdpCanHeaderSize));
  }
  if (std::memcmp(bytes.data(), kUdpCanMagic, sizeof(kUdpCanMagic)) != 0) {
    return absl::InvalidArgumentError("bad magic (not an evgate CAN datagram)");
  }
  if (bytes[4] != kUdpCanVersion) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "unsupported version %d (this endpoint speaks %d)", bytes[4], kUdpCanVersion));
  }
  const uint8_t flags = bytes[5];
  if ((flags & ~kKnownFlags) != 0) {
    return absl::InvalidArgumentError(absl::StrFormat("unknown flag bits 0x%02X", flags));
  }
  UdpCanDatagram datagram;
  datagram.sender_id = GetBe(bytes, 6, 8);
  datagram.sequence = static_cast<uint32_t>(GetBe(bytes, 14, 4));
  CanFrame& frame = datagram.frame;
  frame.extended = (flags & kFlagExtended) != 0;
  frame.remote = (flags & kFlagRemote) != 0;
  frame.id = static_cast<uint32_t>(GetBe(bytes, 18, 4));
  frame.dlc = bytes[22];
  if (datagram.sender_id == 0) return absl::InvalidArgumentError("sender id 0");
  if (absl::Status status = CheckFrame(frame); !status.ok()) return status;
  const size_t data_bytes = frame.remote ? 0 : frame.dlc;
  if (bytes.size() != kUdpCanHeaderSize + data_bytes) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%d bytes, expected %d for a %s frame with dlc %d", bytes.size(),
                        kUdpCanHeaderSize + data_bytes, frame.remote ? "remote" : "data",
                        static_cast<int>(frame.dlc)));
  }
  for (size_t i = 0; i < data_bytes; ++i) frame.data[i] = bytes[kUdpCanHeaderSize + i];
  return datagram;
}

UdpCanBus::UdpCanBus(UdpCanBusOptions options, const Clock& clock)
    : options_(std::move(options)), clock_(clock) {}

UdpCanBus::~UdpCanBus() { Close(); }

absl::Status UdpCanBus::Open() {
  if (fd_ >= 0) return absl::OkStatus();
  in_addr group{};
  if (inet_pton(AF_INET, options_.group.c_str(), &group) != 1 ||
      !IN_MULTICAST(ntohl(group.s_addr))) {
    return absl::InvalidArgumentError(
        absl::StrCat(Describe(), ": udp_group ", options_.group,
                     " is not an IPv4 multicast address (224.0.0.0-239.255.255.255)"));
  }
  in_addr interface {};
  if (inet_pton(AF_INET, options_.interface_address.c_str(), &interface) != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        Describe(), ": interface address ", options_.interface_address, " is not an IPv4 address"));
  }
  if (options_.port < 0 || options_.port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat(Describe(), ": udp_port ", options_.port, " is not in 1-65535"));
  }
  if (options_.ttl < 0 || options_.ttl > 255) {
    return absl::InvalidArgumentError(absl::StrCat(Describe(), ": ttl ", options_.ttl));
  }

  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return SocketError(absl::StrCat(Describe(), ": socket"), errno);
  auto fail = [&](const std::string& what) {
    const int err = errno;
    close(fd);
    return SocketError(absl::StrCat(Describe(), ": ", what), err);
  };
  const int one = 1;
  const int zero = 0;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
    return fail("SO_REUSEADDR");
  }
  // Binding the group address (not INADDR_ANY) keeps unicast traffic to the
  // port and other groups this host joined out of this socket.
  sockaddr_in bind_address{};
  bind_address.sin_family = AF_INET;
  bind_address.sin_port = htons(static_cast<uint16_t>(options_.port));
  bind_address.sin_addr = group;
  if (bind(fd, reinterpret_cast<const sockaddr*>(&bind_address), sizeof(bind_address)) != 0) {
    return fail(absl::StrCat("bind ", options_.group, ":", options_.port));
  }
  sockaddr_in bound{};
  socklen_t bound_length = sizeof(bound);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_length) != 0) {
    return fail("getsockname");
  }
  ip_mreq membership{};
  membership.imr_multiaddr = group;
  membership.imr_interface = interface;
  if (setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &membership, sizeof(membership)) != 0) {
    return fail(absl::StrCat("join ", options_.group, " on ", options_.interface_address));
  }
  if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_ALL, &zero, sizeof(zero)) != 0) {
    return fail("IP_MULTICAST_ALL");
  }
  if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &interface, sizeof(interface)) != 0) {
    return fail("IP_MULTICAST_IF");
  }
  const unsigned char ttl = static_cast<unsigned char>(options_.ttl);
  if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof(ttl)) != 0) {
    return fail("IP_MULTICAST_TTL");
  }
  const unsigned char loop = 1;
  if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof(loop)) != 0) {
    return fail("IP_MULTICAST_LOOP");
  }

  {
    absl::MutexLock lock(&mu_);
    sender_id_ = options_.sender_id;
    if (sender_id_ == 0) {
      absl::BitGen random;
      while (sender_id_ == 0) sender_id_ = absl::Uniform<uint64_t>(random);
    }
  }
  fd_ = fd;
  port_ = ntohs(bound.sin_port);
  kLog.Info("%s: joined, sender id %016x", Describe(), sender_id());
  return absl::OkStatus();
}

void UdpCanBus::Close() {
  if (fd_ < 0) return;
  close(fd_);
  fd_ = -1;
}

absl::Status UdpCanBus::Send(const CanFrame& frame) {
  if (fd_ < 0) return absl::FailedPreconditionError(absl::StrCat(Describe(), ": not open"));
  if (absl::Status status = CheckFrame(frame); !status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(Describe(), ": ", status.message()));
  }
  UdpCanDatagram datagram;
  datagram.frame = frame;
  {
    absl::MutexLock lock(&mu_);
    datagram.sender_id = sender_id_;
    datagram.sequence = next_sequence_++;
  }
  const std::vector<uint8_t> bytes = EncodeUdpCanDatagram(datagram);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(port_));
  inet_pton(AF_INET, options_.group.c_str(), &to.sin_addr);
  const ssize_t sent = sendto(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL,
                              reinterpret_cast<const sockaddr*>(&to), sizeof(to));
  if (sent != static_cast<ssize_t>(bytes.size())) {
    return SocketError(absl::StrCat(Describe(), ": send ", FrameToString(frame)),
                       sent < 0 ? errno : EMSGSIZE);
  }
  absl::MutexLock lock(&mu_);
  ++stats_.frames_sent_total;
  return absl::OkStatus();
}

bool UdpCanBus::Accept(const absl::StatusOr<UdpCanDatagram>& datagram, const std::string& source,
                       CanFrame* frame) {
  absl::MutexLock lock(&mu_);
  if (!datagram.ok()) {
    const uint64_t count = ++stats_.malformed_total;
    stats_.last_malformed = absl::StrCat("from ", source, ": ", datagram.status().message());
    if (count <= kMalformedLogFirst || count % kMalformedLogEvery == 0) {
      kLog.Warning("%s: dropped malformed datagram %s (%d so far)", Describe(),
                   stats_.last_malformed, count);
    }
    return false;
  }
  if (datagram->sender_id == sender_id_) {
    ++stats_.own_dropped_total;
    return false;
  }
  auto last = last_sequence_.find(datagram->sender_id);
  if (last != last_sequence_.end()) {
    // Unsigned difference: wraps correctly at 2^32. A restarted peer (new
    // sender id) starts a new entry, so a big jump here is real loss or
    // reordering; count only plausible gaps.
    const uint32_t gap = datagram->sequence - last->second - 1;
    if (gap > 0 && gap < (1u << 16)) stats_.lost_total += gap;
    last->second = datagram->sequence;
  } else {
    if (last_sequence_.size() >= kMaxTrackedSenders) last_sequence_.clear();
    last_sequence_.emplace(datagram->sender_id, datagram->sequence);
  }
  if (!PassesFilters(options_.filters, datagram->frame)) {
    ++stats_.filtered_total;
    return false;
  }
  ++stats_.frames_received_total;
  *frame = datagram->frame;
  return true;
}

BusEvent UdpCanBus::Receive(absl::Duration timeout) {
  BusEvent event;
  if (fd_ < 0) {
    event.kind = BusEventKind::kInterfaceDown;
    event.detail = absl::StrCat(Describe(), ": not open");
    return event;
  }
  // The wait is measured on the monotonic clock: it is real waiting on a
  // socket, not domain time (which comes from `clock_`).
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::nanoseconds(absl::ToInt64Nanoseconds(timeout));
  while (true) {
    const auto remaining = deadline - std::chrono::steady_clock::now();
    const int64_t remaining_ns = std::max<int64_t>(
        0, std::chrono::duration_cast<std::chrono::nanoseconds>(remaining).count());
    pollfd poll_fd{fd_, POLLIN, 0};
    timespec wait{static_cast<time_t>(remaining_ns / 1'000'000'000),
                  static_cast<decltype(timespec::tv_nsec)>(remaining_ns % 1'000'000'000)};
    const int ready = ppoll(&poll_fd, 1, &wait, nullptr);
    if (ready < 0) {
      if (errno == EINTR) continue;
      event.kind = BusEventKind::kOtherError;
      event.detail = absl::StrCat(Describe(), ": poll: ", ErrnoText(errno));
      return event;
    }
    if (ready == 0) {
      event.kind = BusEventKind::kTimeout;
      return event;
    }
    uint8_t buffer[kUdpCanMaxDatagramSize + 1];
    sockaddr_in from{};
    socklen_t from_length = sizeof(from);
    // MSG_TRUNC: the real length of an oversized datagram, so it is rejected
    // as too long instead of being parsed from its first bytes.
    const ssize_t length = recvfrom(fd_, buffer, sizeof(buffer), MSG_DONTWAIT | MSG_TRUNC,
                                    reinterpret_cast<sockaddr*>(&from), &from_length);
    if (length < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      event.kind = BusEventKind::kOtherError;
      event.detail = absl::StrCat(Describe(), ": receive: ", ErrnoText(errno));
      return event;
    }
    char address[INET_ADDRSTRLEN] = "?";
    inet_ntop(AF_INET, &from.sin_addr, address, sizeof(address));
    const std::string source = absl::StrCat(address, ":", ntohs(from.sin_port));
    absl::StatusOr<UdpCanDatagram> datagram =
        static_cast<size_t>(length) > kUdpCanMaxDatagramSize
            ? absl::InvalidArgumentError(
                  absl::StrFormat("%d bytes, longer than the largest datagram (%d)", length,
                                  kUdpCanMaxDatagramSize))
            : DecodeUdpCanDatagram(absl::MakeConstSpan(buffer, static_cast<size_t>(length)));
    CanFrame frame;
    if (Accept(datagram, source, &frame)) {
      frame.received_at = clock_.Now();
      event.kind = BusEventKind::kFrame;
      event.frame = frame;
      return event;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      event.kind = BusEventKind::kTimeout;
      return event;
    }
  }
}

std::string UdpCanBus::Describe() const {
  return absl::StrCat("udp ", options_.name.empty() ? "" : options_.name + " ", options_.group, ":",
                      port_ != 0 ? port_ : options_.port);
}

UdpCanBusStats UdpCanBus::Stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

uint64_t UdpCanBus::sender_id() const {
  absl::MutexLock lock(&mu_);
  return sender_id_;
}

}  // namespace evgate::can

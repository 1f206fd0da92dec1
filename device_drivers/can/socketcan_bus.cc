#include "device_drivers/can/socketcan_bus.h"

#include <linux/can.h>
#include <linux/can/error.h>
#include <linux/can/raw.h>
#include <net/if.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "runtime/log.h"

namespace evgate::can {
namespace {

constexpr log::Logger kLog("socketcan");

using SteadyClock = std::chrono::steady_clock;

std::string ErrnoText(int err) {
  char buffer[128];
  return strerror_r(err, buffer, sizeof(buffer));  // GNU variant
}

SteadyClock::time_point DeadlineAfter(absl::Duration d) {
  return SteadyClock::now() + std::chrono::nanoseconds(absl::ToInt64Nanoseconds(d));
}

timespec Remaining(SteadyClock::time_point deadline) {
  const int64_t ns = std::max<int64_t>(
      0,
      std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - SteadyClock::now()).count());
  return timespec{static_cast<time_t>(ns / 1'000'000'000),
                  static_cast<decltype(timespec::tv_nsec)>(ns % 1'000'000'000)};
}

// Errors that mean the interface went down or away (not a bad frame).
bool IsInterfaceLoss(int err) { return err == ENETDOWN || err == ENODEV || err == ENXIO; }

std::string ProtocolViolation(uint8_t type, uint8_t location) {
  std::vector<std::string> kinds;
  if (type & CAN_ERR_PROT_BIT) kinds.push_back("bit error");
  if (type & CAN_ERR_PROT_FORM) kinds.push_back("form error");
  if (type & CAN_ERR_PROT_STUFF) kinds.push_back("stuff error");
  if (type & CAN_ERR_PROT_BIT0) kinds.push_back("could not send dominant bit");
  if (type & CAN_ERR_PROT_BIT1) kinds.push_back("could not send recessive bit");
  if (type & CAN_ERR_PROT_OVERLOAD) kinds.push_back("bus overload");
  if (type & CAN_ERR_PROT_ACTIVE) kinds.push_back("active error announcement");
  if (kinds.empty()) kinds.push_back("unspecified");
  std::string text = absl::StrCat("protocol violation: ", absl::StrJoin(kinds, ", "));
  if (type & CAN_ERR_PROT_TX) absl::StrAppend(&text, " (while transmitting)");
  const char* where = nullptr;
  switch (location) {
    case CAN_ERR_PROT_LOC_SOF:
      where = "start of frame";
      break;
    case CAN_ERR_PROT_LOC_ID28_21:
    case CAN_ERR_PROT_LOC_ID20_18:
    case CAN_ERR_PROT_LOC_ID17_13:
    case CAN_ERR_PROT_LOC_ID12_05:
    case CAN_ERR_PROT_LOC_ID04_00:
      where = "identifier";
      break;
    case CAN_ERR_PROT_LOC_SRTR:
    case CAN_ERR_PROT_LOC_RTR:
      where = "RTR bit";
      break;
    case CAN_ERR_PROT_LOC_IDE:
      where = "IDE bit";
      break;
    case CAN_ERR_PROT_LOC_RES0:
    case CAN_ERR_PROT_LOC_RES1:
      where = "reserved bit";
      break;
    case CAN_ERR_PROT_LOC_DLC:
      where = "DLC";
      break;
    case CAN_ERR_PROT_LOC_DATA:
      where = "data";
      break;
    case CAN_ERR_PROT_LOC_CRC_SEQ:
    case CAN_ERR_PROT_LOC_CRC_DEL:
      where = "CRC";
      break;
    case CAN_ERR_PROT_LOC_ACK:
    case CAN_ERR_PROT_LOC_ACK_DEL:
      where = "ACK slot";
      break;
    case CAN_ERR_PROT_LOC_EOF:
      where = "end of frame";
      break;
    case CAN_ERR_PROT_LOC_INTERM:
      where = "intermission";
      break;
    default:
      break;
  }
  if (where != nullptr) absl::StrAppend(&text, " at ", where);
  return text;
}

std::string TransceiverFault(uint8_t status) {
  switch (status) {
    case CAN_ERR_TRX_CANH_NO_WIRE:
      return "transceiver: CAN_H not connected";
    case CAN_ERR_TRX_CANH_SHORT_TO_BAT:
      return "transceiver: CAN_H shorted to battery";
    case CAN_ERR_TRX_CANH_SHORT_TO_VCC:
      return "transceiver: CAN_H shorted to VCC";
    case CAN_ERR_TRX_CANH_SHORT_TO_GND:
      return "transceiver: CAN_H shorted to ground";
    case CAN_ERR_TRX_CANL_NO_WIRE:
      return "transceiver: CAN_L not connected";
    case CAN_ERR_TRX_CANL_SHORT_TO_BAT:
      return "transceiver: CAN_L shorted to battery";
    case CAN_ERR_TRX_CANL_SHORT_TO_VCC:
      return "transceiver: CAN_L shorted to VCC";
    case CAN_ERR_TRX_CANL_SHORT_TO_GND:
      return "transceiver: CAN_L shorted to ground";
    case CAN_ERR_TRX_CANL_SHORT_TO_CANH:
      return "transceiver: CAN_L shorted to CAN_H";
    default:
      return absl::StrFormat("transceiver fault 0x%02X", status);
  }
}

}  // namespace

BusEvent TranslateErrorFrame(uint32_t can_id, const std::array<uint8_t, 8>& data) {
  const uint32_t classes = can_id & CAN_ERR_MASK;
  // Collected from the least to the most serious; the last kind set wins.
  int severity = 0;  // 0 other, 1 restarted, 2 warning, 3 passive, 4 bus-off
  BusEventKind kind = BusEventKind::kOtherError;
  auto raise = [&](int level, BusEventKind k) {
    if (level >= severity) {
      severity = level;
      kind = k;
    }
  };
  std::vector<std::string> details;

  if (classes & CAN_ERR_BUSOFF) {
    raise(4, BusEventKind::kBusOff);
    details.push_back("bus-off");
  }
  if (classes & CAN_ERR_CRTL) {
    const uint8_t crtl = data[1];
    const bool rx_passive = crtl & CAN_ERR_CRTL_RX_PASSIVE;
    const bool tx_passive = crtl & CAN_ERR_CRTL_TX_PASSIVE;
    const bool rx_warning = crtl & CAN_ERR_CRTL_RX_WARNING;
    const bool tx_warning = crtl & CAN_ERR_CRTL_TX_WARNING;
    auto which = [](bool rx, bool tx) {
      return std::string(rx && tx ? "rx, tx" : (rx ? "rx" : "tx"));
    };
    if (rx_passive || tx_passive) {
      raise(3, BusEventKind::kErrorPassive);
      details.push_back(absl::StrCat("error-passive (", which(rx_passive, tx_passive), ")"));
    }
    if (rx_warning || tx_warning) {
      raise(2, BusEventKind::kErrorWarning);
      details.push_back(absl::StrCat("error-warning (", which(rx_warning, tx_warning), ")"));
    }
    if (crtl & CAN_ERR_CRTL_ACTIVE) {
      raise(1, BusEventKind::kRestarted);
      details.push_back("back to error-active");
    }
    if (crtl & CAN_ERR_CRTL_RX_OVERFLOW) details.push_back("controller rx buffer overflow");
    if (crtl & CAN_ERR_CRTL_TX_OVERFLOW) details.push_back("controller tx buffer overflow");
    if (crtl == 0) details.push_back("controller problem (unspecified)");
  }
  if (classes & CAN_ERR_RESTARTED) {
    raise(1, BusEventKind::kRestarted);
    details.push_back("controller restarted");
  }
  if (classes & CAN_ERR_PROT) details.push_back(ProtocolViolation(data[2], data[3]));
  if (classes & CAN_ERR_ACK) {
    details.push_back("no ACK on transmission (no other node on the bus?)");
  }
  if (classes & CAN_ERR_TX_TIMEOUT) details.push_back("transmit timeout");
  if (classes & CAN_ERR_LOSTARB) {
    details.push_back(data[0] == CAN_ERR_LOSTARB_UNSPEC
                          ? std::string("lost arbitration")
                          : absl::StrCat("lost arbitration at bit ", data[0]));
  }
  if (classes & CAN_ERR_TRX) details.push_back(TransceiverFault(data[4]));
  if (classes & CAN_ERR_BUSERROR) details.push_back("bus error");
  if (details.empty()) details.push_back(absl::StrFormat("error frame 0x%08X", classes));
  // Error counters: always in data[6..7] on the kernels that fill them;
  // CAN_ERR_CNT (Linux 6.3+) says so explicitly.
  constexpr uint32_t kErrCnt = 0x00000200U;
  if ((classes & kErrCnt) || data[6] != 0 || data[7] != 0) {
    details.push_back(absl::StrFormat("tx errors %d, rx errors %d", data[6], data[7]));
  }

  BusEvent event;
  event.kind = kind;
  event.detail = absl::StrJoin(details, "; ");
  return event;
}

SocketCanBus::SocketCanBus(SocketCanOptions options, const Clock& clock)
    : options_(std::move(options)), clock_(clock) {}

SocketCanBus::~SocketCanBus() { Close(); }

std::string SocketCanBus::Describe() const {
  return absl::StrCat("socketcan ", options_.interface);
}

bool SocketCanBus::InterfaceUp(int fd) const {
  ifreq request{};
  std::strncpy(request.ifr_name, options_.interface.c_str(), IFNAMSIZ - 1);
  if (ioctl(fd, SIOCGIFFLAGS, &request) != 0) return false;
  return (request.ifr_flags & IFF_UP) != 0;
}

absl::StatusOr<int> SocketCanBus::OpenSocket() const {
  if (options_.interface.empty() || options_.interface.size() >= IFNAMSIZ) {
    return absl::InvalidArgumentError(
        absl::StrCat("CAN interface name '", options_.interface, "' is empty or too long"));
  }
  const int fd = socket(PF_CAN, SOCK_RAW | SOCK_CLOEXEC, CAN_RAW);
  if (fd < 0) {
    const int err = errno;
    if (err == EAFNOSUPPORT || err == EPROTONOSUPPORT) {
      return absl::UnavailableError(absl::StrCat(
          Describe(), ": this kernel has no SocketCAN (", ErrnoText(err),
          "); load the modules can and can-raw, or use `transport: udp` for a virtual bus"));
    }
    return absl::UnavailableError(absl::StrCat(Describe(), ": socket: ", ErrnoText(err)));
  }
  auto fail = [&](absl::Status status) {
    close(fd);
    return status;
  };
  auto fail_errno = [&](const std::string& what) {
    const int err = errno;
    return fail(absl::UnavailableError(absl::StrCat(Describe(), ": ", what, ": ", ErrnoText(err))));
  };
  const unsigned int index = if_nametoindex(options_.interface.c_str());
  if (index == 0) {
    return fail(absl::NotFoundError(absl::StrCat(
        Describe(), ": no such network interface (see `ip link show ", options_.interface,
        "`; for a test bus: `ip link add dev ", options_.interface, " type vcan`)")));
  }
  if (!InterfaceUp(fd)) {
    return fail(absl::FailedPreconditionError(
        absl::StrCat(Describe(), ": interface is down (`ip link set ", options_.interface,
                     " up type can bitrate ...`)")));
  }
  if (!options_.filters.empty()) {
    std::vector<can_filter> filters;
    for (const CanFilter& filter : options_.filters) {
      can_filter f{};
      f.can_id =
          filter.extended ? (filter.id & CAN_EFF_MASK) | CAN_EFF_FLAG : filter.id & CAN_SFF_MASK;
      // The EFF flag in the mask makes the frame format part of the match.
      f.can_mask = (filter.extended ? filter.mask & CAN_EFF_MASK : filter.mask & CAN_SFF_MASK) |
                   CAN_EFF_FLAG;
      filters.push_back(f);
    }
    if (setsockopt(fd, SOL_CAN_RAW, CAN_RAW_FILTER, filters.data(),
                   static_cast<socklen_t>(filters.size() * sizeof(can_filter))) != 0) {
      return fail_errno("CAN_RAW_FILTER");
    }
  }
  const can_err_mask_t error_mask = CAN_ERR_MASK;
  if (setsockopt(fd, SOL_CAN_RAW, CAN_RAW_ERR_FILTER, &error_mask, sizeof(error_mask)) != 0) {
    return fail_errno("CAN_RAW_ERR_FILTER");
  }
  const int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one)) != 0) {
    return fail_errno("SO_TIMESTAMPNS");
  }
  sockaddr_can address{};
  address.can_family = AF_CAN;
  address.can_ifindex = static_cast<int>(index);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    return fail_errno("bind");
  }
  return fd;
}

absl::Status SocketCanBus::Open() {
  absl::StatusOr<int> fd = OpenSocket();
  if (!fd.ok()) return fd.status();
  ReplaceSocket(*fd);
  opened_ = true;
  kLog.Info("%s: open", Describe());
  return absl::OkStatus();
}

void SocketCanBus::Close() {
  opened_ = false;
  ReplaceSocket(-1);
}

void SocketCanBus::ReplaceSocket(int fd) {
  int old;
  {
    absl::WriterMutexLock lock(&fd_mu_);
    old = fd_;
    fd_ = fd;
  }
  if (old >= 0) close(old);
}

absl::Status SocketCanBus::Send(const CanFrame& frame) {
  if (absl::Status status = CheckFrame(frame); !status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(Describe(), ": ", status.message()));
  }
  can_frame raw{};
  raw.can_id = frame.id | (frame.extended ? CAN_EFF_FLAG : 0) | (frame.remote ? CAN_RTR_FLAG : 0);
  raw.can_dlc = frame.dlc;
  if (!frame.remote) std::memcpy(raw.data, frame.data.data(), frame.dlc);

  absl::ReaderMutexLock lock(&fd_mu_);
  if (fd_ < 0) {
    return absl::UnavailableError(
        absl::StrCat(Describe(), opened_ ? ": interface down" : ": not open"));
  }
  const auto deadline = DeadlineAfter(options_.send_timeout);
  bool retried_stale_error = false;
  while (true) {
    const ssize_t sent = send(fd_, &raw, sizeof(raw), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (sent == static_cast<ssize_t>(sizeof(raw))) break;
    const int err = sent < 0 ? errno : EIO;
    if (err == EINTR) continue;
    if (IsInterfaceLoss(err) && !retried_stale_error && InterfaceUp(fd_)) {
      // A socket keeps the error of an earlier down until it is read once;
      // the interface is up again, so that error is stale.
      retried_stale_error = true;
      continue;
    }
    if (err != EAGAIN && err != EWOULDBLOCK && err != ENOBUFS) {
      return absl::UnavailableError(
          absl::StrCat(Describe(), ": send ", FrameToString(frame), ": ", ErrnoText(err)));
    }
    if (SteadyClock::now() >= deadline) {
      absl::MutexLock stats_lock(&stats_mu_);
      ++stats_.send_timeouts_total;
      return absl::DeadlineExceededError(
          absl::StrCat(Describe(), ": send ", FrameToString(frame), " timed out after ",
                       absl::FormatDuration(options_.send_timeout),
                       ": transmit queue full (bus disconnected, or no other node ACKs?)"));
    }
    if (err == ENOBUFS) {
      // The interface's queue is full; poll() does not signal when it drains.
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    } else {
      pollfd poll_fd{fd_, POLLOUT, 0};
      timespec wait = Remaining(deadline);
      ppoll(&poll_fd, 1, &wait, nullptr);
    }
  }
  absl::MutexLock stats_lock(&stats_mu_);
  ++stats_.frames_sent_total;
  return absl::OkStatus();
}

BusEvent SocketCanBus::LoseInterface(const std::string& why) {
  ReplaceSocket(-1);
  {
    absl::MutexLock lock(&stats_mu_);
    ++stats_.interface_down_total;
  }
  kLog.Warning("%s: interface lost (%s); reopening every %s", Describe(), why,
               absl::FormatDuration(options_.reopen_interval));
  BusEvent event;
  event.kind = BusEventKind::kInterfaceDown;
  event.detail = absl::StrCat(Describe(), ": ", why);
  return event;
}

BusEvent SocketCanBus::Reopen(absl::Duration timeout) {
  const auto deadline = DeadlineAfter(timeout);
  absl::Status last;
  while (true) {
    absl::StatusOr<int> fd = OpenSocket();
    if (fd.ok()) {
      ReplaceSocket(*fd);
      {
        absl::MutexLock lock(&stats_mu_);
        ++stats_.reopened_total;
      }
      kLog.Info("%s: interface back, socket reopened", Describe());
      BusEvent event;
      event.kind = BusEventKind::kRestarted;
      event.detail = absl::StrCat(Describe(), ": interface back up");
      return event;
    }
    last = fd.status();
    const auto next = SteadyClock::now() +
                      std::chrono::nanoseconds(absl::ToInt64Nanoseconds(options_.reopen_interval));
    if (next >= deadline) {
      timespec wait = Remaining(deadline);
      nanosleep(&wait, nullptr);
      break;
    }
    timespec wait = Remaining(next);
    nanosleep(&wait, nullptr);
  }
  BusEvent event;
  event.kind = BusEventKind::kInterfaceDown;
  event.detail = std::string(last.message());
  return event;
}

BusEvent SocketCanBus::Receive(absl::Duration timeout) {
  int fd;
  {
    absl::ReaderMutexLock lock(&fd_mu_);
    fd = fd_;
  }
  if (fd < 0) {
    if (!opened_) {
      BusEvent event;
      event.kind = BusEventKind::kInterfaceDown;
      event.detail = absl::StrCat(Describe(), ": not open");
      return event;
    }
    return Reopen(timeout);
  }

  const auto deadline = DeadlineAfter(timeout);
  while (true) {
    pollfd poll_fd{fd, POLLIN, 0};
    timespec wait = Remaining(deadline);
    const int ready = ppoll(&poll_fd, 1, &wait, nullptr);
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) {
      BusEvent event;
      event.kind = BusEventKind::kTimeout;
      return event;
    }

    can_frame raw{};
    iovec io{&raw, sizeof(raw)};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(timespec))];
    msghdr message{};
    message.msg_iov = &io;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof(control);
    const ssize_t length = ready < 0 ? -1 : recvmsg(fd, &message, MSG_DONTWAIT);
    if (length < 0) {
      const int err = errno;
      if (err == EINTR || err == EAGAIN || err == EWOULDBLOCK) {
        if (SteadyClock::now() >= deadline) {
          BusEvent event;
          event.kind = BusEventKind::kTimeout;
          return event;
        }
        continue;
      }
      if (IsInterfaceLoss(err)) return LoseInterface(ErrnoText(err));
      BusEvent event;
      event.kind = BusEventKind::kOtherError;
      event.detail = absl::StrCat(Describe(), ": receive: ", ErrnoText(err));
      return event;
    }
    if (length != static_cast<ssize_t>(sizeof(raw))) continue;  // not a classic CAN frame

    absl::Time received_at = clock_.Now();
    for (cmsghdr* c = CMSG_FIRSTHDR(&message); c != nullptr; c = CMSG_NXTHDR(&message, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
        timespec stamp;
        std::memcpy(&stamp, CMSG_DATA(c), sizeof(stamp));
        received_at = absl::TimeFromTimespec(stamp);
      }
    }

    if (raw.can_id & CAN_ERR_FLAG) {
      std::array<uint8_t, 8> data{};
      std::memcpy(data.data(), raw.data, 8);
      BusEvent event = TranslateErrorFrame(raw.can_id, data);
      event.detail = absl::StrCat(Describe(), ": ", event.detail);
      absl::MutexLock lock(&stats_mu_);
      ++stats_.error_frames_total;
      return event;
    }
    BusEvent event;
    event.kind = BusEventKind::kFrame;
    CanFrame& frame = event.frame.emplace();
    frame.extended = (raw.can_id & CAN_EFF_FLAG) != 0;
    frame.remote = (raw.can_id & CAN_RTR_FLAG) != 0;
    frame.id = raw.can_id & (frame.extended ? CAN_EFF_MASK : CAN_SFF_MASK);
    frame.dlc = std::min<uint8_t>(raw.can_dlc, 8);
    if (!frame.remote) std::memcpy(frame.data.data(), raw.data, frame.dlc);
    frame.received_at = received_at;
    absl::MutexLock lock(&stats_mu_);
    ++stats_.frames_received_total;
    return event;
  }
}

SocketCanStats SocketCanBus::Stats() const {
  absl::MutexLock lock(&stats_mu_);
  return stats_;
}

}  // namespace evgate::can

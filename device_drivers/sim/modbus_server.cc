#include "device_drivers/sim/modbus_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "runtime/log.h"

namespace evgate::sim {
namespace {

constexpr log::Logger kLog("modbus_sim");

// A partial RTU frame older than this is dropped (the t3.5 rule, with room
// for a pty's scheduling).
constexpr absl::Duration kRtuIdleReset = absl::Milliseconds(50);
constexpr int kPollMs = 50;

std::string ErrnoText(int error) { return std::generic_category().message(error); }

bool WriteAll(int fd, const std::vector<uint8_t>& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        pollfd p{fd, POLLOUT, 0};
        poll(&p, 1, 100);
        continue;
      }
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

std::optional<speed_t> BaudConstant(int baud) {
  switch (baud) {
    case 1200:
      return B1200;
    case 2400:
      return B2400;
    case 4800:
      return B4800;
    case 9600:
      return B9600;
    case 19200:
      return B19200;
    case 38400:
      return B38400;
    case 57600:
      return B57600;
    case 115200:
      return B115200;
    default:
      return std::nullopt;
  }
}

absl::Status SetLine(int fd, const std::string& path, const RtuLineOptions& line) {
  termios tios{};
  if (tcgetattr(fd, &tios) != 0) {
    return absl::UnavailableError(absl::StrCat(path, ": not a serial port: ", ErrnoText(errno)));
  }
  cfmakeraw(&tios);
  const std::optional<speed_t> speed = BaudConstant(line.baud);
  if (!speed) return absl::InvalidArgumentError(absl::StrCat(path, ": baud ", line.baud));
  cfsetispeed(&tios, *speed);
  cfsetospeed(&tios, *speed);
  tios.c_cflag |= CLOCAL | CREAD;
  tios.c_cflag &= ~(PARENB | PARODD | CSTOPB | CSIZE);
  tios.c_cflag |= line.data_bits == 7 ? CS7 : CS8;
  if (line.parity == 'E') tios.c_cflag |= PARENB;
  if (line.parity == 'O') tios.c_cflag |= PARENB | PARODD;
  if (line.stop_bits == 2) tios.c_cflag |= CSTOPB;
  tios.c_cc[VMIN] = 0;
  tios.c_cc[VTIME] = 0;
  if (tcsetattr(fd, TCSANOW, &tios) != 0) {
    return absl::UnavailableError(absl::StrCat(path, ": cannot set line: ", ErrnoText(errno)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Duration RtuCharactersTime(int bytes, const RtuLineOptions& line) {
  const int bits = 1 + line.data_bits + (line.parity == 'N' ? 0 : 1) + line.stop_bits;
  return absl::Microseconds(static_cast<int64_t>(1e6 * bits * bytes / line.baud));
}

ModbusServer::ModbusServer() : wake_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

ModbusServer::~ModbusServer() {
  Stop();
  if (wake_fd_ >= 0) close(wake_fd_);
}

void ModbusServer::AddUnit(int unit_id, ModbusUnit* unit) {
  absl::MutexLock lock(&mu_);
  units_[unit_id] = unit;
}

void ModbusServer::EnsureThread() {
  if (thread_.joinable()) return;
  stop_ = false;
  uint64_t pending;
  if (wake_fd_ >= 0 && read(wake_fd_, &pending, sizeof pending) < 0) {
    // EAGAIN: no wake-up left over from an earlier Stop().
  }
  thread_ = std::thread([this] { Serve(); });
}

absl::Status ModbusServer::ListenTcp(const std::string& host, int port) {
  absl::MutexLock lock(&mu_);
  if (listen_fd_ >= 0) return absl::FailedPreconditionError("already listening on TCP");
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", ErrnoText(errno)));
  const int yes = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    close(fd);
    return absl::InvalidArgumentError(absl::StrCat("'", host, "' is not an IPv4 address"));
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 16) != 0) {
    const int error = errno;
    close(fd);
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", host, ":", port, ": ", ErrnoText(error)));
  }
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  listen_fd_ = fd;
  tcp_port_ = ntohs(addr.sin_port);
  EnsureThread();
  return absl::OkStatus();
}

int ModbusServer::tcp_port() const {
  absl::MutexLock lock(&mu_);
  return tcp_port_;
}

absl::Status ModbusServer::ServeRtu(const std::string& path, const RtuLineOptions& line) {
  const int fd = open(path.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat("cannot open ", path, ": ", ErrnoText(errno)));
  }
  if (absl::Status s = SetLine(fd, path, line); !s.ok()) {
    close(fd);
    return s;
  }
  auto endpoint = std::make_unique<RtuEndpoint>();
  endpoint->fd = fd;
  endpoint->line = line;
  absl::MutexLock lock(&mu_);
  rtu_.push_back(std::move(endpoint));
  EnsureThread();
  return absl::OkStatus();
}

absl::StatusOr<std::string> ModbusServer::ServeRtuPty(const RtuLineOptions& line) {
  const int master = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) {
    const int error = errno;
    if (master >= 0) close(master);
    return absl::UnavailableError(absl::StrCat("cannot create a pty: ", ErrnoText(error)));
  }
  char name[128];
  if (ptsname_r(master, name, sizeof name) != 0) {
    close(master);
    return absl::UnavailableError("ptsname failed");
  }
  // Keep the client side open too: without it the master reads EIO between
  // client connections. Raw mode, so nothing is echoed before the client
  // sets the line itself.
  const int slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) {
    close(master);
    return absl::UnavailableError(absl::StrCat("cannot open ", name, ": ", ErrnoText(errno)));
  }
  if (absl::Status s = SetLine(slave, name, line); !s.ok()) {
    close(slave);
    close(master);
    return s;
  }
  auto endpoint = std::make_unique<RtuEndpoint>();
  endpoint->fd = master;
  endpoint->keep_fd = slave;
  endpoint->line = line;
  absl::MutexLock lock(&mu_);
  rtu_.push_back(std::move(endpoint));
  EnsureThread();
  return std::string(name);
}

void ModbusServer::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) {
    const uint64_t one = 1;
    if (wake_fd_ >= 0 && write(wake_fd_, &one, sizeof one) < 0) {
      kLog.Warning("cannot wake the serving thread: %s; it stops within %d ms", ErrnoText(errno),
                   kPollMs);
    }
    thread_.join();
  }
  for (TcpClient& client : clients_) close(client.fd);
  clients_.clear();
  absl::MutexLock lock(&mu_);
  if (listen_fd_ >= 0) close(listen_fd_);
  listen_fd_ = -1;
  for (auto& endpoint : rtu_) {
    close(endpoint->fd);
    if (endpoint->keep_fd >= 0) close(endpoint->keep_fd);
  }
  rtu_.clear();
}

ModbusServer::Counters ModbusServer::counters() const {
  absl::MutexLock lock(&mu_);
  return counters_;
}

ModbusUnit* ModbusServer::UnitFor(uint8_t unit_id, bool tcp) {
  absl::MutexLock lock(&mu_);
  auto it = units_.find(unit_id);
  if (it == units_.end() && tcp && (unit_id == 0 || unit_id == 0xFF) && units_.size() == 1) {
    it = units_.begin();
  }
  if (it == units_.end()) {
    ++counters_.other_units;
    return nullptr;
  }
  ++counters_.requests;
  return it->second;
}

void ModbusServer::HandleRtu(RtuEndpoint& endpoint) {
  uint8_t buffer[512];
  for (;;) {
    const ssize_t n = read(endpoint.fd, buffer, sizeof buffer);
    if (n <= 0) break;
    endpoint.last_byte = absl::Now();
    const uint64_t bad_before = endpoint.parser.bad_frames();
    std::vector<RequestFrame> frames =
        endpoint.parser.Feed(absl::MakeConstSpan(buffer, static_cast<size_t>(n)));
    if (endpoint.parser.bad_frames() != bad_before) {
      absl::MutexLock lock(&mu_);
      counters_.bad_frames += endpoint.parser.bad_frames() - bad_before;
    }
    for (const RequestFrame& frame : frames) {
      if (frame.unit == 0) {
        std::vector<ModbusUnit*> all;
        {
          absl::MutexLock lock(&mu_);
          ++counters_.requests;
          for (const auto& [id, unit] : units_) all.push_back(unit);
        }
        for (ModbusUnit* unit : all) HandleRequestPdu(*unit, frame.pdu, /*broadcast=*/true);
        continue;
      }
      ModbusUnit* unit = UnitFor(frame.unit, /*tcp=*/false);
      if (unit == nullptr) continue;
      std::optional<std::vector<uint8_t>> pdu = HandleRequestPdu(*unit, frame.pdu);
      if (!pdu) continue;
      // unit + PDU (+ CRC below). Sized up front: gcc 12 -O2 warns wrongly
      // about inserting into a one-element vector.
      std::vector<uint8_t> adu(pdu->size() + 1);
      adu[0] = frame.unit;
      std::copy(pdu->begin(), pdu->end(), adu.begin() + 1);
      AppendCrc(&adu);
      if (endpoint.line.emulate_line_timing) {
        const int request_bytes = static_cast<int>(frame.pdu.size()) + 3;
        absl::SleepFor(
            RtuCharactersTime(request_bytes + static_cast<int>(adu.size()), endpoint.line) +
            endpoint.line.turnaround);
      }
      if (WriteAll(endpoint.fd, adu)) {
        absl::MutexLock lock(&mu_);
        ++counters_.responses;
      }
    }
  }
}

bool ModbusServer::HandleTcp(TcpClient& client) {
  uint8_t buffer[1024];
  const ssize_t n = recv(client.fd, buffer, sizeof buffer, MSG_DONTWAIT);
  if (n == 0) return false;  // closed by the client
  if (n < 0) return errno == EAGAIN || errno == EINTR;
  client.buffer.insert(client.buffer.end(), buffer, buffer + n);
  for (;;) {
    RequestFrame frame;
    uint16_t transaction_id = 0;
    const int used = ParseTcpRequest(client.buffer, &frame, &transaction_id);
    if (used == 0) return true;
    if (used < 0) {
      absl::MutexLock lock(&mu_);
      ++counters_.bad_frames;
      return false;  // the stream cannot be resynchronised
    }
    client.buffer.erase(client.buffer.begin(), client.buffer.begin() + used);
    ModbusUnit* unit = UnitFor(frame.unit, /*tcp=*/true);
    if (unit == nullptr) continue;
    std::optional<std::vector<uint8_t>> pdu = HandleRequestPdu(*unit, frame.pdu);
    if (!pdu) continue;
    if (!WriteAll(client.fd, BuildTcpResponse(transaction_id, frame.unit, *pdu))) return false;
    absl::MutexLock lock(&mu_);
    ++counters_.responses;
  }
}

void ModbusServer::Serve() {
  for (;;) {
    int listen_fd;
    std::vector<RtuEndpoint*> rtu;
    {
      absl::MutexLock lock(&mu_);
      if (stop_) break;
      listen_fd = listen_fd_;
      for (auto& endpoint : rtu_) rtu.push_back(endpoint.get());
    }
    std::vector<pollfd> fds;
    // Last, so the indices below are unchanged; Stop() makes it readable and
    // the next round sees stop_.
    const auto poll_all = [&] {
      if (wake_fd_ >= 0) fds.push_back({wake_fd_, POLLIN, 0});
      const int n = poll(fds.data(), fds.size(), kPollMs);
      if (wake_fd_ >= 0) fds.pop_back();
      return n;
    };
    if (listen_fd >= 0) fds.push_back({listen_fd, POLLIN, 0});
    for (RtuEndpoint* endpoint : rtu) fds.push_back({endpoint->fd, POLLIN, 0});
    for (const TcpClient& client : clients_) fds.push_back({client.fd, POLLIN, 0});
    if (poll_all() < 0 && errno != EINTR) {
      kLog.Error("poll: %s", ErrnoText(errno));
      break;
    }
    size_t i = 0;
    if (listen_fd >= 0) {
      if (fds[i++].revents & POLLIN) {
        const int c = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (c >= 0) clients_.push_back({c, {}});
      }
    }
    const absl::Time now = absl::Now();
    for (RtuEndpoint* endpoint : rtu) {
      if (fds[i++].revents & POLLIN) HandleRtu(*endpoint);
      if (endpoint->parser.pending() && now - endpoint->last_byte > kRtuIdleReset) {
        endpoint->parser.Reset();
        absl::MutexLock lock(&mu_);
        ++counters_.bad_frames;
      }
    }
    // Clients accepted in this round have no entry in `fds` yet.
    const size_t polled_clients = fds.size() - i;
    std::vector<TcpClient> kept;
    for (size_t c = 0; c < clients_.size(); ++c) {
      TcpClient& client = clients_[c];
      const bool ready = c < polled_clients && (fds[i + c].revents & (POLLIN | POLLHUP | POLLERR));
      if (ready && !HandleTcp(client)) {
        close(client.fd);
        continue;
      }
      kept.push_back(std::move(client));
    }
    clients_ = std::move(kept);
  }
}

}  // namespace evgate::sim

// Fuzzes our Modbus client's handling of answers: the input is what a device
// (or anything else on the line) sends back to LibmodbusTransport, over
// Modbus TCP (a loopback socket) or Modbus RTU (a pty), after one read or
// write request. libmodbus parses and checks the frame; LibmodbusTransport
// must turn every answer into a value or a Status with one of the documented
// codes, never crash, hang or return a wrong-length result.
//
// Input layout: byte 0 chooses the transport (bit 0: RTU), the request
// (bits 1-2: read input, read holding, write single, write multiple) and
// whether the harness fixes up the frame so libmodbus looks past its first
// checks (bit 3: TCP transaction id / RTU CRC); byte 1 is the register
// count; the rest is the answer. The device side then hangs up (TCP: FIN;
// RTU: the pty is closed once the client has read every byte), so a short
// answer fails at once instead of after the response timeout.
//
// libmodbus is a Debian library built without sanitizers or coverage: this
// target covers our side of it and catches anything that crashes or corrupts
// memory through it.
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "device_drivers/modbus/libmodbus_transport.h"

namespace {

using evgate::modbus::LibmodbusTransport;
using evgate::modbus::RegisterTable;

constexpr absl::Duration kTimeout = absl::Milliseconds(5);

int ListenFd(int* port) {
  static int fd = -1;
  static int listen_port = 0;
  if (fd < 0) {
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 4) != 0) {
      std::abort();
    }
    socklen_t len = sizeof addr;
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    listen_port = ntohs(addr.sin_port);
  }
  *port = listen_port;
  return fd;
}

uint16_t Crc16(const std::vector<uint8_t>& bytes) {
  uint16_t crc = 0xFFFF;
  for (uint8_t b : bytes) {
    crc ^= b;
    for (int i = 0; i < 8; ++i) crc = (crc & 1) ? (crc >> 1) ^ 0xA001 : crc >> 1;
  }
  return crc;
}

void WriteAll(int fd, const std::vector<uint8_t>& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

// Runs the chosen request and checks the outcome's contract.
void Exercise(LibmodbusTransport& t, int request, int count) {
  absl::Status status;
  switch (request) {
    case 0:
    case 1: {
      const RegisterTable table = request == 0 ? RegisterTable::kInput : RegisterTable::kHolding;
      absl::StatusOr<std::vector<uint16_t>> r = t.ReadRegisters(table, 0x0010, count);
      if (r.ok() && static_cast<int>(r->size()) != count) std::abort();
      status = r.status();
      break;
    }
    case 2:
      status = t.WriteRegister(0x0105, 160);
      break;
    default:
      status = t.WriteRegisters(0x0101, std::vector<uint16_t>(count, 0x1234));
      break;
  }
  switch (status.code()) {
    case absl::StatusCode::kOk:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kInvalidArgument:
      break;
    default:
      std::abort();  // not a code modbus_transport.h documents
  }
}

void Tcp(const uint8_t* data, size_t size, int request, int count, bool fix) {
  int port = 0;
  const int listen_fd = ListenFd(&port);
  auto t = LibmodbusTransport::Tcp({"127.0.0.1", port, kTimeout});
  if (!t.ok() || !(*t)->SetSlave(1).ok() || !(*t)->Connect().ok()) std::abort();
  const int server = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
  if (server < 0) std::abort();
  std::vector<uint8_t> answer(data, data + size);
  if (fix && answer.size() >= 2) {
    answer[0] = 0;  // libmodbus numbers a new connection's first request 1
    answer[1] = 1;
  }
  WriteAll(server, answer);
  shutdown(server, SHUT_WR);  // no more bytes: a short answer fails at once
  Exercise(**t, request, count);
  close(server);
}

// Hangs up the device side of an RTU pty once the client has taken every
// byte of the answer, so a short answer fails at once instead of after the
// response timeout (closing earlier would discard the bytes not yet read).
class HangUp {
 public:
  HangUp() : thread_([this] { Run(); }) {}
  ~HangUp() {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    thread_.join();
  }
  // Closes `master` when `probe` (another fd of the same pty's client side)
  // shows an empty input queue, or when the client is done (it may leave
  // bytes of an over-long answer unread).
  void Arm(int master, int probe) {
    absl::MutexLock lock(&mu_);
    master_ = master;
    probe_ = probe;
    client_done_ = false;
  }
  void ClientDone() {
    absl::MutexLock lock(&mu_);
    client_done_ = true;
    mu_.Await(absl::Condition(
        +[](int* m) { return *m < 0; }, &master_));
  }

 private:
  void Run() {
    for (;;) {
      int master, probe;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(
            +[](HangUp* h) { return h->stop_ || h->master_ >= 0; }, this));
        if (stop_) return;
        master = master_;
        probe = probe_;
      }
      for (;;) {
        int queued = 0;
        if (ioctl(probe, FIONREAD, &queued) != 0 || queued == 0) break;
        {
          absl::MutexLock lock(&mu_);
          if (client_done_) break;
        }
        sched_yield();
      }
      close(master);
      absl::MutexLock lock(&mu_);
      master_ = -1;
    }
  }

  absl::Mutex mu_;
  int master_ ABSL_GUARDED_BY(mu_) = -1;
  int probe_ ABSL_GUARDED_BY(mu_) = -1;
  bool client_done_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

void Rtu(const uint8_t* data, size_t size, int request, int count, bool fix) {
  static HangUp* hang_up = new HangUp;
  const int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  char name[128];
  if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0 ||
      ptsname_r(master, name, sizeof name) != 0) {
    std::abort();
  }
  evgate::modbus::RtuOptions options;
  options.port = name;
  options.baud = 19200;
  options.parity = 'E';
  options.rs485 = false;
  options.timeout = kTimeout;
  auto t = LibmodbusTransport::Rtu(options);
  if (!t.ok() || !(*t)->SetSlave(1).ok() || !(*t)->Connect().ok()) std::abort();
  const int probe = open(name, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (probe < 0) std::abort();
  std::vector<uint8_t> answer(data, data + size);
  if (fix && !answer.empty()) {
    const uint16_t crc = Crc16(answer);
    answer.push_back(static_cast<uint8_t>(crc & 0xFF));
    answer.push_back(static_cast<uint8_t>(crc >> 8));
  }
  WriteAll(master, answer);
  hang_up->Arm(master, probe);
  Exercise(**t, request, count);
  hang_up->ClientDone();
  close(probe);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  signal(SIGPIPE, SIG_IGN);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2 || size > 300) return 0;
  const bool rtu = data[0] & 1;
  const int request = (data[0] >> 1) & 3;
  const bool fix = data[0] & 8;
  // 1-125 for reads, 1-123 for writes: the requests themselves are valid.
  const int count = 1 + data[1] % (request == 3 ? 123 : 125);
  (rtu ? Rtu : Tcp)(data + 2, size - 2, request, count, fix);
  return 0;
}

#include "device_drivers/sim/sdm630_simulator.h"

#include <arpa/inet.h>
#include <modbus.h>
#include <netinet/in.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "device_drivers/modbus/register_map.h"
#include "runtime/log.h"

namespace evgate::sim {
namespace {

constexpr log::Logger kLog("sdm630_sim");

// SDM630 input register addresses (0-based), float32 high word first.
constexpr uint16_t kVoltage = 0x0000;  // + 2 per phase
constexpr uint16_t kCurrent = 0x0006;
constexpr uint16_t kPower = 0x000C;
constexpr uint16_t kApparentPower = 0x0012;
constexpr uint16_t kPowerFactor = 0x001E;
constexpr uint16_t kTotalPower = 0x0034;
constexpr uint16_t kFrequency = 0x0046;
constexpr uint16_t kImportKwh = 0x0048;
constexpr uint16_t kExportKwh = 0x004A;
constexpr uint16_t kTotalKwh = 0x0156;

// Modbus TCP: MBAP header of 7 bytes; the unit id is its last byte.
constexpr int kTcpUnitOffset = 6;

void Put(std::vector<uint16_t>& regs, uint16_t address, double value) {
  const auto words = modbus::EncodeFloat32(static_cast<float>(value), /*high_word_first=*/true);
  regs[address] = words[0];
  regs[address + 1] = words[1];
}

}  // namespace

Sdm630Simulator::Sdm630Simulator(const Clock& clock, int unit_id)
    : clock_(clock), unit_id_(unit_id) {
  absl::MutexLock lock(&mu_);
  integrated_to_ = clock_.Now();
}

Sdm630Simulator::~Sdm630Simulator() { Stop(); }

void Sdm630Simulator::IntegrateLocked(absl::Time now) {
  if (now <= integrated_to_) return;
  double total_w = 0;
  for (const Sdm630Phase& p : phases_) total_w += p.voltage_v * p.current_a * p.power_factor;
  const double hours = absl::ToDoubleHours(now - integrated_to_);
  (total_w >= 0 ? import_wh_ : export_wh_) += std::abs(total_w) * hours;
  integrated_to_ = now;
}

void Sdm630Simulator::SetPhase(int phase, const Sdm630Phase& state) {
  absl::MutexLock lock(&mu_);
  IntegrateLocked(clock_.Now());
  if (phase >= 0 && phase < 3) phases_[phase] = state;
}

void Sdm630Simulator::SetFrequency(double hz) {
  absl::MutexLock lock(&mu_);
  frequency_hz_ = hz;
}

void Sdm630Simulator::SetEnergy(double import_wh, double export_wh) {
  absl::MutexLock lock(&mu_);
  integrated_to_ = clock_.Now();
  import_wh_ = import_wh;
  export_wh_ = export_wh;
}

void Sdm630Simulator::ForceFloat(uint16_t address, float value) {
  absl::MutexLock lock(&mu_);
  forced_[address] = value;
}

void Sdm630Simulator::ClearForced() {
  absl::MutexLock lock(&mu_);
  forced_.clear();
}

void Sdm630Simulator::SetResponding(bool responding) {
  absl::MutexLock lock(&mu_);
  responding_ = responding;
}

std::vector<uint16_t> Sdm630Simulator::InputRegisters() {
  absl::MutexLock lock(&mu_);
  IntegrateLocked(clock_.Now());
  std::vector<uint16_t> regs(kInputRegisters, 0);
  double total_w = 0;
  for (int i = 0; i < 3; ++i) {
    const Sdm630Phase& p = phases_[i];
    const double va = p.voltage_v * std::abs(p.current_a);
    const double w = p.voltage_v * p.current_a * p.power_factor;
    total_w += w;
    Put(regs, kVoltage + 2 * i, p.voltage_v);
    Put(regs, kCurrent + 2 * i, p.current_a);
    Put(regs, kPower + 2 * i, w);
    Put(regs, kApparentPower + 2 * i, va);
    Put(regs, kPowerFactor + 2 * i, p.power_factor);
  }
  Put(regs, kTotalPower, total_w);
  Put(regs, kFrequency, frequency_hz_);
  Put(regs, kImportKwh, import_wh_ / 1000);
  Put(regs, kExportKwh, export_wh_ / 1000);
  Put(regs, kTotalKwh, (import_wh_ + export_wh_) / 1000);
  for (const auto& [address, value] : forced_) {
    if (address + 1 < kInputRegisters) Put(regs, address, value);
  }
  return regs;
}

absl::Status Sdm630Simulator::Listen(const std::string& host, int port) {
  if (thread_.joinable()) return absl::FailedPreconditionError("already listening");
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("socket: ", std::generic_category().message(errno)));
  }
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
    return absl::UnavailableError(absl::StrCat("cannot listen on ", host, ":", port, ": ",
                                               std::generic_category().message(error)));
  }
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  listen_fd_ = fd;
  port_ = ntohs(addr.sin_port);
  stop_ = false;
  thread_ = std::thread([this] { Serve(); });
  return absl::OkStatus();
}

void Sdm630Simulator::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (listen_fd_ >= 0) close(listen_fd_);
  listen_fd_ = -1;
}

void Sdm630Simulator::Serve() {
  // libmodbus frames and answers requests; we own the sockets.
  modbus_t* ctx = modbus_new_tcp("127.0.0.1", port_);
  modbus_mapping_t* mapping =
      modbus_mapping_new_start_address(0, 0, 0, 0, 0, 0, 0, kInputRegisters);
  std::set<int> clients;
  uint8_t query[MODBUS_TCP_MAX_ADU_LENGTH];
  while (!stop_) {
    fd_set fds;
    FD_ZERO(&fds);
    FD_SET(listen_fd_, &fds);
    int max_fd = listen_fd_;
    for (int c : clients) {
      FD_SET(c, &fds);
      max_fd = std::max(max_fd, c);
    }
    timeval tv{0, 50000};  // re-check stop_ every 50 ms
    if (select(max_fd + 1, &fds, nullptr, nullptr, &tv) <= 0) continue;
    if (FD_ISSET(listen_fd_, &fds)) {
      const int c = accept(listen_fd_, nullptr, nullptr);
      if (c >= 0 && c < FD_SETSIZE) {
        clients.insert(c);
      } else if (c >= 0) {
        close(c);
      }
    }
    for (auto it = clients.begin(); it != clients.end();) {
      const int c = *it;
      if (!FD_ISSET(c, &fds)) {
        ++it;
        continue;
      }
      modbus_set_socket(ctx, c);
      const int n = modbus_receive(ctx, query);
      if (n < 0) {  // closed by the client, or a garbled frame: drop the connection
        close(c);
        it = clients.erase(it);
        continue;
      }
      ++it;
      if (n == 0) continue;  // a frame for another device (libmodbus filtered it)
      const int unit = query[kTcpUnitOffset];
      bool responding;
      {
        absl::MutexLock lock(&mu_);
        responding = responding_;
      }
      if (!responding || (unit != unit_id_ && unit != 0xFF)) continue;
      const std::vector<uint16_t> regs = InputRegisters();
      std::copy(regs.begin(), regs.end(), mapping->tab_input_registers);
      if (modbus_reply(ctx, query, n, mapping) < 0) {
        kLog.Debug("reply failed: %s", modbus_strerror(errno));
      }
    }
  }
  for (int c : clients) close(c);
  modbus_mapping_free(mapping);
  modbus_free(ctx);
}

}  // namespace evgate::sim

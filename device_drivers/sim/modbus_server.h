// A Modbus server for simulated devices: serves any number of ModbusUnits,
// dispatched by unit id, over Modbus TCP and Modbus RTU (a serial port or a
// pseudo-terminal), as an RS-485/TCP gateway in front of a bus of devices
// does. The demo site's meter (unit 1) and off-grid box (unit 2) share one
// TCP port this way.
//
// Requests for a unit id the server does not have get no answer (on RTU
// another device would answer; on TCP a client sees a timeout). TCP unit ids
// 0 and 255 address the only unit of a one-unit server (direct connection);
// RTU unit 0 is a broadcast: writes go to every unit, nothing is answered.
//
// RTU over a pty has no baud rate: bytes arrive at once. With
// `emulate_line_timing` the server waits, before each answer, for the time
// the request and the answer would take on a real line at `baud` plus the
// device's turnaround, so bus timing measured against it is realistic.
//
// One background thread serves every endpoint; Stop() wakes it, so stopping
// takes no poll period. Thread-safe.
#ifndef EVGATE_DEVICE_DRIVERS_SIM_MODBUS_SERVER_H_
#define EVGATE_DEVICE_DRIVERS_SIM_MODBUS_SERVER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "device_drivers/sim/modbus_pdu.h"

namespace evgate::sim {

struct RtuLineOptions {
  int baud = 19200;
  char parity = 'E';  // 'N', 'E' or 'O'
  int data_bits = 8;
  int stop_bits = 1;
  bool emulate_line_timing = false;
  // Time the device takes to start answering after a request.
  absl::Duration turnaround = absl::Milliseconds(1);
};

// Time of `bytes` characters on the line (start + data + parity + stop bits).
absl::Duration RtuCharactersTime(int bytes, const RtuLineOptions& line);

class ModbusServer {
 public:
  struct Counters {
    uint64_t requests = 0;     // well-formed requests for one of our units
    uint64_t responses = 0;    // answers sent (including exception answers)
    uint64_t bad_frames = 0;   // RTU CRC errors, invalid MBAP headers
    uint64_t other_units = 0;  // requests for unit ids the server does not have
  };

  ModbusServer();
  ~ModbusServer();
  ModbusServer(const ModbusServer&) = delete;
  ModbusServer& operator=(const ModbusServer&) = delete;

  // Adds a device at `unit_id` (1-247); replaces one already there. `unit`
  // must outlive the server (or Stop()).
  void AddUnit(int unit_id, ModbusUnit* unit);

  // Serves Modbus TCP on host:port (IPv4; port 0 = a free port, see
  // tcp_port()). Any number of clients.
  absl::Status ListenTcp(const std::string& host, int port);
  int tcp_port() const;

  // Serves Modbus RTU on a serial device (e.g. /dev/ttyUSB1, or one end of
  // a `socat` pty pair), set to `line`.
  absl::Status ServeRtu(const std::string& path, const RtuLineOptions& line);
  // Serves Modbus RTU on a new pseudo-terminal and returns the path a client
  // opens as its serial port (e.g. /dev/pts/7).
  absl::StatusOr<std::string> ServeRtuPty(const RtuLineOptions& line);

  // Stops serving and closes every endpoint and connection. Idempotent.
  void Stop();

  Counters counters() const;

 private:
  struct RtuEndpoint {
    int fd = -1;       // read/write side (serial device or pty master)
    int keep_fd = -1;  // pty slave kept open so the master never sees a hangup
    RtuLineOptions line;
    RtuFrameParser parser;
    absl::Time last_byte;
  };
  struct TcpClient {
    int fd = -1;
    std::vector<uint8_t> buffer;
  };

  void EnsureThread() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Serve();
  // The unit a request is for; nullptr if none. Counts the request.
  ModbusUnit* UnitFor(uint8_t unit_id, bool tcp) ABSL_LOCKS_EXCLUDED(mu_);
  void HandleRtu(RtuEndpoint& endpoint);
  // False when the connection must be closed.
  bool HandleTcp(TcpClient& client);

  mutable absl::Mutex mu_;
  std::map<int, ModbusUnit*> units_ ABSL_GUARDED_BY(mu_);
  Counters counters_ ABSL_GUARDED_BY(mu_);
  int listen_fd_ ABSL_GUARDED_BY(mu_) = -1;
  int tcp_port_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::unique_ptr<RtuEndpoint>> rtu_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  // An eventfd Stop() writes to, polled by the serving thread with the
  // endpoints; -1 if it could not be made (then Stop() waits one poll period).
  const int wake_fd_;
  std::thread thread_;

  // Touched only by the serving thread.
  std::vector<TcpClient> clients_;
};

}  // namespace evgate::sim

#endif  // EVGATE_DEVICE_DRIVERS_SIM_MODBUS_SERVER_H_

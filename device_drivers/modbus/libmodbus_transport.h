// ModbusTransport on libmodbus 3.1: Modbus RTU over a serial port and Modbus
// TCP.
//
// A bad or missing answer is an error value, never a crash: libmodbus checks
// CRC, unit id, function code, transaction id and length, and this class maps
// its errno codes to the canonical codes documented in modbus_transport.h.
// After a timeout or a malformed answer the connection is flushed (RTU) or
// closed (TCP), so a late answer can never be taken for the next request's.
//
// Thread-compatible: one caller at a time (the bus owner).
#ifndef EVGATE_DEVICE_DRIVERS_MODBUS_LIBMODBUS_TRANSPORT_H_
#define EVGATE_DEVICE_DRIVERS_MODBUS_LIBMODBUS_TRANSPORT_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "device_drivers/modbus/modbus_transport.h"

typedef struct _modbus modbus_t;

namespace evgate::modbus {

struct RtuOptions {
  std::string port;  // e.g. /dev/ttyUSB0
  int baud = 9600;
  char parity = 'N';  // 'N', 'E' or 'O'
  int data_bits = 8;
  int stop_bits = 1;
  // Ask the driver for RS-485 mode (TIOCSRS485). Ports that do not support it
  // (most USB adapters switch direction in hardware) log a warning and go on.
  bool rs485 = true;
  absl::Duration timeout = absl::Milliseconds(500);
};

struct TcpOptions {
  std::string host;
  int port = 502;
  absl::Duration timeout = absl::Seconds(1);
};

class LibmodbusTransport final : public ModbusTransport {
 public:
  // Fails (kInvalidArgument) only for options libmodbus rejects outright; the
  // port is opened by Connect().
  static absl::StatusOr<std::unique_ptr<LibmodbusTransport>> Rtu(const RtuOptions& options);
  static absl::StatusOr<std::unique_ptr<LibmodbusTransport>> Tcp(const TcpOptions& options);

  ~LibmodbusTransport() override;
  LibmodbusTransport(const LibmodbusTransport&) = delete;
  LibmodbusTransport& operator=(const LibmodbusTransport&) = delete;

  absl::Status Connect() override;
  void Close() override;
  bool connected() const override { return connected_; }
  absl::Status SetSlave(int unit_id) override;
  absl::StatusOr<std::vector<uint16_t>> ReadRegisters(RegisterTable table, uint16_t address,
                                                      int count) override;
  absl::Status WriteRegister(uint16_t address, uint16_t value) override;
  absl::Status WriteRegisters(uint16_t address, absl::Span<const uint16_t> values) override;
  std::string Describe() const override { return description_; }

 private:
  LibmodbusTransport(modbus_t* ctx, std::string description, bool is_rtu, bool rs485,
                     absl::Duration timeout);
  // Maps the errno of a failed libmodbus call to a Status, and resets the
  // link so the next transaction starts clean.
  absl::Status Failure(int error, const std::string& what);

  modbus_t* ctx_;
  std::string description_;
  bool is_rtu_;
  bool rs485_;
  absl::Duration timeout_;
  bool connected_ = false;
  int unit_id_ = 1;
};

}  // namespace evgate::modbus

#endif  // EVGATE_DEVICE_DRIVERS_MODBUS_LIBMODBUS_TRANSPORT_H_

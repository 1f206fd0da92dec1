// The narrow seam between the Modbus bus owner and the wire.
//
// A ModbusTransport is one Modbus master connection: a serial port (RTU) or a
// TCP socket. The bus owner (bus_owner.h) is the only caller; it selects the
// unit id before each transaction and never issues two at once. Production
// code uses LibmodbusTransport (libmodbus_transport.h); tests use a fake.
//
// Errors are absl::Status values whose message names the bus, unit and
// register range, e.g.
//   "modbus tcp 127.0.0.1:1502 unit 1 input 0x0034+2: timeout after 500 ms"
// with these canonical codes, which the bus owner counts separately:
//   kDeadlineExceeded    no (complete) answer in time
//   kDataLoss            malformed answer: CRC, wrong unit, wrong length
//   kFailedPrecondition  the device answered with a Modbus exception
//   kUnavailable         not connected / connection lost / port cannot open
//   kInvalidArgument     the request itself is invalid (count out of range)
//
// Thread-compatible: one caller at a time.
#ifndef EVGATE_DEVICE_DRIVERS_MODBUS_MODBUS_TRANSPORT_H_
#define EVGATE_DEVICE_DRIVERS_MODBUS_MODBUS_TRANSPORT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace evgate::modbus {

// Which register table a read addresses (writes always go to holding
// registers).
enum class RegisterTable {
  kInput,    // function 04
  kHolding,  // function 03
};

// "input" / "holding".
const char* RegisterTableName(RegisterTable table);

// Largest register count of one read (Modbus: 125).
inline constexpr int kMaxReadRegisters = 125;
// Largest register count of one write (Modbus: 123).
inline constexpr int kMaxWriteRegisters = 123;

class ModbusTransport {
 public:
  virtual ~ModbusTransport() = default;

  // Opens the port / connects. Idempotent when already connected.
  virtual absl::Status Connect() = 0;
  // Closes the port / socket; the next transaction needs Connect().
  virtual void Close() = 0;
  virtual bool connected() const = 0;

  // Addresses the following transactions to `unit_id` (1-247; 0 = broadcast).
  virtual absl::Status SetSlave(int unit_id) = 0;

  // Reads `count` (1-125) registers starting at `address` (0-based PDU
  // address). On success the result has exactly `count` values.
  virtual absl::StatusOr<std::vector<uint16_t>> ReadRegisters(RegisterTable table, uint16_t address,
                                                              int count) = 0;

  // Writes one holding register (function 06).
  virtual absl::Status WriteRegister(uint16_t address, uint16_t value) = 0;

  // Writes holding registers starting at `address` (function 16).
  virtual absl::Status WriteRegisters(uint16_t address, absl::Span<const uint16_t> values) = 0;

  // "modbus tcp 127.0.0.1:502" / "modbus rtu /dev/ttyUSB0 9600 8N1".
  virtual std::string Describe() const = 0;
};

}  // namespace evgate::modbus

#endif  // EVGATE_DEVICE_DRIVERS_MODBUS_MODBUS_TRANSPORT_H_

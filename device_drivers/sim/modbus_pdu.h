// The server side of the Modbus application protocol, as pure functions: a
// simulated device (ModbusUnit) answers request PDUs, and the two framings
// (RTU: unit + PDU + CRC-16; TCP: MBAP header + PDU) are parsed and built
// here. No I/O: ModbusServer (modbus_server.h) moves the bytes.
//
// Supported functions: 03 read holding registers, 04 read input registers,
// 06 write single register, 16 write multiple registers. Anything else gets
// exception 01 (illegal function); a malformed request gets 03 (illegal data
// value), as the Modbus application protocol spec (6.x) asks.
//
// Every function here takes bytes from a client and must not trust them:
// lengths are checked before every access (fuzzed: modbus_request_fuzzer).
// Thread-safety: the free functions are thread-safe; RtuFrameParser is
// thread-compatible.
#ifndef EVGATE_DEVICE_DRIVERS_SIM_MODBUS_PDU_H_
#define EVGATE_DEVICE_DRIVERS_SIM_MODBUS_PDU_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/types/span.h"
#include "device_drivers/modbus/modbus_transport.h"

namespace evgate::sim {

using modbus::RegisterTable;

enum class ModbusException : uint8_t {
  kNone = 0,
  kIllegalFunction = 0x01,
  kIllegalDataAddress = 0x02,
  kIllegalDataValue = 0x03,
  kServerDeviceFailure = 0x04,
};

// One simulated device behind a Modbus server, addressed by its unit id.
// Implementations must be thread-safe: the server calls them from its thread
// while tests and site simulators change their state from others.
class ModbusUnit {
 public:
  virtual ~ModbusUnit() = default;

  // Registers [address, address + count) of `table`, or the exception to
  // answer with. `count` is 1-125 and the range within 0x0000-0xFFFF.
  struct ReadResult {
    std::vector<uint16_t> values;
    ModbusException exception = ModbusException::kNone;
  };
  virtual ReadResult Read(RegisterTable table, uint16_t address, int count) = 0;

  // Writes holding registers; kNone on success.
  virtual ModbusException Write(uint16_t address, absl::Span<const uint16_t> values) = 0;

  // False while the device is dead: requests get no answer at all.
  virtual bool Responding() { return true; }
};

// Answers one request PDU (function code + data) for `unit`. Returns the
// response PDU, or nullopt when nothing must be sent (the unit does not
// respond, or `broadcast`: writes are carried out, never answered).
std::optional<std::vector<uint8_t>> HandleRequestPdu(ModbusUnit& unit,
                                                     absl::Span<const uint8_t> pdu,
                                                     bool broadcast = false);

// Modbus RTU CRC-16 (polynomial 0xA001 reflected, initial 0xFFFF). On the
// wire the low byte goes first.
uint16_t Crc16(absl::Span<const uint8_t> bytes);

// Appends the CRC (low byte first) to `frame`.
void AppendCrc(std::vector<uint8_t>* frame);

// A complete request: unit id and PDU.
struct RequestFrame {
  uint8_t unit = 0;
  std::vector<uint8_t> pdu;
};

// Splits an RTU byte stream into request frames. Frame boundaries come from
// the request's own length (from its function code and byte count); a frame
// whose CRC does not match is dropped with the byte that started it, so the
// parser resynchronises on the next frame. The server also calls Reset()
// after a silence longer than 3.5 characters with bytes pending, as the
// RTU spec's t3.5 rule asks.
class RtuFrameParser {
 public:
  // Adds received bytes; returns the complete, CRC-checked frames in them.
  std::vector<RequestFrame> Feed(absl::Span<const uint8_t> bytes);
  // Drops a partial frame.
  void Reset() { buffer_.clear(); }
  bool pending() const { return !buffer_.empty(); }
  uint64_t bad_frames() const { return bad_frames_; }

 private:
  std::vector<uint8_t> buffer_;
  uint64_t bad_frames_ = 0;
};

// Modbus TCP: the MBAP header is 7 bytes (transaction id, protocol id 0,
// length of unit + PDU, unit id).
inline constexpr int kMbapHeaderSize = 7;

// Parses the request at the start of `bytes`. Returns the number of bytes it
// used (0 when more bytes are needed, -1 when the stream is invalid and the
// connection should be closed); fills `frame` and `transaction_id`.
int ParseTcpRequest(absl::Span<const uint8_t> bytes, RequestFrame* frame, uint16_t* transaction_id);

// The ADU that answers a TCP request.
std::vector<uint8_t> BuildTcpResponse(uint16_t transaction_id, uint8_t unit,
                                      absl::Span<const uint8_t> pdu);

}  // namespace evgate::sim

#endif  // EVGATE_DEVICE_DRIVERS_SIM_MODBUS_PDU_H_

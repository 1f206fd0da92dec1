#include "device_drivers/sim/modbus_pdu.h"

#include <algorithm>

namespace evgate::sim {
namespace {

constexpr uint8_t kReadHolding = 0x03;
constexpr uint8_t kReadInput = 0x04;
constexpr uint8_t kWriteSingle = 0x06;
constexpr uint8_t kWriteMultiple = 0x10;

uint16_t Be16(absl::Span<const uint8_t> bytes, size_t at) {
  return static_cast<uint16_t>((bytes[at] << 8) | bytes[at + 1]);
}

void PutBe16(std::vector<uint8_t>* out, uint16_t value) {
  out->push_back(static_cast<uint8_t>(value >> 8));
  out->push_back(static_cast<uint8_t>(value & 0xFF));
}

std::vector<uint8_t> Exception(uint8_t function, ModbusException exception) {
  return {static_cast<uint8_t>(function | 0x80), static_cast<uint8_t>(exception)};
}

// Length of the RTU request frame (unit + PDU + CRC) that starts `bytes`, or
// 0 when not enough bytes are there to know, or -1 for a function this
// server does not know (the frame length is then unknowable).
int RtuRequestLength(absl::Span<const uint8_t> bytes) {
  if (bytes.size() < 2) return 0;
  switch (bytes[1]) {
    case kReadHolding:
    case kReadInput:
    case kWriteSingle:
      return 8;  // unit, function, address, count/value, CRC
    case kWriteMultiple:
      if (bytes.size() < 7) return 0;
      return 9 + bytes[6];  // + byte count bytes of values
    default:
      return -1;
  }
}

// The response PDU to `pdu`; for a broadcast, reads are not carried out.
std::vector<uint8_t> Answer(ModbusUnit& unit, absl::Span<const uint8_t> pdu, bool broadcast) {
  const uint8_t function = pdu[0];
  std::vector<uint8_t> response;
  switch (function) {
    case kReadHolding:
    case kReadInput: {
      if (pdu.size() != 5) return Exception(function, ModbusException::kIllegalDataValue);
      const uint16_t address = Be16(pdu, 1);
      const uint16_t count = Be16(pdu, 3);
      if (count < 1 || count > modbus::kMaxReadRegisters) {
        return Exception(function, ModbusException::kIllegalDataValue);
      }
      if (address + count > 0x10000) {
        return Exception(function, ModbusException::kIllegalDataAddress);
      }
      if (broadcast) return {};  // reads are never broadcast
      ModbusUnit::ReadResult result = unit.Read(
          function == kReadInput ? RegisterTable::kInput : RegisterTable::kHolding, address, count);
      if (result.exception != ModbusException::kNone) return Exception(function, result.exception);
      if (result.values.size() != count) {
        return Exception(function, ModbusException::kServerDeviceFailure);
      }
      response = {function, static_cast<uint8_t>(2 * count)};
      for (uint16_t v : result.values) PutBe16(&response, v);
      break;
    }
    case kWriteSingle: {
      if (pdu.size() != 5) return Exception(function, ModbusException::kIllegalDataValue);
      const uint16_t value = Be16(pdu, 3);
      const ModbusException e = unit.Write(Be16(pdu, 1), absl::MakeConstSpan(&value, 1));
      if (e != ModbusException::kNone) return Exception(function, e);
      response.assign(pdu.begin(), pdu.end());  // the echo
      break;
    }
    case kWriteMultiple: {
      if (pdu.size() < 6) return Exception(function, ModbusException::kIllegalDataValue);
      const uint16_t address = Be16(pdu, 1);
      const uint16_t count = Be16(pdu, 3);
      const uint8_t bytes = pdu[5];
      if (count < 1 || count > modbus::kMaxWriteRegisters || bytes != 2 * count ||
          pdu.size() != 6u + bytes) {
        return Exception(function, ModbusException::kIllegalDataValue);
      }
      if (address + count > 0x10000) {
        return Exception(function, ModbusException::kIllegalDataAddress);
      }
      std::vector<uint16_t> values(count);
      for (int i = 0; i < count; ++i) values[i] = Be16(pdu, 6 + 2 * i);
      const ModbusException e = unit.Write(address, values);
      if (e != ModbusException::kNone) return Exception(function, e);
      response = {function};
      PutBe16(&response, address);
      PutBe16(&response, count);
      break;
    }
    default:
      response = Exception(function, ModbusException::kIllegalFunction);
      break;
  }
  return response;
}

}  // namespace

std::optional<std::vector<uint8_t>> HandleRequestPdu(ModbusUnit& unit,
                                                     absl::Span<const uint8_t> pdu,
                                                     bool broadcast) {
  if (!unit.Responding() || pdu.empty()) return std::nullopt;
  std::vector<uint8_t> response = Answer(unit, pdu, broadcast);
  if (broadcast) return std::nullopt;
  return response;
}

uint16_t Crc16(absl::Span<const uint8_t> bytes) {
  uint16_t crc = 0xFFFF;
  for (uint8_t b : bytes) {
    crc ^= b;
    for (int i = 0; i < 8; ++i) crc = (crc & 1) ? (crc >> 1) ^ 0xA001 : crc >> 1;
  }
  return crc;
}

void AppendCrc(std::vector<uint8_t>* frame) {
  const uint16_t crc = Crc16(*frame);
  frame->push_back(static_cast<uint8_t>(crc & 0xFF));
  frame->push_back(static_cast<uint8_t>(crc >> 8));
}

std::vector<RequestFrame> RtuFrameParser::Feed(absl::Span<const uint8_t> bytes) {
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
  std::vector<RequestFrame> frames;
  size_t start = 0;
  while (start < buffer_.size()) {
    const absl::Span<const uint8_t> rest = absl::MakeConstSpan(buffer_).subspan(start);
    const int length = RtuRequestLength(rest);
    if (length == 0) break;  // wait for more bytes
    if (length < 0) {
      // Unknown function: its length is unknowable; drop the byte and look
      // for the next frame.
      ++bad_frames_;
      ++start;
      continue;
    }
    if (rest.size() < static_cast<size_t>(length)) break;
    const absl::Span<const uint8_t> frame = rest.subspan(0, length);
    const uint16_t crc = static_cast<uint16_t>(frame[length - 2] | (frame[length - 1] << 8));
    if (Crc16(frame.subspan(0, length - 2)) != crc) {
      ++bad_frames_;
      ++start;
      continue;
    }
    frames.push_back({frame[0], std::vector<uint8_t>(frame.begin() + 1, frame.end() - 2)});
    start += length;
  }
  buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(start));
  return frames;
}

int ParseTcpRequest(absl::Span<const uint8_t> bytes, RequestFrame* frame,
                    uint16_t* transaction_id) {
  if (bytes.size() < kMbapHeaderSize) return 0;
  const uint16_t protocol = Be16(bytes, 2);
  const uint16_t length = Be16(bytes, 4);  // unit + PDU
  // A PDU is 1-253 bytes.
  if (protocol != 0 || length < 2 || length > 254) return -1;
  const size_t total = 6u + length;
  if (bytes.size() < total) return 0;
  *transaction_id = Be16(bytes, 0);
  frame->unit = bytes[6];
  frame->pdu.assign(bytes.begin() + kMbapHeaderSize, bytes.begin() + total);
  return static_cast<int>(total);
}

std::vector<uint8_t> BuildTcpResponse(uint16_t transaction_id, uint8_t unit,
                                      absl::Span<const uint8_t> pdu) {
  std::vector<uint8_t> adu;
  adu.reserve(kMbapHeaderSize + pdu.size());
  PutBe16(&adu, transaction_id);
  PutBe16(&adu, 0);
  PutBe16(&adu, static_cast<uint16_t>(pdu.size() + 1));
  adu.push_back(unit);
  adu.insert(adu.end(), pdu.begin(), pdu.end());
  return adu;
}

}  // namespace evgate::sim

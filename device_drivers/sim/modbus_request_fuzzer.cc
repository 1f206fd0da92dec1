// Fuzzes the simulators' server side: bytes from a Modbus client, as an RTU
// stream (split into reads at points the input chooses) and as a Modbus TCP
// stream, through framing and request handling. Checks the answers are
// well-formed; any crash or sanitizer report is a finding.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "device_drivers/sim/modbus_pdu.h"

namespace {

using evgate::sim::ModbusException;
using evgate::sim::ModbusUnit;
using evgate::sim::RegisterTable;

// 0x0000-0x00FF readable and writable; beyond, illegal data address.
class Unit : public ModbusUnit {
 public:
  ReadResult Read(RegisterTable, uint16_t address, int count) override {
    if (address + count > 0x100) return {{}, ModbusException::kIllegalDataAddress};
    return {std::vector<uint16_t>(regs_ + address, regs_ + address + count),
            ModbusException::kNone};
  }
  ModbusException Write(uint16_t address, absl::Span<const uint16_t> values) override {
    if (address + values.size() > 0x100) return ModbusException::kIllegalDataAddress;
    for (size_t i = 0; i < values.size(); ++i) regs_[address + i] = values[i];
    return ModbusException::kNone;
  }

 private:
  uint16_t regs_[0x100] = {};
};

void CheckResponse(const std::vector<uint8_t>& request, const std::vector<uint8_t>& response) {
  // A PDU is at most 253 bytes; an exception answer is 2; a read answer
  // carries exactly its byte count.
  if (response.empty() || response.size() > 253) std::abort();
  if (response[0] & 0x80) {
    if (response.size() != 2 || response[0] != (request[0] | 0x80)) std::abort();
    return;
  }
  if (response[0] != request[0]) std::abort();
  if ((response[0] == 3 || response[0] == 4) && response.size() != 2u + response[1]) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Unit unit;
  const absl::Span<const uint8_t> input(data, size);
  // RTU: the first byte chooses the read size.
  if (size > 0) {
    evgate::sim::RtuFrameParser parser;
    const size_t chunk = 1 + data[0] % 16;
    for (size_t at = 1; at < size; at += chunk) {
      for (const auto& frame : parser.Feed(input.subspan(at, chunk))) {
        if (auto response = evgate::sim::HandleRequestPdu(unit, frame.pdu, frame.unit == 0)) {
          CheckResponse(frame.pdu, *response);
        }
      }
    }
  }
  // TCP: the whole input as one stream.
  size_t at = 0;
  while (at < size) {
    evgate::sim::RequestFrame frame;
    uint16_t tid = 0;
    const int used = evgate::sim::ParseTcpRequest(input.subspan(at), &frame, &tid);
    if (used <= 0) break;
    at += static_cast<size_t>(used);
    if (frame.pdu.empty()) std::abort();  // the length field guarantees a PDU
    if (auto response = evgate::sim::HandleRequestPdu(unit, frame.pdu)) {
      CheckResponse(frame.pdu, *response);
      const std::vector<uint8_t> adu = evgate::sim::BuildTcpResponse(tid, frame.unit, *response);
      if (adu.size() != response->size() + evgate::sim::kMbapHeaderSize) std::abort();
    }
  }
  return 0;
}

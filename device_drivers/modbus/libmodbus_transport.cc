#include "device_drivers/modbus/libmodbus_transport.h"

#include <modbus.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/log.h"

namespace evgate::modbus {
namespace {

constexpr log::Logger kLog("modbus");

void SetTimeout(modbus_t* ctx, absl::Duration timeout) {
  const int64_t us = absl::ToInt64Microseconds(timeout);
  modbus_set_response_timeout(ctx, static_cast<uint32_t>(us / 1000000),
                              static_cast<uint32_t>(us % 1000000));
}

bool IsException(int error) { return error > MODBUS_ENOBASE && error <= EMBXGTAR; }

bool IsMalformed(int error) {
  return error == EMBBADCRC || error == EMBBADDATA || error == EMBBADEXC || error == EMBUNKEXC ||
         error == EMBMDATA || error == EMBBADSLAVE;
}

}  // namespace

absl::StatusOr<std::unique_ptr<LibmodbusTransport>> LibmodbusTransport::Rtu(
    const RtuOptions& options) {
  const std::string description =
      absl::StrFormat("modbus rtu %s %d %d%c%d", options.port, options.baud, options.data_bits,
                      options.parity, options.stop_bits);
  modbus_t* ctx = modbus_new_rtu(options.port.c_str(), options.baud, options.parity,
                                 options.data_bits, options.stop_bits);
  if (ctx == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(description, ": invalid serial settings: ", modbus_strerror(errno)));
  }
  SetTimeout(ctx, options.timeout);
  return std::unique_ptr<LibmodbusTransport>(
      new LibmodbusTransport(ctx, description, /*is_rtu=*/true, options.rs485, options.timeout));
}

absl::StatusOr<std::unique_ptr<LibmodbusTransport>> LibmodbusTransport::Tcp(
    const TcpOptions& options) {
  const std::string description = absl::StrCat("modbus tcp ", options.host, ":", options.port);
  if (options.port <= 0 || options.port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(description, ": port out of range"));
  }
  modbus_t* ctx = modbus_new_tcp(options.host.c_str(), options.port);
  if (ctx == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(description, ": invalid address: ", modbus_strerror(errno)));
  }
  SetTimeout(ctx, options.timeout);
  return std::unique_ptr<LibmodbusTransport>(
      new LibmodbusTransport(ctx, description, /*is_rtu=*/false, false, options.timeout));
}

LibmodbusTransport::LibmodbusTransport(modbus_t* ctx, std::string description, bool is_rtu,
                                       bool rs485, absl::Duration timeout)
    : ctx_(ctx),
      description_(std::move(description)),
      is_rtu_(is_rtu),
      rs485_(rs485),
      timeout_(timeout) {}

LibmodbusTransport::~LibmodbusTransport() {
  Close();
  modbus_free(ctx_);
}

absl::Status LibmodbusTransport::Connect() {
  if (connected_) return absl::OkStatus();
  if (modbus_connect(ctx_) != 0) {
    return absl::UnavailableError(
        absl::StrCat(description_, ": cannot connect: ", modbus_strerror(errno)));
  }
  connected_ = true;
  if (is_rtu_ && rs485_ && modbus_rtu_set_serial_mode(ctx_, MODBUS_RTU_RS485) != 0) {
    kLog.Warning(
        "%s: port does not support RS-485 mode (%s); continuing in RS-232 mode, which "
        "is right for adapters that switch direction themselves",
        description_, modbus_strerror(errno));
  }
  return absl::OkStatus();
}

void LibmodbusTransport::Close() {
  if (!connected_) return;
  modbus_close(ctx_);
  connected_ = false;
}

absl::Status LibmodbusTransport::SetSlave(int unit_id) {
  if (unit_id < 0 || unit_id > 247) {
    return absl::InvalidArgumentError(
        absl::StrCat(description_, ": unit id ", unit_id, " out of range 0-247"));
  }
  if (modbus_set_slave(ctx_, unit_id) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(description_, ": unit id ", unit_id, ": ", modbus_strerror(errno)));
  }
  unit_id_ = unit_id;
  return absl::OkStatus();
}

absl::Status LibmodbusTransport::Failure(int error, const std::string& what) {
  const std::string context = absl::StrCat(description_, " unit ", unit_id_, " ", what, ": ");
  if (IsException(error)) {
    // A clean exception reply: the link is in sync, keep it.
    return absl::FailedPreconditionError(
        absl::StrCat(context, "device exception: ", modbus_strerror(error)));
  }
  // Anything else may leave bytes of a late or garbled answer on the line.
  if (is_rtu_) {
    modbus_flush(ctx_);
  } else {
    Close();
  }
  if (error == ETIMEDOUT) {
    return absl::DeadlineExceededError(
        absl::StrCat(context, "timeout after ", absl::FormatDuration(timeout_)));
  }
  if (IsMalformed(error)) {
    return absl::DataLossError(absl::StrCat(context, "bad answer: ", modbus_strerror(error)));
  }
  Close();
  return absl::UnavailableError(absl::StrCat(context, "link error: ", modbus_strerror(error)));
}

absl::StatusOr<std::vector<uint16_t>> LibmodbusTransport::ReadRegisters(RegisterTable table,
                                                                        uint16_t address,
                                                                        int count) {
  const std::string what =
      absl::StrFormat("%s 0x%04X+%d", RegisterTableName(table), address, count);
  if (count < 1 || count > kMaxReadRegisters || address + count > 0x10000) {
    return absl::InvalidArgumentError(
        absl::StrCat(description_, " unit ", unit_id_, " ", what, ": register count out of range"));
  }
  if (!connected_) {
    if (absl::Status status = Connect(); !status.ok()) return status;
  }
  std::vector<uint16_t> values(count);
  const int n = table == RegisterTable::kInput
                    ? modbus_read_input_registers(ctx_, address, count, values.data())
                    : modbus_read_registers(ctx_, address, count, values.data());
  if (n < 0) return Failure(errno, what);
  if (n != count) {
    return absl::DataLossError(absl::StrCat(description_, " unit ", unit_id_, " ", what,
                                            ": answer has ", n, " registers"));
  }
  return values;
}

absl::Status LibmodbusTransport::WriteRegister(uint16_t address, uint16_t value) {
  const std::string what = absl::StrFormat("holding 0x%04X (write single)", address);
  if (!connected_) {
    if (absl::Status status = Connect(); !status.ok()) return status;
  }
  if (modbus_write_register(ctx_, address, value) < 0) return Failure(errno, what);
  return absl::OkStatus();
}

absl::Status LibmodbusTransport::WriteRegisters(uint16_t address,
                                                absl::Span<const uint16_t> values) {
  const int count = static_cast<int>(values.size());
  const std::string what = absl::StrFormat("holding 0x%04X+%d (write)", address, count);
  if (count < 1 || count > kMaxWriteRegisters || address + count > 0x10000) {
    return absl::InvalidArgumentError(
        absl::StrCat(description_, " unit ", unit_id_, " ", what, ": register count out of range"));
  }
  if (!connected_) {
    if (absl::Status status = Connect(); !status.ok()) return status;
  }
  const int n = modbus_write_registers(ctx_, address, count, values.data());
  if (n < 0) return Failure(errno, what);
  if (n != count) {
    return absl::DataLossError(absl::StrCat(description_, " unit ", unit_id_, " ", what,
                                            ": device confirmed ", n, " registers"));
  }
  return absl::OkStatus();
}

}  // namespace evgate::modbus

#include "device_drivers/modbus/modbus_transport.h"

namespace evgate::modbus {

const char* RegisterTableName(RegisterTable table) {
  return table == RegisterTable::kInput ? "input" : "holding";
}

}  // namespace evgate::modbus

// The device drivers (Modbus and CAN bus owners) as their own process (one
// container in a split deployment, the only one that reaches serial ports and
// CAN interfaces): `device_drivers --site FILE [--listen HOST:PORT]`.
#include <string>
#include <vector>

#include "device_drivers/driver/device_drivers_entry.h"
#include "runtime/launcher.h"

int main(int argc, char** argv) {
  return evgate::RunFromArgs(std::vector<std::string>(argv + 1, argv + argc),
                             {evgate::devices::DeviceDriversEntry()}, "device_drivers");
}

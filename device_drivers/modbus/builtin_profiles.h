// The register maps compiled into evgate (profiles/*.yaml), by profile name.
// Thread-safe: parsed once, immutable afterwards.
#ifndef EVGATE_DEVICE_DRIVERS_MODBUS_BUILTIN_PROFILES_H_
#define EVGATE_DEVICE_DRIVERS_MODBUS_BUILTIN_PROFILES_H_

#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "device_drivers/modbus/register_map.h"

namespace evgate::modbus {

// The built-in map called `name` (e.g. "eastron_sdm630"); kNotFound if none.
absl::StatusOr<const RegisterMap*> BuiltinRegisterMap(absl::string_view name);

namespace internal {
// (file name, YAML text) of each profiles/*.yaml; generated.
const std::vector<std::pair<const char*, const char*>>& BuiltinProfileFiles();
}  // namespace internal

}  // namespace evgate::modbus

#endif  // EVGATE_DEVICE_DRIVERS_MODBUS_BUILTIN_PROFILES_H_

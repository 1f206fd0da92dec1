// The simulator service's entry for a process's service catalog
// (runtime/service_catalog.h): its own binary and `evgate run` host it
// through this.
#ifndef EVGATE_DEVICE_DRIVERS_SIM_SIMULATOR_ENTRY_H_
#define EVGATE_DEVICE_DRIVERS_SIM_SIMULATOR_ENTRY_H_

#include "runtime/service_catalog.h"

namespace evgate::sim {

ServiceEntry SimulatorEntry();

}  // namespace evgate::sim

#endif  // EVGATE_DEVICE_DRIVERS_SIM_SIMULATOR_ENTRY_H_

// The grid controller's entry for a process's service catalog (runtime/service_catalog.h): its
// own binary and `evgate run` host it through this.
#ifndef EVGATE_SERVICES_GRID_CONTROLLER_GRID_CONTROLLER_ENTRY_H_
#define EVGATE_SERVICES_GRID_CONTROLLER_GRID_CONTROLLER_ENTRY_H_

#include "runtime/service_catalog.h"

namespace evgate::grid_controller {

ServiceEntry GridControllerEntry();

}  // namespace evgate::grid_controller

#endif  // EVGATE_SERVICES_GRID_CONTROLLER_GRID_CONTROLLER_ENTRY_H_

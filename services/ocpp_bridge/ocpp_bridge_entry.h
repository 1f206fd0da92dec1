// The ocpp_bridge service's entry for a process's service catalog
// (runtime/service_catalog.h): its own binary and `evgate run` host it
// through this.
#ifndef EVGATE_SERVICES_OCPP_BRIDGE_OCPP_BRIDGE_ENTRY_H_
#define EVGATE_SERVICES_OCPP_BRIDGE_OCPP_BRIDGE_ENTRY_H_

#include "runtime/service_catalog.h"

namespace evgate::ocpp {

ServiceEntry OcppBridgeEntry();

}  // namespace evgate::ocpp

#endif  // EVGATE_SERVICES_OCPP_BRIDGE_OCPP_BRIDGE_ENTRY_H_

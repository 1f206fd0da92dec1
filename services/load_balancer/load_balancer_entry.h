// The load_balancer service's entry for a process's service catalog
// (runtime/service_catalog.h): its own binary and `evgate run` host it
// through this.
#ifndef EVGATE_SERVICES_LOAD_BALANCER_LOAD_BALANCER_ENTRY_H_
#define EVGATE_SERVICES_LOAD_BALANCER_LOAD_BALANCER_ENTRY_H_

#include "runtime/service_catalog.h"

namespace evgate::load_balancer {

ServiceEntry LoadBalancerEntry();

}  // namespace evgate::load_balancer

#endif  // EVGATE_SERVICES_LOAD_BALANCER_LOAD_BALANCER_ENTRY_H_

// Every service of evgate, in start order: the catalog `evgate run` hosts
// (any subset of it in one process, `--services a,b`). The composition root:
// only here are all services linked together.
#ifndef EVGATE_GATEWAY_ALL_SERVICES_H_
#define EVGATE_GATEWAY_ALL_SERVICES_H_

#include "runtime/service_catalog.h"

namespace evgate::gateway {

const ServiceCatalog& AllServices();

}  // namespace evgate::gateway

#endif  // EVGATE_GATEWAY_ALL_SERVICES_H_

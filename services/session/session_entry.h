// The session service's entry for a process's service catalog
// (runtime/service_catalog.h): its own binary and `evgate run` host it
// through this.
#ifndef EVGATE_SERVICES_SESSION_SESSION_ENTRY_H_
#define EVGATE_SERVICES_SESSION_SESSION_ENTRY_H_

#include "runtime/service_catalog.h"

namespace evgate::session {

ServiceEntry SessionEntry();

}  // namespace evgate::session

#endif  // EVGATE_SERVICES_SESSION_SESSION_ENTRY_H_

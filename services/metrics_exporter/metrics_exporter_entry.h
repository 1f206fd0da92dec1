// The metrics_exporter service's entry for a process's service catalog
// (runtime/service_catalog.h): its own binary and `evgate run` host it
// through this.
#ifndef EVGATE_SERVICES_METRICS_EXPORTER_METRICS_EXPORTER_ENTRY_H_
#define EVGATE_SERVICES_METRICS_EXPORTER_METRICS_EXPORTER_ENTRY_H_

#include "runtime/service_catalog.h"

namespace evgate::metrics {

ServiceEntry MetricsExporterEntry();

}  // namespace evgate::metrics

#endif  // EVGATE_SERVICES_METRICS_EXPORTER_METRICS_EXPORTER_ENTRY_H_

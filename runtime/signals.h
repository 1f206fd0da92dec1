// Graceful shutdown on SIGTERM (systemd, Kubernetes) and SIGINT (Ctrl-C).
#ifndef EVGATE_RUNTIME_SIGNALS_H_
#define EVGATE_RUNTIME_SIGNALS_H_

namespace evgate {

// Blocks SIGINT and SIGTERM in the calling thread and every thread it creates
// afterwards. Call first thing in main(), before any thread starts.
void BlockShutdownSignals();

// Waits until SIGINT or SIGTERM arrives; returns the signal number.
int WaitForShutdownSignal();

}  // namespace evgate

#endif  // EVGATE_RUNTIME_SIGNALS_H_

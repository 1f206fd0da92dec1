// Puts an Authorizer in front of a gRPC server (see runtime/auth.h).
//
// Two hooks, one decision:
// - AuthMetadataProcessor (on the TLS server credentials) decides every call
//   before it reaches a handler: a denied call ends with UNAUTHENTICATED or
//   PERMISSION_DENIED and the handler never runs. It removes the
//   `authorization` metadata so no handler sees a token, and records the
//   verdict in the call's AuthContext.
// - A server interceptor (ServerBuilder::experimental().SetInterceptorCreators)
//   sees every call that reaches the application and cancels one arriving over
//   TLS without that verdict. gRPC 1.51's C++ server interceptors cannot end a
//   synchronous call with a status before its handler (there is no server-side
//   Hijack), which is why the decision itself is taken in the processor.
// Calls over the in-process channel (`evgate run`) carry no TLS and are not
// checked: they come from the services in the same process.
//
// Both objects are thread-safe; the Authorizer must outlive the server.
#ifndef EVGATE_RUNTIME_AUTH_GRPC_H_
#define EVGATE_RUNTIME_AUTH_GRPC_H_

#include <memory>

#include "grpcpp/security/auth_metadata_processor.h"
#include "grpcpp/support/server_interceptor.h"
#include "runtime/auth.h"

namespace evgate {

// The AuthContext property a granted call carries: the principal's name, or
// "-" for an open method (health, reflection) called without credentials.
inline constexpr char kPrincipalProperty[] = "evgate_principal";

std::shared_ptr<grpc::AuthMetadataProcessor> MakeAuthProcessor(const Authorizer* authorizer);

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MakeAuthInterceptorFactory();

}  // namespace evgate

#endif  // EVGATE_RUNTIME_AUTH_GRPC_H_

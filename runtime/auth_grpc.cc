#include "runtime/auth_grpc.h"

#include <string>

#include "grpcpp/server_context.h"
#include "runtime/grpc_status.h"
#include "runtime/log.h"

namespace evgate {
namespace {

constexpr log::Logger kLog("auth");

std::string ToString(const grpc::string_ref& ref) { return std::string(ref.data(), ref.size()); }

class AuthProcessor final : public grpc::AuthMetadataProcessor {
 public:
  explicit AuthProcessor(const Authorizer* authorizer) : authorizer_(authorizer) {}

  // Only hashing and table look-ups: run on gRPC's own thread.
  bool IsBlocking() const override { return false; }

  grpc::Status Process(const InputMetadata& auth_metadata, grpc::AuthContext* context,
                       OutputMetadata* consumed_auth_metadata,
                       OutputMetadata* /*response_metadata*/) override {
    std::string method;
    CallerCredentials caller;
    for (const auto& [key, value] : auth_metadata) {
      if (key == ":path") method = ToString(value);
      if (key == "authorization") {
        caller.authorization = ToString(value);
        consumed_auth_metadata->insert({"authorization", *caller.authorization});
      }
    }
    if (context->IsPeerAuthenticated()) {
      for (const char* property : {"x509_common_name", "x509_subject_alternative_name"}) {
        for (const grpc::string_ref& value : context->FindPropertyValues(property)) {
          caller.certificate_identities.push_back(ToString(value));
        }
      }
    }
    AuthVerdict verdict = authorizer_->Check(method, caller);
    if (!verdict.status.ok()) return ToGrpc(verdict.status);
    context->AddProperty(kPrincipalProperty, verdict.principal.empty() ? "-" : verdict.principal);
    return grpc::Status::OK;
  }

 private:
  const Authorizer* const authorizer_;
};

class AuthInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit AuthInterceptor(grpc::experimental::ServerRpcInfo* info) : info_(info) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      grpc::ServerContextBase* context = info_->server_context();
      std::shared_ptr<const grpc::AuthContext> auth = context->auth_context();
      bool over_tls = false;
      for (const grpc::string_ref& type : auth->FindPropertyValues("transport_security_type")) {
        if (type == "ssl") over_tls = true;
      }
      if (over_tls && auth->FindPropertyValues(kPrincipalProperty).empty()) {
        kLog.Error("%s arrived over TLS without an authorization verdict; cancelled",
                   info_->method());
        context->TryCancel();
      }
    }
    methods->Proceed();
  }

 private:
  grpc::experimental::ServerRpcInfo* const info_;
};

class AuthInterceptorFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new AuthInterceptor(info);
  }
};

}  // namespace

std::shared_ptr<grpc::AuthMetadataProcessor> MakeAuthProcessor(const Authorizer* authorizer) {
  return std::make_shared<AuthProcessor>(authorizer);
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MakeAuthInterceptorFactory() {
  return std::make_unique<AuthInterceptorFactory>();
}

}  // namespace evgate

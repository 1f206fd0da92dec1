#include "runtime/server_host.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "grpcpp/support/channel_arguments.h"
#include "runtime/auth_grpc.h"
#include "runtime/log.h"

namespace evgate {
namespace {

constexpr log::Logger kLog("server");

absl::StatusOr<std::string> ReadFile(const std::string& path, const char* what) {
  std::ifstream in(path);
  if (!in) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot read the TLS ", what, " file ", path, ": ", std::strerror(errno)));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials(const ServerOptions& options) {
  if (options.insecure) return grpc::InsecureServerCredentials();
  if (options.tls.cert_file.empty() || options.tls.key_file.empty()) {
    return absl::FailedPreconditionError(
        "TLS certificate and key are required (services.tls in site.yaml); plaintext gRPC is only "
        "allowed with insecure_demo: true");
  }
  grpc::SslServerCredentialsOptions ssl;
  auto cert = ReadFile(options.tls.cert_file, "certificate");
  if (!cert.ok()) return cert.status();
  auto key = ReadFile(options.tls.key_file, "key");
  if (!key.ok()) return key.status();
  ssl.pem_key_cert_pairs.push_back({*key, *cert});
  if (!options.tls.client_ca_file.empty()) {
    auto ca = ReadFile(options.tls.client_ca_file, "client CA");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *ca;
    // Not REQUIRE: an integrator that cannot hold a certificate comes with a
    // bearer token; a certificate that does not chain to the CA still fails.
    ssl.client_certificate_request = GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  if (options.authorizer == nullptr) {
    return absl::FailedPreconditionError(
        "TLS without an authorizer: add principals under services.auth in site.yaml");
  }
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::SslServerCredentials(ssl);
  credentials->SetAuthMetadataProcessor(MakeAuthProcessor(options.authorizer));
  return credentials;
}

}  // namespace

absl::Status CheckCanListen(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen address '", listen, "' is not host:port"));
  }
  if (port == 0) return absl::OkStatus();
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* result = nullptr;
  const std::string port_text = std::to_string(port);
  if (int rc =
          getaddrinfo(host.empty() ? nullptr : host.c_str(), port_text.c_str(), &hints, &result);
      rc != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot resolve listen address '", listen, "': ", gai_strerror(rc)));
  }
  absl::Status status = absl::OkStatus();
  for (addrinfo* ai = result; ai != nullptr; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0) continue;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      const int err = errno;
      status = absl::UnavailableError(absl::StrCat(
          "cannot listen on ", listen, ": ", std::strerror(err),
          err == EADDRINUSE ? " (is another evgate or service running on that port?)" : ""));
    }
    close(fd);
    if (!status.ok()) break;
  }
  freeaddrinfo(result);
  return status;
}

absl::StatusOr<std::unique_ptr<ServerHost>> ServerHost::Start(const ServerOptions& options,
                                                              std::vector<Service*> services) {
  if (absl::Status s = CheckCanListen(options.listen); !s.ok()) return s;
  auto credentials = Credentials(options);
  if (!credentials.ok()) return credentials.status();

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // gRPC sets SO_REUSEPORT by default, which would let a second evgate bind the
  // same port silently and split the traffic. One owner per port.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  auto host = std::unique_ptr<ServerHost>(new ServerHost);
  builder.AddListeningPort(options.listen, *credentials, &host->port_);
  if (!options.insecure) {
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
    creators.push_back(MakeAuthInterceptorFactory());
    builder.experimental().SetInterceptorCreators(std::move(creators));
  }
  for (Service* service : services) {
    for (grpc::Service* grpc_service : service->grpc_services()) {
      builder.RegisterService(grpc_service);
    }
  }
  host->server_ = builder.BuildAndStart();
  if (host->server_ == nullptr || host->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen,
                                               " (gRPC could not bind or start the server)"));
  }
  host->services_ = std::move(services);

  HostInfo info;
  info.port = host->port_;
  for (Service* service : host->services_) {
    for (const std::string& name : service->health_names()) info.hosted.push_back(name);
  }
  grpc::Server* server = host->server_.get();
  info.in_process_channel = [server] { return server->InProcessChannel(grpc::ChannelArguments()); };
  for (Service* service : host->services_) service->OnHosted(info);

  grpc::HealthCheckServiceInterface* health = host->server_->GetHealthCheckService();
  for (Service* service : host->services_) {
    if (absl::Status s = service->Start(); !s.ok()) {
      host->Shutdown(absl::Seconds(1));
      return absl::Status(s.code(), absl::StrCat(std::string(service->name()), ": ", s.message()));
    }
    for (const std::string& name : service->health_names()) {
      health->SetServingStatus(name, true);
    }
    kLog.Info("%s started", service->name());
  }
  health->SetServingStatus(true);
  kLog.Info("listening on %s (port %d, %s)", options.listen, host->port_,
            options.insecure ? "PLAINTEXT and open to anyone, demo only" : "TLS, authorized");
  return host;
}

ServerHost::~ServerHost() { Shutdown(absl::Seconds(1)); }

void ServerHost::Shutdown(absl::Duration grace) {
  if (shut_down_ || server_ == nullptr) return;
  shut_down_ = true;
  server_->GetHealthCheckService()->SetServingStatus(false);
  for (auto it = services_.rbegin(); it != services_.rend(); ++it) {
    (*it)->Stop();
    kLog.Info("%s stopped", (*it)->name());
  }
  server_->Shutdown(std::chrono::system_clock::now() + absl::ToChronoNanoseconds(grace));
  server_->Wait();
}

}  // namespace evgate

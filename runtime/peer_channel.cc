#include "runtime/peer_channel.h"

#include "absl/strings/str_cat.h"
#include "grpcpp/create_channel.h"
#include "runtime/client_credentials.h"

namespace evgate {

absl::StatusOr<PeerChannel> ChannelToPeer(const site::SiteConfig& config, const HostInfo& host,
                                          const std::string& service,
                                          const std::string& health_name) {
  PeerChannel peer;
  auto endpoint = config.services.endpoints.find(service);
  if (endpoint != config.services.endpoints.end() && endpoint->second.endpoint) {
    peer.where = *endpoint->second.endpoint;
    ClientTls tls;
    if (config.services.tls) {
      const site::TlsConfig& site_tls = *config.services.tls;
      tls.ca_file = site_tls.client_ca_file.value_or(site_tls.cert_file);
      tls.cert_file = site_tls.client_cert_file.value_or("");
      tls.key_file = site_tls.client_key_file.value_or("");
    }
    auto credentials = MakeClientCredentials(!config.services.tls, tls);
    if (!credentials.ok()) {
      return absl::FailedPreconditionError(absl::StrCat("channel to ", service, " at ", peer.where,
                                                        ": ", credentials.status().message()));
    }
    peer.channel = grpc::CreateChannel(peer.where, *credentials);
    return peer;
  }
  if (host.Hosts(health_name) && host.in_process_channel) {
    peer.where = "in-process";
    peer.channel = host.in_process_channel();
  }
  return peer;
}

}  // namespace evgate

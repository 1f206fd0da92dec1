// The OcppBridge gRPC API (proto/evgate/v1/ocpp.proto) as an evgate Service,
// hosting the local Central System for the site's OCPP chargers.
//
// Object graph: WsServer (ocpp.local: listen, security profile, TLS files,
// CA; each charger's AuthorizationKey read from its `password_file`) ->
// CentralSystem (charge point state, message handlers) -> TransactionBook
// (SQLite, `ocpp_transactions.db` in the directory of
// `services.session_database`) and a SessionAuthorizer (the session
// service, in this process or at `services.endpoints.session.endpoint`). A
// thread ticks the Central System every second.
//
// The chargers are devices (OcppDeviceBackend): alone, the bridge serves
// evgate.v1.DeviceDriver for them itself; in `evgate run` with the device
// drivers, `serve_device_driver` is false and the backend is handed to the
// site's DeviceDriver service (gateway/all_services.cc), so that every
// device is behind one API.
//
// Not yet: the upstream CSMS client (GetUpstreamStatus is UNIMPLEMENTED when
// ocpp.upstream is configured, DISABLED when not).
//
// Thread-safe: RPCs run on gRPC's threads.
#ifndef EVGATE_SERVICES_OCPP_BRIDGE_OCPP_BRIDGE_SERVICE_H_
#define EVGATE_SERVICES_OCPP_BRIDGE_OCPP_BRIDGE_SERVICE_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "device_drivers/driver/device_driver_service.h"
#include "evgate/v1/ocpp.grpc.pb.h"
#include "runtime/clock.h"
#include "runtime/service.h"
#include "services/ocpp_bridge/central_system.h"
#include "services/ocpp_bridge/ocpp_device_backend.h"
#include "services/ocpp_bridge/transaction_book.h"
#include "services/ocpp_bridge/ws_server.h"
#include "site_controller/config/site_config.h"

namespace evgate::ocpp {

struct OcppBridgeOptions {
  CentralSystemOptions central_system;
  // Limits and timeouts of the websocket server; listen, profile, TLS files
  // and the charge points come from site.yaml.
  WsServerOptions server;
  absl::Duration tick = absl::Seconds(1);
  OcppDeviceBackendOptions device_backend;
  // Host a DeviceDriver service for the chargers (false: someone else hosts
  // device_backend()).
  bool serve_device_driver = true;
};

class OcppBridgeService final : public Service, public v1::OcppBridge::Service {
 public:
  // Reads the chargers' password files and opens the transaction book.
  // `clock` must outlive the service.
  static absl::StatusOr<std::unique_ptr<OcppBridgeService>> Create(const site::SiteConfig& config,
                                                                   const Clock& clock,
                                                                   OcppBridgeOptions options = {});
  ~OcppBridgeService() override;

  // The OCPP port listened on (0 before Start, or without ocpp.local).
  int ocpp_port() const;
  CentralSystem& central_system() { return *central_system_; }
  // The chargers as devices, for a DeviceDriver service of this process.
  std::shared_ptr<devices::DeviceBackend> device_backend() { return backend_; }

  // evgate::Service
  std::string_view name() const override { return "ocpp_bridge"; }
  std::vector<grpc::Service*> grpc_services() override;
  std::vector<std::string> health_names() const override;
  void OnHosted(const HostInfo& host) override;
  absl::Status Start() override;
  void Stop() override;

  // evgate.v1.OcppBridge
  grpc::Status ListChargePoints(grpc::ServerContext* context,
                                const v1::ListChargePointsRequest* request,
                                v1::ListChargePointsResponse* response) override;
  grpc::Status GetUpstreamStatus(grpc::ServerContext* context,
                                 const v1::GetUpstreamStatusRequest* request,
                                 v1::GetUpstreamStatusResponse* response) override;
  grpc::Status SendChargerCommand(grpc::ServerContext* context,
                                  const v1::SendChargerCommandRequest* request,
                                  v1::SendChargerCommandResponse* response) override;

 private:
  // Forwards to the authorizer chosen in OnHosted (set before any charger can
  // connect).
  class ChosenAuthorizer final : public IdTagAuthorizer {
   public:
    absl::StatusOr<nlohmann::json> Authorize(const std::string& id_tag,
                                             const std::string& evse_id) override {
      return chosen->Authorize(id_tag, evse_id);
    }
    std::unique_ptr<IdTagAuthorizer> chosen;
  };

  OcppBridgeService(const site::SiteConfig& config, const Clock& clock, OcppBridgeOptions options);

  const site::SiteConfig config_;
  const Clock& clock_;
  OcppBridgeOptions options_;
  std::unique_ptr<TransactionBook> book_;
  ChosenAuthorizer authorizer_;
  std::shared_ptr<CentralSystem> central_system_;
  std::shared_ptr<OcppDeviceBackend> backend_;
  std::unique_ptr<devices::DeviceDriverService> drivers_;  // serve_device_driver only
  std::unique_ptr<WsServer> server_;
  std::thread ticker_;
  absl::Notification stopping_;
};

}  // namespace evgate::ocpp

#endif  // EVGATE_SERVICES_OCPP_BRIDGE_OCPP_BRIDGE_SERVICE_H_

#include "device_drivers/sim/ocpp_charge_point_client.h"

#include <algorithm>
#include <deque>
#include <map>
#include <optional>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "boost/asio/connect.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/websocket.hpp"
#include "runtime/log.h"
#include "services/ocpp_bridge/ocpp_schemas.h"
#include "services/ocpp_bridge/rpc_endpoint.h"

namespace evgate::sim {
namespace {

namespace beast = boost::beast;
namespace net = boost::asio;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

constexpr log::Logger kLog("ocpp-sim");

}  // namespace

class OcppChargePointClients::Impl {
 public:
  Impl(const Clock& clock, OcppClientOptions options) : clock_(clock), options_(options) {}

  // One charger's connection, reconnecting for as long as the clients run.
  class Connection : public std::enable_shared_from_this<Connection> {
   public:
    Connection(Impl& impl, OcppChargerSimulator* charger, OcppClientTarget target)
        : impl_(impl),
          charger_(charger),
          target_(std::move(target)),
          resolver_(impl.ioc_),
          timer_(impl.ioc_),
          backoff_(impl.options_.reconnect_min) {}

    void Connect() {
      if (impl_.stopping_) return;
      if (!charger_->online()) {
        // Switched off: look again in a second, without an attempt.
        timer_.expires_after(absl::ToChronoNanoseconds(impl_.options_.reconnect_min));
        timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
          if (!ec) self->Connect();
        });
        return;
      }
      {
        absl::MutexLock lock(&impl_.mu_);
        ++impl_.links_[id()].attempts;
      }
      ws_.emplace(impl_.ioc_);
      resolver_.async_resolve(
          target_.host, absl::StrCat(target_.port),
          [self = shared_from_this()](beast::error_code ec, tcp::resolver::results_type results) {
            if (ec) return self->Failed(absl::StrCat("resolve: ", ec.message()));
            beast::get_lowest_layer(*self->ws_)
                .expires_after(absl::ToChronoNanoseconds(self->impl_.options_.connect_timeout));
            beast::get_lowest_layer(*self->ws_)
                .async_connect(results, [self](beast::error_code ec, const tcp::endpoint&) {
                  if (ec) return self->Failed(absl::StrCat("connect: ", ec.message()));
                  self->Handshake();
                });
          });
    }

    void Stop() {
      if (ws_ && open_) {
        beast::error_code ignored;
        beast::get_lowest_layer(*ws_).socket().shutdown(tcp::socket::shutdown_both, ignored);
        beast::get_lowest_layer(*ws_).socket().close(ignored);
      }
      timer_.cancel();
    }

    const std::string& id() const { return charger_->config().charge_point_id; }

   private:
    void Handshake() {
      websocket::stream<beast::tcp_stream>& ws = *ws_;
      ws.set_option(websocket::stream_base::decorator([this](websocket::request_type& request) {
        request.set(beast::http::field::sec_websocket_protocol, "ocpp1.6");
        if (!target_.password.empty()) {
          request.set(beast::http::field::authorization,
                      absl::StrCat("Basic ",
                                   absl::Base64Escape(absl::StrCat(id(), ":", target_.password))));
        }
      }));
      ws.async_handshake(
          response_, absl::StrCat(target_.host, ":", target_.port), absl::StrCat("/", id()),
          [self = shared_from_this()](beast::error_code ec) {
            if (ec) {
              return self->Failed(absl::StrCat("websocket handshake: ", ec.message(), " (HTTP ",
                                               self->response_.result_int(), ")"));
            }
            self->Opened();
          });
    }

    void Opened() {
      if (response_[beast::http::field::sec_websocket_protocol] != "ocpp1.6") {
        return Failed("the Central System did not agree on subprotocol ocpp1.6");
      }
      beast::get_lowest_layer(*ws_).expires_never();
      ws_->set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
      open_ = true;
      backoff_ = impl_.options_.reconnect_min;
      ++connection_number_;
      ocpp::RpcEndpointOptions rpc;
      rpc.call_timeout = impl_.options_.call_timeout;
      rpc.id_prefix = absl::StrCat("s", connection_number_, "-");
      endpoint_.emplace(
          ocpp::OcppSchemas::Ocpp16(), impl_.clock_, rpc,
          [this](std::string frame) { Send(std::move(frame)); },
          [this](int code, std::string reason) {
            kLog.Warning("%s: closing (%d %s)", id(), code, reason);
            ws_->async_close(
                websocket::close_reason(static_cast<websocket::close_code>(code), reason),
                [self = shared_from_this()](beast::error_code) {});
          },
          [this](const ocpp::Call& call) { return charger_->Handle(call, impl_.clock_.Now()); });
      {
        absl::MutexLock lock(&impl_.mu_);
        impl_.links_[id()].connected = true;
        impl_.links_[id()].last_error.clear();
      }
      charger_->Connected(impl_.clock_.Now());
      kLog.Info("%s: connected to ws://%s:%d/%s", id(), target_.host, target_.port, id());
      Read();
      Tick();
    }

    void Read() {
      ws_->async_read(buffer_, [self = shared_from_this()](beast::error_code ec, size_t) {
        if (ec) return self->Dropped(ec.message());
        std::string text = beast::buffers_to_string(self->buffer_.data());
        self->buffer_.consume(self->buffer_.size());
        self->endpoint_->OnFrame(text);
        self->Read();
      });
    }

    void Tick() {
      if (!open_) return;
      if (!charger_->online()) {
        beast::error_code ignored;
        beast::get_lowest_layer(*ws_).socket().shutdown(tcp::socket::shutdown_both, ignored);
        beast::get_lowest_layer(*ws_).socket().close(ignored);
        return Dropped("the simulated charger went offline");
      }
      endpoint_->Tick();
      if (!call_out_) {
        if (std::optional<OcppSimCall> call = charger_->TakeNext(impl_.clock_.Now())) {
          const uint64_t seq = call->seq;
          call_out_ = true;
          absl::Status sent = endpoint_->Call(
              call->action, call->payload, [self = shared_from_this(), seq](ocpp::CallOutcome o) {
                self->call_out_ = false;
                OcppSimResult result;
                result.result = std::move(o.result);
                result.call_error = o.error.has_value();
                if (o.error) {
                  kLog.Warning("%s: CALLERROR %s: %s", self->id(), o.error->code_name,
                               o.error->description);
                }
                self->charger_->OnResult(seq, result, self->impl_.clock_.Now());
              });
          if (!sent.ok()) {
            // Our own invalid CALL: a bug of the simulator, said and dropped.
            call_out_ = false;
            kLog.Error("%s: %s not sent: %s", id(), call->action, sent.message());
            OcppSimResult refused;
            refused.call_error = true;
            charger_->OnResult(seq, refused, impl_.clock_.Now());
          }
        }
      }
      timer_.expires_after(absl::ToChronoNanoseconds(impl_.options_.tick));
      timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
        if (!ec) self->Tick();
      });
    }

    void Send(std::string frame) {
      outbox_.push_back(std::move(frame));
      if (!writing_) Write();
    }

    void Write() {
      writing_ = true;
      ws_->text(true);
      ws_->async_write(net::buffer(outbox_.front()),
                       [self = shared_from_this()](beast::error_code ec, size_t) {
                         self->writing_ = false;
                         if (ec || !self->open_) return;  // the read fails too
                         self->outbox_.pop_front();
                         if (!self->outbox_.empty()) self->Write();
                       });
    }

    void Dropped(const std::string& why) {
      if (!open_) return;
      open_ = false;
      outbox_.clear();
      timer_.cancel();
      charger_->Disconnected();
      endpoint_->Shutdown();
      call_out_ = false;
      kLog.Warning("%s: connection lost: %s", id(), why);
      Failed(absl::StrCat("connection lost: ", why));
    }

    void Failed(const std::string& why) {
      {
        absl::MutexLock lock(&impl_.mu_);
        impl_.links_[id()].connected = false;
        impl_.links_[id()].last_error = why;
      }
      if (impl_.stopping_) return;
      kLog.Debug("%s: %s; again in %s", id(), why, absl::FormatDuration(backoff_));
      timer_.expires_after(absl::ToChronoNanoseconds(backoff_));
      backoff_ = std::min(backoff_ * 2, impl_.options_.reconnect_max);
      timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
        if (!ec) self->Connect();
      });
    }

    Impl& impl_;
    OcppChargerSimulator* const charger_;
    const OcppClientTarget target_;
    tcp::resolver resolver_;
    net::steady_timer timer_;
    std::optional<websocket::stream<beast::tcp_stream>> ws_;
    websocket::response_type response_;
    beast::flat_buffer buffer_;
    std::optional<ocpp::RpcEndpoint> endpoint_;
    std::deque<std::string> outbox_;
    bool writing_ = false;
    bool open_ = false;
    bool call_out_ = false;
    int connection_number_ = 0;
    absl::Duration backoff_;
  };

  const Clock& clock_;
  const OcppClientOptions options_;
  net::io_context ioc_;
  std::vector<std::shared_ptr<Connection>> connections_;
  std::thread thread_;
  bool stopping_ = false;  // touched on the I/O thread only, once started
  mutable absl::Mutex mu_;
  std::map<std::string, OcppClientLink> links_ ABSL_GUARDED_BY(mu_);
};

OcppChargePointClients::OcppChargePointClients(const Clock& clock, OcppClientOptions options)
    : impl_(std::make_unique<Impl>(clock, options)) {}

OcppChargePointClients::~OcppChargePointClients() { Stop(); }

void OcppChargePointClients::Add(OcppChargerSimulator* charger, OcppClientTarget target) {
  impl_->connections_.push_back(
      std::make_shared<Impl::Connection>(*impl_, charger, std::move(target)));
  absl::MutexLock lock(&impl_->mu_);
  impl_->links_[charger->config().charge_point_id];
}

void OcppChargePointClients::Start() {
  if (impl_->thread_.joinable() || impl_->connections_.empty()) return;
  for (auto& connection : impl_->connections_) {
    net::post(impl_->ioc_, [connection] { connection->Connect(); });
  }
  impl_->thread_ = std::thread([this] {
    auto guard = net::make_work_guard(impl_->ioc_);
    impl_->ioc_.run();
  });
}

void OcppChargePointClients::Stop() {
  if (!impl_->thread_.joinable()) return;
  net::post(impl_->ioc_, [this] {
    impl_->stopping_ = true;
    for (auto& connection : impl_->connections_) connection->Stop();
    impl_->ioc_.stop();
  });
  impl_->thread_.join();
}

OcppClientLink OcppChargePointClients::Link(const std::string& charge_point_id) const {
  absl::MutexLock lock(&impl_->mu_);
  auto it = impl_->links_.find(charge_point_id);
  return it == impl_->links_.end() ? OcppClientLink{} : it->second;
}

}  // namespace evgate::sim

// Keeps one server-streaming gRPC call open: reads every message into a
// callback, and when the stream breaks (peer restarted, network) reports the
// loss, waits with exponential backoff (100 ms doubling to 2 s) and opens it
// again. The load balancer follows the device drivers' WatchDevices and the
// session service's WatchSessions this way, the metrics exporter the load
// balancer's WatchAllocations; a new stream starts with fresh snapshots, so
// the callbacks need no other recovery.
//
// Thread-safety: Start()/Stop() from one thread; the callbacks run on the
// follower's own thread, one at a time.
#ifndef EVGATE_RUNTIME_STREAM_FOLLOWER_H_
#define EVGATE_RUNTIME_STREAM_FOLLOWER_H_

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/sync_stream.h"
#include "runtime/grpc_status.h"
#include "runtime/log.h"

namespace evgate {

template <typename Response>
class StreamFollower {
 public:
  using Open =
      std::function<std::unique_ptr<grpc::ClientReaderInterface<Response>>(grpc::ClientContext*)>;
  using OnMessage = std::function<void(const Response&)>;
  using OnDown = std::function<void(const absl::Status&)>;

  // `what`: for log lines, e.g. "device driver 127.0.0.1:50051"; `logger`:
  // the service whose log they go to, e.g. "load_balancer".
  StreamFollower(std::string what, Open open, std::string logger = "load_balancer")
      : what_(std::move(what)), open_(std::move(open)), logger_(std::move(logger)) {}
  ~StreamFollower() { Stop(); }
  StreamFollower(const StreamFollower&) = delete;
  StreamFollower& operator=(const StreamFollower&) = delete;

  void Start(OnMessage on_message, OnDown on_down) {
    thread_ = std::thread([this, on_message = std::move(on_message), on_down = std::move(on_down)] {
      Run(on_message, on_down);
    });
  }

  void Stop() {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
      if (context_ != nullptr) context_->TryCancel();
    }
    if (thread_.joinable()) thread_.join();
  }

 private:
  static constexpr absl::Duration kMinBackoff = absl::Milliseconds(100);
  static constexpr absl::Duration kMaxBackoff = absl::Seconds(2);

  void Run(const OnMessage& on_message, const OnDown& on_down) {
    const log::Logger logger(logger_);
    absl::Duration backoff = kMinBackoff;
    bool reported_down = false;
    while (true) {
      grpc::ClientContext context;
      {
        absl::MutexLock lock(&mu_);
        if (stop_) return;
        context_ = &context;
      }
      std::unique_ptr<grpc::ClientReaderInterface<Response>> reader = open_(&context);
      Response message;
      bool got_any = false;
      while (reader->Read(&message)) {
        if (!got_any) {
          got_any = true;
          backoff = kMinBackoff;
          if (reported_down) logger.Info("%s: connected again", what_);
          reported_down = false;
        }
        on_message(message);
      }
      const grpc::Status status = reader->Finish();
      {
        absl::MutexLock lock(&mu_);
        context_ = nullptr;
        if (stop_) return;
      }
      if (!reported_down) {
        logger.Warning("%s: stream lost (%s); reconnecting", what_,
                       status.error_message().empty() ? "ended" : status.error_message());
        reported_down = true;
      }
      on_down(status.ok() ? absl::UnavailableError("stream ended") : FromGrpc(status));
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&stop_), backoff);
      backoff = std::min(backoff * 2, kMaxBackoff);
    }
  }

  const std::string what_;
  const Open open_;
  const std::string logger_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::thread thread_;
};

}  // namespace evgate

#endif  // EVGATE_RUNTIME_STREAM_FOLLOWER_H_

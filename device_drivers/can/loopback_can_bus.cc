#include "device_drivers/can/loopback_can_bus.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_format.h"

namespace evgate::can {

// One endpoint. Its state below is guarded by the network's mutex.
class LoopbackCanNetwork::Node final : public CanBus {
 public:
  Node(LoopbackCanNetwork* network, std::string name) : network_(network), name_(std::move(name)) {}
  ~Node() override { network_->Detach(this); }

  absl::Status Open() override {
    absl::MutexLock lock(&network_->mu_);
    open_ = true;
    return absl::OkStatus();
  }
  void Close() override {
    absl::MutexLock lock(&network_->mu_);
    open_ = false;
    queue_.clear();
    network_->changed_.SignalAll();
  }
  absl::Status Send(const CanFrame& frame) override { return network_->Send(this, frame); }
  BusEvent Receive(absl::Duration timeout) override { return network_->Receive(this, timeout); }
  std::string Describe() const override { return "loopback " + name_; }

  LoopbackCanNetwork* const network_;
  const std::string name_;
  bool open_ = false;
  std::deque<BusEvent> queue_;
  int64_t dropped_ = 0;
  bool reported_down_ = false;
};

LoopbackCanNetwork::LoopbackCanNetwork(const Clock& clock, size_t queue_limit)
    : clock_(clock), queue_limit_(std::max<size_t>(queue_limit, 1)) {}

LoopbackCanNetwork::~LoopbackCanNetwork() = default;

std::unique_ptr<CanBus> LoopbackCanNetwork::Endpoint(const std::string& name) {
  absl::MutexLock lock(&mu_);
  const std::string node_name = name.empty() ? absl::StrFormat("node%d", next_id_) : name;
  ++next_id_;
  auto node = std::make_unique<Node>(this, node_name);
  nodes_.push_back(node.get());
  return node;
}

void LoopbackCanNetwork::Detach(Node* node) {
  absl::MutexLock lock(&mu_);
  nodes_.erase(std::remove(nodes_.begin(), nodes_.end(), node), nodes_.end());
}

void LoopbackCanNetwork::SetInterfaceUp(bool up) {
  absl::MutexLock lock(&mu_);
  up_ = up;
  changed_.SignalAll();
}

void LoopbackCanNetwork::InjectEvent(const std::string& name, const BusEvent& event) {
  absl::MutexLock lock(&mu_);
  for (Node* node : nodes_) {
    if (node->name_ == name) node->queue_.push_back(event);
  }
  changed_.SignalAll();
}

int64_t LoopbackCanNetwork::frames_sent() const {
  absl::MutexLock lock(&mu_);
  return frames_sent_;
}

int64_t LoopbackCanNetwork::frames_dropped(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  for (const Node* node : nodes_) {
    if (node->name_ == name) return node->dropped_;
  }
  return 0;
}

absl::Status LoopbackCanNetwork::Send(Node* from, const CanFrame& frame) {
  if (frame.dlc > 8) {
    return absl::InvalidArgumentError(
        absl::StrFormat("DLC %d is not a classic CAN frame", frame.dlc));
  }
  if (frame.id > (frame.extended ? 0x1FFFFFFFu : 0x7FFu)) {
    return absl::InvalidArgumentError(absl::StrFormat("id 0x%x does not fit its format", frame.id));
  }
  absl::MutexLock lock(&mu_);
  if (!from->open_) return absl::FailedPreconditionError(from->Describe() + " is not open");
  if (!up_) return absl::UnavailableError(from->Describe() + ": interface down");
  ++frames_sent_;
  BusEvent event;
  event.kind = BusEventKind::kFrame;
  event.frame = frame;
  event.frame->received_at = clock_.Now();
  // Bytes past the DLC are not on the wire.
  for (int i = frame.dlc; i < 8; ++i) event.frame->data[i] = 0;
  for (Node* node : nodes_) {
    if (node == from || !node->open_) continue;
    if (node->queue_.size() >= queue_limit_) {
      node->queue_.pop_front();
      ++node->dropped_;
    }
    node->queue_.push_back(event);
  }
  changed_.SignalAll();
  return absl::OkStatus();
}

BusEvent LoopbackCanNetwork::Receive(Node* node, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::MutexLock lock(&mu_);
  bool timed_out = false;
  while (true) {
    if (!node->queue_.empty()) {
      BusEvent event = std::move(node->queue_.front());
      node->queue_.pop_front();
      return event;
    }
    // Down: said at once the first time, then after each timeout (a real
    // transport tries to reopen the interface once per Receive).
    if (!up_ && (!node->reported_down_ || timed_out)) {
      node->reported_down_ = true;
      return BusEvent{BusEventKind::kInterfaceDown, std::nullopt, "loopback bus down"};
    }
    if (up_ && node->reported_down_) {
      node->reported_down_ = false;
      return BusEvent{BusEventKind::kRestarted, std::nullopt, "loopback bus up again"};
    }
    if (timed_out) return BusEvent{BusEventKind::kTimeout, std::nullopt, ""};
    timed_out = changed_.WaitWithDeadline(&mu_, deadline);
  }
}

}  // namespace evgate::can

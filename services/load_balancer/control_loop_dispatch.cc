// ControlLoop's dispatch: each driver's batch built from the decision,
// decreases first across drivers, one thread per driver, sequences asked of
// the driver, results booked into what the loop knows of each EVSE, failing
// drivers retried off the loop thread (control_loop.h, "Dispatch" and
// "Sequences").
#include <algorithm>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "google/protobuf/util/time_util.h"
#include "runtime/log.h"
#include "services/load_balancer/control_loop.h"
#include "services/load_balancer/setpoint_values.h"

namespace evgate::load_balancer {
namespace {

using ::google::protobuf::util::TimeUtil;

log::Logger kLog("load_balancer");

// "SETPOINT_REJECT_REASON_DEVICE_OFFLINE" -> "device_offline".
std::string RejectReasonLabel(v1::SetpointRejectReason reason) {
  std::string name = v1::SetpointRejectReason_Name(reason);
  absl::string_view label = name;
  absl::ConsumePrefix(&label, "SETPOINT_REJECT_REASON_");
  return label.empty() ? "unspecified" : absl::AsciiStrToLower(label);
}

}  // namespace

bool ControlLoop::Dispatch(bool refresh) {
  if (!decision_) return false;
  // Per ready driver: its setpoints, and which of them decrease.
  struct Part {
    v1::ApplySetpointsRequest all;  // every setpoint at its new value
    std::vector<int> increases;     // positions in `all` that increase
    bool changed = false;
    bool decreases = false;
  };
  std::vector<Part> parts(links_.size());
  for (const control::Setpoint& setpoint : decision_->setpoints) {
    const EvseRoute& route = evse_routes_.at(setpoint.evse);
    if (!route.link || !link_ready_[*route.link]) continue;
    if (OcppNeverOnline(setpoint.evse)) continue;  // nothing to send it to yet
    Part& part = parts[*route.link];
    const EvseCommand& command = commands_[setpoint.evse];
    v1::Setpoint& out = *part.all.add_setpoints();
    out.set_evse_id(setpoint.evse);
    *out.mutable_value() = ToValue(setpoint, *route.config);
    const bool same =
        command.in_force && (SameValue(*command.in_force, out.value()) ||
                             (command.asked && SameValue(*command.asked, out.value())));
    const bool refused_before = command.refused && SameValue(*command.refused, out.value());
    part.changed |= !same && !refused_before;
    if (same) continue;
    // Unknown in force: it may be a decrease, so it goes first.
    if (command.in_force && Draw(out.value()) > Draw(*command.in_force)) {
      part.increases.push_back(part.all.setpoints_size() - 1);
    } else {
      part.decreases = true;
    }
  }
  std::vector<Job> first;
  std::vector<Job> second;
  for (size_t link = 0; link < links_.size(); ++link) {
    Part& part = parts[link];
    if (part.all.setpoints().empty() || (!part.changed && !refresh)) continue;
    // A driver whose last call failed is retried with the tick's refresh
    // only, and off the loop thread: a hung one must cost neither every
    // input nor every tick its deadline.
    if (link_failing_[link]) {
      if (refresh && !retrying_[link]) Retry(link, std::move(part.all));
      continue;
    }
    if (!part.increases.empty() && part.decreases) {
      // First round: the increases held at their value in force.
      v1::ApplySetpointsRequest held = part.all;
      for (int i : part.increases) {
        v1::Setpoint& s = *held.mutable_setpoints(i);
        *s.mutable_value() = *commands_[s.evse_id()].in_force;
      }
      first.push_back(Job{link, std::move(held)});
      second.push_back(Job{link, std::move(part.all)});
    } else if (!part.increases.empty()) {
      second.push_back(Job{link, std::move(part.all)});
    } else {
      first.push_back(Job{link, std::move(part.all)});
    }
  }
  bool taken = false;
  // The increases wait only if some decrease goes out first.
  if (first.empty()) first.swap(second);
  for (std::vector<Job>* round : {&first, &second}) {
    if (round->empty()) continue;
    RunJobs(*round);
    const absl::Time now = clock_.MonotonicNow();
    for (const Job& job : *round) taken |= Book(job, now);
    // A decrease that newly failed leaves less room than the increases were
    // computed with: they wait for the recomputation (Step).
    for (const std::string& evse_id : recheck_) {
      if (NotCommandable(evse_id) != commands_[evse_id].pushed) return taken;
    }
  }
  return taken;
}

void ControlLoop::Prepare(v1::ApplySetpointsRequest& request) const {
  request.set_controller_id(options_.controller_id);
  *request.mutable_ttl() =
      TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(options_.setpoint_ttl));
}

void ControlLoop::Retry(size_t link, v1::ApplySetpointsRequest request) {
  auto job = std::make_shared<Job>(Job{link, std::move(request)});
  Prepare(job->request);
  if (options_.stepped) {  // deterministic: on the caller's thread
    job->response = Send(link, job->request);
    Book(*job, clock_.MonotonicNow());
    return;
  }
  retrying_[link] = true;
  if (retries_[link].joinable()) retries_[link].join();  // done: its result was booked
  retries_[link] = std::thread([this, job] {
    job->response = Send(job->link, job->request);
    Input input;
    input.kind = Input::Kind::kCall;
    input.call = [this, job] {
      Book(*job, clock_.MonotonicNow());
      retrying_[job->link] = false;
    };
    input.call_trigger = v1::ALLOCATION_TRIGGER_DEVICE_EVENT;
    Post(std::move(input));
  });
}

void ControlLoop::RunJobs(std::vector<Job>& jobs) {
  for (Job& job : jobs) Prepare(job.request);
  // Each thread touches only its own job and its own link's next_sequence_.
  std::vector<std::thread> others;
  others.reserve(jobs.size());
  for (size_t k = 1; k < jobs.size(); ++k) {
    others.emplace_back([this, &job = jobs[k]] { job.response = Send(job.link, job.request); });
  }
  if (!jobs.empty()) jobs[0].response = Send(jobs[0].link, jobs[0].request);
  for (std::thread& thread : others) thread.join();
}

absl::StatusOr<v1::ApplySetpointsResponse> ControlLoop::Send(size_t link,
                                                             v1::ApplySetpointsRequest& request) {
  DeviceLink& driver = *links_[link];
  absl::StatusOr<v1::ApplySetpointsResponse> response = absl::UnknownError("not sent");
  for (int attempt = 0; attempt < 2; ++attempt) {
    uint64_t sequence = 0;
    {
      absl::MutexLock lock(&sequence_mu_);
      sequence = next_sequence_[link];
      if (sequence != 0) ++next_sequence_[link];
    }
    if (sequence == 0) {
      absl::StatusOr<v1::GetControllerSequenceResponse> where =
          driver.ControllerSequence(options_.controller_id, options_.apply_deadline);
      if (!where.ok()) {
        // Nothing was sent: not "maybe applied".
        return absl::FailedPreconditionError(
            absl::StrCat("batch not sent: ", where.status().message()));
      }
      absl::MutexLock lock(&sequence_mu_);
      next_sequence_[link] = std::max(next_sequence_[link], where->last_applied_sequence() + 1);
      sequence = next_sequence_[link]++;
    }
    request.set_sequence(sequence);
    request.set_batch_id(absl::StrCat(options_.controller_id, "-", request.sequence()));
    response = driver.Apply(request, options_.apply_deadline);
    const absl::StatusCode code = response.status().code();
    if (code != absl::StatusCode::kAborted && code != absl::StatusCode::kInvalidArgument) break;
    // Outdated or out of the window (another instance with our id, a
    // driver that remembers more than we do): ask where it stands.
    kLog.Warning("%s; asking %s for the sequence", response.status().message(), driver.name());
    absl::MutexLock lock(&sequence_mu_);
    next_sequence_[link] = 0;
  }
  return response;
}

bool ControlLoop::Book(const Job& job, absl::Time now) {
  bool taken = false;
  const v1::ApplySetpointsRequest& request = job.request;
  link_failing_[job.link] = !job.response.ok();
  v1::ControlCounters& counters = working_.counters;
  counters.set_batches_sent(counters.batches_sent() + 1);
  counters.set_setpoints_sent(counters.setpoints_sent() + request.setpoints_size());
  auto refused = [&](const std::string& reason, uint64_t n) {
    (*counters.mutable_setpoints_refused())[reason] += n;
  };
  if (!job.response.ok()) {
    counters.set_batches_failed(counters.batches_failed() + 1);
    refused("batch_failed", request.setpoints_size());
    const bool maybe = MayHaveBeenApplied(job.response.status().code());
    kLog.Warning("%s", job.response.status().message());
    for (const v1::Setpoint& sent : request.setpoints()) {
      EvseCommand& command = commands_[sent.evse_id()];
      command.failed =
          absl::StrCat("its driver did not take the last batch: ", job.response.status().message());
      recheck_.insert(sent.evse_id());
      if (maybe && (!command.in_force || Draw(sent.value()) > Draw(*command.in_force))) {
        // It may be in force now, until its TTL.
        command.in_force = sent.value();
        command.asked = sent.value();
        command.accepted = Accepted(sent.value(), now);
      } else if (maybe && command.accepted) {
        command.accepted->at = now;  // the older value may have been refreshed
      }
    }
    return false;
  }
  for (int i = 0; i < request.setpoints_size(); ++i) {
    const v1::Setpoint& sent = request.setpoints(i);
    EvseCommand& command = commands_[sent.evse_id()];
    const v1::SetpointResult* result = nullptr;
    if (i < job.response->results_size() && job.response->results(i).evse_id() == sent.evse_id()) {
      result = &job.response->results(i);
    } else {
      for (const v1::SetpointResult& r : job.response->results()) {
        if (r.evse_id() == sent.evse_id()) result = &r;
      }
    }
    if (result == nullptr || result->status() == v1::SETPOINT_STATUS_REJECTED ||
        result->status() == v1::SETPOINT_STATUS_UNSPECIFIED) {
      refused(result == nullptr ? "no_result" : RejectReasonLabel(result->reason()), 1);
      const std::string why =
          result == nullptr ? absl::StrCat(links_[job.link]->name(), " returned no result for it")
                            : absl::StrCat("its setpoint was refused: ", result->message());
      // Said once per reason, not at every refresh; retried with the tick's
      // refresh, not at every event (a powered-off wallbox would otherwise be
      // asked in a loop). The previous value stays in force.
      if (command.failed != why) kLog.Warning("EVSE %s: %s", sent.evse_id(), why);
      if (command.failed != why) recheck_.insert(sent.evse_id());
      command.failed = why;
      command.refused = sent.value();
      continue;
    }
    if (stale_devices_.count(evse_routes_.at(sent.evse_id()).device) > 0) {
      // Taken by the driver, not confirmed by the device: what is in force
      // there is still unknown (and the EVSE still not commandable).
      command.refused.reset();
      continue;
    }
    const bool changed =
        !command.in_force || !(SameValue(*command.in_force, sent.value()) ||
                               (command.asked && SameValue(*command.asked, sent.value())));
    command.in_force = sent.value();
    command.asked = sent.value();
    if (result->has_in_force() && result->in_force().has_value()) {
      command.in_force = result->in_force().value();
    }
    command.accepted = Accepted(*command.in_force, now);
    command.refused.reset();
    if (!command.failed.empty()) recheck_.insert(sent.evse_id());
    command.failed.clear();
    taken |= changed;
  }
  return taken;
}

}  // namespace evgate::load_balancer

// The allocation engine as it was before the performance work of issue #10, kept as a test-only
// oracle (allocation_property_test compares the current engine with it bit for bit) and as the
// "before" of allocation_benchmark. Same contract as allocation.h; same thread-safety
// (functions thread-safe; PreparedSiteReference thread-compatible).

#ifndef EVGATE_SITE_CONTROLLER_ALLOCATION_ALLOCATION_REFERENCE_H_
#define EVGATE_SITE_CONTROLLER_ALLOCATION_ALLOCATION_REFERENCE_H_

#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "site_controller/allocation/allocation.h"

namespace evgate::allocation::reference {

absl::Status ValidateInputReference(const AllocationInput& input);
absl::StatusOr<Allocation> AllocateReference(const AllocationInput& input);

namespace internal {
class Engine;
}  // namespace internal

// As allocation::PreparedSite.
class PreparedSiteReference {
 public:
  static absl::StatusOr<PreparedSiteReference> Create(const AllocationInput& structure);
  PreparedSiteReference(PreparedSiteReference&&) noexcept;
  PreparedSiteReference& operator=(PreparedSiteReference&&) noexcept;
  ~PreparedSiteReference();
  absl::StatusOr<Allocation> Allocate(const AllocationInput& snapshot);
  bool SameStructure(const AllocationInput& input) const;
  const AllocationInput& structure() const { return *structure_; }

 private:
  PreparedSiteReference();
  std::unique_ptr<AllocationInput> structure_;
  std::unique_ptr<internal::Engine> engine_;
};

}  // namespace evgate::allocation::reference

#endif  // EVGATE_SITE_CONTROLLER_ALLOCATION_ALLOCATION_REFERENCE_H_

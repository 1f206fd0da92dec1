// The allocation engine's numeric conventions, shared by its validation
// (allocation_validation.cc) and the engine (allocation.cc): step counting with
// a slack, the capacity tolerance and the rounding of outputs.
#ifndef EVGATE_SITE_CONTROLLER_ALLOCATION_INTERNAL_NUMERIC_H_
#define EVGATE_SITE_CONTROLLER_ALLOCATION_INTERNAL_NUMERIC_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

namespace evgate::allocation::internal {

inline constexpr double kInf = std::numeric_limits<double>::infinity();
// Slack used when converting a continuous value into a whole number of steps, so that
// 16.299999999999997 A counts as 163 steps of 0.1 A. Far below any physical resolution.
inline constexpr double kStepEps = 1e-9;

// Absolute tolerance for comparing a usage with a capacity (floating-point sums only).
inline double Tolerance(double capacity) { return 1e-9 * std::max(1.0, std::abs(capacity)); }

// Rounds to 1/scale (scale 1000: 0.001). The 1e-6 of a unit absorbs floating-point noise so that
// 163 × 0.1 A prints as 16.3 and not 16.299.
// "+ 0.0" turns -0.0 into 0.0.
inline double FloorScaled(double value, double scale) {
  return std::floor(value * scale + 1e-6) / scale + 0.0;
}
inline double CeilScaled(double value, double scale) {
  return std::ceil(value * scale - 1e-6) / scale + 0.0;
}

inline int64_t StepsFloor(double value, double step) {
  return static_cast<int64_t>(std::floor(value / step + kStepEps));
}
inline int64_t StepsCeil(double value, double step) {
  return static_cast<int64_t>(std::ceil(value / step - kStepEps));
}

}  // namespace evgate::allocation::internal

#endif  // EVGATE_SITE_CONTROLLER_ALLOCATION_INTERNAL_NUMERIC_H_

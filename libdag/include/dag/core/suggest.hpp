#pragma once
/// @file "Did you mean" suggestions for misspelt names (keys, task ids, macros).

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace dag {

/// Edit distance between two strings where an insertion, a deletion, a substitution or a swap
/// of two adjacent characters each cost 1 (optimal string alignment), so `hots` is 1 from `host`.
inline std::size_t edit_distance(std::string_view a, std::string_view b) {
  const std::size_t width = b.size() + 1;
  std::vector<std::size_t> d((a.size() + 1) * width);
  auto at = [&](std::size_t i, std::size_t j) -> std::size_t& { return d[i * width + j]; };
  for (std::size_t i = 0; i <= a.size(); ++i) at(i, 0) = i;
  for (std::size_t j = 0; j <= b.size(); ++j) at(0, j) = j;
  for (std::size_t i = 1; i <= a.size(); ++i)
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      at(i, j) = std::min({at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        at(i, j) = std::min(at(i, j), at(i - 2, j - 2) + 1);
    }
  return at(a.size(), b.size());
}

/// The candidate closest to `wrong`, if it is close enough to be a plausible typo
/// (distance at most a third of the longer word, and at least 1 allowed); else empty.
template <class Range>
std::string closest_match(std::string_view wrong, const Range& candidates) {
  std::string best;
  std::size_t best_distance = static_cast<std::size_t>(-1);
  for (const auto& candidate : candidates) {
    std::string_view c{candidate};
    std::size_t d = edit_distance(wrong, c);
    if (d < best_distance) {
      best_distance = d;
      best = std::string(c);
    }
  }
  std::size_t limit = std::max<std::size_t>(1, std::max(wrong.size(), best.size()) / 3);
  return best_distance <= limit ? best : std::string{};
}

/// " (did you mean 'x'?)" when a close candidate exists, else "".
template <class Range>
std::string did_you_mean(std::string_view wrong, const Range& candidates) {
  std::string best = closest_match(wrong, candidates);
  return best.empty() ? std::string{} : " (did you mean '" + best + "'?)";
}

}  // namespace dag

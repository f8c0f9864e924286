#pragma once
/// @file "Did you mean" suggestions for misspelt names (keys, task ids, macros).

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace dag {

/// Levenshtein distance between two strings (insert, delete, substitute each cost 1).
inline std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0u : 1u)});
      diagonal = above;
    }
  }
  return row[b.size()];
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

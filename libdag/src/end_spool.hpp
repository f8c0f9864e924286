#pragma once
/// @file The local executor's spool: ends of tries the store could not take yet, each in a small
/// file of its own, so that they outlive the process holding them (see docs/reliability.md).

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <dag/exec/local_executor.hpp>

namespace dag::detail {

/// A folder of ends, one file per try (written to a temporary file, flushed to disk, then renamed
/// into place, so a file is whole or absent). Not thread-safe: the engine's thread uses it.
class end_spool {
public:
  /// A spool in `options.folder` (made when first written), bounded by its caps.
  explicit end_spool(end_spool_options options);

  /// The ends a previous process left here, now held by this spool. A file that cannot be read
  /// back (never written whole: a leftover temporary file, or damaged) is removed.
  std::vector<task_event> load();
  /// Writes `e` down, unless it is held already. False (the reason in `problem()`) when the spool
  /// is full or the write failed: `e` is then not held.
  bool keep(const task_event& e);
  /// Removes `e`'s file, if it is held.
  void forget(const task_event& e);

  /// How many ends are held.
  std::size_t size() const { return held_.size(); }
  /// Why the latest `keep` failed; empty after one that succeeded.
  const std::string& problem() const { return problem_; }

private:
  struct entry {
    std::filesystem::path file;
    std::uintmax_t bytes = 0;
  };
  end_spool_options options_;
  std::map<std::string, entry> held_;  // by the try's identity
  std::uintmax_t bytes_ = 0;
  std::string problem_;
};

}  // namespace dag::detail

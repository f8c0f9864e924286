#pragma once
/// @file Where a try's log file lives: Airflow's layout under a log folder, built by the engine
/// when a try starts and recognised by the store, which keeps such a path as its folder alone.

#include <charconv>
#include <string>
#include <string_view>

namespace dag {

/// A try's log file in Airflow's layout (run ids hold ':' and '+', kept as they are):
/// `FOLDER/dag_id=D/run_id=R/task_id=T/attempt=N.log`, with `map_index=K/` before the attempt for
/// the instances of a mapped task (map index 0 and up). An empty folder gives a relative path.
inline std::string log_file_of(std::string_view folder, std::string_view dag_id, std::string_view run_id,
                               std::string_view task_id, int map_index, int try_number) {
  // One string built in place: std::filesystem::path's operator/ per part cost more than the
  // rest of a try's start.
  std::string out;
  out.reserve(folder.size() + dag_id.size() + run_id.size() + task_id.size() + 64);
  out.append(folder);
  if (!out.empty() && out.back() != '/') out += '/';
  out.append("dag_id=").append(dag_id).append("/run_id=").append(run_id).append("/task_id=").append(task_id);
  if (map_index >= 0) out.append("/map_index=").append(std::to_string(map_index));
  return out.append("/attempt=").append(std::to_string(try_number)).append(".log");
}

/// When `path` is `log_file_of(folder, …)` of this try for a folder that is not empty: the length
/// of that folder with the '/' after it (so `path` is its first that many characters followed by
/// the layout's part). Otherwise npos.
inline std::size_t log_folder_length(std::string_view path, std::string_view dag_id, std::string_view run_id,
                                     std::string_view task_id, int map_index, int try_number) {
  std::string_view rest = path;
  const auto strip = [&rest](std::string_view tail) {
    if (!rest.ends_with(tail)) return false;
    rest.remove_suffix(tail.size());
    return true;
  };
  const auto strip_number = [&strip](int n) {
    char digits[16];
    const auto end = std::to_chars(digits, digits + sizeof digits, n).ptr;
    return strip(std::string_view(digits, static_cast<std::size_t>(end - digits)));
  };
  const bool matches = strip(".log") && strip_number(try_number) && strip("/attempt=") &&
                       (map_index < 0 || (strip_number(map_index) && strip("/map_index="))) && strip(task_id) &&
                       strip("/task_id=") && strip(run_id) && strip("/run_id=") && strip(dag_id) && strip("dag_id=") &&
                       rest.ends_with('/');
  return matches ? rest.size() : std::string_view::npos;
}

}  // namespace dag

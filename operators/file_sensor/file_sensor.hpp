#pragma once
/// @file The file sensor: waits until a path or glob pattern names a file (Airflow's FileSensor).

#include <filesystem>
#include <string>
#include <system_error>

#include <glob.h>

#include <dag/core/operator.hpp>
#include <dag/core/task.hpp>
#include <dag/operators/sensor.hpp>

namespace dag::operators {

/// `operator: file_sensor` — at each poke, looks for `filepath` (templated; a path or a glob
/// pattern such as `/data/in/{{ ds }}/*.csv`): met once it names a file, or a folder holding a
/// file somewhere below it (Airflow's rule). With `non_empty: true`, only files of at least one
/// byte count. The first match goes to XCom. Relative paths are resolved against the scheduler's
/// working folder: give absolute ones.
struct file_sensor {
  /// Fields: `filepath` (required), `non_empty`, and the sensor fields.
  static operator_spec spec() {
    return {"file_sensor",
            sensor::with_fields({{"filepath", field_kind::templated, true}, {"non_empty", field_kind::boolean, false}}),
            true, &run};
  }

  /// The first file `pattern` names (directly, or inside a folder it names); "" when none.
  static std::string first_match(const std::string& pattern, bool non_empty) {
    glob_t found{};
    const int rc = ::glob(pattern.c_str(), 0, nullptr, &found);
    std::string out;
    for (std::size_t i = 0; rc == 0 && i < found.gl_pathc && out.empty(); ++i) {
      const std::filesystem::path p = found.gl_pathv[i];
      std::error_code ec;
      if (counts(p, non_empty)) out = p.string();
      else if (std::filesystem::is_directory(p, ec))
        for (auto it = std::filesystem::recursive_directory_iterator(p, ec);
             !ec && it != std::filesystem::recursive_directory_iterator() && out.empty(); it.increment(ec))
          if (counts(it->path(), non_empty)) out = it->path().string();
    }
    ::globfree(&found);
    return out;
  }

  /// Runs one execution of the sensor.
  static operator_result run(const task&, task_context& ctx) {
    const std::string pattern = ctx.fields.at("filepath");
    const bool non_empty = field_is_true(ctx, "non_empty");
    return sensor::run(ctx, [&](task_context&) {
      std::string match = first_match(pattern, non_empty);
      if (match.empty()) return poke_result::not_yet(std::string(non_empty ? "no non-empty file" : "no file") + " at " + pattern);
      return poke_result::met(std::move(match));
    });
  }

private:
  static bool counts(const std::filesystem::path& p, bool non_empty) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(p, ec)) return false;
    return !non_empty || std::filesystem::file_size(p, ec) > 0;
  }
};

}  // namespace dag::operators

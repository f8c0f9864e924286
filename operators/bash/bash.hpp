#pragma once
/// @file The bash operator: runs a shell command in its own process group.

#include <dag/core/operator.hpp>

namespace dag::operators {

/// `operator: bash` — runs `bash_command` with `bash -c`; exit 0 success, 99 skipped, else failed.
struct bash {
  /// Fields: `bash_command` (templated, required), `env` (extra environment), `cwd`.
  static operator_spec spec() {
    return {"bash",
            {{"bash_command", field_kind::templated, true},
             {"env", field_kind::string_map, false},
             {"cwd", field_kind::templated, false}}};
  }
};

}  // namespace dag::operators

// libFuzzer target: the YAML DAG loader (yaml-cpp, then dagrun's reading and checking of every
// field) on arbitrary text: a list of problems or a DAG, never a crash.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <dag/load/yaml_loader.hpp>
#include <dag/operators/builtin.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const dag::operator_catalog operators = dag::builtin_operators();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)dag::load_yaml_text(text, "dags/fuzz.yaml", operators);
  return 0;
}

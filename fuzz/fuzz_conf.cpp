// libFuzzer target: a run's conf as `--conf` and the API give it (dag::checked_conf: depth and
// size bounds before nlohmann's recursive parser).
#include <cstddef>
#include <cstdint>
#include <string>

#include <dag/core/error.hpp>
#include <dag/model/operations.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    (void)dag::checked_conf(text, "--conf");
  } catch (const dag::error&) {
  }
  return 0;
}

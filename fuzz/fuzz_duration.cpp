// libFuzzer target: durations (`1h30m`, `6h`, `@daily` is not one) and ISO times, the two kinds of
// time text DAG files and flags hold; what parses must format and parse back to itself.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <dag/core/error.hpp>
#include <dag/core/time.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const auto d = dag::parse_duration(text);
    if (dag::parse_duration(dag::format_duration(d)) != d) std::abort();  // the round trip holds
  } catch (const dag::error&) {
  }
  try {
    (void)dag::format_iso(dag::parse_time(text));
  } catch (const dag::error&) {
  }
  return 0;
}

// libFuzzer target: cron expressions (dag::cron_expr::parse), then the next fire times of what parses.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <dag/core/error.hpp>
#include <dag/schedule/cron.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const auto cron = dag::cron_expr::parse(text);
    auto t = dag::parse_time("2024-02-28T23:59:00Z");
    for (int i = 0; i < 3; ++i) {
      const auto next = cron.next_match(t);
      if (!next) break;
      t = *next;
    }
    (void)cron.prev_match(t);
  } catch (const dag::error&) {
    // A clear error is the expected answer to bad input.
  }
  return 0;
}

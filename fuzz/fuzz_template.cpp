// libFuzzer target: the template parser and renderer (`{{ ds }}`, `{{ params.x }}`,
// `{{ var.value.x }}`, `{{ conn.c.host }}`, `{{ ti.xcom_pull('t') }}`, macros, comments).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <dag/core/connection.hpp>
#include <dag/core/error.hpp>
#include <dag/template/template.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  dag::template_context context;
  context.dag_id = "d";
  context.task_id = "t";
  context.run_id = "manual__2024-01-01T00:00:00+00:00";
  context.logical_date = dag::parse_time("2024-01-01T00:00:00Z");
  context.data_interval_start = context.logical_date;
  context.data_interval_end = dag::parse_time("2024-01-02T00:00:00Z");
  context.params = {{"x", "1"}, {"name", "n"}};
  context.variable = [](std::string_view name) -> std::optional<std::string> {
    return name == "v" ? std::optional<std::string>("value") : std::nullopt;
  };
  context.connection = [](std::string_view id) -> std::optional<dag::connection> {
    if (id != "c") return std::nullopt;
    return dag::parse_connection_uri("c", "postgresql://user:secret@host:5432/db");
  };
  context.xcom_pull = [](std::string_view task) -> std::optional<std::string> {
    return task == "t" ? std::optional<std::string>("42") : std::nullopt;
  };
  context.mask_secret = [](std::string_view) {};
  try {
    const auto parsed = dag::template_text::parse(text);
    try {
      dag::check(parsed, {});
    } catch (const dag::error&) {
    }
    (void)dag::render(parsed, context);
  } catch (const dag::error&) {
  }
  return 0;
}

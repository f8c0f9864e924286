// A try's log (`…/tasks/TASK/logs/N`): its first and last part at most, whatever the file's
// size (a page never holds a whole huge log), a try selector, a download of the whole file, and
// a live tail while the try runs (`/tail?offset=N`, polled by app.js).
#include "ui.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include <dag/core/json_text.hpp>
#include <dag/model/operations.hpp>

namespace dag::detail::ui {
namespace {

constexpr std::size_t head_bytes = 64 * 1024;
constexpr std::size_t tail_bytes = 512 * 1024;
constexpr std::size_t tail_step_bytes = 256 * 1024;  // the most one live-tail answer adds

// Bytes [from, from + count) of the file at `path` (fewer at its end).
std::string read_part(const std::string& path, std::uintmax_t from, std::size_t count) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  in.seekg(static_cast<std::streamoff>(from));
  std::string out(count, '\0');
  in.read(out.data(), static_cast<std::streamsize>(count));
  out.resize(static_cast<std::size_t>(std::max<std::streamsize>(0, in.gcount())));
  return out;
}

std::uintmax_t size_of(const std::string& path) {
  std::error_code ec;
  const auto n = std::filesystem::file_size(path, ec);
  return ec ? 0 : n;
}

}  // namespace

http_response log_page(const request& r, const definition& d, const run_record& run, const std::string& task_id, int try_number,
                       const std::string& view, int map_index) {
  const auto found = find_try(r.ctx.db, d.id(), run.run_id, task_id, try_number, map_index);
  const std::string back = ti_href(d.id(), run.run_id, task_id, map_index);
  if (!found || found->log_path.empty())
    return not_found_page(r, "Task '" + task_id + "' has no try " + std::to_string(try_number) + " in run '" + run.run_id + "'.", back, task_id);
  const std::string& path = found->log_path;
  const bool running = !is_finished(found->state) || found->state == task_state::up_for_reschedule;
  const std::uintmax_t size = size_of(path);

  if (view == "download") {
    // Streamed from the file by the server: a log of any size costs a buffer, not its size.
    http_response out{200, "text/plain; charset=utf-8", ""};
    out.file = path;
    out.headers.emplace_back("Content-Disposition", "attachment; filename=\"" + d.id() + "." + task_id + "." + std::to_string(try_number) + ".log\"");
    return out;
  }
  if (view == "tail") {
    std::uintmax_t from = 0;
    const std::string text = r.param("offset");
    if (!text.empty() && text.size() < 16 && text.find_first_not_of("0123456789") == std::string::npos) from = std::stoull(text);
    from = std::min(from, size);
    // A client far behind skips to the last part, as the page itself would show it.
    std::string skipped;
    if (size - from > tail_step_bytes) {
      skipped = "\n… " + std::to_string(size - tail_step_bytes - from) + " bytes left out …\n";
      from = size - tail_step_bytes;
    }
    const std::string part = skipped + read_part(path, from, static_cast<std::size_t>(size - from));
    const nlohmann::json out{{"text", part}, {"offset", size}, {"running", running}};
    http_response response{200, "application/json", json_dump(out)};
    response.headers.emplace_back("Cache-Control", "no-store");
    return response;
  }
  if (!view.empty()) return not_found_page(r, "A log has no view '" + view + "'.", back, task_id);

  const std::string content = log_excerpt(path, head_bytes, tail_bytes);
  // Every link names the instance: without its map index, a mapped task's page is its first instance's.
  const auto view_href = [&](std::string_view part) { return log_href(d.id(), run.run_id, task_id, try_number, map_index, part); };
  std::string body = "<nav class=\"tabs tries\">";
  for (const auto& t : tries_of(r.ctx.db, d.id(), run.run_id, task_id, map_index))
    body += "<a href=\"" + esc(log_href(d.id(), run.run_id, task_id, t.try_number, map_index)) + "\"" + (t.try_number == try_number ? " class=\"on\"" : "") +
            ">try " + std::to_string(t.try_number) + " <span class=\"st st-" + std::string(to_string(t.state)) + "\">" +
            std::string(to_string(t.state)) + "</span></a>";
  body += "</nav><p class=\"bar-actions\"><span class=\"dim\">" + std::to_string(size) + " bytes · started " + esc(when(found->start_date)) +
          "</span> <a class=\"button\" href=\"" + esc(view_href("download")) + "\" download>Download</a> <a class=\"button\" href=\"" +
          esc(back) + "\">Task instance</a></p>";
  body += "<div id=\"log\" class=\"log\"" +
          (running ? " data-tail=\"" + esc(view_href("tail")) + "\" data-offset=\"" + std::to_string(size) + "\"" : std::string()) +
          "><pre>" + esc(content) + "</pre></div>";
  auto frame = frame_of(r, task_id + " · try " + std::to_string(try_number));
  frame.crumbs = {{"/", "DAGs"}, {dag_href(d.id()), d.id()}, {run_href(d.id(), run.run_id), run.run_id}, {back, task_id}};
  return page(200, frame, body);
}

}  // namespace dag::detail::ui

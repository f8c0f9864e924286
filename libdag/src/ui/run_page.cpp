// A run's page (`/dags/ID/runs/RUN`): its state, type, conf, data interval and times; its task
// instances; a Gantt chart; clear and mark (through the confirmation pages of task_page.cpp).
#include "ui.hpp"

#include <nlohmann/json.hpp>

namespace dag::detail::ui {
http_response run_page(const request& r, const definition& d, const run_record& run) {
  const auto now = r.ctx.now.precise_now();
  const auto tis = r.ctx.db.task_instances(d.id(), run.run_id);
  const nlohmann::json conf = nlohmann::json::parse(run.conf, nullptr, false);
  const std::string base = run_href(d.id(), run.run_id);
  std::string body = "<div class=\"cols\"><table class=\"kv\">" +
                     kv_row("State", "<span data-s=\"" + esc(live_key(run.run_id)) + "\" class=\"st st-" + std::string(to_string(run.state)) +
                                      "\">" + std::string(to_string(run.state)) + "</span>") +
                     kv_row("Run id", "<code>" + esc(run.run_id) + "</code>") + kv_row("Run type", esc(std::string(to_string(run.type)))) +
                     kv_row("Logical date", esc(when(run.logical_date))) +
                     kv_row("Data interval", esc(when(run.interval.start)) + " – " + esc(when(run.interval.end))) +
                     kv_row("Started", esc(when(run.start_date))) + kv_row("Ended", esc(when(run.end_date))) +
                     kv_row("Duration", esc(span_text(seconds_of(run.start_date, run.end_date, now)))) +
                     kv_row("Conf", "<pre class=\"conf\">" + esc(conf.is_discarded() ? run.conf : json_dump(conf, 2)) + "</pre>") + "</table>";
  body += "<div class=\"actions stack-sm\"><h2>Actions</h2>"
          "<a class=\"button\" href=\"" + esc(base) + "/clear?only_failed=1\">Clear failed tasks</a>"
          "<a class=\"button\" href=\"" + esc(base) + "/clear?only_failed=0\">Clear all tasks</a>"
          "<a class=\"button\" href=\"" + esc(base) + "/mark_success\">Mark success</a>"
          "<a class=\"button\" href=\"" + esc(base) + "/mark_failed\">Mark failed</a></div></div>";
  body += "<h2>Task instances</h2><div class=\"scroll\"><table class=\"list\" id=\"tis\"><thead><tr><th>Task</th><th>State</th><th>Try</th>"
          "<th>Started</th><th>Duration</th><th>Log</th></tr></thead><tbody>";
  for (const auto& ti : tis) {
    body += "<tr><td><a href=\"" + esc(ti_href(d.id(), run.run_id, ti.task_id, ti.map_index)) + "\">" + esc(ti.task_id) +
            (ti.map_index >= 0 ? " [" + std::to_string(ti.map_index) + "]" : std::string()) + "</a></td><td><span data-s=\"" +
            esc(live_key(run.run_id, ti.task_id)) + "\" class=\"st st-" + std::string(to_string(ti.state)) + "\">" +
            std::string(to_string(ti.state)) + "</span></td><td>" + std::to_string(ti.try_number) + "</td><td>" + esc(when(ti.start_date)) +
            "</td><td>" + esc(span_text(seconds_of(ti.start_date, ti.end_date, now))) + "</td><td>" +
            (ti.try_number > 0 && !ti.log_path.empty()
                 ? "<a href=\"" + esc(log_href(d.id(), run.run_id, ti.task_id, ti.try_number, ti.map_index)) + "\">log</a>"
                 : std::string()) +
            "</td></tr>";
  }
  body += "</tbody></table></div><h2>Gantt</h2><div class=\"scroll\">" + gantt_svg(d, run, tis, now) + "</div>";
  auto frame = frame_of(r, "Run " + run.run_id);
  frame.crumbs = {{"/", "DAGs"}, {dag_href(d.id()), d.id()}};
  const live_scope scope{d.id(), 0, 0, run.run_id};
  make_live(frame, scope, {run});
  return page(200, frame, body);
}

}  // namespace dag::detail::ui

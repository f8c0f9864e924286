// A task instance's page (`/dags/ID/runs/RUN/tasks/TASK`): its tries, rendered fields (secrets
// masked), XCom, and clear / mark with their options; and the confirmation pages of clear and
// mark (a dry run of the operation listing what would change; the confirm button posts).
#include "ui.hpp"

#include <dag/core/error.hpp>
#include <dag/core/secret_mask.hpp>
#include <dag/engine/mapping.hpp>
#include <dag/engine/try_context.hpp>
#include <dag/exec/executor.hpp>
#include <dag/model/operations.hpp>
#include <dag/operators/builtin.hpp>

namespace dag::detail::ui {
namespace {

// What the operator receives for this try: fields rendered against the run, secrets masked.
std::string rendered_fields(const request& r, const definition& d, const run_record& run, const task& t, int try_number,
                            int map_index) {
  static const operator_catalog catalog = builtin_operators();
  try_spec which;
  which.try_number = std::max(1, try_number);
  which.map_index = map_index;
  const try_sources sources = store_sources(r.ctx.db, d.id(), run.run_id);
  // A mapped instance shows its own values in its expanded fields.
  task own = t;
  if (t.mapping.mapped() && map_index >= 0) {
    const map_expansion expansion = expand_mapping(t, sources.xcom);
    if (static_cast<std::size_t>(map_index) < expansion.length)
      own = mapped_instance(t, catalog.find(t.operator_name), expansion, static_cast<std::size_t>(map_index));
  }
  const task_context ctx = make_try_context(d, own, catalog.find(t.operator_name), run, which, sources);
  std::string out;
  for (const auto& [name, value] : ctx.fields) {
    const std::string shown = name == render_error_field ? "cannot render: " + value : value;
    out += kv_row(name == render_error_field ? "problem" : name, "<pre class=\"field\">" + esc(mask_secrets(shown, ctx.secrets)) + "</pre>");
  }
  return out.empty() ? "<p class=\"dim\">This task has no fields.</p>" : "<table class=\"kv fields\">" + out + "</table>";
}

}  // namespace

http_response task_page(const request& r, const definition& d, const run_record& run, const task_instance_record& ti,
                        bool whole) {
  const auto now = r.ctx.now.precise_now();
  const task& t = *d.find(ti.task_id);
  const std::string base = ti_href(d.id(), run.run_id, ti.task_id);
  // The instances of a mapped task, each a link to its own page.
  std::string instances;
  int instance_count = 0;
  if (t.mapping.mapped())
    for (const auto& other : r.ctx.db.task_instances(d.id(), run.run_id))
      if (other.task_id == ti.task_id && other.map_index >= 0) {
        ++instance_count;
        instances += (instances.empty() ? "" : " ") + std::string("<a class=\"st st-") + std::string(to_string(other.state)) +
                     (!whole && other.map_index == ti.map_index ? " sel" : "") + "\" href=\"" +
                     esc(ti_href(d.id(), run.run_id, ti.task_id, other.map_index)) + "\">" + std::to_string(other.map_index) + "</a>";
      }
  // The forms of one mapped instance carry its map index (a GET form's fields replace its action's query).
  const std::string one = ti.map_index >= 0 && !whole
                              ? "<input type=\"hidden\" name=\"map_index\" value=\"" + std::to_string(ti.map_index) + "\">"
                              : std::string();
  std::string acts_on;
  if (whole)
    acts_on = "<p class=\"dim\">These act on all " + std::to_string(instance_count) + " mapped instances.</p>";
  else if (ti.map_index >= 0)
    acts_on = "<p class=\"dim\">These act on map index " + std::to_string(ti.map_index) + " only.</p>";
  std::string body = "<div class=\"cols\"><table class=\"kv\">" +
                     (ti.map_index >= 0 ? kv_row("Map index", whole ? "all (tries below: " + std::to_string(ti.map_index) + ")"
                                                                    : std::to_string(ti.map_index))
                                        : std::string()) +
                     (instances.empty() ? std::string() : kv_row("Mapped instances", instances)) +
                     kv_row("State", "<span data-s=\"" + esc(live_key(run.run_id, ti.task_id)) + "\" class=\"st st-" +
                                      std::string(to_string(ti.state)) + "\">" + std::string(to_string(ti.state)) + "</span>") +
                     kv_row("Run", "<a href=\"" + esc(run_href(d.id(), run.run_id)) + "\">" + esc(run.run_id) + "</a>") +
                     kv_row("Operator", esc(t.operator_name)) + kv_row("Trigger rule", esc(std::string(to_string(t.settings.trigger)))) +
                     kv_row("Try", std::to_string(ti.try_number)) + kv_row("Retries", std::to_string(t.settings.retry.retries)) +
                     kv_row("Started", esc(when(ti.start_date))) + kv_row("Ended", esc(when(ti.end_date))) +
                     kv_row("Duration", esc(span_text(seconds_of(ti.start_date, ti.end_date, now)))) +
                     kv_row("Host", esc(ti.hostname)) + kv_row("Exit code", ti.exit_code ? std::to_string(*ti.exit_code) : "—") +
                     (ti.message.empty() ? "" : kv_row("Message", "<code>" + esc(ti.message) + "</code>")) + "</table>";
  // Clear and mark: a GET form to the confirmation page, which lists what would change.
  body += "<div class=\"actions\"><h2>Actions</h2>" + acts_on + "<form method=\"get\" action=\"" + esc(base) +
          "/clear\" class=\"stack-sm\" id=\"clear-form\">" + one + "<label><input type=\"checkbox\" name=\"upstream\" value=\"1\"> upstream</label>"
          "<label><input type=\"checkbox\" name=\"downstream\" value=\"1\" checked> downstream</label>"
          "<label><input type=\"checkbox\" name=\"past\" value=\"1\"> past</label>"
          "<label><input type=\"checkbox\" name=\"future\" value=\"1\"> future</label>"
          "<label><input type=\"checkbox\" name=\"only_failed\" value=\"1\"> only failed</label><button>Clear…</button></form>"
          "<form method=\"get\" action=\"" + esc(base) + "/mark_success\" class=\"stack-sm\">" + one + "<label><input type=\"checkbox\" name=\"upstream\" value=\"1\"> upstream</label>"
          "<label><input type=\"checkbox\" name=\"downstream\" value=\"1\"> downstream</label><button>Mark success…</button></form>"
          "<form method=\"get\" action=\"" + esc(base) + "/mark_failed\" class=\"stack-sm\">" + one + "<label><input type=\"checkbox\" name=\"upstream\" value=\"1\"> upstream</label>"
          "<label><input type=\"checkbox\" name=\"downstream\" value=\"1\"> downstream</label><button>Mark failed…</button></form></div></div>";
  body += "<h2>Tries</h2><div class=\"scroll\"><table class=\"list\" id=\"tries\"><thead><tr><th>Try</th><th>State</th><th>Started</th><th>Ended</th>"
          "<th>Duration</th><th>Host</th><th>Exit code</th><th>Log</th></tr></thead><tbody>";
  const auto tries = tries_of(r.ctx.db, d.id(), run.run_id, ti.task_id, ti.map_index);
  for (const auto& x : tries)
    body += "<tr><td>" + std::to_string(x.try_number) + "</td><td>" + state_badge(to_string(x.state)) + "</td><td>" + esc(when(x.start_date)) +
            "</td><td>" + esc(when(x.end_date)) + "</td><td>" + esc(span_text(seconds_of(x.start_date, x.end_date, now))) + "</td><td>" +
            esc(x.hostname) + "</td><td>" + (x.exit_code ? std::to_string(*x.exit_code) : "—") + "</td><td>" +
            (x.log_path.empty() ? "" : "<a href=\"" + esc(log_href(d.id(), run.run_id, ti.task_id, x.try_number, ti.map_index)) + "\">log</a>") + "</td></tr>";
  body += "</tbody></table></div>";
  if (tries.empty()) body += "<p class=\"dim\">No try yet.</p>";
  body += "<h2>Rendered fields</h2>" + rendered_fields(r, d, run, t, ti.try_number, ti.map_index);
  const auto xcom = r.ctx.db.xcom(d.id(), run.run_id, ti.task_id);
  body += "<h2>XCom</h2>" + (xcom ? "<table class=\"kv\">" + kv_row("return_value", "<pre class=\"field\">" + esc(*xcom) + "</pre>") + "</table>"
                                  : std::string("<p class=\"dim\">Nothing pushed.</p>"));
  auto frame = frame_of(r, ti.task_id);
  frame.crumbs = {{"/", "DAGs"}, {dag_href(d.id()), d.id()}, {run_href(d.id(), run.run_id), run.run_id}};
  make_live(frame, {d.id(), 0, 0, run.run_id}, {run});
  return page(200, frame, body);
}

http_response change_page(const request& r, const definition& d, const run_record& run, const std::string& task_id,
                          const std::string& action, std::optional<int> map_index) {
  // Of a task that is not mapped (or not expanded yet), its one instance is the task.
  const int instance = map_index.value_or(-1);
  const bool post = r.http.method == "POST";
  auto option = [&](const std::string& name) { return post ? r.flag(name) : r.param_flag(name); };
  auto given = [&](const std::string& name) { return !(post ? r.field(name) : r.param(name)).empty(); };
  const bool upstream = option("upstream"), downstream = option("downstream");
  // Past and future (other runs of the DAG, by logical date) are for clearing only.
  const bool past = action == "clear" && option("past"), future = action == "clear" && option("future");
  // Clearing a whole run clears its failed tasks unless told otherwise (the run's "clear failed").
  const bool only_failed = task_id.empty() && !given("only_failed") ? true : option("only_failed");
  const std::string back = task_id.empty() ? run_href(d.id(), run.run_id) : ti_href(d.id(), run.run_id, task_id, instance);
  std::vector<task_instance_ref> changed;
  std::string what;
  try {
    if (action == "clear") {
      clear_selection which;
      which.dag_id = d.id();
      which.run_id = run.run_id;
      if (!task_id.empty()) which.task_matches = [task_id](const std::string& t) { return t == task_id; };
      which.upstream = upstream;
      which.downstream = downstream;
      which.past = past;
      which.future = future;
      which.failed_only = only_failed;
      if (instance >= 0) which.only_instances[task_id] = {instance};
      which.dry_run = !post;
      changed = clear_task_instances(r.ctx.db, which, &d);
      what = "Clear";
    } else {
      mark_selection which;
      which.dag_id = d.id();
      which.run_id = run.run_id;
      if (task_id.empty())
        for (const auto& t : d.all_tasks()) which.task_ids.push_back(t.id);
      else
        which.task_ids = {task_id};
      which.state = action == "mark_success" ? task_state::success : task_state::failed;
      which.upstream = upstream;
      which.downstream = downstream;
      if (instance >= 0) which.map_index = instance;
      which.dry_run = !post;
      changed = mark_task_instances(r.ctx.db, which, d, r.ctx.now.precise_now());
      what = action == "mark_success" ? "Mark success" : "Mark failed";
    }
  } catch (const usage_error& e) {
    return problem_page(r, 400, "Cannot change that", e.message(), back);
  } catch (const conflict_error& e) {
    return problem_page(r, 409, "Changed meanwhile", e.message() + " Try again.", back);
  }
  if (post) return redirect(back);
  const std::string subject = task_id.empty() ? "run " + run.run_id
                              : task_id + (instance >= 0 ? " [" + std::to_string(instance) + "]" : "") + " in run " + run.run_id;
  std::string body = "<p>" + esc(what) + " " + esc(subject);
  std::vector<std::pair<std::string, std::string>> fields;
  if (upstream) {
    fields.emplace_back("upstream", "1");
    body += ", with upstream";
  }
  if (downstream) {
    fields.emplace_back("downstream", "1");
    body += ", with downstream";
  }
  if (past) {
    fields.emplace_back("past", "1");
    body += ", in past runs";
  }
  if (future) {
    fields.emplace_back("future", "1");
    body += ", in future runs";
  }
  if (action == "clear") {
    fields.emplace_back("only_failed", only_failed ? "1" : "0");
    if (only_failed) body += ", only failed";
  }
  body += ".</p>";
  if (changed.empty()) {
    body += "<p class=\"dim\" id=\"would-change\">Nothing would change.</p><p><a class=\"button\" href=\"" + esc(back) + "\">← Back</a></p>";
  } else {
    body += "<p>These " + std::to_string(changed.size()) + " task instance(s) will change:</p><ul id=\"would-change\">";
    for (const auto& c : changed)
      body += "<li><code>" + esc(c.task_id) + "</code>" + (c.map_index >= 0 ? " [" + std::to_string(c.map_index) + "]" : "") + (past || future ? " <span class=\"dim run\">in " + esc(c.run_id) + "</span>" : "") +
              "</li>";
    body += "</ul><div class=\"bar-actions\">" + post_button(task_id.empty() ? r.http.path() : change_href(d.id(), run.run_id, task_id, action, instance),
                                                      "Confirm: " + what, fields, "primary") +
            "<a class=\"button\" href=\"" + esc(back) + "\">Cancel</a></div>";
  }
  auto frame = frame_of(r, what + "?");
  frame.crumbs = {{"/", "DAGs"}, {dag_href(d.id()), d.id()}, {run_href(d.id(), run.run_id), run.run_id}};
  return page(200, frame, body);
}

}  // namespace dag::detail::ui

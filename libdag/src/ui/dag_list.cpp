// The DAG list (`/`): search, tag filter, active/paused/failed tabs, owners, the schedule in words
// with the next run, the last run, recent runs as state counts, pause and trigger; and the
// trigger form (`/dags/ID/trigger`).
#include "ui.hpp"

#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include <dag/core/error.hpp>
#include <dag/model/operations.hpp>
#include <dag/schedule/timetable.hpp>

namespace dag::detail::ui {
namespace {

// Presets and the common cron shapes in words; anything else as written.
std::string schedule_in_words(const std::string& schedule) {
  static const std::map<std::string, std::string> presets{
      {"@hourly", "every hour"},         {"@daily", "every day at 00:00"},   {"@midnight", "every day at 00:00"},
      {"@weekly", "every Sunday at 00:00"}, {"@monthly", "on the 1st of every month"}, {"@yearly", "every 1 January"},
      {"@annually", "every 1 January"},  {"@once", "once"}};
  if (schedule.empty()) return "manual runs only";
  if (auto it = presets.find(schedule); it != presets.end()) return it->second;
  try {
    return "every " + format_duration(parse_duration(schedule));
  } catch (const error&) {
  }
  // `M H * * *`: daily at a time.
  std::vector<std::string> f;
  for (std::size_t start = 0; start < schedule.size();) {
    const std::size_t end = std::min(schedule.find(' ', start), schedule.size());
    if (end > start) f.push_back(schedule.substr(start, end - start));
    start = end + 1;
  }
  const auto digits = [](const std::string& s) { return !s.empty() && s.size() <= 2 && s.find_first_not_of("0123456789") == std::string::npos; };
  if (f.size() == 5 && digits(f[0]) && digits(f[1]) && f[2] == "*" && f[3] == "*") {
    const std::string at = (f[1].size() == 1 ? "0" : "") + f[1] + ":" + (f[0].size() == 1 ? "0" : "") + f[0];
    if (f[4] == "*") return "every day at " + at;
    if (f[4] == "1-5" || f[4] == "MON-FRI") return "weekdays at " + at;
    return "at " + at + " on days " + f[4];
  }
  if (f.size() == 5 && digits(f[0]) && f[1] == "*" && f[2] == "*" && f[3] == "*" && f[4] == "*") return "every hour at :" + f[0];
  return "cron " + schedule;
}

std::string owners_of(const definition& d) {
  std::set<std::string> owners;
  for (const auto& t : d.all_tasks()) owners.insert(t.settings.owner);
  std::string out;
  for (const auto& o : owners) out += (out.empty() ? "" : ", ") + o;
  return out;
}

// The list's own link with one parameter changed (the others kept).
std::string list_href(const std::string& q, const std::string& tag, const std::string& show) {
  std::string out = "/?";
  if (!q.empty()) out += "q=" + url_encoded(q) + "&";
  if (!tag.empty()) out += "tag=" + url_encoded(tag) + "&";
  if (!show.empty() && show != "all") out += "show=" + url_encoded(show) + "&";
  out.pop_back();
  return out.empty() ? "/" : out;
}

std::string lowered(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

http_response dag_list_page(const request& r) {
  const auto paused = r.ctx.db.paused_dags();
  const std::string q = r.param("q"), tag = r.param("tag"), show = r.param("show").empty() ? "all" : r.param("show");
  const auto now = r.ctx.now.now();
  std::string body;
  const auto errors = r.ctx.db.import_errors();
  if (!errors.empty()) {
    std::set<std::string> files;
    for (const auto& e : errors) files.insert(e.file);
    body += "<details class=\"err\"><summary>" + std::to_string(errors.size()) + (errors.size() == 1 ? " problem" : " problems") +
            " in " + std::to_string(files.size()) + (files.size() == 1 ? " DAG file" : " DAG files") + "</summary><ul>";
    for (const auto& e : errors) body += "<li><code>" + esc(e.message) + "</code></li>";
    body += "</ul></details>";
  }
  // The rows first: the tab counts need every DAG's state.
  struct row {
    const definition* d;
    bool paused;
    std::vector<run_record> recent;
  };
  std::vector<row> rows;
  std::map<std::string, int> counts{{"all", 0}, {"active", 0}, {"paused", 0}, {"failed", 0}};
  std::set<std::string> all_tags;
  for (const auto& d : r.ctx.dags) {
    for (const auto& t : d.tags()) all_tags.insert(t);
    if (!q.empty() && lowered(d.id()).find(lowered(q)) == std::string::npos) continue;
    if (!tag.empty() && std::find(d.tags().begin(), d.tags().end(), tag) == d.tags().end()) continue;
    run_filter recent;
    recent.dag_id = d.id();
    recent.limit = 25;
    row x{&d, paused.contains(d.id()), r.ctx.db.runs(recent)};
    const bool failed = !x.recent.empty() && x.recent.front().state == run_state::failed;
    ++counts["all"];
    ++counts[x.paused ? "paused" : "active"];
    if (failed) ++counts["failed"];
    if (show == "all" || (show == "paused" && x.paused) || (show == "active" && !x.paused) || (show == "failed" && failed))
      rows.push_back(std::move(x));
  }
  body += "<form class=\"filters\" method=\"get\" action=\"/\"><input type=\"search\" name=\"q\" value=\"" + esc(q) +
          "\" placeholder=\"Search DAGs\" aria-label=\"Search DAGs by id\">";
  if (!tag.empty()) body += "<input type=\"hidden\" name=\"tag\" value=\"" + esc(tag) + "\">";
  if (show != "all") body += "<input type=\"hidden\" name=\"show\" value=\"" + esc(show) + "\">";
  body += "<button>Search</button></form><nav class=\"tabs\">";
  for (const std::string t : {"all", "active", "paused", "failed"})
    body += "<a href=\"" + esc(list_href(q, tag, t)) + "\"" + (t == show ? " class=\"on\"" : "") + ">" + t + " <b>" +
            std::to_string(counts[t]) + "</b></a>";
  body += "</nav>";
  if (!all_tags.empty()) {
    body += "<p class=\"tags\">Tags: ";
    for (const auto& t : all_tags)
      body += "<a class=\"tag" + std::string(t == tag ? " on" : "") + "\" href=\"" + esc(list_href(q, t == tag ? "" : t, show)) + "\">" +
              esc(t) + "</a> ";
    if (!tag.empty()) body += "<a href=\"" + esc(list_href(q, "", show)) + "\">clear filter</a>";
    body += "</p>";
  }
  body += "<div class=\"scroll\"><table class=\"list\" id=\"dags\"><thead><tr><th>DAG</th><th>Owner</th><th>Schedule</th>"
          "<th>Last run</th><th>Recent runs</th><th>Actions</th></tr></thead><tbody>";
  for (const auto& x : rows) {
    const definition& d = *x.d;
    std::string next;
    try {
      const timetable tt(d);
      const auto upcoming = tt.runs_after(now, 1);
      if (!upcoming.empty() && !x.paused)
        next = "<small>next " + esc(when(upcoming[0].logical_date)) + " <span class=\"dim\">(data " +
               esc(when(upcoming[0].interval.start)) + " – " + esc(when(upcoming[0].interval.end)) + ")</span></small>";
    } catch (const error&) {
    }
    std::string tags;
    for (const auto& t : d.tags()) tags += "<a class=\"tag\" href=\"" + esc(list_href(q, t, show)) + "\">" + esc(t) + "</a> ";
    std::string last = "<span class=\"dim\">never</span>";
    if (!x.recent.empty()) {
      const auto& l = x.recent.front();
      last = "<a href=\"" + esc(run_href(d.id(), l.run_id)) + "\">" + esc(when(l.logical_date)) + "</a> <span data-s=\"" +
             esc(list_key(d.id(), l.run_id)) + "\" class=\"st st-" + std::string(to_string(l.state)) + "\">" + std::string(to_string(l.state)) +
             "</span>";
    }
    std::map<std::string, int> by_state;
    for (const auto& run : x.recent) ++by_state[std::string(to_string(run.state))];
    std::string recent;
    for (const auto& [state, n] : by_state)
      recent += "<span class=\"count st-" + state + "\" title=\"" + state + "\">" + std::to_string(n) + "</span>";
    body += "<tr data-dag=\"" + esc(d.id()) + "\"><td><a href=\"" + esc(dag_href(d.id())) + "\">" + esc(d.id()) + "</a>" +
            (x.paused ? " <span class=\"paused\">paused</span>" : "") + "<br>" + tags + "</td><td>" + esc(owners_of(d)) +
            "</td><td>" +
            (d.dataset_schedule() ? esc(d.schedule_summary()) + " <code>" + esc(d.dataset_schedule()->text()) + "</code>"
                                  : esc(schedule_in_words(d.schedule())) + (d.schedule().empty() ? "" : " <code>" + esc(d.schedule()) + "</code>")) +
            "<br>" + next + "</td><td>" + last + "</td><td>" + recent + "</td><td class=\"actions\">" +
            post_button(dag_href(d.id()) + (x.paused ? "/unpause" : "/pause"), x.paused ? "Unpause" : "Pause", {{"next", "/"}}) +
            "<a class=\"button\" href=\"" + esc(dag_href(d.id())) + "/trigger\">Trigger</a></td></tr>";
  }
  body += "</tbody></table></div>";
  if (rows.empty()) body += "<p class=\"dim\">No DAG matches.</p>";
  auto frame = frame_of(r, "DAGs");
  make_live(frame, {}, live_runs(r, {}));
  return page(200, frame, body);
}

http_response trigger_form(const request& r, const definition& d, int status, const std::string& problem,
                           const std::string& conf) {
  std::string initial = conf;
  if (initial.empty()) {
    nlohmann::json params = nlohmann::json::object();
    for (const auto& [k, v] : d.params()) params[k] = v;
    initial = json_dump(params, 2);
  }
  auto frame = frame_of(r, "Trigger " + d.id());
  frame.crumbs = {{"/", "DAGs"}, {dag_href(d.id()), d.id()}};
  std::string body = problem.empty() ? "" : "<p class=\"err\" id=\"problem\">" + esc(problem) + "</p>";
  body += "<form method=\"post\" action=\"" + esc(dag_href(d.id())) + "/trigger\" class=\"stack\">"
          "<label>Logical date <small class=\"dim\">(empty: now; e.g. 2024-01-01T00:00:00Z)</small>"
          "<input type=\"text\" name=\"logical_date\" value=\"" + esc(r.field("logical_date")) + "\"></label>"
          "<label>Configuration (JSON) <small class=\"dim\">the DAG's params, overridden by what you give</small>"
          "<textarea name=\"conf\" rows=\"10\" spellcheck=\"false\">" + esc(initial) + "</textarea></label>"
          "<p><button class=\"primary\">Trigger</button> <a href=\"" + esc(dag_href(d.id())) + "\">Cancel</a></p></form>";
  return page(status, frame, body);
}

http_response trigger(const request& r, const definition& d) {
  const std::string conf_text = r.field("conf");
  time_point date = r.ctx.now.now();
  std::string conf = "{}";
  try {
    if (!r.field("logical_date").empty()) date = parse_time(r.field("logical_date"));
    if (!conf_text.empty()) conf = checked_conf(conf_text, "conf");
  } catch (const error& e) {
    return trigger_form(r, d, 400, e.message(), conf_text);
  }
  const auto run = trigger_run(r.ctx.db, d, date, conf);
  if (!run)
    return trigger_form(r, d, 409, "A run " + make_run_id(run_type::manual, date) + " already exists; pick another logical date.",
                        conf_text);
  return redirect(dag_href(d.id()));
}

}  // namespace dag::detail::ui

// The DAG list (`/`): search, tag filter, active/paused/failed tabs, owners, the schedule in words
// with the next run, the last run, recent runs as state counts, pause and trigger; and the
// trigger form (`/dags/ID/trigger`).
#include "ui.hpp"

#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include <dag/core/error.hpp>
#include <dag/core/json_text.hpp>
#include <dag/core/params.hpp>
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
    for (const auto& t : d->tags()) all_tags.insert(t);
    if (!q.empty() && lowered(d->id()).find(lowered(q)) == std::string::npos) continue;
    if (!tag.empty() && std::find(d->tags().begin(), d->tags().end(), tag) == d->tags().end()) continue;
    run_filter recent;
    recent.dag_id = d->id();
    recent.limit = 25;
    row x{d.get(), paused.contains(d->id()), r.ctx.db.runs(recent)};
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
            "<a class=\"button\" href=\"" + esc(dag_href(d.id())) + "/trigger\">Trigger</a>"
            "<a class=\"button\" href=\"" + esc(dag_href(d.id())) + "/delete\" title=\"Delete this DAG's runs\">Delete…</a></td></tr>";
  }
  body += "</tbody></table></div>";
  if (rows.empty()) body += "<p class=\"dim\">No DAG matches.</p>";
  auto frame = frame_of(r, "DAGs");
  make_live(frame, {}, live_runs(r, {}));
  return page(200, frame, body);
}

namespace {

using json = nlohmann::json;

// A param's schema (empty for a plain string param) and the kind of field that edits it.
struct param_field {
  std::string name;
  json schema = json::object();
  enum class kind { text, number, boolean, choice, json_text } as = kind::text;
};

param_field field_of(const definition& d, const std::string& name) {
  param_field f;
  f.name = name;
  if (const auto it = d.param_schemas().find(name); it != d.param_schemas().end()) {
    f.schema = json::parse(it->second, nullptr, false);
    if (!f.schema.is_object()) f.schema = json::object();
  }
  const json type = f.schema.value("type", json("string"));
  if (f.schema.contains("enum") && f.schema["enum"].is_array()) f.as = param_field::kind::choice;
  else if (type == "integer" || type == "number") f.as = param_field::kind::number;
  else if (type == "boolean") f.as = param_field::kind::boolean;
  else if (type != "string") f.as = param_field::kind::json_text;  // arrays, objects, null, several types
  return f;
}

// A param's value as JSON: a typed param's text in `params` is JSON, a string param's is the string.
json default_of(const definition& d, const param_field& f) {
  const std::string& text = d.params().at(f.name);
  if (!param_is_typed(json_dump(f.schema))) return text;
  const json v = json::parse(text, nullptr, false);
  return v.is_discarded() ? json(text) : v;
}

// What a field's text means for its param: a number, a boolean, a choice (its JSON), JSON, or a
// string; text that is not what the param's type needs stays a string, so the param's own check
// says what is wrong with it.
json value_of(const param_field& f, const std::string& text) {
  using kind = param_field::kind;
  if (f.as == kind::boolean) return text == "true";
  if (f.as == kind::text) return text;
  const json v = json::parse(text, nullptr, false);
  if (v.is_discarded() || (f.as == kind::number && !v.is_number())) return text;
  return v;
}

// The text a field shows for a param's value.
std::string shown(const param_field& f, const json& v) {
  return v.is_string() && f.as != param_field::kind::choice && f.as != param_field::kind::json_text ? v.get<std::string>() : json_dump(v);
}

std::string field_html(const param_field& f, const std::string& text) {
  using kind = param_field::kind;
  const std::string name = "param." + f.name;
  const std::string note = f.schema.contains("description") && f.schema["description"].is_string()
                               ? " <small class=\"dim\">" + esc(f.schema["description"].get<std::string>()) + "</small>"
                               : "";
  const std::string label = f.schema.contains("title") && f.schema["title"].is_string() ? f.schema["title"].get<std::string>() : f.name;
  const std::string head = "<label class=\"param\" data-param=\"" + esc(f.name) + "\">" + esc(label) + note;
  switch (f.as) {
    case kind::boolean:
      // Unchecked boxes send nothing: the hidden field after the box says false.
      return "<label class=\"param check\" data-param=\"" + esc(f.name) + "\"><input type=\"checkbox\" name=\"" + esc(name) +
             "\" value=\"true\"" + (text == "true" ? " checked" : "") + "> " + esc(label) + note +
             "</label><input type=\"hidden\" name=\"" + esc(name) + "\" value=\"false\">";
    case kind::choice: {
      std::string out = head + "<select name=\"" + esc(name) + "\">";
      for (const auto& option : f.schema["enum"]) {
        const std::string value = json_dump(option);
        out += "<option value=\"" + esc(value) + "\"" + (value == text ? " selected" : "") + ">" +
               esc(option.is_string() ? option.get<std::string>() : value) + "</option>";
      }
      return out + "</select></label>";
    }
    case kind::json_text:
      return head + " <small class=\"dim\">(JSON)</small><textarea name=\"" + esc(name) + "\" rows=\"3\" spellcheck=\"false\">" + esc(text) +
             "</textarea></label>";
    case kind::number: {
      std::string limits = f.schema.value("type", json()) == "integer" ? " step=\"1\"" : " step=\"any\"";
      if (f.schema.contains("minimum") && f.schema["minimum"].is_number()) limits += " min=\"" + esc(f.schema["minimum"].dump()) + "\"";
      if (f.schema.contains("maximum") && f.schema["maximum"].is_number()) limits += " max=\"" + esc(f.schema["maximum"].dump()) + "\"";
      // type=text with a numeric keyboard: the browser does not refuse a bad value itself, the
      // param's check does, with its own message.
      return head + "<input type=\"text\" inputmode=\"decimal\" name=\"" + esc(name) + "\" value=\"" + esc(text) + "\"" + limits + "></label>";
    }
    case kind::text:
      break;
  }
  const std::string format = f.schema.value("format", std::string());
  const std::string placeholder = format == "date" ? " placeholder=\"YYYY-MM-DD\"" : format == "date-time" ? " placeholder=\"YYYY-MM-DDTHH:MM:SSZ\"" : "";
  return head + "<input type=\"text\" name=\"" + esc(name) + "\" value=\"" + esc(text) + "\"" + placeholder + "></label>";
}

// The conf a trigger form asks for: the "more conf" JSON, then each param field it sent (a key in
// the JSON wins over the field of the same name: it was typed on purpose). Throws dag::usage_error
// naming the param whose field's value its schema refuses.
std::string conf_of_form(const request& r, const definition& d) {
  const std::string more = r.field("conf");
  json conf = json::parse(more.empty() ? "{}" : checked_conf(more, "conf"));
  for (const auto& [name, value] : d.params()) {
    const std::string field = "param." + name;
    if (conf.contains(name) || !r.has_field(field)) continue;
    const param_field f = field_of(d, name);
    const json v = value_of(f, r.field(field));
    if (const std::string problem = param_problem(json_dump(f.schema), json_dump(v)); !problem.empty())
      throw usage_error("param '" + name + "': " + problem);
    conf[name] = v;
  }
  return checked_conf(json_dump(conf), "conf");
}

}  // namespace

http_response trigger_form(const request& r, const definition& d, int status, const std::string& problem) {
  const bool posted = r.http.method == "POST";
  auto frame = frame_of(r, "Trigger " + d.id());
  frame.crumbs = {{"/", "DAGs"}, {dag_href(d.id()), d.id()}};
  std::string body = problem.empty() ? "" : "<p class=\"err\" id=\"problem\">" + esc(problem) + "</p>";
  body += "<form method=\"post\" action=\"" + esc(dag_href(d.id())) + "/trigger\" class=\"stack\" id=\"trigger-form\">" + csrf_field() +
          "<label>Logical date <small class=\"dim\">(empty: now; e.g. 2024-01-01T00:00:00Z)</small>"
          "<input type=\"text\" name=\"logical_date\" value=\"" + esc(r.field("logical_date")) + "\"></label>";
  if (!d.params().empty()) {
    body += "<fieldset class=\"params stack\"><legend>Params</legend>";
    for (const auto& [name, value] : d.params()) {
      const param_field f = field_of(d, name);
      // What was sent, when the form comes back refused; else the param's default.
      const std::string field = "param." + name;
      const bool sent = posted && r.has_field(field);
      body += field_html(f, sent ? r.field(field) : shown(f, default_of(d, f)));
    }
    body += "</fieldset>";
  }
  const std::string more = posted ? r.field("conf") : "{}";
  body += "<label>More configuration (JSON) <small class=\"dim\">keys for <code>dag_run.conf</code>; a key named like a param "
          "overrides its field</small><textarea name=\"conf\" rows=\"" + std::string(d.params().empty() ? "8" : "3") +
          "\" spellcheck=\"false\">" + esc(more.empty() ? "{}" : more) + "</textarea></label>"
          "<p><button class=\"primary\">Trigger</button> <a href=\"" + esc(dag_href(d.id())) + "\">Cancel</a></p></form>";
  return page(status, frame, body);
}

http_response trigger(const request& r, const definition& d) {
  time_point date = r.ctx.now.now();
  std::string conf;
  try {
    if (!r.field("logical_date").empty()) date = parse_time(r.field("logical_date"));
    conf = conf_of_form(r, d);
  } catch (const error& e) {
    return trigger_form(r, d, 400, e.message());
  }
  std::optional<run_record> run;
  try {
    run = trigger_run(r.ctx.db, d, date, conf);
  } catch (const usage_error& e) {
    return trigger_form(r, d, 400, e.message());
  }
  if (!run)
    return trigger_form(r, d, 409, "A run " + make_run_id(run_type::manual, date) + " already exists; pick another logical date.");
  return redirect(dag_href(d.id()));
}

http_response delete_page(const request& r, const definition& d) {
  run_filter all;
  all.dag_id = d.id();
  if (r.http.method == "POST") {
    try {
      delete_dag_history(r.ctx.db, d.id());
    } catch (const conflict_error& e) {
      return problem_page(r, 409, "Cannot delete now", e.message(), dag_href(d.id()));
    }
    return redirect("/");
  }
  const auto runs = r.ctx.db.runs(all);
  auto frame = frame_of(r, "Delete the history of " + d.id() + "?");
  frame.crumbs = {{"/", "DAGs"}, {dag_href(d.id()), d.id()}};
  std::string body = "<p id=\"would-delete\">" + std::to_string(runs.size()) + (runs.size() == 1 ? " run" : " runs") +
                     " of <code>" + esc(d.id()) + "</code> will be deleted, with their task instances, tries and XComs, and its paused "
                     "setting. The DAG's file stays (so the DAG stays listed) and so do the log files.</p>";
  body += "<div class=\"bar-actions\">" + post_button(dag_href(d.id()) + "/delete", "Confirm: Delete history", {}, "primary danger") +
          "<a class=\"button\" href=\"/\">Cancel</a></div>";
  return page(200, frame, body);
}

}  // namespace dag::detail::ui

#pragma once
/// @file Internal to the web UI (libdag/src/ui/): what its pages share — the page shell, links,
/// state markup, forms, and one function per page. The entry point is dag::detail::web_ui
/// (../web_ui.hpp); docs/http.md describes the pages.
///
/// Rules every page keeps: every text from the store or a DAG goes through esc(); no inline
/// script, style attribute or event handler (the Content-Security-Policy allows only /static/…);
/// forms that change something post and are answered with a redirect (303); pages that show
/// something in progress name a live endpoint (/ui/live.json) that app.js polls while it is.

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <dag/core/definition.hpp>
#include <dag/core/json_text.hpp>
#include <dag/core/states.hpp>
#include <dag/core/time.hpp>
#include <dag/http/server.hpp>
#include <dag/store/store.hpp>

#include "../web_ui.hpp"

namespace dag::detail::ui {

/// One UI request and what it may read and change.
struct request {
  const http_request& http;   ///< the request
  const web_ui_context& ctx;  ///< the store, the DAGs, the clock
  /// A query parameter, decoded (`+` read as a space); empty when absent.
  std::string param(const std::string& name) const;
  /// A field of the form body, decoded; empty when absent.
  std::string field(const std::string& name) const;
  /// True when the form body has the field (even empty).
  bool has_field(const std::string& name) const;
  /// True when the form body has the field with a non-empty value other than "0".
  bool flag(const std::string& name) const;
  /// True when the query has the parameter with a non-empty value other than "0".
  bool param_flag(const std::string& name) const;
};

/// `text` escaped for HTML text and attribute values.
inline std::string esc(const std::string& text) { return html_escaped(text); }
/// `text` percent-encoded for a path segment or query value.
std::string url_encoded(const std::string& text);

/// The frame of every page.
struct shell {
  std::string title;                                        ///< the page's heading
  std::vector<std::pair<std::string, std::string>> crumbs;  ///< links above the heading (href, label)
  std::string live;  ///< the live endpoint app.js polls while `busy` (empty: none)
  bool busy = false;  ///< something on the page is in progress
  std::string sig;    ///< the live signature the page was made with: when the endpoint's differs, it reloads
  bool signed_in = false;  ///< a session is signed in (shows "Sign out")
};

/// A whole HTML page.
http_response page(int status, const shell& frame, const std::string& body);
/// A page saying what was not found, with a way back.
http_response not_found_page(const request& r, const std::string& what, const std::string& back = "/",
                             const std::string& back_label = "All DAGs");
/// A page for a refused request (bad input, conflict), with a way back.
http_response problem_page(const request& r, int status, const std::string& title, const std::string& message,
                           const std::string& back);
/// A 303 redirect to `to`.
http_response redirect(const std::string& to);
/// The frame for a page of this request (sign-out shown when a token is set).
shell frame_of(const request& r, std::string title);

/// Links.
std::string dag_href(const std::string& dag_id);
std::string run_href(const std::string& dag_id, const std::string& run_id);
/// A task instance's page; of a mapped task's instance, `map_index` names it (`?map_index=K`).
std::string ti_href(const std::string& dag_id, const std::string& run_id, const std::string& task_id, int map_index = -1);
/// A try's log page, or one of its views (`download`, `tail`); of a mapped task's instance,
/// `map_index` names it (the query comes after the view).
std::string log_href(const std::string& dag_id, const std::string& run_id, const std::string& task_id, int try_number,
                     int map_index = -1, std::string_view view = {});
/// A task's clear or mark page (`action`); of one mapped instance, `map_index` names it.
std::string change_href(const std::string& dag_id, const std::string& run_id, const std::string& task_id,
                        const std::string& action, int map_index = -1);

/// `<span class="st st-STATE">STATE</span>`: a state with its colour.
std::string state_badge(std::string_view state);
/// The key live updates know a run (`run_id`) or a task instance (`run_id|task_id`) by.
std::string live_key(const std::string& run_id, const std::string& task_id = "");
/// The key of a DAG's run on the DAG list, where runs of many DAGs share ids (`dag_id/run_id`).
inline std::string list_key(const std::string& dag_id, const std::string& run_id) { return dag_id + "/" + run_id; }
/// 128 random bits as hex (32 characters): a secret nobody can guess.
std::string random_token();
/// The token every form that changes something carries back (field `csrf`): a secret of this
/// process, so another site can make a browser post here but not with it (it cannot read pages).
const std::string& csrf_token();
/// The hidden field with csrf_token(), for forms written by hand.
std::string csrf_field();
/// A form posting to `action` with hidden `fields` (and the CSRF field), shown as one button.
std::string post_button(const std::string& action, const std::string& label,
                        const std::vector<std::pair<std::string, std::string>>& fields = {},
                        const std::string& css_class = "");
/// A time as `YYYY-MM-DD HH:MM:SS` (UTC), or "—".
std::string when(const std::optional<timestamp>& t);
/// A time as `YYYY-MM-DD HH:MM` (UTC).
std::string when(time_point t);
/// A duration in seconds as `1h 2m`, `3m 4s`, `5.2s`, or "—".
std::string span_text(std::optional<double> seconds);
/// The seconds from `start` to `end`, or to `now` while it has not ended.
std::optional<double> seconds_of(const std::optional<timestamp>& start, const std::optional<timestamp>& end,
                                 timestamp now);

/// A table row of a key-value table (`<table class="kv">`): `name` escaped, `value_html` as is.
std::string kv_row(const std::string& name, const std::string& value_html);
/// A number for an SVG attribute, one decimal.
std::string svg_number(double v);
/// The indexes of `d`'s tasks in dependency order (as given when the graph is not valid): the
/// order of rows in the grid and the charts.
std::vector<std::size_t> task_rows(const definition& d);

// Task groups (groups.cpp).
/// The task groups a page shows open (`?open=a,a.b`, `*` for all); the others are collapsed.
struct open_groups {
  bool all = false;             ///< every group open
  std::set<std::string> ids;    ///< the open groups
  /// From the `open` parameter.
  static open_groups parse(const std::string& text);
  /// The `open` parameter's value.
  std::string text() const;
  /// True when the group is open.
  bool is_open(const std::string& group_id) const { return all || ids.contains(group_id); }
};
/// One row of the grid: a task or a group, with its depth in the tree of groups.
struct tree_row {
  std::string id;                   ///< the task's or the group's id
  std::size_t depth = 0;            ///< 0 at the top, 1 inside one group, …
  std::optional<std::size_t> task;  ///< the task's index; empty for a group
  bool open = false;                ///< a group shown open (its rows follow)
};
/// A DAG's task groups as a page shows them, open or collapsed.
class group_view {
public:
  group_view(const definition& d, open_groups open);
  /// True when the DAG has no groups.
  bool empty() const { return ids_.empty(); }
  const open_groups& open() const { return open_; }
  /// The groups holding task `t`, outermost first.
  const std::vector<std::string>& groups_of(const task& t) const;
  /// True when every group enclosing the group is open (the group has a row or a box).
  bool visible(const std::string& group_id) const;
  /// The id task `t` is shown as: its outermost collapsed group's, or its own.
  std::string shown_as(const task& t) const;
  /// The `open` parameter with the group opened or closed.
  std::string toggled(const std::string& group_id, bool open) const;
  /// Each group's state in a run whose task instances are `tis`: the most relevant state
  /// (dag::most_relevant) of its tasks' instances, those of groups inside it included.
  std::map<std::string, task_state> states(const std::vector<task_instance_record>& tis) const;
  /// How many tasks the group holds, those of groups inside it included.
  std::size_t size_of(const std::string& group_id) const;
  /// The grid's rows: the tree of groups and tasks in dependency order (each group where its first
  /// task comes), without what is inside collapsed groups.
  std::vector<tree_row> rows() const;
  /// A task's or group's id without its enclosing group's prefix.
  std::string short_name(const std::string& id) const;

private:
  const definition& d_;
  open_groups open_;
  std::set<std::string> ids_;
  std::vector<std::vector<std::string>> chains_;  // by task index: its groups, outermost first (none without groups)
};

/// The DAG `dag_id` among the loaded ones, or null.
const definition* find_dag(const request& r, const std::string& dag_id);

// Pages (one file each).
http_response dag_list_page(const request& r);                                   // dag_list.cpp
http_response dag_page(const request& r, const definition& d);                   // dag_page.cpp
/// The trigger form with a field per param (typed by its schema) and more conf as JSON; a form
/// sent back refused keeps what was sent.
http_response trigger_form(const request& r, const definition& d, int status, const std::string& problem);  // dag_list.cpp
http_response trigger(const request& r, const definition& d);                    // dag_list.cpp
/// The confirmation of deleting a DAG's history (GET) and the deletion (POST).
http_response delete_page(const request& r, const definition& d);                // dag_list.cpp
http_response run_page(const request& r, const definition& d, const run_record& run);  // run_page.cpp
/// A task instance's page. `whole`: the page of a mapped task as a whole (asked without a map
/// index; `ti` is its first instance), whose clear and mark act on every instance; otherwise they
/// act on `ti` alone (as Airflow's task instance details).
http_response task_page(const request& r, const definition& d, const run_record& run,
                        const task_instance_record& ti, bool whole);              // task_page.cpp
/// The confirmation of a clear or mark (GET, a dry run listing what would change) and the
/// change itself (POST). `task_id` empty: every task of the run. `map_index` set: of the task,
/// only that instance (its relatives, upstream or downstream, whole).
http_response change_page(const request& r, const definition& d, const run_record& run, const std::string& task_id,
                          const std::string& action, std::optional<int> map_index = {});  // task_page.cpp
http_response log_page(const request& r, const definition& d, const run_record& run, const std::string& task_id,
                       int try_number, const std::string& view, int map_index = -1);                 // log_page.cpp
/// What a live page watches: one DAG's runs (newest first, from `offset`, at most `limit`) and
/// one more run (`run_id`, when set); no DAG: every DAG's newest run.
struct live_scope {
  std::string dag_id;      ///< the DAG, or empty for all
  std::size_t offset = 0;  ///< runs skipped, newest first
  std::size_t limit = 0;   ///< runs shown (0: none besides `run_id`)
  std::string run_id;      ///< a run shown on its own (run, task instance and log pages)
};
/// The address of the live endpoint for `scope`.
std::string live_url(const live_scope& scope);
/// The runs `scope` covers.
std::vector<run_record> live_runs(const request& r, const live_scope& scope);
/// A text that changes when a run of `runs` finishes or is added: pages reload then (durations,
/// counts and new columns are simpler to render again than to patch).
std::string live_signature(const std::vector<run_record>& runs);
/// True when a run of `runs` is still queued or running.
bool any_active(const std::vector<run_record>& runs);
/// Sets `frame`'s live endpoint, signature and busy flag for `scope`, whose runs are `runs`.
void make_live(shell& frame, const live_scope& scope, const std::vector<run_record>& runs);
/// /ui/live.json?dag=&offset=&limit=&run=: the states of what a page shows (`run_id` and
/// `run_id|task_id` → state), whether anything is in progress, and the signature.
http_response live_json(const request& r);                                      // live.cpp
/// /static/… and /favicon.ico; nullopt for other paths.
std::optional<http_response> static_resource(const std::string& path);          // static_files.cpp

/// One box in a graph: a task, or a collapsed task group standing for its tasks.
struct graph_node {
  std::string id;              ///< the task's or the group's id
  std::string label;           ///< the text in the box
  std::string title;           ///< the tooltip
  bool group = false;          ///< a collapsed task group
  std::string state = "none";  ///< its state in the run shown
  std::string href;            ///< where a click goes (empty: nowhere)
  std::string live;            ///< its live key (empty: not updated live)
};
/// A graph as SVG: layers by longest path from a root, ordered to cross few edges, arrows into
/// each box, boxes as wide as their labels and coloured by state. `upstream[i]` lists the nodes
/// with an edge into node `i` (no duplicates, no node itself); nodes come in dependency order
/// where there is one (what comes first is placed first).
std::string graph_svg(const std::vector<graph_node>& nodes, const std::vector<std::vector<std::size_t>>& upstream);  // graph_layout.cpp

// Charts (charts.cpp), SVG drawn on the server.
/// The Gantt chart of one run's task instances.
std::string gantt_svg(const definition& d, const run_record& run, const std::vector<task_instance_record>& tis, timestamp now);
/// Each task's duration over `runs` (oldest first), one line per task.
std::string duration_chart_svg(const definition& d, const std::vector<run_record>& runs,
                               const std::vector<std::vector<task_instance_record>>& tis);
/// Each task's landing time over `runs` (oldest first), one line per task: Airflow's "Landing
/// Times", from the end of the run's data interval to the end of the task instance.
std::string landing_chart_svg(const definition& d, const std::vector<run_record>& runs,
                              const std::vector<std::vector<task_instance_record>>& tis);
/// A year of days up to `today`, each coloured by its runs' states.
std::string calendar_svg(const std::vector<run_record>& runs, time_point today);
/// The state legend.
std::string legend();

}  // namespace dag::detail::ui

#pragma once
/// @file Airflow-style Jinja templates in operator fields: parse, check at load time, render.
// See docs/concepts.md "Templates" for the language. It is the part of Jinja that Airflow DAGs
// use: `{{ expression }}`, `{% if/elif/else %}`, `{% for %}` (with `loop`), `{% set %}`,
// `{% raw %}`, `{# comments #}`, whitespace control (`{{-`, `-}}`, `{%-`, `-%}`), literals,
// attribute and item access, arithmetic, comparisons, `and/or/not`, `in`, `is` tests, `~`,
// filters and Airflow's context (`ds`, `macros`, `params`, `var`, `conn`, `ti`, `dag_run`, ...).
// Every name, filter, test and tag is known when the template is parsed, so a typo is a
// load-time error with a suggestion rather than an empty string (Airflow's StrictUndefined)
// when the task runs.

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <dag/core/connection.hpp>
#include <dag/core/error.hpp>
#include <dag/core/time.hpp>

namespace dag {

/// A bad template in a DAG definition, with the position of the problem inside the template text.
/// `what()` is the bare message; a loader adds the file and maps `line()` onto the file's lines.
class template_error : public definition_error {
public:
  /// An error at 0-based `line` and 1-based `column` (counted in UTF-8 characters) of the text.
  template_error(int line, int column, const std::string& message)
      : definition_error(message), line_(line), column_(column) {}

  /// 0-based line inside the template text: file line = the field's first line + `line()`.
  int line() const noexcept { return line_; }
  /// 1-based column inside that line, in characters (a tab counts as one).
  int column() const noexcept { return column_; }

private:
  int line_;
  int column_;
};

/// A name from outside the DAG's own text that a template uses, found when it is parsed.
enum class template_ref_kind {
  param,       ///< `params.NAME` (or `params['NAME']`); `name` is NAME
  variable,    ///< `var.value.NAME` or `var.json.NAME`; `name` is NAME
  connection,  ///< `conn.ID.ATTR`; `name` is ID
  xcom_pull,   ///< `ti.xcom_pull(task_ids='TASK')` (or a list of ids); `name` is TASK
};

/// One use of an outside name, with where the name sits in the text (for load-time errors).
struct template_ref {
  template_ref_kind kind = template_ref_kind::param;  ///< what it refers to
  std::string name;                                    ///< param, variable, connection or task id
  int line = 0;                                        ///< 0-based line of `name`
  int column = 1;                                      ///< 1-based column of `name`
  /// True when the template copes with the name being absent (`params.x | default(...)`,
  /// `params.x is defined`), so a load-time check does not require it.
  bool optional = false;
};

namespace detail {
struct template_program;  // the parsed statements (template.cpp)
}

/// A template parsed once, ready to be checked and rendered many times without reparsing.
class template_text {
public:
  /// An empty template (renders as "").
  template_text();

  /// Parses `text`; throws dag::template_error with the position of the first problem.
  static template_text parse(std::string_view text);

  /// The text it was parsed from.
  const std::string& source() const noexcept { return source_; }
  /// The outside names it uses, in order of appearance.
  const std::vector<template_ref>& refs() const noexcept { return refs_; }
  /// True when rendering always gives the same text (plain text, comments, quoted literals).
  bool is_constant() const noexcept;
  /// Internal: the parsed program, for the renderer.
  const detail::template_program& program() const noexcept { return *program_; }

private:
  std::string source_;
  std::vector<template_ref> refs_;
  std::shared_ptr<const detail::template_program> program_;
};

/// What a load-time check knows about the DAG around a templated field.
struct template_scope {
  std::set<std::string> params;    ///< the DAG's param names
  std::set<std::string> task_ids;  ///< every task id of the DAG
  std::string task_id;             ///< the task owning the field, if known: it cannot pull its own XCom
  /// Tasks upstream (transitively) of the task owning the field; when given, an `xcom_pull`
  /// of a task outside it is an error, because that task may not have run (or pushed) yet.
  std::optional<std::set<std::string>> upstream_task_ids;
};

/// Checks the names a parsed template uses against its DAG: unknown `params.X` and
/// `ti.xcom_pull('T')` of a task not in the DAG (or not upstream, when that is known) throw
/// dag::template_error at the name's position with a suggestion. Variables and connections
/// cannot be checked here: they are looked up when the task runs.
void check(const template_text& text, const template_scope& scope);

/// Everything rendering can read: the run, the task, and lookups for what lives in the store.
/// Dates are UTC instants; names are Airflow's (docs/concepts.md lists each).
struct template_context {
  std::string dag_id;                         ///< `{{ dag_id }}`
  std::string task_id;                        ///< `{{ task_id }}`, `{{ task.task_id }}`
  std::string run_id;                         ///< `{{ run_id }}`, `{{ dag_run.run_id }}`
  /// `{{ dag_run.run_type }}`: manual, scheduled, backfill or dataset_triggered (a run's type, which
  /// a triggered run's own id does not show); empty: read from the run id's prefix (`manual__`, …).
  std::string run_type;
  time_point logical_date{};                  ///< `{{ ds }}`, `{{ ts }}`, `{{ logical_date }}`, …
  time_point data_interval_start{};           ///< `{{ data_interval_start }}`
  time_point data_interval_end{};             ///< `{{ data_interval_end }}`
  int try_number = 1;                         ///< `{{ try_number }}`, `{{ ti.try_number }}`
  int map_index = -1;                         ///< `{{ ti.map_index }}`: a mapped instance's index, -1 when not mapped
  /// `{{ params.NAME }}`: DAG params with the run's conf over them. Each value is JSON text
  /// when `typed_params` names it (a typed param: `5`, `true`, `["a"]`), else the plain string.
  std::map<std::string, std::string> params;
  std::set<std::string> typed_params;         ///< params whose value in `params` is JSON
  std::string conf = "{}";                    ///< `{{ dag_run.conf }}`: the run's conf, JSON text
  /// `{{ triggering_dataset_events }}`: JSON text, an object from each dataset URI to the list of
  /// events that triggered the run (`{}` for a run not triggered by datasets).
  std::string triggering_dataset_events = "{}";
  std::string owner = "dagrun";               ///< `{{ task.owner }}`
  /// `{{ prev_ds }}` and friends: the logical date of the run before, on the schedule; unset for
  /// a manual run or an unscheduled DAG (they render as None, as in Airflow).
  std::optional<time_point> prev_logical_date;
  /// `{{ next_ds }}` and friends: the logical date of the run after, on the schedule.
  std::optional<time_point> next_logical_date;
  /// `{{ prev_data_interval_start_success }}` / `..._end_success`: the data interval of the last
  /// successful run before this one; unset (None) when there is none.
  std::optional<time_point> prev_data_interval_start_success;
  std::optional<time_point> prev_data_interval_end_success;  ///< see above
  std::optional<time_point> prev_start_date_success;  ///< `{{ prev_start_date_success }}`: when it started
  /// `{{ var.value.NAME }}` / `{{ var.json.NAME }}`: the variable's value, or nullopt when it is not set.
  std::function<std::optional<std::string>(std::string_view)> variable;
  /// `{{ conn.ID.ATTR }}`: the connection, or nullopt when it is not defined.
  std::function<std::optional<dag::connection>(std::string_view)> connection;
  /// `{{ ti.xcom_pull(task_ids='TASK', key='KEY') }}`: TASK's XCom under KEY (`return_value`
  /// when no key is given) in this run, or nullopt when there is none.
  std::function<std::optional<std::string>(std::string_view task_id, std::string_view key)> xcom_pull;
  /// Called with each secret a render puts into its output (connection passwords, variables
  /// whose names look secret, like Airflow's masker), so that log sinks can hide it. May be empty.
  std::function<void(std::string_view)> mask_secret;
};

/// Renders a parsed template. Throws dag::error naming what is missing or wrong: a variable that
/// is not set, a connection that is not defined, a param the run lacks, a task with no XCom in
/// this run, an undefined attribute, an operation on values of the wrong types.
std::string render(const template_text& text, const template_context& context);

/// Appends the rendering of `text` to `out` (no allocation beyond `out`'s growth): the hot path.
void render_to(std::string& out, const template_text& text, const template_context& context);

/// Parses then renders `text` (convenience for one-off text; parse once for repeated renders).
std::string render(std::string_view text, const template_context& context);

/// True when `text` contains template syntax (`{{`, `{%` or `{#`) and so needs parsing.
bool has_template(std::string_view text);

}  // namespace dag

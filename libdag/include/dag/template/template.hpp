#pragma once
/// @file Airflow-style `{{ macro }}` templates in operator fields: parse, check at load time, render.
// (Interface pinned by the foundation issue; see docs/concepts.md "Templates".)
//
// The supported language is a small, closed subset of Airflow's Jinja context, so that every name
// can be checked when a DAG is loaded instead of rendering as an empty string at run time:
//   {{ ds }} {{ ds_nodash }} {{ ts }} {{ ts_nodash }} {{ logical_date }} {{ data_interval_start }}
//   {{ data_interval_end }} {{ run_id }} {{ dag_id }} {{ task_id }} {{ try_number }}
//   {{ params.NAME }} {{ var.value.NAME }} {{ conn.ID.host|port|login|password|schema }}
//   {{ ti.xcom_pull('TASK') }} {{ ti.xcom_pull("TASK") }} {{ ti.xcom_pull(task_ids='TASK') }}
//   {{ 'text' }} (a quoted literal: the only way to write a literal `{{`, as in Jinja)
//   {# comment #}, and Jinja's whitespace control `{{-` / `-}}`.
// `{% ... %}` statements, filters and any other expression are rejected when parsed.

#include <functional>
#include <map>
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

/// What one `{{ expression }}` refers to.
enum class template_ref_kind {
  ds,                   ///< `2024-01-01`
  ds_nodash,            ///< `20240101`
  ts,                   ///< `2024-01-01T00:00:00+00:00`
  ts_nodash,            ///< `20240101T000000`
  logical_date,         ///< like `ts`
  data_interval_start,  ///< like `ts`
  data_interval_end,    ///< like `ts`
  run_id,               ///< the run's id
  dag_id,               ///< the DAG's id
  task_id,              ///< the task's id
  try_number,           ///< 1 for the first try
  param,                ///< `params.NAME`; `name` is NAME
  variable,             ///< `var.value.NAME`; `name` is NAME
  connection,           ///< `conn.ID.ATTR`; `name` is ID, `attribute` is ATTR
  xcom_pull,            ///< `ti.xcom_pull('TASK')`; `name` is TASK
};

/// Which attribute of a connection `{{ conn.ID.ATTR }}` reads.
enum class connection_attribute { host, port, login, password, schema };

/// One parsed `{{ expression }}`, with where its name sits in the text (for load-time errors).
struct template_ref {
  template_ref_kind kind = template_ref_kind::ds;                ///< what it refers to
  std::string name;                                              ///< param, variable, connection or task id
  connection_attribute attribute = connection_attribute::host;   ///< for `connection` only
  int line = 0;                                                  ///< 0-based line of `name` (or of the macro)
  int column = 1;                                                ///< 1-based column of `name` (or of the macro)
};

/// A template parsed once into literal text and references, ready to be checked and rendered
/// many times without reparsing. Text with no `{{` is a template with no references; comments
/// and `{{ 'quoted' }}` literals are folded into the literal text when parsed.
class template_text {
public:
  /// An empty template (renders as "").
  template_text() : literals_(1) {}

  /// Parses `text`; throws dag::template_error with the position of the first problem.
  static template_text parse(std::string_view text);

  /// The text it was parsed from.
  const std::string& source() const noexcept { return source_; }
  /// The references in order of appearance.
  const std::vector<template_ref>& refs() const noexcept { return refs_; }
  /// The literal pieces around the references: `refs().size() + 1` of them, possibly empty;
  /// literal `i` comes before reference `i`, the last one after every reference.
  const std::vector<std::string>& literals() const noexcept { return literals_; }
  /// True when rendering always gives the same text (no reference needs a context).
  bool is_constant() const noexcept { return refs_.empty(); }

private:
  std::string source_;
  std::vector<std::string> literals_;
  std::vector<template_ref> refs_;
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
struct template_context {
  std::string dag_id;                         ///< `{{ dag_id }}`
  std::string task_id;                        ///< `{{ task_id }}`
  std::string run_id;                         ///< `{{ run_id }}`
  time_point logical_date{};                  ///< `{{ ds }}`, `{{ ts }}`, `{{ logical_date }}`, …
  time_point data_interval_start{};           ///< `{{ data_interval_start }}`
  time_point data_interval_end{};             ///< `{{ data_interval_end }}`
  int try_number = 1;                         ///< `{{ try_number }}`
  std::map<std::string, std::string> params;  ///< `{{ params.NAME }}`: DAG params with the run's conf over them
  /// `{{ var.value.NAME }}`: the variable's value, or nullopt when it is not set.
  std::function<std::optional<std::string>(std::string_view)> variable;
  /// `{{ conn.ID.ATTR }}`: the connection, or nullopt when it is not defined.
  std::function<std::optional<dag::connection>(std::string_view)> connection;
  /// `{{ ti.xcom_pull('TASK') }}`: TASK's `return_value` in this run, or nullopt when there is none.
  std::function<std::optional<std::string>(std::string_view)> xcom_pull;
  /// Called with each secret a render puts into its output (connection passwords, variables
  /// whose names look secret, like Airflow's masker), so that log sinks can hide it. May be empty.
  std::function<void(std::string_view)> mask_secret;
};

/// Renders a parsed template. Throws dag::error naming what is missing: a variable that is not
/// set, a connection that is not defined, a param the run lacks, a task with no XCom in this run.
std::string render(const template_text& text, const template_context& context);

/// Appends the rendering of `text` to `out` (no allocation beyond `out`'s growth): the hot path.
void render_to(std::string& out, const template_text& text, const template_context& context);

/// Parses then renders `text` (convenience for one-off text; parse once for repeated renders).
std::string render(std::string_view text, const template_context& context);

/// True when `text` contains template syntax (`{{`, `{%` or `{#`) and so needs parsing.
bool has_template(std::string_view text);

}  // namespace dag

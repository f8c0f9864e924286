#pragma once
/// @file Datasets (Airflow 2's data-aware scheduling): a task's `outlets` name the datasets its
/// success updates; a DAG scheduled on datasets runs when they were updated (see docs/concepts.md).

#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dag {

/// Why `uri` is not a dataset URI ("" when it is one): a scheme (`s3`, `file`, `postgres`, …), a
/// colon and a rest, in printable ASCII without spaces, as Airflow 2 recommends (`s3://bucket/key`).
inline std::string dataset_uri_problem(std::string_view uri) {
  if (uri.empty()) return "a dataset URI is empty";
  for (char c : uri)
    if (c <= ' ' || c > '~') return "dataset URI '" + std::string(uri) + "' holds a space or a non-ASCII character";
  const auto colon = uri.find(':');
  const auto scheme_char = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
  };
  bool scheme_ok = colon != std::string_view::npos && colon > 0 && colon + 1 < uri.size() &&
                   ((uri[0] >= 'a' && uri[0] <= 'z') || (uri[0] >= 'A' && uri[0] <= 'Z'));
  for (std::size_t i = 0; scheme_ok && i < colon; ++i) scheme_ok = scheme_char(uri[i]);
  if (!scheme_ok)
    return "'" + std::string(uri) + "' is not a dataset URI: expected SCHEME:REST such as s3://bucket/key or file:///data/x.csv";
  if (uri.substr(0, colon) == "airflow") return "dataset URI '" + std::string(uri) + "': the 'airflow' scheme is reserved";
  return {};
}

/// When a dataset-scheduled DAG runs: one dataset updated, all of several (`&`), or any of
/// several (`|`), nested as Airflow 2.9's `(a | b) & c`. A plain `schedule: [a, b]` is `all`.
struct dataset_condition {
  /// What the node is.
  enum class kind { uri, all, any };
  kind what = kind::all;                ///< a dataset, or all / any of `of`
  std::string uri;                      ///< the dataset (kind uri)
  std::vector<dataset_condition> of;    ///< the operands (all, any)

  /// A condition on one dataset.
  static dataset_condition dataset(std::string u) { return {kind::uri, std::move(u), {}}; }
  /// Every one of `operands` updated.
  static dataset_condition all(std::vector<dataset_condition> operands) { return {kind::all, {}, std::move(operands)}; }
  /// Any one of `operands` updated.
  static dataset_condition any(std::vector<dataset_condition> operands) { return {kind::any, {}, std::move(operands)}; }
  /// Every one of `uris` updated (`schedule: [a, b]`).
  static dataset_condition all_of(const std::vector<std::string>& uris) {
    dataset_condition c;
    for (const auto& u : uris) c.of.push_back(dataset(u));
    return c;
  }

  /// True when the datasets in `updated` satisfy the condition. (An empty `all` never is: a DAG
  /// scheduled on no dataset never runs by itself.)
  bool met_by(const std::set<std::string>& updated) const {
    switch (what) {
      case kind::uri: return updated.contains(uri);
      case kind::all:
        if (of.empty()) return false;
        for (const auto& c : of)
          if (!c.met_by(updated)) return false;
        return true;
      case kind::any:
        for (const auto& c : of)
          if (c.met_by(updated)) return true;
        return false;
    }
    return false;
  }

  /// Every dataset the condition names, in order of appearance, once each.
  std::vector<std::string> uris() const {
    std::vector<std::string> out;
    collect(out);
    return out;
  }

  /// As Airflow 2.9 writes it: `s3://a`, `(s3://a & s3://b)`, `((s3://a | s3://b) & s3://c)`.
  std::string text() const {
    if (what == kind::uri) return uri;
    std::string out = "(";
    for (std::size_t i = 0; i < of.size(); ++i) out += (i ? (what == kind::all ? " & " : " | ") : "") + of[i].text();
    return out + ")";
  }

private:
  void collect(std::vector<std::string>& out) const {
    if (what == kind::uri) {
      for (const auto& u : out)
        if (u == uri) return;
      out.push_back(uri);
    }
    for (const auto& c : of) c.collect(out);
  }
};

}  // namespace dag

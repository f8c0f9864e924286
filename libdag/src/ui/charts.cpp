// Charts drawn on the server as SVG (sizes are SVG attributes; colours come from app.css by
// state class): a run's Gantt, task durations over runs, a calendar of run states, the legend.
#include "ui.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>


namespace dag::detail::ui {
namespace {

double seconds_since(timestamp from, timestamp to) { return std::chrono::duration<double>(to - from).count(); }

}  // namespace

std::string gantt_svg(const definition& d, const run_record& run, const std::vector<task_instance_record>& tis, timestamp now) {
  std::map<std::string, const task_instance_record*> by_task;
  std::optional<timestamp> first, last;
  for (const auto& ti : tis) {
    by_task[ti.task_id] = &ti;
    if (!ti.start_date) continue;
    const timestamp end = ti.end_date.value_or(now);
    if (!first || *ti.start_date < *first) first = ti.start_date;
    if (!last || end > *last) last = end;
  }
  if (!first) return "<p class=\"dim\">No task of run " + esc(run.run_id) + " has started yet.</p>";
  const double span = std::max(1.0, seconds_since(*first, *last));
  constexpr double label = 200, chart = 600, row = 22;
  const auto order = task_rows(d);
  const double height = static_cast<double>(order.size()) * row + 24;
  std::string svg = "<svg class=\"chart gantt\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 " + svg_number(label + chart + 10) + " " +
                    svg_number(height) + "\" width=\"" + svg_number(label + chart + 10) + "\" role=\"img\" aria-label=\"Gantt chart of run " +
                    esc(run.run_id) + "\">";
  for (double t = 0; t <= 4; ++t)
    svg += "<line class=\"grid\" x1=\"" + svg_number(label + chart * t / 4) + "\" y1=\"0\" x2=\"" + svg_number(label + chart * t / 4) + "\" y2=\"" +
           svg_number(height - 18) + "\"/><text class=\"axis\" x=\"" + svg_number(label + chart * t / 4) + "\" y=\"" + svg_number(height - 4) +
           "\" text-anchor=\"" + (t == 0 ? "start" : t == 4 ? "end" : "middle") + "\">+" + esc(span_text(span * t / 4)) + "</text>";
  double y = 0;
  for (std::size_t i : order) {
    const auto& t = d.all_tasks()[i];
    svg += "<text x=\"" + svg_number(label - 6) + "\" y=\"" + svg_number(y + 15) + "\" text-anchor=\"end\">" + esc(t.id) + "</text>";
    const auto it = by_task.find(t.id);
    if (it != by_task.end() && it->second->start_date) {
      const auto& ti = *it->second;
      const double from = seconds_since(*first, *ti.start_date) / span * chart;
      const double to = seconds_since(*first, ti.end_date.value_or(now)) / span * chart;
      svg += "<a href=\"" + esc(ti_href(d.id(), run.run_id, t.id)) + "\"><rect class=\"bar st-" + std::string(to_string(ti.state)) +
             "\" data-s=\"" + esc(live_key(run.run_id, t.id)) + "\" x=\"" + svg_number(label + from) + "\" y=\"" + svg_number(y + 3) + "\" width=\"" +
             svg_number(std::max(2.0, to - from)) + "\" height=\"" + svg_number(row - 6) + "\"><title>" +
             esc(t.id + " · " + std::string(to_string(ti.state)) + " · " + when(ti.start_date) + " · " +
                 span_text(seconds_of(ti.start_date, ti.end_date, now))) +
             "</title></rect></a>";
    }
    y += row;
  }
  return svg + "</svg>";
}

namespace {

// A span that may be negative (a task instance that ended before its run's data interval did).
std::string signed_span(double seconds) { return seconds < 0 ? "−" + span_text(-seconds) : span_text(seconds); }

// One line per task over `runs` (oldest first), through `value` of its instance in each run
// where it has one; the y axis from 0 (or the lowest value, when below) to the highest.
template <class Value>
std::string task_lines_svg(const definition& d, const std::vector<run_record>& runs,
                           const std::vector<std::vector<task_instance_record>>& tis, const std::string& css_class,
                           const std::string& aria_label, Value value) {
  if (runs.empty()) return "<p class=\"dim\">No runs yet.</p>";
  constexpr double left = 70, chart_w = 640, chart_h = 240, bottom = 40;
  std::map<std::string, std::vector<std::optional<double>>> series;
  double most = 1, least = 0;
  for (std::size_t k = 0; k < runs.size(); ++k)
    for (const auto& ti : tis[k]) {
      auto& s = series[ti.task_id];
      s.resize(runs.size());
      if (const std::optional<double> x = value(runs[k], ti)) {
        s[k] = x;
        most = std::max(most, *x);
        least = std::min(least, *x);
      }
    }
  const double range = most - least;
  const auto y_of = [&](double x) { return chart_h - (x - least) / range * chart_h + 5; };
  const double step = runs.size() > 1 ? chart_w / static_cast<double>(runs.size() - 1) : 0;
  std::string svg = "<svg class=\"chart " + css_class + "\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 " + svg_number(left + chart_w + 20) +
                    " " + svg_number(chart_h + bottom) + "\" width=\"" + svg_number(left + chart_w + 20) + "\" role=\"img\" aria-label=\"" +
                    aria_label + "\">";
  for (double t = 0; t <= 4; ++t) {
    const double y = chart_h - chart_h * t / 4 + 5;
    svg += "<line class=\"grid\" x1=\"" + svg_number(left) + "\" y1=\"" + svg_number(y) + "\" x2=\"" + svg_number(left + chart_w) + "\" y2=\"" + svg_number(y) +
           "\"/><text class=\"axis\" x=\"" + svg_number(left - 6) + "\" y=\"" + svg_number(y + 4) + "\" text-anchor=\"end\">" +
           esc(signed_span(least + range * t / 4)) + "</text>";
  }
  for (std::size_t k = 0; k < runs.size(); k += std::max<std::size_t>(1, runs.size() / 6))
    svg += "<text class=\"axis\" x=\"" + svg_number(left + step * static_cast<double>(k)) + "\" y=\"" + svg_number(chart_h + 25) +
           "\" text-anchor=\"middle\">" + esc(when(runs[k].logical_date).substr(5, 11)) + "</text>";
  std::size_t colour = 0;
  for (const auto& t : d.all_tasks()) {
    const auto it = series.find(t.id);
    if (it == series.end()) continue;
    std::string points;
    std::optional<double> latest;
    for (std::size_t k = 0; k < it->second.size(); ++k)
      if (const auto x = it->second[k]) {
        points += svg_number(left + step * static_cast<double>(k)) + "," + svg_number(y_of(*x)) + " ";
        latest = x;
      }
    if (points.empty()) continue;
    svg += "<polyline class=\"series c" + std::to_string(colour++ % 8) + "\" data-task=\"" + esc(t.id) + "\" points=\"" + points +
           "\"><title>" + esc(t.id + " · latest " + signed_span(*latest)) + "</title></polyline>";
  }
  return svg + "</svg>";
}

}  // namespace

std::string duration_chart_svg(const definition& d, const std::vector<run_record>& runs,
                               const std::vector<std::vector<task_instance_record>>& tis) {
  return task_lines_svg(d, runs, tis, "durations", "task durations",
                        [](const run_record&, const task_instance_record& ti) { return seconds_between(ti.start_date, ti.end_date); });
}

std::string landing_chart_svg(const definition& d, const std::vector<run_record>& runs,
                              const std::vector<std::vector<task_instance_record>>& tis) {
  return task_lines_svg(d, runs, tis, "landing", "task landing times", [](const run_record& run, const task_instance_record& ti) {
    return seconds_between(timestamp(run.interval.end), ti.end_date);
  });
}

std::string calendar_svg(const std::vector<run_record>& runs, time_point today) {
  using namespace std::chrono;
  // The worst state of each day's runs: failed, then running/queued, then success.
  auto rank = [](run_state s) { return s == run_state::failed ? 3 : s == run_state::success ? 1 : 2; };
  std::map<sys_days, std::pair<run_state, int>> days;
  for (const auto& run : runs) {
    const auto day = floor<std::chrono::days>(run.logical_date);
    auto [it, added] = days.try_emplace(day, run.state, 0);
    if (rank(run.state) > rank(it->second.first)) it->second.first = run.state;
    ++it->second.second;
  }
  const sys_days last = floor<std::chrono::days>(today);
  const weekday last_wd{last};
  const sys_days first = last - std::chrono::days(52 * 7 + last_wd.c_encoding());
  constexpr double cell = 13;
  std::string svg = "<svg class=\"chart calendar\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 " + svg_number(53 * cell + 30) + " " +
                    svg_number(7 * cell + 20) + "\" width=\"" + svg_number(53 * cell + 30) + "\" role=\"img\" aria-label=\"runs by day\">";
  for (sys_days day = first; day <= last; day += std::chrono::days(1)) {
    const auto index = (day - first).count();
    const double x = 25 + static_cast<double>(index / 7) * cell, y = 15 + static_cast<double>(index % 7) * cell;
    const year_month_day ymd{day};
    if (unsigned(ymd.day()) == 1)
      svg += "<text class=\"axis\" x=\"" + svg_number(x) + "\" y=\"10\">" + std::to_string(unsigned(ymd.month())) + "</text>";
    const auto it = days.find(day);
    const std::string state = it == days.end() ? "none" : std::string(to_string(it->second.first));
    char date[16];
    std::snprintf(date, sizeof date, "%04d-%02u-%02u", int(ymd.year()), unsigned(ymd.month()), unsigned(ymd.day()));
    svg += "<rect class=\"day st-" + state + "\" x=\"" + svg_number(x) + "\" y=\"" + svg_number(y) + "\" width=\"" + svg_number(cell - 2) + "\" height=\"" +
           svg_number(cell - 2) + "\" rx=\"2\"><title>" + date +
           (it == days.end() ? std::string(": no runs") : ": " + std::to_string(it->second.second) + " run(s), " + state) +
           "</title></rect>";
  }
  return svg + "</svg>";
}

std::string legend() {
  std::string out = "<details class=\"legend\"><summary>States</summary><p>";
  for (const auto& s : task_state_names) out += state_badge(s) + " ";
  return out + "</p></details>";
}

}  // namespace dag::detail::ui

#pragma once
/// @file Prometheus metrics: counters, gauges and histograms with labels, kept in memory and
/// written in Prometheus' text exposition format. Thread-safe; cheap enough for the scheduler loop
/// (one mutex, a map lookup per observation).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dag {

/// Label values of one series, in the order its family declares the label names.
using metric_labels = std::vector<std::string>;

/// The metrics of one process, by family name.
class metrics_registry {
public:
  /// Buckets (seconds) for durations from a millisecond to an hour.
  static std::vector<double> duration_buckets() {
    return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600};
  }

  /// Declares a counter family (a value that only goes up); declaring it again changes nothing.
  void counter(const std::string& name, std::string help, std::vector<std::string> label_names = {}) {
    declare(name, kind::counter, std::move(help), std::move(label_names), {});
  }
  /// Declares a gauge family (a value that goes up and down).
  void gauge(const std::string& name, std::string help, std::vector<std::string> label_names = {}) {
    declare(name, kind::gauge, std::move(help), std::move(label_names), {});
  }
  /// Declares a histogram family with upper bucket bounds (ascending; +Inf is implied).
  void histogram(const std::string& name, std::string help, std::vector<std::string> label_names = {},
                 std::vector<double> buckets = duration_buckets()) {
    declare(name, kind::histogram, std::move(help), std::move(label_names), std::move(buckets));
  }

  /// Adds `by` to a counter (or gauge) series.
  void add(const std::string& name, const metric_labels& labels = {}, double by = 1) {
    std::lock_guard lock(mutex_);
    if (auto* s = find_series(name, labels)) s->value += by;
  }
  /// Sets a gauge series.
  void set(const std::string& name, double value, const metric_labels& labels = {}) {
    std::lock_guard lock(mutex_);
    if (auto* s = find_series(name, labels)) s->value = value;
  }
  /// Records one observation in a histogram series.
  void observe(const std::string& name, double value, const metric_labels& labels = {}) {
    std::lock_guard lock(mutex_);
    auto it = families_.find(name);
    if (it == families_.end()) return;
    family& f = it->second;
    series& s = f.series_by_labels[labels];
    if (s.bucket_counts.size() != f.buckets.size()) s.bucket_counts.assign(f.buckets.size(), 0);
    for (std::size_t i = 0; i < f.buckets.size(); ++i)
      if (value <= f.buckets[i]) ++s.bucket_counts[i];
    s.value += value;  // the sum
    ++s.count;
  }
  /// The value of a counter or gauge series (0 when it has none yet): for tests and health checks.
  double value(const std::string& name, const metric_labels& labels = {}) const {
    std::lock_guard lock(mutex_);
    auto it = families_.find(name);
    if (it == families_.end()) return 0;
    auto s = it->second.series_by_labels.find(labels);
    return s == it->second.series_by_labels.end() ? 0 : s->second.value;
  }
  /// Observations so far in a histogram series.
  std::uint64_t count(const std::string& name, const metric_labels& labels = {}) const {
    std::lock_guard lock(mutex_);
    auto it = families_.find(name);
    if (it == families_.end()) return 0;
    auto s = it->second.series_by_labels.find(labels);
    return s == it->second.series_by_labels.end() ? 0 : s->second.count;
  }

  /// Everything, in Prometheus' text format (version 0.0.4), families sorted by name.
  std::string text() const {
    std::lock_guard lock(mutex_);
    std::string out;
    for (const auto& entry : families_) {
      // Named references, not a structured binding: the lambda below captures them, which clang
      // before 16 does not allow for bindings.
      const std::string& name = entry.first;
      const auto& f = entry.second;
      out += "# HELP " + name + " " + f.help + "\n# TYPE " + name + " " + type_name(f.type) + "\n";
      auto write = [&](const metric_labels& labels, const series& s) {
        const std::string l = label_text(f.label_names, labels);
        if (f.type != kind::histogram) {
          out += name + braces(l) + " " + number(s.value) + "\n";
          return;
        }
        for (std::size_t i = 0; i < f.buckets.size(); ++i)
          out += name + "_bucket" + braces(join(l, "le=\"" + number(f.buckets[i]) + "\"")) + " " +
                 std::to_string(s.bucket_counts.empty() ? 0 : s.bucket_counts[i]) + "\n";
        out += name + "_bucket" + braces(join(l, "le=\"+Inf\"")) + " " + std::to_string(s.count) + "\n";
        out += name + "_sum" + braces(l) + " " + number(s.value) + "\n";
        out += name + "_count" + braces(l) + " " + std::to_string(s.count) + "\n";
      };
      // A family without labels shows its zero value before anything happened, as client libraries do.
      if (f.series_by_labels.empty() && f.label_names.empty()) write({}, series{});
      for (const auto& [labels, s] : f.series_by_labels) write(labels, s);
    }
    return out;
  }

private:
  enum class kind { counter, gauge, histogram };
  struct series {
    double value = 0;                         // counter/gauge value, or a histogram's sum
    std::uint64_t count = 0;                  // histogram observations
    std::vector<std::uint64_t> bucket_counts; // observations <= each bound (cumulative by construction)
  };
  struct family {
    kind type;
    std::string help;
    std::vector<std::string> label_names;
    std::vector<double> buckets;
    std::map<metric_labels, series> series_by_labels;
  };

  void declare(const std::string& name, kind type, std::string help, std::vector<std::string> label_names,
               std::vector<double> buckets) {
    std::lock_guard lock(mutex_);
    families_.try_emplace(name, family{type, std::move(help), std::move(label_names), std::move(buckets), {}});
  }
  series* find_series(const std::string& name, const metric_labels& labels) {
    auto it = families_.find(name);
    return it == families_.end() ? nullptr : &it->second.series_by_labels[labels];
  }
  static const char* type_name(kind k) {
    return k == kind::counter ? "counter" : k == kind::gauge ? "gauge" : "histogram";
  }
  static std::string number(double v) {
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<long long>(v));
    // The shortest text that reads back as the same double: 5.55 stays 5.55, and a Unix time in
    // seconds keeps its fraction (%.9g would round it to 10 s).
    char buf[32];
    for (int digits = 15; digits <= 17; ++digits) {
      std::snprintf(buf, sizeof buf, "%.*g", digits, v);
      if (std::strtod(buf, nullptr) == v) break;
    }
    return buf;
  }
  // Label values escape backslash, double quote and newline (the format's rules).
  static std::string label_text(const std::vector<std::string>& names, const metric_labels& values) {
    std::string out;
    for (std::size_t i = 0; i < names.size() && i < values.size(); ++i) {
      if (!out.empty()) out += ',';
      out += names[i] + "=\"";
      for (char c : values[i]) {
        if (c == '\\' || c == '"') out += '\\';
        if (c == '\n') {
          out += "\\n";
          continue;
        }
        out += c;
      }
      out += '"';
    }
    return out;
  }
  static std::string join(const std::string& a, const std::string& b) { return a.empty() ? b : a + "," + b; }
  static std::string braces(const std::string& l) { return l.empty() ? "" : "{" + l + "}"; }

  mutable std::mutex mutex_;
  std::map<std::string, family> families_;
};

}  // namespace dag

#pragma once
/// @file What every sensor shares (Airflow's BaseSensorOperator): the poke loop, `mode: reschedule`,
/// `timeout`, `soft_fail` and `exponential_backoff`. A sensor only says what one poke finds.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <dag/core/operator.hpp>
#include <dag/core/states.hpp>
#include <dag/core/time.hpp>

namespace dag::operators {

/// What one poke of a sensor found.
struct poke_result {
  enum class kind {
    not_yet,  ///< the condition does not hold yet: poke again later
    met,      ///< it holds: the try succeeds
    never,    ///< it never will (another DAG's task failed): the try fails now, or is skipped under `soft_fail`
    error,    ///< the poke itself failed (no such connection, a bad query): the try fails, retries apply
  };
  kind what = kind::not_yet;
  std::string message;              ///< why (never, error), or what was seen (not_yet, for the log)
  std::optional<std::string> xcom;  ///< met: the value pushed to XCom

  /// The condition holds; `xcom` goes to XCom.
  static poke_result met(std::optional<std::string> xcom = std::nullopt) { return {kind::met, {}, std::move(xcom)}; }
  /// Not yet; `seen` (may be empty) is logged with the poke.
  static poke_result not_yet(std::string seen = {}) { return {kind::not_yet, std::move(seen), std::nullopt}; }
  /// Never: fail (or skip under soft_fail) with `why`.
  static poke_result never(std::string why) { return {kind::never, std::move(why), std::nullopt}; }
  /// The poke failed with `why`.
  static poke_result error(std::string why) { return {kind::error, std::move(why), std::nullopt}; }
};

/// The sensor base: one place for the poke loop, rescheduling, timeout, soft_fail and backoff. A
/// sensor's `run` is `sensor::run(ctx, its_poke)`, and its fields are `sensor::with_fields({...})`.
struct sensor {
  /// The common fields: `poke_interval` (default 60s), `timeout` (default 7d, counted from the
  /// try's first poke), `mode` (`poke` holds the slot between pokes; `reschedule` gives it back),
  /// `soft_fail` (skipped instead of failed on timeout or a `never`), `exponential_backoff` and
  /// `max_wait` (the longest wait backoff may reach).
  static std::vector<field_spec> fields() {
    return {{"poke_interval", field_kind::time_span, false},
            {"timeout", field_kind::time_span, false},
            {"mode", field_kind::text, false, {"poke", "reschedule"}},
            {"soft_fail", field_kind::boolean, false},
            {"exponential_backoff", field_kind::boolean, false},
            {"max_wait", field_kind::time_span, false}};
  }
  /// A sensor's own fields followed by the common ones.
  static std::vector<field_spec> with_fields(std::vector<field_spec> own) {
    for (auto& f : fields()) own.push_back(std::move(f));
    return own;
  }

  /// The common settings of one try, read from its rendered fields.
  struct settings {
    duration poke_interval{60};
    duration timeout{7 * 24 * 3600};
    bool reschedule = false;
    bool soft_fail = false;
    bool exponential_backoff = false;
    std::optional<duration> max_wait;

    static settings of(const task_context& ctx) {
      settings s;
      auto field = [&](const char* name) -> const std::string* {
        auto it = ctx.fields.find(name);
        return it == ctx.fields.end() ? nullptr : &it->second;
      };
      if (auto* v = field("poke_interval")) s.poke_interval = parse_duration(*v);
      if (auto* v = field("timeout")) s.timeout = parse_duration(*v);
      if (auto* v = field("mode")) s.reschedule = *v == "reschedule";
      s.soft_fail = field_is_true(ctx, "soft_fail");
      s.exponential_backoff = field_is_true(ctx, "exponential_backoff");
      if (auto* v = field("max_wait")) s.max_wait = parse_duration(*v);
      return s;
    }
  };

  /// The wait after poke number `poke_count` (1 for the first) found nothing: `poke_interval`, or
  /// with `exponential_backoff` Airflow's rule — at least max(poke_interval × 2^(poke_count−2), 1s)
  /// and less than twice that, the point in between drawn from the DAG, task, run, try and poke
  /// count (so every execution of a rescheduled try computes the same waits) — capped by `max_wait`.
  static duration next_interval(const settings& s, const task_context& ctx, int poke_count) {
    if (!s.exponential_backoff) return s.poke_interval;
    const double factor = std::ldexp(1.0, std::min(poke_count, 60) - 2);
    const double least = std::max(static_cast<double>(s.poke_interval.count()) * factor, 1.0);
    const auto floor_s = static_cast<std::int64_t>(std::min(least, 1e12));
    const std::string seed = ctx.dag_id + "#" + ctx.task_id + "#" + ctx.run_id + "#" + std::to_string(ctx.try_number) +
                             "#" + std::to_string(poke_count);
    std::uint64_t hash = 14695981039346656037ull;  // FNV-1a
    for (char c : seed) hash = (hash ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    duration wait(floor_s + static_cast<std::int64_t>(hash % static_cast<std::uint64_t>(floor_s)));
    if (s.max_wait) wait = std::min(wait, *s.max_wait);
    return wait;
  }

  /// Which poke an execution of a rescheduled try makes, from the time the try has waited: the
  /// first poke whose wait (next_interval) would end after `waited`.
  static int poke_count_after(const settings& s, const task_context& ctx, duration waited) {
    if (!s.exponential_backoff) return static_cast<int>(waited / std::max(s.poke_interval, duration(1))) + 1;
    int k = 1;
    duration passed{0};
    for (; k < 10000; ++k) {
      passed += next_interval(s, ctx, k);
      if (passed > waited) break;
    }
    return k;
  }

  /// Runs one execution of a sensor whose pokes `poke` makes: in poke mode, pokes until the
  /// condition is met, the timeout would pass before the next poke, or the try must stop; in
  /// reschedule mode, pokes once and asks to run again after the next interval.
  static operator_result run(task_context& ctx, const std::function<poke_result(task_context&)>& poke) {
    settings s;
    try {
      s = settings::of(ctx);
    } catch (const std::exception& e) {
      return operator_result::failed(e.what());
    }
    const auto began = std::chrono::steady_clock::now();
    // Time since the try's first poke: earlier executions of a rescheduled try count too.
    auto waited = [&] {
      return std::chrono::duration_cast<duration>(ctx.waited + (std::chrono::steady_clock::now() - began));
    };
    int poke_count = s.reschedule ? poke_count_after(s, ctx, waited()) : 1;
    for (;; ++poke_count) {
      poke_result r;
      try {
        r = poke(ctx);
      } catch (const std::exception& e) {
        r = poke_result::error(e.what());
      }
      const std::string label = poke_label(poke_count, s.reschedule, waited());
      switch (r.what) {
        case poke_result::kind::met:
          log(ctx, "sensor condition met on " + label);
          return operator_result::success(std::move(r.xcom));
        case poke_result::kind::error:
          log(ctx, label + ": " + r.message);
          return operator_result::failed(r.message);
        case poke_result::kind::never:
          log(ctx, label + ": " + r.message);
          return give_up(s, r.message);
        case poke_result::kind::not_yet:
          break;
      }
      log(ctx, label + ": not yet" + (r.message.empty() ? "" : " (" + r.message + ")"));
      const duration wait = next_interval(s, ctx, poke_count);
      if (waited() + wait > s.timeout) return give_up(s, "sensor timeout: condition not met within " + format_duration(s.timeout));
      if (s.reschedule) return operator_result::reschedule(wait, "rescheduled: next poke in " + format_duration(wait));
      // Sleep until the next poke, but wake at once when the try must stop.
      std::mutex m;
      std::condition_variable_any cv;
      std::unique_lock lock(m);
      cv.wait_for(lock, ctx.stop, wait, [] { return false; });
      if (ctx.stop.stop_requested()) return operator_result::failed("stopped while waiting for the next poke");
    }
  }

  /// "Now" as the try's clock says (the scheduler's, injected in tests), or the system's.
  static time_point now(const task_context& ctx) {
    return ctx.time_source ? ctx.time_source->now() : system_clock{}.now();
  }

private:
  static void log(task_context& ctx, const std::string& line) {
    if (ctx.log) ctx.log("[dagrun] " + line);
  }
  // Timeout or `never`: failed, or skipped under soft_fail.
  static operator_result give_up(const settings& s, std::string why) {
    if (s.soft_fail) return operator_result::skipped(why + " (soft_fail: skipped)");
    return operator_result::failed(std::move(why));
  }
  // "poke 3" in poke mode; in reschedule mode each execution pokes once, so say how long the
  // try has been waiting instead.
  static std::string poke_label(int poke_count, bool reschedule, duration waited) {
    if (!reschedule) return "poke " + std::to_string(poke_count);
    return "poke after " + format_duration(waited) + " of waiting";
  }
};

/// The `allowed_states` and `failed_states` of operators that wait on another DAG's task or run
/// (external_task_sensor, trigger_dagrun): Airflow's state names, checked at load time.
struct watched_states {
  std::vector<std::string> allowed;  ///< states that meet the condition
  std::vector<std::string> failed;   ///< states that end the wait at once (fail fast)

  /// The two list fields.
  static std::vector<field_spec> fields() {
    return {{"allowed_states", field_kind::string_list, false}, {"failed_states", field_kind::string_list, false}};
  }
  /// Load-time check of one item: a task or run state name.
  static std::optional<std::string> check_value(std::string_view field, std::string_view value) {
    if (field != "allowed_states" && field != "failed_states") return std::nullopt;
    if (parse_task_state(value) || parse_run_state(value)) return std::nullopt;
    std::string known;
    for (auto n : task_state_names) known += (known.empty() ? "" : ", ") + std::string(n);
    return "'" + std::string(value) + "' is not a state (" + known + ")";
  }
  /// The lists of one try, with these defaults where a list is not given.
  static watched_states of(const task_context& ctx, std::vector<std::string> allowed, std::vector<std::string> failed) {
    auto list = [&](const std::string& name, std::vector<std::string> fallback) {
      std::vector<std::string> out;
      for (std::size_t i = 0;; ++i) {
        auto it = ctx.fields.find(name + "." + std::to_string(i));
        if (it == ctx.fields.end()) break;
        out.push_back(it->second);
      }
      return ctx.fields.contains(name + ".0") ? out : fallback;
    };
    return {list("allowed_states", std::move(allowed)), list("failed_states", std::move(failed))};
  }
  /// What `state` of `what` (e.g. "task 'load' of run 'r'") means for the wait.
  poke_result judge(const std::string& state, const std::string& what) const {
    auto in = [&](const std::vector<std::string>& v) { return std::find(v.begin(), v.end(), state) != v.end(); };
    if (in(failed)) return poke_result::never(what + " is " + state);
    if (in(allowed)) return poke_result::met();
    return poke_result::not_yet(what + " is " + state);
  }
};

}  // namespace dag::operators

// Trigger rules: the decision for every rule over every mix of upstream states.
//
// Every expected decision below is written out by hand from Airflow 2's
// airflow/ti_deps/deps/trigger_rule_dep.py (apache/airflow, 2.10 development line,
// TriggerRuleDep._evaluate_trigger_rule with dep_context.flag_upstream_failed=True):
//   * no upstream tasks, or trigger_rule == always          -> run
//   * the flag_upstream_failed block sets SKIPPED / UPSTREAM_FAILED -> skip / upstream_failed
//   * otherwise the rule's "met" check passes              -> run
//   * otherwise (a failing dep status, state unchanged)    -> wait
// They are not computed by a second implementation.

#include <dag/core/trigger_rule.hpp>

#include <doctest/doctest.h>

#include <array>
#include <cstddef>
#include <initializer_list>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

// doctest 2.4 prints enums as numbers whatever StringMaker says, so decisions are compared by
// name (see `name`) to make a failing row read "skip == upstream_failed".
namespace doctest {
template <>
struct StringMaker<std::optional<dag::trigger_rule>> {
  static String convert(const std::optional<dag::trigger_rule>& r) {
    return r ? std::string(dag::to_string(*r)).c_str() : "nullopt";
  }
};
}  // namespace doctest

namespace {

using dag::task_state;
using dag::trigger_decision;
using dag::trigger_rule;

// Upstream states.
constexpr task_state R = task_state::running;  // unfinished
constexpr task_state S = task_state::success;
constexpr task_state F = task_state::failed;
constexpr task_state U = task_state::upstream_failed;
constexpr task_state K = task_state::skipped;

// Decisions.
constexpr trigger_decision WAIT = trigger_decision::wait;
constexpr trigger_decision RUN = trigger_decision::run;
constexpr trigger_decision SKIP = trigger_decision::skip;
constexpr trigger_decision UPF = trigger_decision::upstream_failed;

constexpr std::size_t mix_count = 15;

/// The 15 unordered mixes of two upstream states drawn from {R, S, F, U, K}: the table's columns.
constexpr std::array<std::array<task_state, 2>, mix_count> two_upstream_mixes{{
    {R, R}, {R, S}, {R, F}, {R, U}, {R, K},  //
    {S, S}, {S, F}, {S, U}, {S, K},          //
    {F, F}, {F, U}, {F, K},                  //
    {U, U}, {U, K},                          //
    {K, K},
}};

struct rule_row {
  trigger_rule rule;
  std::array<trigger_decision, mix_count> expected;  // one per column of two_upstream_mixes
};

// clang-format off
/// Expected decisions with two upstream tasks. Column order is that of two_upstream_mixes.
constexpr std::array<rule_row, 11> two_upstream_table{{
  //                                   RR    RS    RF    RU    RK  |  SS    SF    SU    SK  |  FF    FU    FK  |  UU    UK  |  KK
  // "if upstream_failed or failed: UPSTREAM_FAILED / elif skipped: SKIPPED"; met when upstream - success == 0
  {trigger_rule::all_success,        {WAIT, WAIT, UPF,  UPF,  SKIP,   RUN,  UPF,  UPF,  SKIP,   UPF,  UPF,  UPF,   UPF,  UPF,   SKIP}},
  // "if success or skipped: SKIPPED"; met when upstream - failed - upstream_failed == 0
  {trigger_rule::all_failed,         {WAIT, SKIP, WAIT, WAIT, SKIP,   SKIP, SKIP, SKIP, SKIP,   RUN,  RUN,  SKIP,  RUN,  SKIP,  SKIP}},
  // no state change; met when upstream_done
  {trigger_rule::all_done,           {WAIT, WAIT, WAIT, WAIT, WAIT,   RUN,  RUN,  RUN,  RUN,    RUN,  RUN,  RUN,   RUN,  RUN,   RUN}},
  // "if success or failed or upstream_failed: SKIPPED"; met when upstream - skipped == 0
  {trigger_rule::all_skipped,        {WAIT, SKIP, SKIP, SKIP, WAIT,   SKIP, SKIP, SKIP, SKIP,   SKIP, SKIP, SKIP,  SKIP, SKIP,  RUN}},
  // "if upstream_done and done == skipped: SKIPPED / elif upstream_done and success <= 0: UPSTREAM_FAILED"; met when success > 0
  {trigger_rule::one_success,        {WAIT, RUN,  WAIT, WAIT, WAIT,   RUN,  RUN,  RUN,  RUN,    UPF,  UPF,  UPF,   UPF,  UPF,   SKIP}},
  // "if upstream_done and not (failed or upstream_failed): SKIPPED"; met when failed or upstream_failed
  {trigger_rule::one_failed,         {WAIT, WAIT, RUN,  RUN,  WAIT,   SKIP, RUN,  RUN,  SKIP,   RUN,  RUN,  RUN,   RUN,  RUN,   SKIP}},
  // "if upstream_done and not (failed or success): SKIPPED"; met when success + failed > 0
  {trigger_rule::one_done,           {WAIT, RUN,  RUN,  WAIT, WAIT,   RUN,  RUN,  RUN,  RUN,    RUN,  RUN,  RUN,   SKIP, SKIP,  SKIP}},
  // "if upstream_failed or failed: UPSTREAM_FAILED"; met when upstream - success - skipped == 0
  {trigger_rule::none_failed,        {WAIT, WAIT, UPF,  UPF,  WAIT,   RUN,  UPF,  UPF,  RUN,    UPF,  UPF,  UPF,   UPF,  UPF,   RUN}},
  // "if upstream_failed or failed: UPSTREAM_FAILED / elif skipped == upstream: SKIPPED"; met as none_failed
  {trigger_rule::none_failed_min_one_success,
                                     {WAIT, WAIT, UPF,  UPF,  WAIT,   RUN,  UPF,  UPF,  RUN,    UPF,  UPF,  UPF,   UPF,  UPF,   SKIP}},
  // "if skipped: SKIPPED"; met when upstream_done and skipped == 0
  {trigger_rule::none_skipped,       {WAIT, WAIT, WAIT, WAIT, SKIP,   RUN,  RUN,  RUN,  SKIP,   RUN,  RUN,  SKIP,  RUN,  SKIP,  SKIP}},
  // "if ti.task.trigger_rule == TR.ALWAYS: passing"
  {trigger_rule::always,             {RUN,  RUN,  RUN,  RUN,  RUN,    RUN,  RUN,  RUN,  RUN,    RUN,  RUN,  RUN,   RUN,  RUN,   RUN}},
}};
// clang-format on

using states_t = std::vector<task_state>;

std::string name(trigger_decision d) { return std::string(dag::to_string(d)); }

dag::upstream_counts counts_of(const states_t& states) {
  dag::upstream_counts c{};
  for (task_state s : states) c.add(s);
  return c;
}

std::string describe(const states_t& states) {
  std::ostringstream out;
  out << '{';
  const char* sep = "";
  for (task_state s : states) {
    out << sep << dag::to_string(s);
    sep = ", ";
  }
  out << '}';
  return out.str();
}

const rule_row& row_for(trigger_rule rule) {
  for (const rule_row& row : two_upstream_table)
    if (row.rule == rule) return row;
  FAIL("no table row for rule " << dag::to_string(rule));
  return two_upstream_table.front();  // unreachable: FAIL throws
}

/// Checks one rule's row against every two-upstream mix, in both orders.
void check_two_upstream_row(trigger_rule rule) {
  const rule_row& row = row_for(rule);
  for (std::size_t i = 0; i < mix_count; ++i) {
    const auto [a, b] = two_upstream_mixes[i];
    for (const states_t& states : {states_t{a, b}, states_t{b, a}}) {
      INFO("rule=" << std::string(dag::to_string(rule)) << " upstream=" << describe(states));
      CHECK(name(dag::evaluate(rule, counts_of(states))) == name(row.expected[i]));
    }
  }
}

constexpr std::array<trigger_rule, 11> all_rules{
    trigger_rule::all_success,  trigger_rule::all_failed,   trigger_rule::all_done,
    trigger_rule::all_skipped,  trigger_rule::one_success,  trigger_rule::one_failed,
    trigger_rule::one_done,     trigger_rule::none_failed,  trigger_rule::none_failed_min_one_success,
    trigger_rule::none_skipped, trigger_rule::always};

}  // namespace

TEST_CASE("TriggerRule.TableCoversEveryRuleOnce") {
  for (trigger_rule rule : all_rules) {
    INFO("rule=" << std::string(dag::to_string(rule)));
    int rows = 0;
    for (const rule_row& row : two_upstream_table) rows += row.rule == rule ? 1 : 0;
    CHECK(rows == 1);
  }
}

TEST_CASE("TriggerRule.AllSuccess") { check_two_upstream_row(trigger_rule::all_success); }
TEST_CASE("TriggerRule.AllFailed") { check_two_upstream_row(trigger_rule::all_failed); }
TEST_CASE("TriggerRule.AllDone") { check_two_upstream_row(trigger_rule::all_done); }
TEST_CASE("TriggerRule.AllSkipped") { check_two_upstream_row(trigger_rule::all_skipped); }
TEST_CASE("TriggerRule.OneSuccess") { check_two_upstream_row(trigger_rule::one_success); }
TEST_CASE("TriggerRule.OneFailed") { check_two_upstream_row(trigger_rule::one_failed); }
TEST_CASE("TriggerRule.OneDone") { check_two_upstream_row(trigger_rule::one_done); }
TEST_CASE("TriggerRule.NoneFailed") { check_two_upstream_row(trigger_rule::none_failed); }
TEST_CASE("TriggerRule.NoneFailedMinOneSuccess") { check_two_upstream_row(trigger_rule::none_failed_min_one_success); }
TEST_CASE("TriggerRule.NoneSkipped") { check_two_upstream_row(trigger_rule::none_skipped); }
TEST_CASE("TriggerRule.Always") { check_two_upstream_row(trigger_rule::always); }

// "if not ti.task.upstream_task_ids: yield self._passing_status(...)": before any rule is looked at.
TEST_CASE("TriggerRule.NoUpstreamAlwaysRuns") {
  for (trigger_rule rule : all_rules) {
    INFO("rule=" << std::string(dag::to_string(rule)) << " upstream={}");
    CHECK(name(dag::evaluate(rule, dag::upstream_counts{})) == name(RUN));
  }
}

TEST_CASE("TriggerRule.ThreeUpstreams") {
  struct case_row {
    states_t upstream;
    trigger_rule rule;
    trigger_decision expected;
  };
  // clang-format off
  const std::vector<case_row> table{
    // Two successes and one still running.
    {{S, S, R}, trigger_rule::all_success,                 WAIT},
    {{S, S, R}, trigger_rule::one_success,                 RUN},
    {{S, S, R}, trigger_rule::all_done,                    WAIT},
    {{S, S, R}, trigger_rule::none_failed_min_one_success, WAIT},
    {{S, S, R}, trigger_rule::all_failed,                  SKIP},
    // Two skipped and one running: "skipped == upstream" is 2 == 3, so not skipped yet.
    {{K, K, R}, trigger_rule::none_failed_min_one_success, WAIT},
    {{K, K, R}, trigger_rule::none_failed,                 WAIT},
    {{K, K, R}, trigger_rule::one_success,                 WAIT},
    {{K, K, R}, trigger_rule::all_skipped,                 WAIT},
    {{K, K, R}, trigger_rule::none_skipped,                SKIP},
    {{K, K, R}, trigger_rule::one_failed,                  WAIT},
    // One success among skips.
    {{S, K, K}, trigger_rule::none_failed_min_one_success, RUN},
    {{S, K, K}, trigger_rule::none_failed,                 RUN},
    {{S, K, K}, trigger_rule::all_success,                 SKIP},
    {{S, K, K}, trigger_rule::one_success,                 RUN},
    {{S, K, K}, trigger_rule::all_skipped,                 SKIP},
    {{S, K, K}, trigger_rule::one_done,                    RUN},
    // A failure while another upstream still runs: decided without waiting.
    {{F, S, R}, trigger_rule::one_failed,                  RUN},
    {{F, S, R}, trigger_rule::all_success,                 UPF},
    {{F, S, R}, trigger_rule::one_success,                 RUN},
    {{F, S, R}, trigger_rule::all_failed,                  SKIP},
    {{F, S, R}, trigger_rule::none_failed,                 UPF},
    {{F, S, R}, trigger_rule::all_done,                    WAIT},
    {{F, R, R}, trigger_rule::all_failed,                  WAIT},
    {{F, R, R}, trigger_rule::one_success,                 WAIT},
    // Everything upstream_failed.
    {{U, U, U}, trigger_rule::all_failed,                  RUN},
    {{U, U, U}, trigger_rule::one_failed,                  RUN},
    {{U, U, U}, trigger_rule::one_done,                    SKIP},
    {{U, U, U}, trigger_rule::one_success,                 UPF},
    {{U, U, U}, trigger_rule::none_skipped,                RUN},
    {{U, U, U}, trigger_rule::all_done,                    RUN},
    // Everything skipped.
    {{K, K, K}, trigger_rule::one_success,                 SKIP},
    {{K, K, K}, trigger_rule::none_failed_min_one_success, SKIP},
    {{K, K, K}, trigger_rule::none_failed,                 RUN},
    {{K, K, K}, trigger_rule::all_skipped,                 RUN},
    {{K, K, K}, trigger_rule::all_done,                    RUN},
    {{K, K, K}, trigger_rule::one_failed,                  SKIP},
    {{K, K, K}, trigger_rule::one_done,                    SKIP},
    {{K, K, K}, trigger_rule::all_success,                 SKIP},
    // A failure among skips: one_success becomes upstream_failed, not skipped ("done == skipped" is 3 == 2).
    {{F, K, K}, trigger_rule::one_success,                 UPF},
    {{F, K, K}, trigger_rule::all_failed,                  SKIP},
    {{F, K, K}, trigger_rule::none_skipped,                SKIP},
    {{F, K, K}, trigger_rule::one_done,                    RUN},
    {{F, K, K}, trigger_rule::none_failed_min_one_success, UPF},
    // Mixed with one running.
    {{U, K, R}, trigger_rule::one_success,                 WAIT},
    {{U, K, R}, trigger_rule::all_success,                 UPF},
    {{U, K, R}, trigger_rule::one_done,                    WAIT},
    {{U, K, R}, trigger_rule::all_skipped,                 SKIP},
    {{U, K, R}, trigger_rule::one_failed,                  RUN},
    {{R, R, R}, trigger_rule::always,                      RUN},
  };
  // clang-format on
  for (const case_row& row : table) {
    INFO("rule=" << std::string(dag::to_string(row.rule)) << " upstream=" << describe(row.upstream));
    CHECK(name(dag::evaluate(row.rule, counts_of(row.upstream))) == name(row.expected));
  }
}

// Airflow counts only finished upstream task instances ("ensure_finished_tis"); every other state
// (none, scheduled, queued, running, up_for_retry) is simply not done, like `running` in the table.
TEST_CASE("TriggerRule.UnfinishedStatesCountAsNotDone") {
  constexpr std::size_t column_rs = 1;  // {R, S}
  constexpr std::size_t column_rf = 2;  // {R, F}
  constexpr std::size_t column_rk = 4;  // {R, K}
  static_assert(two_upstream_mixes[column_rs][1] == S && two_upstream_mixes[column_rf][1] == F &&
                two_upstream_mixes[column_rk][1] == K);
  for (task_state unfinished : {task_state::none, task_state::scheduled, task_state::queued, task_state::running,
                                task_state::up_for_retry}) {
    for (const rule_row& row : two_upstream_table) {
      for (std::size_t column : {column_rs, column_rf, column_rk}) {
        const states_t states{unfinished, two_upstream_mixes[column][1]};
        INFO("rule=" << std::string(dag::to_string(row.rule)) << " upstream=" << describe(states));
        CHECK(name(dag::evaluate(row.rule, counts_of(states))) == name(row.expected[column]));
      }
    }
  }
}

TEST_CASE("TriggerRule.CountsFromAdd") {
  const dag::upstream_counts c = counts_of({R, S, S, F, U, K, task_state::up_for_retry});
  CHECK(c.total == 7);
  CHECK(c.success == 2);
  CHECK(c.failed == 1);
  CHECK(c.upstream_failed == 1);
  CHECK(c.skipped == 1);
  CHECK(c.removed == 0);
  CHECK(c.done() == 5);
}

TEST_CASE("TriggerRule.NameRoundTrip") {
  // Airflow's TriggerRule values (airflow/utils/trigger_rule.py), in the enum's order here.
  constexpr std::array<std::string_view, 11> airflow_names{
      "all_success", "all_failed", "all_done",    "all_skipped",                 "one_success", "one_failed",
      "one_done",    "none_failed", "none_failed_min_one_success", "none_skipped", "always"};
  for (std::size_t i = 0; i < all_rules.size(); ++i) {
    const trigger_rule rule = all_rules[i];
    INFO("rule index " << i << " expected name " << std::string(airflow_names[i]));
    CHECK(std::string(dag::to_string(rule)) == std::string(airflow_names[i]));
    CHECK(dag::parse_trigger_rule(airflow_names[i]) == std::optional<trigger_rule>(rule));
    CHECK(dag::parse_trigger_rule(dag::to_string(rule)) == std::optional<trigger_rule>(rule));
  }
  static_assert(dag::parse_trigger_rule("none_skipped") == trigger_rule::none_skipped);
  static_assert(dag::to_string(trigger_rule::one_done) == "one_done");
}

TEST_CASE("TriggerRule.UnknownName") {
  // Airflow validates with `trigger_rule in TriggerRule.all_triggers()`: exact, case-sensitive values.
  for (std::string_view name : {"", "bogus", "ALL_SUCCESS", "All_Success", "all_success ", " all_success",
                                "all-success", "allsuccess", "one_success\n", "none_failed_min_one"}) {
    INFO("name='" << std::string(name) << "'");
    CHECK(dag::parse_trigger_rule(name) == std::nullopt);
  }
}

TEST_CASE("TriggerRule.DecisionNames") {
  CHECK(name(WAIT) == "wait");
  CHECK(name(RUN) == "run");
  CHECK(name(SKIP) == "skip");
  CHECK(name(UPF) == "upstream_failed");
}

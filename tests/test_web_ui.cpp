// The web UI through the HTTP face's handler (no socket): what each page shows and refuses, that no
// page carries inline code, the live endpoint, clear and mark confirmations (dry runs), sign-in
// and sign-out, 404 pages, logs of any size, and the time a 100 × 100 grid takes to render.
// The same pages in a real browser: tests/browser/ui.test.mjs (ctest Browser.UiFlows).
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <regex>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include <dag/core/time.hpp>
#include <dag/http/face.hpp>
#include <dag/load/check.hpp>
#include <dag/metrics/registry.hpp>
#include <dag/model/operations.hpp>
#include <dag/operators/builtin.hpp>
#include <dag/store/store.hpp>

using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

struct fixed_clock final : dag::clock {
  dag::time_point at = dag::parse_time("2024-06-01T12:00:00Z");
  dag::time_point now() const override { return at; }
};

// A face over a fresh SQLite file with one DAG of `tasks` tasks (a chain of fans), asked directly.
struct ui_face {
  std::filesystem::path dir;
  fixed_clock clock;
  dag::metrics_registry metrics;
  std::unique_ptr<dag::store> db;
  std::unique_ptr<dag::http_face> face;
  dag::definition dag{"wide"};
  std::string cookie;

  explicit ui_face(int tasks = 3, std::optional<std::string> token = std::nullopt)
      : ui_face(
            [tasks](dag::definition& d) {
              std::vector<dag::task_handle> made;
              for (int i = 0; i < tasks; ++i) {
                made.push_back(d.bash("task_" + std::to_string(i), "echo " + std::to_string(i)));
                if (i > 0) made[static_cast<std::size_t>((i - 1) / 3)] >> made.back();
              }
            },
            std::move(token)) {}
  // A face whose DAG `wide` has the tasks (and groups) `build` adds.
  explicit ui_face(const std::function<void(dag::definition&)>& build, std::optional<std::string> token = std::nullopt) {
    static int n = 0;
    dir = std::filesystem::temp_directory_path() / ("dagrun-ui-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    std::filesystem::create_directories(dir);
    const std::string url = "sqlite:" + (dir / "dagrun.db").string();
    db = dag::open_store(url);
    face = std::make_unique<dag::http_face>(dag::http_face_options{url, "", token, 30s, {}, 100}, metrics, clock);
    dag.schedule("@daily").start_date("2024-01-01").tags({"wide", "<b>tag</b>"}).description("a <i>wide</i> DAG");
    build(dag);
    REQUIRE(dag::check(dag, dag::builtin_operators()).empty());
    face->set_dags({dag});
  }
  ~ui_face() {
    face.reset();
    db.reset();
    std::filesystem::remove_all(dir);
  }
  dag::http_response call(const std::string& method, const std::string& target, const std::string& body = "",
                          const std::string& accept = "text/html") {
    dag::http_request r{method, target, {{"host", "127.0.0.1:8080"}, {"accept", accept}}, body, "127.0.0.1"};
    if (!cookie.empty()) r.headers["cookie"] = cookie;
    if (method == "POST") r.headers["content-type"] = "application/x-www-form-urlencoded";
    return face->handle(r);
  }
  dag::http_response get(const std::string& target) { return call("GET", target); }
  // The CSRF token the pages' forms carry, read from the page `from` as a browser would.
  std::string csrf(const std::string& from = "/") {
    const std::string body = get(from).body;
    const std::string marker = "name=\"csrf\" value=\"";
    const auto at = body.find(marker);
    REQUIRE(at != std::string::npos);
    return body.substr(at + marker.size(), body.find('"', at + marker.size()) - at - marker.size());
  }
  // Posts a form as its page would: with the CSRF token.
  dag::http_response post(const std::string& target, const std::string& fields = "") {
    return call("POST", target, fields + (fields.empty() ? "" : "&") + "csrf=" + csrf());
  }
  // A run at `date` whose task instances all end in `state` (failed ones with a log), but those
  // `states` names, which end in the state it gives them.
  std::string finished_run(const std::string& date, dag::task_state state, const std::map<std::string, dag::task_state>& states = {}) {
    const auto run = dag::trigger_run(*db, dag, dag::parse_time(date));
    REQUIRE(run);
    dag::change_set c;
    const auto start = dag::timestamp(run->logical_date) + 1s;
    for (auto ti : db->task_instances("wide", run->run_id)) {
      const auto given = states.find(ti.task_id);
      ti.state = given == states.end() ? state : given->second;
      ti.try_number = 1;
      ti.start_date = start;
      ti.end_date = start + 5s;
      ti.log_path = (dir / (ti.task_id + ".log")).string();
      std::ofstream(ti.log_path) << "log of " << ti.task_id << "\n";
      c.task_instances.push_back({dag::task_state::none, 0, ti});
      c.tries.push_back(dag::try_record_of(ti));
    }
    const auto run_state = state == dag::task_state::success ? dag::run_state::success : dag::run_state::failed;
    c.runs.push_back({"wide", run->run_id, dag::run_state::queued, run_state, start, start + 15s});
    db->apply(c);
    return run->run_id;
  }
};

std::string header(const dag::http_response& r, const std::string& name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return v;
  return {};
}

// Inline code the Content-Security-Policy would refuse: scripts without src, style attributes or
// elements, event-handler attributes.
void check_no_inline_code(const std::string& html, const std::string& where) {
  INFO(where);
  CHECK_FALSE(std::regex_search(html, std::regex("<script(?![^>]*\\ssrc=)[^>]*>")));
  CHECK_FALSE(std::regex_search(html, std::regex("<style[\\s>]|\\sstyle=")));
  CHECK_FALSE(std::regex_search(html, std::regex("<[^>]*\\son[a-z]+=")));
}

}  // namespace

TEST_CASE("Ui.EveryPageIsEscapedAndCarriesNoInlineCode" * doctest::timeout(60)) {
  ui_face f;
  const std::string ok = f.finished_run("2024-05-01T00:00:00Z", dag::task_state::success);
  const std::string failed = f.finished_run("2024-05-02T00:00:00Z", dag::task_state::failed);
  CHECK(failed == "manual__2024-05-02T00:00:00+00:00");
  CHECK_FALSE(ok.empty());
  const std::string run = "/dags/wide/runs/manual__2024-05-02T00%3A00%3A00%2B00%3A00";
  for (const std::string& target :
       {std::string("/"), std::string("/?q=wi&tag=wide&show=failed"), std::string("/dags/wide"), std::string("/dags/wide?tab=graph"),
        std::string("/dags/wide?tab=gantt"), std::string("/dags/wide?tab=duration"), std::string("/dags/wide?tab=landing"), std::string("/dags/wide?tab=calendar"),
        std::string("/dags/wide?tab=code"), std::string("/dags/wide?tab=details"), std::string("/dags/wide/trigger"), run,
        run + "/tasks/task_1", run + "/tasks/task_1/logs/1", run + "/tasks/task_1/clear?downstream=1", run + "/mark_success"}) {
    const auto r = f.get(target);
    INFO(target);
    CHECK(r.status == 200);
    CHECK(r.content_type == "text/html; charset=utf-8");
    check_no_inline_code(r.body, target);
    CHECK(r.body.find("<b>tag</b>") == std::string::npos);
    CHECK(r.body.find("<i>wide</i>") == std::string::npos);
    CHECK(r.body.find("<script src=\"/static/app.js\" defer></script>") != std::string::npos);
  }
  CHECK(f.get("/").body.find("&lt;b&gt;tag&lt;/b&gt;") != std::string::npos);
  // The static resources, embedded.
  auto css = f.get("/static/app.css");
  CHECK(css.content_type == "text/css; charset=utf-8");
  CHECK(css.body.find("prefers-color-scheme:dark") != std::string::npos);
  CHECK(f.get("/static/app.js").content_type == "text/javascript; charset=utf-8");
  CHECK(f.get("/favicon.ico").content_type == "image/svg+xml");
}

TEST_CASE("Ui.GraphHasABoxAndAnArrowPerTaskAndEdgeWithWholeLabels" * doctest::timeout(30)) {
  ui_face f(7);
  f.finished_run("2024-05-01T00:00:00Z", dag::task_state::success);
  const auto body = f.get("/dags/wide?tab=graph").body;
  const auto count = [&](const std::string& what) {
    std::size_t n = 0;
    for (auto at = body.find(what); at != std::string::npos; at = body.find(what, at + 1)) ++n;
    return n;
  };
  CHECK(count("<g class=\"node st-success\"") == 7);
  CHECK(count("marker-end=\"url(#arrow)\"") == 6);
  CHECK(body.find(">task_6</text>") != std::string::npos);
  CHECK(body.find("/dags/wide/runs/manual__2024-05-01T00%3A00%3A00%2B00%3A00/tasks/task_6") != std::string::npos);
}

// `start`, then group `etl` (extract >> transform >> load >> inner.check, and `side` on its own),
// then `finish` after the whole group.
void grouped_dag(dag::definition& d) {
  auto start = d.bash("start", "true");
  auto etl = d.group("etl");
  auto extract = etl.bash("extract", "true");
  auto transform = etl.bash("transform", "true");
  auto load = etl.bash("load", "true");
  etl.bash("side", "true");
  auto check = etl.group("inner").bash("check", "true");
  extract >> transform >> load >> check;
  start >> etl;
  etl >> d.bash("finish", "true");
}

std::size_t occurrences(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// The href of the first link whose text is `label`, decoded from HTML as a browser would.
std::string link_to(const std::string& html, const std::string& label) {
  const auto at = html.find(">" + label + "</a>");
  REQUIRE(at != std::string::npos);
  const auto href = html.rfind("href=\"", at);
  std::string out = html.substr(href + 6, html.find('"', href + 6) - href - 6);
  for (std::size_t amp = out.find("&amp;"); amp != std::string::npos; amp = out.find("&amp;", amp + 1)) out.replace(amp, 5, "&");
  return out;
}

TEST_CASE("Ui.GraphShowsAGroupCollapsedAsOneBoxWithItsEdgesOnceAndOpensIt" * doctest::timeout(30)) {
  ui_face f(grouped_dag);
  f.finished_run("2024-05-01T00:00:00Z", dag::task_state::success, {{"etl.transform", dag::task_state::failed}});
  // Collapsed by default: one box for the group's five tasks; start's two edges into it and its
  // two edges out to finish are one each.
  const auto collapsed = f.get("/dags/wide?tab=graph").body;
  CHECK(occurrences(collapsed, "<g class=\"node") == 3);
  CHECK(occurrences(collapsed, "<g class=\"node group st-failed\" data-s=\"manual__2024-05-01T00:00:00+00:00|etl\" data-group=\"etl\"") == 1);
  CHECK(occurrences(collapsed, "marker-end=\"url(#arrow)\"") == 2);
  CHECK(collapsed.find("data-task=\"etl.extract\"") == std::string::npos);
  check_no_inline_code(collapsed, "graph");
  // Its box opens it: the group's tasks get boxes, the inner group stays one box, edges go to the tasks.
  const std::string opened_href = link_to(collapsed, "▸ etl");
  CHECK(opened_href == "/dags/wide?tab=graph&open=etl");
  CHECK(collapsed.find("<a href=\"/dags/wide?tab=graph&amp;open=etl\"><g class=\"node group") != std::string::npos);
  const auto opened = f.get(opened_href).body;
  CHECK(occurrences(opened, "<g class=\"node") == 7);  // start, extract, transform, load, side, inner, finish
  CHECK(occurrences(opened, "marker-end=\"url(#arrow)\"") == 7);
  CHECK(opened.find("data-group=\"etl\"") == std::string::npos);
  CHECK(opened.find("<g class=\"node st-failed\" data-s=\"manual__2024-05-01T00:00:00+00:00|etl.transform\" data-task=\"etl.transform\"") !=
        std::string::npos);
  CHECK(opened.find("data-group=\"etl.inner\"") != std::string::npos);
  CHECK(link_to(opened, "▾ etl") == "/dags/wide?tab=graph");  // the bar closes it again
  // Everything open: every task is a box and every edge is there.
  const auto all = f.get("/dags/wide?tab=graph&open=*").body;
  CHECK(occurrences(all, "<g class=\"node st-") == 7);
  CHECK(occurrences(all, "marker-end=\"url(#arrow)\"") == 7);
  CHECK(all.find("data-task=\"etl.inner.check\"") != std::string::npos);
}

TEST_CASE("Ui.GraphDrawsACycleThatCollapsingMakes" * doctest::timeout(30)) {
  // `between` runs after g.a and before g.b: collapsed, g -> between -> g.
  ui_face f([](dag::definition& d) {
    auto g = d.group("g");
    auto a = g.bash("a", "true");
    auto b = g.bash("b", "true");
    a >> d.bash("between", "true") >> b;
  });
  const auto body = f.get("/dags/wide?tab=graph").body;
  CHECK(occurrences(body, "<g class=\"node") == 2);
  CHECK(occurrences(body, "marker-end=\"url(#arrow)\"") == 2);
}

TEST_CASE("Ui.GridGroupRowShowsItsTasksMostRelevantStateAndOpens" * doctest::timeout(30)) {
  ui_face f(grouped_dag);
  using ts = dag::task_state;
  // Airflow's order: failed before anything; up_for_retry before running; success before skipped.
  const std::string failed = f.finished_run("2024-05-01T00:00:00Z", ts::success,
                                            {{"etl.transform", ts::failed}, {"etl.load", ts::upstream_failed},
                                             {"etl.inner.check", ts::upstream_failed}, {"etl.side", ts::running}});
  const std::string skipped = f.finished_run("2024-05-02T00:00:00Z", ts::success, {{"etl.side", ts::skipped}});
  const std::string retry = f.finished_run("2024-05-03T00:00:00Z", ts::success, {{"etl.side", ts::up_for_retry}, {"etl.extract", ts::running}});
  const auto grid = f.get("/dags/wide").body;
  check_no_inline_code(grid, "grid");
  const auto group_cell = [&](const std::string& body, const std::string& run, const std::string& group) {
    const std::string key = "data-s=\"" + run + "|" + group + "\"";
    const auto at = body.find(key);
    if (at == std::string::npos) return std::string("absent");
    const auto cls = body.rfind("class=\"sq grp st-", at);
    return body.substr(cls + 17, body.find_first_of(" \"", cls + 17) - cls - 17);
  };
  CHECK(group_cell(grid, failed, "etl") == "failed");
  CHECK(group_cell(grid, skipped, "etl") == "success");
  CHECK(group_cell(grid, retry, "etl") == "up_for_retry");
  // Collapsed: the group's row only.
  CHECK(grid.find("<tr class=\"group\" data-group=\"etl\">") != std::string::npos);
  CHECK(grid.find("title=\"etl.extract\"") == std::string::npos);
  CHECK(group_cell(grid, failed, "etl.inner") == "absent");
  CHECK(occurrences(grid, "<a class=\"sq st-") == 3 * 2);  // start and finish
  // Opened: its tasks indented under it, by their own names; the inner group a row of its own.
  const std::string opened_href = link_to(grid, "▸ etl");
  CHECK(opened_href == "/dags/wide?tab=grid&open=etl");
  const auto opened = f.get(opened_href).body;
  CHECK(opened.find("<th class=\"task d1\"><a href=\"/dags/wide?tab=duration\" title=\"etl.extract\">extract</a></th>") != std::string::npos);
  CHECK(group_cell(opened, failed, "etl.inner") == "upstream_failed");
  CHECK(opened.find("title=\"etl.inner.check\"") == std::string::npos);
  CHECK(occurrences(opened, "<a class=\"sq st-") == 3 * 6);
  const auto both = f.get(link_to(opened, "▸ inner")).body;
  CHECK(both.find("<th class=\"task d2\"><a href=\"/dags/wide?tab=duration\" title=\"etl.inner.check\">check</a></th>") != std::string::npos);
  CHECK(occurrences(both, "<a class=\"sq st-") == 3 * 7);
  // Rows come in dependency order, each group where its first task comes.
  CHECK(both.find("title=\"start\"") < both.find("data-group=\"etl\""));
  CHECK(both.find("title=\"etl.load\"") < both.find("data-group=\"etl.inner\""));
  CHECK(both.find("title=\"etl.inner.check\"") < both.find("title=\"finish\""));
  // A group's square opens its details: its state and its tasks' states counted.
  std::string encoded = failed;
  encoded.replace(encoded.find('+'), 1, "%2B");
  const auto panel = f.get("/dags/wide?tab=grid&run=" + encoded + "&task=etl").body;
  CHECK(panel.find("<h2>Group etl</h2>") != std::string::npos);
  CHECK(panel.find("<span class=\"count st-upstream_failed\">2</span> upstream_failed") != std::string::npos);
  // The live endpoint gives the groups' states too.
  const auto live = json::parse(f.call("GET", "/ui/live.json?dag=wide&limit=25", "", "application/json").body);
  CHECK(live["states"][failed + "|etl"] == "failed");
  CHECK(live["states"][failed + "|etl.inner"] == "upstream_failed");
  CHECK(live["states"][retry + "|etl"] == "up_for_retry");
}

TEST_CASE("Ui.LandingTimesChartHasALinePerTaskFromTheDataIntervalsEnd" * doctest::timeout(30)) {
  ui_face f(3);
  const std::string first = f.finished_run("2024-05-01T00:00:00Z", dag::task_state::success);
  f.finished_run("2024-05-02T00:00:00Z", dag::task_state::success);
  const auto r = f.get("/dags/wide?tab=landing");
  CHECK(r.status == 200);
  check_no_inline_code(r.body, "landing");
  CHECK(r.body.find("<h2>Landing times</h2>") != std::string::npos);
  CHECK(r.body.find("aria-current=\"page\" data-tab=\"landing\"") != std::string::npos);
  CHECK(occurrences(r.body, "<polyline class=\"series") == 3);
  // Every task ended 6 s after its run's logical date (finished_run); the landing time counts
  // from the end of the run's data interval.
  const auto run = f.db->find_run("wide", first);
  REQUIRE(run);
  const double landing = 6 - std::chrono::duration<double>(run->interval.end - run->logical_date).count();
  REQUIRE(landing >= 0);
  REQUIRE(landing < 60);
  char latest[32];
  std::snprintf(latest, sizeof latest, "%.1fs", landing);
  CHECK(r.body.find("data-task=\"task_2\"") != std::string::npos);
  CHECK(r.body.find("<title>task_2 · latest " + std::string(latest) + "</title>") != std::string::npos);
}

TEST_CASE("Ui.LiveJsonGivesStatesAndSaysWhenNothingRuns" * doctest::timeout(30)) {
  ui_face f;
  const std::string done = f.finished_run("2024-05-01T00:00:00Z", dag::task_state::success);
  auto r = f.call("GET", "/ui/live.json?dag=wide&limit=25", "", "application/json");
  CHECK(r.status == 200);
  auto live = json::parse(r.body);
  CHECK(live["busy"] == false);
  CHECK(live["states"][done] == "success");
  CHECK(live["states"][done + "|task_2"] == "success");
  // A pages that shows it idle names the same signature, so it does not reload.
  CHECK(f.get("/dags/wide").body.find("data-busy=\"0\" data-sig=\"" + done + "=success;\"") != std::string::npos);
  REQUIRE(dag::trigger_run(*f.db, f.dag, dag::parse_time("2024-05-03T00:00:00Z")));
  live = json::parse(f.call("GET", "/ui/live.json?dag=wide&limit=25", "", "application/json").body);
  CHECK(live["busy"] == true);
  CHECK(live["states"]["manual__2024-05-03T00:00:00+00:00|task_0"] == "none");
  // The list: every DAG's newest run, keyed by DAG too.
  live = json::parse(f.call("GET", "/ui/live.json", "", "application/json").body);
  CHECK(live["states"]["wide/manual__2024-05-03T00:00:00+00:00"] == "queued");
  CHECK(f.call("GET", "/ui/live.json?dag=nope", "", "application/json").status == 404);
}

TEST_CASE("Ui.ClearAndMarkListWhatWillChangeAndChangeOnlyWhenConfirmed" * doctest::timeout(30)) {
  ui_face f(4);
  const std::string run_id = f.finished_run("2024-05-02T00:00:00Z", dag::task_state::failed);
  const std::string base = "/dags/wide/runs/manual__2024-05-02T00%3A00%3A00%2B00%3A00";
  // task_1's downstream: none; task_0's: every other task.
  auto r = f.get(base + "/tasks/task_0/clear?downstream=1");
  CHECK(r.status == 200);
  for (const char* t : {"task_0", "task_1", "task_2", "task_3"}) CHECK(r.body.find(std::string("<li><code>") + t + "</code></li>") != std::string::npos);
  CHECK(r.body.find("<input type=\"hidden\" name=\"downstream\" value=\"1\">") != std::string::npos);
  CHECK(f.db->task_instances("wide", run_id)[0].state == dag::task_state::failed);  // a dry run
  r = f.post(base + "/tasks/task_1/clear", "downstream=1&only_failed=0");
  CHECK(r.status == 303);
  CHECK(header(r, "Location") == base + "/tasks/task_1");
  auto tis = f.db->task_instances("wide", run_id);
  CHECK(tis[0].state == dag::task_state::failed);
  CHECK(tis[1].state == dag::task_state::none);
  CHECK(f.db->find_run("wide", run_id)->state == dag::run_state::queued);
  // Mark success: the confirmation names the task; the post sets it.
  r = f.get(base + "/tasks/task_0/mark_success");
  CHECK(r.body.find("<li><code>task_0</code></li>") != std::string::npos);
  CHECK(r.body.find("Confirm: Mark success") != std::string::npos);
  CHECK(f.post(base + "/tasks/task_0/mark_success").status == 303);
  CHECK(f.db->task_instances("wide", run_id)[0].state == dag::task_state::success);
  // Nothing to change says so.
  CHECK(f.get(base + "/tasks/task_0/mark_success").body.find("Nothing would change") != std::string::npos);
  CHECK(f.get(base + "/tasks/nope").status == 404);
  CHECK(f.post(base + "/tasks/task_0").status == 405);  // only clear and mark change anything
  CHECK(f.get("/dags/wide/runs/nope").status == 404);
}

TEST_CASE("Ui.TriggerFormTakesConfAndRefusesABadOneWithItsReason" * doctest::timeout(30)) {
  ui_face f;
  auto r = f.post("/dags/wide/trigger", "conf=%7B%22a%22%3A");
  CHECK(r.status == 400);
  CHECK(r.body.find("id=\"problem\">conf: ") != std::string::npos);
  CHECK(r.body.find("{&quot;a&quot;:") != std::string::npos);  // what was typed, kept
  r = f.post("/dags/wide/trigger", "conf=%7B%22a%22%3A1%7D&logical_date=2024-05-05T00%3A00%3A00Z");
  CHECK(r.status == 303);
  const auto run = f.db->find_run("wide", "manual__2024-05-05T00:00:00+00:00");
  REQUIRE(run);
  CHECK(run->conf == "{\"a\":1}");
  CHECK(f.post("/dags/wide/trigger", "logical_date=2024-05-05T00%3A00%3A00Z").status == 409);
  CHECK(f.post("/dags/wide/trigger", "logical_date=someday").status == 400);
}

TEST_CASE("Ui.TriggerFormHasAFieldPerParamAndRefusesABadValueWithTheParamsMessage" * doctest::timeout(30)) {
  ui_face f;
  f.dag.param("count", "5").param_schema("count", R"({"type": "integer", "minimum": 1, "maximum": 10, "description": "how <b>many</b>"})");
  f.dag.param("region", "eu").param_schema("region", R"({"enum": ["eu", "us"]})");
  f.dag.param("flag", "false").param_schema("flag", R"({"type": "boolean"})");
  f.dag.param("tags", R"(["a"])").param_schema("tags", R"({"type": "array"})");
  f.dag.param("who", "nobody");
  REQUIRE(dag::check(f.dag, dag::builtin_operators()).empty());
  f.face->set_dags({f.dag});
  auto r = f.get("/dags/wide/trigger");
  CHECK(r.status == 200);
  check_no_inline_code(r.body, "trigger form");
  CHECK(r.body.find(R"(<input type="text" inputmode="decimal" name="param.count" value="5" step="1" min="1" max="10">)") != std::string::npos);
  CHECK(r.body.find("how &lt;b&gt;many&lt;/b&gt;") != std::string::npos);
  CHECK(r.body.find(R"(<option value="&quot;eu&quot;" selected>eu</option><option value="&quot;us&quot;">us</option>)") != std::string::npos);
  CHECK(r.body.find(R"(<input type="checkbox" name="param.flag" value="true">)") != std::string::npos);
  CHECK(r.body.find(R"(<textarea name="param.tags" rows="3" spellcheck="false">[&quot;a&quot;]</textarea>)") != std::string::npos);
  CHECK(r.body.find(R"(name="param.who" value="nobody")") != std::string::npos);

  // A bad value is refused with the param's own message, and the form keeps what was typed.
  const std::string rest = "&param.region=%22eu%22&param.flag=false&param.tags=%5B%5D&param.who=me&logical_date=2024-05-05T00%3A00%3A00Z";
  r = f.post("/dags/wide/trigger", "param.count=abc" + rest);
  CHECK(r.status == 400);
  CHECK(r.body.find("id=\"problem\">param &#39;count&#39;: &quot;abc&quot; is not of type integer</p>") != std::string::npos);
  CHECK(r.body.find(R"(name="param.count" value="abc")") != std::string::npos);
  CHECK(r.body.find(R"(name="param.who" value="me")") != std::string::npos);
  r = f.post("/dags/wide/trigger", "param.count=11" + rest);
  CHECK(r.status == 400);
  CHECK(r.body.find("param &#39;count&#39;: 11 is greater than the maximum of 10") != std::string::npos);
  CHECK_FALSE(f.db->find_run("wide", "manual__2024-05-05T00:00:00+00:00"));

  // Good values reach the run's conf typed; more conf joins them; a key given there wins.
  r = f.post("/dags/wide/trigger", "param.count=7&param.region=%22us%22&param.flag=true&param.flag=false&param.tags=%5B%22x%22%5D"
                                   "&param.who=me&conf=%7B%22extra%22%3A1%2C%22who%22%3A%22json%22%7D&logical_date=2024-05-05T00%3A00%3A00Z");
  CHECK(r.status == 303);
  const auto run = f.db->find_run("wide", "manual__2024-05-05T00:00:00+00:00");
  REQUIRE(run);
  CHECK(json::parse(run->conf) == json{{"count", 7}, {"region", "us"}, {"flag", true}, {"tags", {"x"}}, {"who", "json"}, {"extra", 1}});
  // A value given only in the JSON is checked too.
  r = f.post("/dags/wide/trigger", "conf=%7B%22count%22%3A0%7D&logical_date=2024-05-06T00%3A00%3A00Z");
  CHECK(r.status == 400);
  CHECK(r.body.find("param &#39;count&#39;: 0 is less than the minimum of 1") != std::string::npos);
}

TEST_CASE("Ui.EveryFormThatChangesSomethingCarriesTheCsrfTokenAndOneWithoutIsRefused" * doctest::timeout(30)) {
  ui_face f(3, std::string("t0ken"));
  auto r = f.call("POST", "/login", "token=t0ken");  // the sign-in form carries the API token instead
  const std::string set = header(r, "Set-Cookie");
  f.cookie = set.substr(0, set.find(';'));
  f.finished_run("2024-05-02T00:00:00Z", dag::task_state::failed);
  const std::string run = "/dags/wide/runs/manual__2024-05-02T00%3A00%3A00%2B00%3A00";
  const std::string token = f.csrf();
  CHECK(token.size() == 32);
  for (const std::string& target : {std::string("/"), std::string("/dags/wide"), std::string("/dags/wide/trigger"), std::string("/dags/wide/delete"),
                                    run + "/tasks/task_1/clear", run + "/mark_success"}) {
    INFO(target);
    const std::string body = f.get(target).body;
    std::size_t forms = 0, tokens = 0;
    for (auto at = body.find("<form method=\"post\""); at != std::string::npos; at = body.find("<form method=\"post\"", at + 1)) {
      ++forms;
      const auto end = body.find("</form>", at);
      if (body.substr(at, end - at).find("name=\"csrf\" value=\"" + token + "\"") != std::string::npos) ++tokens;
    }
    CHECK(forms > 0);
    CHECK(tokens == forms);
  }
  // Another site can make a browser post, but not with the token.
  for (const std::string& fields : {std::string("logical_date=2024-05-05T00%3A00%3A00Z"), std::string("logical_date=2024-05-05T00%3A00%3A00Z&csrf=guess")}) {
    r = f.call("POST", "/dags/wide/trigger", fields);
    CHECK(r.status == 403);
    CHECK(r.body.find("Reload the page and try again") != std::string::npos);
  }
  CHECK_FALSE(f.db->find_run("wide", "manual__2024-05-05T00:00:00+00:00"));
  CHECK(f.call("POST", "/dags/wide/pause").status == 403);
  CHECK(f.call("POST", "/logout").status == 403);
  CHECK(f.post("/dags/wide/trigger", "logical_date=2024-05-05T00%3A00%3A00Z").status == 303);
}

TEST_CASE("Ui.DeletingADagsHistoryListsWhatGoesAndWaitsForRunningRuns" * doctest::timeout(30)) {
  ui_face f;
  f.finished_run("2024-05-01T00:00:00Z", dag::task_state::success);
  f.finished_run("2024-05-02T00:00:00Z", dag::task_state::failed);
  CHECK(f.get("/").body.find("<a class=\"button\" href=\"/dags/wide/delete\"") != std::string::npos);
  auto r = f.get("/dags/wide/delete");
  CHECK(r.status == 200);
  check_no_inline_code(r.body, "delete");
  CHECK(r.body.find("<p id=\"would-delete\">2 runs of <code>wide</code> will be deleted") != std::string::npos);
  dag::run_filter all;
  all.dag_id = "wide";
  CHECK(f.db->runs(all).size() == 2);  // asking changes nothing
  // A running run keeps the history until it ends.
  const auto running = dag::trigger_run(*f.db, f.dag, dag::parse_time("2024-05-03T00:00:00Z"));
  REQUIRE(running);
  dag::change_set started;
  started.runs.push_back({"wide", running->run_id, dag::run_state::queued, dag::run_state::running, std::nullopt, std::nullopt});
  f.db->apply(started);
  r = f.post("/dags/wide/delete");
  CHECK(r.status == 409);
  CHECK(r.body.find("has a running run") != std::string::npos);
  dag::change_set ended;
  ended.runs.push_back({"wide", running->run_id, dag::run_state::running, dag::run_state::failed, std::nullopt, std::nullopt});
  f.db->apply(ended);
  r = f.post("/dags/wide/delete");
  CHECK(r.status == 303);
  CHECK(header(r, "Location") == "/");
  CHECK(f.db->runs(all).empty());
  CHECK(f.get("/dags/wide").status == 200);  // the DAG stays, with no runs
}

TEST_CASE("Ui.ClearWithPastOrFutureListsTheTaskInEveryRunItReaches" * doctest::timeout(30)) {
  ui_face f;
  std::vector<std::string> runs;
  for (const char* date : {"2024-05-01T00:00:00Z", "2024-05-02T00:00:00Z", "2024-05-03T00:00:00Z"})
    runs.push_back(f.finished_run(date, dag::task_state::failed));
  const std::string base = "/dags/wide/runs/manual__2024-05-02T00%3A00%3A00%2B00%3A00/tasks/task_1";
  CHECK(f.get(base).body.find("<input type=\"checkbox\" name=\"past\" value=\"1\">") != std::string::npos);
  auto r = f.get(base + "/clear?past=1");
  CHECK(r.body.find("<li><code>task_1</code> <span class=\"dim run\">in " + runs[0] + "</span></li><li><code>task_1</code> <span class=\"dim run\">in " +
                    runs[1] + "</span></li></ul>") != std::string::npos);
  CHECK(r.body.find("<input type=\"hidden\" name=\"past\" value=\"1\">") != std::string::npos);
  r = f.get(base + "/clear?future=1");
  CHECK(r.body.find("in " + runs[0]) == std::string::npos);
  CHECK(r.body.find("in " + runs[2]) != std::string::npos);
  CHECK(f.post(base + "/clear", "future=1&only_failed=0").status == 303);
  const auto state_in = [&](const std::string& run_id) {
    for (const auto& ti : f.db->task_instances("wide", run_id))
      if (ti.task_id == "task_1") return ti.state;
    return dag::task_state::removed;
  };
  CHECK(state_in(runs[0]) == dag::task_state::failed);
  CHECK(state_in(runs[1]) == dag::task_state::none);
  CHECK(state_in(runs[2]) == dag::task_state::none);
}

TEST_CASE("Ui.SignInReturnsToTheAskedPageAndSignOutEndsTheSession" * doctest::timeout(30)) {
  ui_face f(3, std::string("t0ken"));
  auto r = f.get("/dags/wide?tab=code");
  CHECK(r.status == 303);
  CHECK(header(r, "Location") == "/login?next=%2Fdags%2Fwide%3Ftab%3Dcode");
  CHECK(f.get("/static/app.css").status == 200);  // the sign-in page needs its stylesheet
  CHECK(f.call("GET", "/ui/live.json", "", "application/json").status == 401);
  r = f.call("POST", "/login", "token=t0ken&next=%2Fdags%2Fwide%3Ftab%3Dcode");
  CHECK(r.status == 303);
  CHECK(header(r, "Location") == "/dags/wide?tab=code");
  const std::string set = header(r, "Set-Cookie");
  f.cookie = set.substr(0, set.find(';'));
  CHECK(f.get("/dags/wide?tab=code").status == 200);
  // Only this site's paths: another site's address sends the user home instead.
  for (const char* next : {"%2F%2Fevil.example", "https%3A%2F%2Fevil.example", "%2F%5Cevil.example"}) {
    r = f.call("POST", "/login", std::string("token=t0ken&next=") + next);
    CHECK(header(r, "Location") == "/");
  }
  r = f.post("/logout");
  CHECK(r.status == 303);
  CHECK(header(r, "Location") == "/login");
  CHECK(header(r, "Set-Cookie").find("Max-Age=0") != std::string::npos);
  CHECK(f.get("/").status == 303);  // the old cookie no longer signs in
}

TEST_CASE("Ui.UnknownPagesAre404PagesWithAWayBack" * doctest::timeout(30)) {
  ui_face f;
  auto r = f.get("/no/such/page");
  CHECK(r.status == 404);
  CHECK(r.content_type == "text/html; charset=utf-8");
  CHECK(r.body.find("<a class=\"button\" href=\"/\">") != std::string::npos);
  r = f.get("/dags/nope");
  CHECK(r.status == 404);
  CHECK(r.body.find("No DAG &#39;nope&#39; is loaded.") != std::string::npos);
  CHECK(f.get("/dags/wide?tab=nope").status == 404);
  // Clients that do not ask for HTML keep the API's JSON 404 (problem+json).
  r = f.call("GET", "/no/such/page", "", "application/json");
  CHECK(r.status == 404);
  CHECK(r.content_type == "application/problem+json");  // Airflow's error shape
}

TEST_CASE("Ui.LogsShowTheirStartAndEndAndTailFromAnOffset" * doctest::timeout(30)) {
  ui_face f;
  const std::string run_id = f.finished_run("2024-05-02T00:00:00Z", dag::task_state::failed);
  const std::string log = (f.dir / "task_0.log").string();
  {
    std::ofstream out(log);
    out << "FIRST LINE\n" << std::string(2 * 1024 * 1024, 'x') << "\nLAST LINE\n";
  }
  const std::string base = "/dags/wide/runs/manual__2024-05-02T00%3A00%3A00%2B00%3A00/tasks/task_0/logs/1";
  auto r = f.get(base);
  CHECK(r.status == 200);
  CHECK(r.body.find("FIRST LINE") != std::string::npos);
  CHECK(r.body.find("LAST LINE") != std::string::npos);
  CHECK(r.body.find("bytes of this log are left out here") != std::string::npos);
  CHECK(r.body.size() < 700 * 1024);
  r = f.get(base + "/download");
  CHECK(r.file == log);  // streamed from the file by the server, not read into memory
  CHECK(r.body.empty());
  CHECK(header(r, "Content-Disposition").starts_with("attachment"));
  const auto size = std::filesystem::file_size(log);
  auto tail = json::parse(f.call("GET", base + "/tail?offset=" + std::to_string(size - 10), "", "application/json").body);
  CHECK(tail["text"] == "LAST LINE\n");
  CHECK(tail["offset"] == size);
  CHECK(tail["running"] == false);
  CHECK(f.get(base.substr(0, base.size() - 1) + "7").status == 404);
  CHECK(f.get(base.substr(0, base.size() - 1) + "x").status == 400);
}

TEST_CASE("Ui.AMappedInstancesLogLinksAndLiveStateAreItsOwn" * doctest::timeout(30)) {
  ui_face f([](dag::definition& d) { d.bash("m", "unused").expand("bash_command", {"echo a", "echo b", "echo c"}); });
  const auto run = dag::trigger_run(*f.db, f.dag, dag::parse_time("2024-05-02T00:00:00Z"));
  REQUIRE(run);
  // Expanded as the scheduler does: instance 0 still running its first try, 1 and 2 succeeded.
  dag::change_set c;
  dag::task_instance_record unexpanded;
  unexpanded.dag_id = "wide";
  unexpanded.run_id = run->run_id;
  unexpanded.task_id = "m";
  c.task_instance_deletes.push_back(unexpanded);
  const auto start = dag::timestamp(run->logical_date) + 1s;
  for (int k = 0; k < 3; ++k) {
    dag::task_instance_record ti = unexpanded;
    ti.map_index = k;
    ti.state = k == 0 ? dag::task_state::running : dag::task_state::success;
    ti.try_number = 1;
    ti.start_date = start;
    if (k > 0) ti.end_date = start + 5s;
    ti.log_path = (f.dir / ("m-" + std::to_string(k) + ".log")).string();
    std::ofstream(ti.log_path) << "log of instance " << k << "\n";
    c.task_instances.push_back({dag::task_state::none, 0, ti});
    if (k > 0) c.tries.push_back(dag::try_record_of(ti));
  }
  REQUIRE(f.db->apply(c).task_instances_updated == std::vector<bool>{true, true, true});
  const std::string base = "/dags/wide/runs/manual__2024-05-02T00%3A00%3A00%2B00%3A00/tasks/m";

  // Instance 2's log page: its try tab, download link and every other link name instance 2.
  auto r = f.get(base + "/logs/1?map_index=2");
  REQUIRE(r.status == 200);
  CHECK(r.body.find("log of instance 2") != std::string::npos);
  CHECK(r.body.find("/tasks/m/logs/1?map_index=2\"") != std::string::npos);
  CHECK(r.body.find("/tasks/m/logs/1/download?map_index=2\"") != std::string::npos);
  CHECK(r.body.find("/tasks/m/logs/1\"") == std::string::npos);  // no link to the first instance's log
  CHECK(r.body.find("/tasks/m/logs/1/download\"") == std::string::npos);
  CHECK(f.get(base + "/logs/1/download?map_index=2").file == (f.dir / "m-2.log").string());
  // Instance 0 runs: its page tails its own log.
  r = f.get(base + "/logs/1?map_index=0");
  REQUIRE(r.status == 200);
  CHECK(r.body.find("data-tail=\"/dags/wide/runs/manual__2024-05-02T00%3A00%3A00%2B00%3A00/tasks/m/logs/1/tail?map_index=0\"") !=
        std::string::npos);
  // The run's list of task instances links each instance and its log.
  r = f.get("/dags/wide/runs/manual__2024-05-02T00%3A00%3A00%2B00%3A00");
  for (int k = 0; k < 3; ++k) {
    CHECK(r.body.find("/tasks/m?map_index=" + std::to_string(k) + "\"") != std::string::npos);
    CHECK(r.body.find("/tasks/m/logs/1?map_index=" + std::to_string(k) + "\"") != std::string::npos);
  }
  // live.json gives the task its instances' most relevant state, as its grid cell shows it, not
  // the last instance's.
  const auto live = json::parse(f.call("GET", "/ui/live.json?dag=wide&limit=25", "", "application/json").body);
  CHECK(live["states"][run->run_id + "|m"] == "running");
  CHECK(f.get("/dags/wide").body.find("st-running") != std::string::npos);
}

// A mapped task's three instances ended `failed`, written as the scheduler writes expanded ones.
void expand_failed(ui_face& f, const std::string& run_id, const std::string& task_id, int count) {
  dag::change_set c;
  dag::task_instance_record unexpanded;
  unexpanded.dag_id = "wide";
  unexpanded.run_id = run_id;
  unexpanded.task_id = task_id;
  c.task_instance_deletes.push_back(unexpanded);
  const auto start = dag::timestamp(dag::parse_time("2024-05-02T00:00:01Z"));
  for (int k = 0; k < count; ++k) {
    dag::task_instance_record ti = unexpanded;
    ti.map_index = k;
    ti.state = dag::task_state::failed;
    ti.try_number = 1;
    ti.start_date = start;
    ti.end_date = start + 5s;
    c.task_instances.push_back({dag::task_state::none, 0, ti});
  }
  REQUIRE(f.db->apply(c).applied);
}

std::map<int, dag::task_state> states_of(ui_face& f, const std::string& run_id, const std::string& task_id) {
  std::map<int, dag::task_state> out;
  for (const auto& ti : f.db->task_instances("wide", run_id))
    if (ti.task_id == task_id) out[ti.map_index] = ti.state;
  return out;
}

TEST_CASE("Ui.AMappedInstancesPageClearsAndMarksThatInstanceOnlyAndTheTasksPageAllOfThem" * doctest::timeout(30)) {
  ui_face f([](dag::definition& d) {
    auto m = d.bash("m", "unused").expand("bash_command", {"echo a", "echo b", "echo c"});
    m >> d.bash("after", "echo after");
  });
  const auto run = dag::trigger_run(*f.db, f.dag, dag::parse_time("2024-05-02T00:00:00Z"));
  REQUIRE(run);
  expand_failed(f, run->run_id, "m", 3);
  using st = dag::task_state;
  const std::string base = "/dags/wide/runs/manual__2024-05-02T00%3A00%3A00%2B00%3A00/tasks/m";

  // Instance 1's page: its forms carry its map index, and the confirmation lists it alone.
  auto r = f.get(base + "?map_index=1");
  REQUIRE(r.status == 200);
  CHECK(r.body.find("<input type=\"hidden\" name=\"map_index\" value=\"1\">") != std::string::npos);
  r = f.get(base + "/clear?map_index=1&downstream=0");
  REQUIRE(r.status == 200);
  CHECK(r.body.find("These 1 task instance(s) will change") != std::string::npos);
  CHECK(r.body.find("action=\"" + base + "/clear?map_index=1\"") != std::string::npos);
  // The confirmed clear puts back instance 1 only, and returns to its page.
  r = f.post(base + "/clear?map_index=1", "only_failed=0");
  CHECK(r.status == 303);
  CHECK(header(r, "Location") == base + "?map_index=1");
  CHECK(states_of(f, run->run_id, "m") == std::map<int, st>{{0, st::failed}, {1, st::none}, {2, st::failed}});
  // Mark success and mark failed on instance 2's page set instance 2 only.
  CHECK(f.post(base + "/mark_success?map_index=2").status == 303);
  CHECK(states_of(f, run->run_id, "m") == std::map<int, st>{{0, st::failed}, {1, st::none}, {2, st::success}});
  CHECK(f.post(base + "/mark_failed?map_index=1").status == 303);
  CHECK(states_of(f, run->run_id, "m") == std::map<int, st>{{0, st::failed}, {1, st::failed}, {2, st::success}});
  // An instance's downstream is still the whole downstream task.
  CHECK(f.post(base + "/mark_success?map_index=0", "downstream=1").status == 303);
  CHECK(states_of(f, run->run_id, "m") == std::map<int, st>{{0, st::success}, {1, st::failed}, {2, st::success}});
  CHECK(states_of(f, run->run_id, "after") == std::map<int, st>{{-1, st::success}});
  CHECK(f.get(base + "/clear?map_index=7").status == 404);  // no such instance

  // The task's page (no map index: the mapped task as a whole) acts on every instance.
  r = f.get(base);
  REQUIRE(r.status == 200);
  CHECK(r.body.find("name=\"map_index\"") == std::string::npos);
  CHECK(r.body.find("all 3 mapped instances") != std::string::npos);
  CHECK(f.post(base + "/mark_failed").status == 303);
  CHECK(states_of(f, run->run_id, "m") == std::map<int, st>{{0, st::failed}, {1, st::failed}, {2, st::failed}});
  r = f.post(base + "/clear", "only_failed=0");
  CHECK(header(r, "Location") == base);
  CHECK(states_of(f, run->run_id, "m") == std::map<int, st>{{0, st::none}, {1, st::none}, {2, st::none}});
}

TEST_CASE("Ui.GridOf100TasksBy100RunsRendersQuickly" * doctest::timeout(120)) {
  ui_face f(100);
  for (int day = 0; day < 100; ++day) {
    const auto date = dag::parse_time("2024-01-01T00:00:00Z") + std::chrono::days(day);
    f.finished_run(dag::format_iso(date), day % 7 ? dag::task_state::success : dag::task_state::failed);
  }
  f.get("/dags/wide?limit=100");  // warm: the face opens its connection
  const auto began = std::chrono::steady_clock::now();
  const auto r = f.get("/dags/wide?limit=100");
  const auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - began).count();
  CHECK(r.status == 200);
  std::size_t cells = 0;
  for (auto at = r.body.find("<a class=\"sq st-"); at != std::string::npos; at = r.body.find("<a class=\"sq st-", at + 1)) ++cells;
  CHECK(cells == 100 * 100);
  MESSAGE("100 tasks x 100 runs: " << ms << " ms, " << r.body.size() / 1024 << " KiB");
  // Loose: the target (100 ms) is for optimised builds; Debug and sanitizer builds are slower.
  CHECK(ms < 2000);
}

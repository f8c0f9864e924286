// Templates: parsing `{{ ... }}`, load-time checks with suggestions, and Airflow-formatted rendering.

#include <doctest/doctest.h>

#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <dag/template/template.hpp>

namespace {

using namespace std::chrono;

dag::time_point at(int y, unsigned m, unsigned d, int hh = 0, int mm = 0, int ss = 0) {
  return sys_days{year{y} / month{m} / day{d}} + hours{hh} + minutes{mm} + seconds{ss};
}

/// A fixed run: 2024-01-01 daily run of `batch.cleanup`, second try.
dag::template_context fixed_context() {
  dag::template_context c;
  c.dag_id = "batch";
  c.task_id = "cleanup";
  c.run_id = "scheduled__2024-01-01T00:00:00+00:00";
  c.logical_date = at(2024, 1, 1);
  c.data_interval_start = at(2024, 1, 1);
  c.data_interval_end = at(2024, 1, 2);
  c.try_number = 2;
  c.params = {{"limit", "100"}, {"table", "workflows"}};
  c.variable = [](std::string_view name) -> std::optional<std::string> {
    if (name == "bucket") return "s3://data";
    if (name == "api_token") return "tok-123";
    return std::nullopt;
  };
  c.connection = [](std::string_view id) -> std::optional<dag::connection> {
    if (id == "warehouse") return dag::connection{"warehouse", "postgresql", "db.local", 5432, "etl", "s3cret", "dw"};
    if (id == "web") return dag::connection{"web", "https", "example.com", std::nullopt, "", "", "api"};
    return std::nullopt;
  };
  c.xcom_pull = [](std::string_view task, std::string_view key) -> std::optional<std::string> {
    if (task == "extract" && key == "return_value") return "42";
    if (task == "extract" && key == "rows") return "7";
    if (task == "transform" && key == "return_value") return "t";
    return std::nullopt;
  };
  return c;
}

std::string render(std::string_view text) { return dag::render(text, fixed_context()); }

/// The template_error `text` throws when parsed (fails the test if it parses).
dag::template_error parse_error(std::string_view text) {
  try {
    (void)dag::template_text::parse(text);
  } catch (const dag::template_error& e) {
    return e;
  }
  FAIL("expected a template_error for: " << text);
  return dag::template_error(-1, -1, "");
}

dag::template_scope scope() {
  dag::template_scope s;
  s.params = {"limit", "table"};
  s.task_ids = {"extract", "transform", "cleanup"};
  return s;
}

/// The template_error a load-time check raises for `text` in `s`.
dag::template_error check_error(std::string_view text, const dag::template_scope& s) {
  auto parsed = dag::template_text::parse(text);
  try {
    dag::check(parsed, s);
  } catch (const dag::template_error& e) {
    return e;
  }
  FAIL("expected check to reject: " << text);
  return dag::template_error(-1, -1, "");
}

}  // namespace

TEST_CASE("Template.EveryMacroRendersInAirflowFormat") {
  CHECK(render("{{ ds }}") == "2024-01-01");
  CHECK(render("{{ ds_nodash }}") == "20240101");
  CHECK(render("{{ ts }}") == "2024-01-01T00:00:00+00:00");
  CHECK(render("{{ ts_nodash }}") == "20240101T000000");
  CHECK(render("{{ logical_date }}") == "2024-01-01T00:00:00+00:00");
  CHECK(render("{{ data_interval_start }}") == "2024-01-01T00:00:00+00:00");
  CHECK(render("{{ data_interval_end }}") == "2024-01-02T00:00:00+00:00");
  CHECK(render("{{ run_id }}") == "scheduled__2024-01-01T00:00:00+00:00");
  CHECK(render("{{ dag_id }}") == "batch");
  CHECK(render("{{ task_id }}") == "cleanup");
  CHECK(render("{{ try_number }}") == "2");
}

TEST_CASE("Template.TimesWithHoursMinutesSecondsArePadded") {
  auto c = fixed_context();
  c.logical_date = at(2024, 3, 9, 6, 5, 7);
  CHECK(dag::render("{{ ds }} {{ ds_nodash }}", c) == "2024-03-09 20240309");
  CHECK(dag::render("{{ ts }}", c) == "2024-03-09T06:05:07+00:00");
  CHECK(dag::render("{{ ts_nodash }}", c) == "20240309T060507");
  c.logical_date = at(1999, 12, 31, 23, 59, 59);
  CHECK(dag::render("{{ logical_date }}", c) == "1999-12-31T23:59:59+00:00");
}

TEST_CASE("Template.ParamsRender") {
  CHECK(render("SELECT * FROM {{ params.table }} LIMIT {{ params.limit }}") ==
        "SELECT * FROM workflows LIMIT 100");
}

TEST_CASE("Template.VariablesRender") {
  CHECK(render("aws s3 ls {{ var.value.bucket }}/in") == "aws s3 ls s3://data/in");
}

TEST_CASE("Template.ConnectionAttributesRender") {
  CHECK(render("{{ conn.warehouse.host }}") == "db.local");
  CHECK(render("{{ conn.warehouse.port }}") == "5432");
  CHECK(render("{{ conn.warehouse.login }}") == "etl");
  CHECK(render("{{ conn.warehouse.password }}") == "s3cret");
  CHECK(render("{{ conn.warehouse.schema }}") == "dw");
  SUBCASE("a connection without a port renders an empty port") {
    CHECK(render("https://{{ conn.web.host }}:{{ conn.web.port }}/") == "https://example.com:/");
  }
  SUBCASE("several attributes of one connection look it up once per render") {
    auto c = fixed_context();
    int lookups = 0;
    auto inner = c.connection;
    c.connection = [&](std::string_view id) { ++lookups; return inner(id); };
    auto t = dag::template_text::parse("{{ conn.warehouse.login }}@{{ conn.warehouse.host }}:{{ conn.warehouse.port }}");
    CHECK(dag::render(t, c) == "etl@db.local:5432");
    CHECK(lookups == 1);
  }
}

TEST_CASE("Template.SecretsAreReportedForMasking") {
  auto c = fixed_context();
  std::vector<std::string> secrets;
  c.mask_secret = [&](std::string_view s) { secrets.emplace_back(s); };
  CHECK(dag::render("{{ conn.warehouse.password }} {{ var.value.api_token }} {{ var.value.bucket }}", c) ==
        "s3cret tok-123 s3://data");
  CHECK(secrets == std::vector<std::string>{"s3cret", "tok-123"});
}

TEST_CASE("Template.XcomPullInAllThreeCallSyntaxes") {
  CHECK(render("{{ ti.xcom_pull('extract') }}") == "42");
  CHECK(render("{{ ti.xcom_pull(\"extract\") }}") == "42");
  CHECK(render("{{ ti.xcom_pull(task_ids='extract') }}") == "42");
  CHECK(render("{{ti.xcom_pull( task_ids = \"extract\" )}}") == "42");
  auto t = dag::template_text::parse("{{ ti.xcom_pull(task_ids='extract') }}");
  REQUIRE(t.refs().size() == 1);
  CHECK(t.refs()[0].kind == dag::template_ref_kind::xcom_pull);
  CHECK(t.refs()[0].name == "extract");
}

TEST_CASE("Template.UnknownNameIsRejectedWithSuggestion") {
  auto e = parse_error("echo {{ dss }}");
  CHECK(std::string(e.what()) == "unknown template variable 'dss' (did you mean 'ds'?)");
  CHECK(e.line() == 0);
  CHECK(e.column() == 9);
  CHECK(std::string(parse_error("{{ tz_nodash }}").what()).find("did you mean 'ts_nodash'?") != std::string::npos);
  SUBCASE("Airflow names dagrun leaves out say so") {
    CHECK(std::string(parse_error("{{ execution_date }}").what()) ==
          "template variable 'execution_date' is not supported by dagrun (use 'logical_date')");
    CHECK(std::string(parse_error("{{ conf }}").what()).find("not supported") != std::string::npos);
  }
  SUBCASE("an unknown template error is a definition error") {
    CHECK_THROWS_AS((void)dag::template_text::parse("{{ nope }}"), dag::definition_error);
  }
}

TEST_CASE("Template.UnknownConnectionAttributeIsRejectedWithSuggestion") {
  auto e = parse_error("{{ conn.warehouse.hots }}");
  CHECK(std::string(e.what()).starts_with("unknown connection attribute 'hots' (did you mean 'host'?)"));
  CHECK(e.column() == 19);
  CHECK(std::string(parse_error("{{ conn.warehouse }}").what()) ==
        "expected 'conn.warehouse.ATTRIBUTE' (host, port, login, password, schema, conn_type, conn_id, extra, "
        "extra_dejson, description)");
  CHECK(std::string(parse_error("{{ ti }}").what()) == "expected 'ti.xcom_pull(task_ids='TASK')' or 'ti.try_number'");
}

TEST_CASE("Template.BadVariableAndParamShapesAreRejected") {
  CHECK(std::string(parse_error("{{ var.valu.cfg }}").what()).find("did you mean 'value'?") != std::string::npos);
  CHECK(std::string(parse_error("{{ var.value }}").what()) == "expected 'var.value.NAME' or 'var.json.NAME'");
  CHECK(std::string(parse_error("{{ params.limit | itn }}").what()) == "unknown filter 'itn' (did you mean 'int'?)");
  CHECK(std::string(parse_error("{{ }}").what()) == "empty template expression '{{ }}'");
}

TEST_CASE("Template.UnknownParamIsRejectedAtCheckWithSuggestion") {
  auto e = check_error("LIMIT {{ params.limt }}", scope());
  CHECK(std::string(e.what()) == "unknown param 'limt' (did you mean 'limit'?)");
  CHECK(e.line() == 0);
  CHECK(e.column() == 17);
  CHECK_NOTHROW(dag::check(dag::template_text::parse("{{ params.limit }} {{ params.table }}"), scope()));
}

TEST_CASE("Template.XcomPullOfUnknownTaskIsRejectedAtCheck") {
  auto e = check_error("x\n  {{ ti.xcom_pull('extrct') }}", scope());
  CHECK(std::string(e.what()) == "xcom_pull of unknown task 'extrct' (did you mean 'extract'?)");
  CHECK(e.line() == 1);
  CHECK(e.column() == 19);
  SUBCASE("when the upstream set is known, a task outside it is rejected") {
    auto s = scope();
    s.task_id = "cleanup";
    s.upstream_task_ids = std::set<std::string>{"extract"};
    CHECK_NOTHROW(dag::check(dag::template_text::parse("{{ ti.xcom_pull('extract') }}"), s));
    CHECK(std::string(check_error("{{ ti.xcom_pull('transform') }}", s).what()).find("not upstream") !=
          std::string::npos);
    CHECK(std::string(check_error("{{ ti.xcom_pull('cleanup') }}", s).what()).find("its own XCom") !=
          std::string::npos);
  }
  SUBCASE("variables and connections are not checked for existence") {
    CHECK_NOTHROW(dag::check(dag::template_text::parse("{{ var.value.anything }} {{ conn.any.host }}"), scope()));
  }
}

TEST_CASE("Template.UnclosedTagReportsItsLineAndColumn") {
  auto e = parse_error("echo start\n  {{ ds\necho end");
  CHECK(std::string(e.what()) == "unclosed '{{' opened at column 3");
  CHECK(e.line() == 1);
  CHECK(e.column() == 3);
  SUBCASE("a second '{{' before any '}}' means the first was never closed") {
    auto e2 = parse_error("a {{ ds b {{ ts }}");
    CHECK(std::string(e2.what()) == "unclosed '{{' opened at column 3");
    CHECK(e2.column() == 3);
  }
  SUBCASE("an apostrophe in the text after a forgotten '}}' does not hide it") {
    auto e3 = parse_error("echo {{ ds\necho it's done");
    CHECK(std::string(e3.what()) == "unclosed '{{' opened at column 6");
    CHECK(e3.line() == 0);
  }
  SUBCASE("columns count characters, not bytes") {
    CHECK(parse_error("é {{ ds").column() == 3);
  }
  SUBCASE("an unclosed comment") {
    CHECK(std::string(parse_error("x {# note").what()) == "unclosed '{#' opened at column 3");
  }
}

TEST_CASE("Template.UnknownTagIsRejected") {
  auto e = parse_error("a\nb {% iff ds %}y{% endif %}");
  CHECK(std::string(e.what()).starts_with("unknown tag 'iff' (did you mean 'if'?)"));
  CHECK(e.line() == 1);
  CHECK(e.column() == 6);
}

TEST_CASE("Template.BadCallSyntaxIsRejected") {
  const std::string message =
      "bad call: xcom_pull needs a task id, as ti.xcom_pull('TASK') or ti.xcom_pull(task_ids='TASK')";
  CHECK(std::string(parse_error("{{ ti.xcom_pull(extract) }}").what()) == "unknown template variable 'extract'");
  CHECK(parse_error("{{ ti.xcom_pull(extract) }}").column() == 17);
  CHECK(std::string(parse_error("{{ ti.xcom_pull() }}").what()) == message);
  CHECK(std::string(parse_error("{{ ti.xcom_pull('') }}").what()) == message);
  CHECK(std::string(parse_error("{{ ti.xcom_pull }}").what()) == message);
  CHECK(std::string(parse_error("{{ ti.xcom_pull('a', 'b') }}").what()) == message);
  CHECK(std::string(parse_error("{{ ti.xcom_pull('a') extra }}").what()) == "unexpected 'extra' in '{{ ... }}'");
  CHECK(std::string(parse_error("{{ ti.xcom_pull(key='a') }}").what()) == message);
  CHECK(std::string(parse_error("{{ ti.xcom_pull('a', keys='b') }}").what()) ==
        "unknown xcom_pull argument 'keys' (did you mean 'key'?) (task_ids, key, default)");
  CHECK(std::string(parse_error("{{ ti.xcom_pul('a') }}").what()).starts_with(
      "unknown ti attribute 'xcom_pul' (did you mean 'xcom_pull'?)"));
  CHECK(std::string(parse_error("{{ ti.xcom_pull('a) }}").what()) == "unterminated string in template expression");
}

TEST_CASE("Template.MissingValuesAtRenderAreErrors") {
  auto message_of = [](std::string_view text) {
    try {
      (void)render(text);
    } catch (const dag::template_error&) {
      return std::string("unexpected template_error");
    } catch (const dag::error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(message_of("{{ var.value.missing }}") == "variable 'missing' is not set");
  CHECK(message_of("{{ conn.nowhere.host }}") == "connection 'nowhere' is not defined");
  CHECK(message_of("{{ ti.xcom_pull('cleanup') }}") == "no XCom from task 'cleanup' in this run");
  CHECK(message_of("{{ ti.xcom_pull('extract', key='nope') }}") == "no XCom from task 'extract' under key 'nope' in this run");
  CHECK(message_of("{{ params.other }}") == "param 'other' is not set");
  SUBCASE("an unset callback counts as missing, not as a crash") {
    dag::template_context empty;
    CHECK_THROWS_WITH_AS(dag::render("{{ var.value.x }}", empty), "variable 'x' is not set", dag::error);
    CHECK_THROWS_AS(dag::render("{{ conn.x.host }}", empty), dag::error);
    CHECK_THROWS_AS(dag::render("{{ ti.xcom_pull('x') }}", empty), dag::error);
  }
}

TEST_CASE("Template.LiteralTextIsKeptUnchanged") {
  CHECK(render("awk '{print $1}' ${HOME} {x} }} }}} a}b") == "awk '{print $1}' ${HOME} {x} }} }}} a}b");
  CHECK(render("{\"a\": {\"b\": 1}}") == "{\"a\": {\"b\": 1}}");
  CHECK(render("ends with {") == "ends with {");
  CHECK(render("") == "");
  CHECK(render("x {{ ds }} }} y") == "x 2024-01-01 }} y");
  CHECK(dag::template_text::parse("plain {x}").is_constant());
  SUBCASE("a quoted literal writes '{{'") {
    CHECK(render("{{ '{{' }} ds {{ \"}}\" }}") == "{{ ds }}");
  }
  SUBCASE("comments are dropped") {
    CHECK(render("a{# why: {{ nothing }} #}b") == "ab");
  }
}

TEST_CASE("Template.WhitespaceInsideBracesIsOptional") {
  CHECK(render("{{ds}}") == "2024-01-01");
  CHECK(render("{{   ds   }}") == "2024-01-01");
  CHECK(render("{{\tds\n}}") == "2024-01-01");
  CHECK(render("{{params.limit}}") == "100");
  CHECK(render("{{ conn . warehouse . host }}") == "db.local");
  SUBCASE("Jinja's whitespace control trims around the tag") {
    CHECK(render("a  \n {{- ds -}} \n b") == "a2024-01-01b");
    CHECK(render("a {#- c -#} b") == "ab");
  }
}

TEST_CASE("Template.ParsedReferencesAreExposed") {
  auto t = dag::template_text::parse(
      "cp {{ var.value.src }} {{ conn.db.port }}/{{ ds }}\n{{ params.limit }} {{ params.x | default(1) }}"
      "{{ ti.xcom_pull(task_ids=['a', 'b']) }}");
  REQUIRE(t.refs().size() == 6);
  CHECK(t.refs()[0].kind == dag::template_ref_kind::variable);
  CHECK(t.refs()[0].name == "src");
  CHECK(t.refs()[1].kind == dag::template_ref_kind::connection);
  CHECK(t.refs()[1].name == "db");
  CHECK(t.refs()[2].kind == dag::template_ref_kind::param);
  CHECK(t.refs()[2].line == 1);
  CHECK(t.refs()[2].column == 11);
  CHECK_FALSE(t.refs()[2].optional);
  CHECK(t.refs()[3].name == "x");
  CHECK(t.refs()[3].optional);
  CHECK(t.refs()[4].kind == dag::template_ref_kind::xcom_pull);
  CHECK(t.refs()[4].name == "a");
  CHECK(t.refs()[5].name == "b");
  CHECK(t.source().starts_with("cp {{ var.value.src }}"));
}

TEST_CASE("Template.HasTemplate") {
  CHECK(dag::has_template("echo {{ ds }}"));
  CHECK(dag::has_template("{% if %}"));
  CHECK(dag::has_template("{# c #}"));
  CHECK_FALSE(dag::has_template("echo ${HOME} {x} }}"));
  CHECK_FALSE(dag::has_template("{"));
  CHECK_FALSE(dag::has_template(""));
}

TEST_CASE("Template.ParseOnceRenderManyTimes") {
  auto t = dag::template_text::parse("run {{ run_id }} try {{ try_number }} on {{ ds_nodash }}");
  auto c = fixed_context();
  std::string out;
  for (int k = 1; k <= 1000; ++k) {
    c.try_number = k;
    out.clear();
    dag::render_to(out, t, c);
  }
  CHECK(out == "run scheduled__2024-01-01T00:00:00+00:00 try 1000 on 20240101");
}

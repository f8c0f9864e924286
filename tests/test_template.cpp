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
    if (id == "cloud")
      return dag::connection{"cloud", "aws", "", std::nullopt, "", "", "",
                             R"({"region_name": "eu-west-1", "retries": 3, "tags": {"team": "data"}, "api_key": "k-9"})"};
    if (id == "broken") return dag::connection{"broken", "aws", "", std::nullopt, "", "", "", "[1, 2]"};
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

TEST_CASE("Template.ConnectionExtraDejson") {
  CHECK(render("{{ conn.cloud.extra_dejson.region_name }}") == "eu-west-1");
  CHECK(render("{{ conn.cloud.extra_dejson.retries + 1 }}") == "4");
  CHECK(render("{{ conn.cloud.extra_dejson.tags.team | upper }}") == "DATA");
  CHECK(render("{{ conn.cloud.extra_dejson['region_name'] }}") == "eu-west-1");
  CHECK(render("{{ conn.cloud.extra_dejson.get('missing', 'none') }}") == "none");
  CHECK(render("{{ conn.cloud.extra | fromjson | length }}") == "4");
  CHECK(render("{{ conn.warehouse.extra_dejson | length }}") == "0");  // no extra: an empty dict
  auto c = fixed_context();
  std::vector<std::string> secrets;
  c.mask_secret = [&](std::string_view s) { secrets.emplace_back(s); };
  CHECK(dag::render("{{ conn.cloud.extra_dejson.region_name }}", c) == "eu-west-1");
  CHECK(secrets == std::vector<std::string>{"k-9"});  // a secret-looking extra is masked
  CHECK_THROWS_WITH(dag::render("{{ conn.broken.extra_dejson }}", fixed_context()),
                    doctest::Contains("connection 'broken': extra is not a JSON object"));
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

// ---------------------------------------------------------------------------------------------
// The Jinja language, table-driven: each row is a template and what it renders to in the fixed
// context (2024-01-01 run of `batch.cleanup`, second try).

namespace {

struct render_case {
  std::string text;
  std::string expected;
};

void check_table(const std::vector<render_case>& table, const dag::template_context& c = fixed_context()) {
  for (const auto& row : table) {
    CAPTURE(row.text);
    std::string got;
    try {
      got = dag::render(row.text, c);
    } catch (const std::exception& e) {
      got = std::string("error: ") + e.what();
    }
    CHECK(got == row.expected);
  }
}

}  // namespace

TEST_CASE("Template.LiteralsAndOperators") {
  check_table({
      {"{{ 1 }} {{ -2 }} {{ 1.5 }} {{ 1e3 }} {{ 'a' 'b' }} {{ \"q\" }}", "1 -2 1.5 1000.0 ab q"},
      {"{{ true }} {{ False }} {{ none }} {{ None }}", "True False None None"},
      {"{{ [1, 'a', [2]] }} {{ {'k': 1, 'j': 'v'} }} {{ (1, 2) }}", "[1, 'a', [2]] {'k': 1, 'j': 'v'} [1, 2]"},
      {"{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 7 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }}",
       "7 9 3.5 3 -4 1 2 1024"},
      {"{{ 0.1 + 0.2 }} {{ 1.0 * 3 }} {{ 10 / 4 }}", "0.30000000000000004 3.0 2.5"},
      {"{{ 'a' + 'b' }} {{ 'ab' * 3 }} {{ [1] + [2] }}", "ab ababab [1, 2]"},
      {"{{ 'n=' ~ 5 ~ '/' ~ none }}", "n=5/None"},
      {"{{ 1 == 1.0 }} {{ 1 != 2 }} {{ 2 < 3 }} {{ 3 <= 3 }} {{ 'b' > 'a' }} {{ 2 >= 3 }}", "True True True True True False"},
      {"{{ 'a' in 'cat' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 3 not in [1] }}", "True True True True"},
      {"{{ true and 'x' }} {{ 0 or 'y' }} {{ not 0 }} {{ not 1 and 1 }}", "x y True False"},
      {"{{ 'yes' if 2 > 1 else 'no' }} {{ 'yes' if 0 else 'no' }}", "yes no"},
      {"{{ 'abc'[0] }} {{ 'abc'[-1] }} {{ [10, 20][1] }} {{ {'a': {'b': 3}}['a'].b }}", "a c 20 3"},
      {"{{ 'a,b'.split(',') }} {{ ' x '.strip() }} {{ 'ab'.upper() }} {{ 'a-b'.replace('-', '_') }}", "['a', 'b'] x AB a_b"},
      {"{{ 'v{}-{}'.format(1, 'x') }} {{ '%s:%d' % ('a', 3) }} {{ ','.join(['a', 'b']) }}", "v1-x a:3 a,b"},
      {"{{ 'abc'.startswith('a') }} {{ 'abc'.endswith('x') }}", "True False"},
      {"{{ {'a': 1}.get('a') }} {{ {'a': 1}.get('b', 'z') }} {{ {'a': 1}.keys() }} {{ {'a': 1}.items() }}", "1 z ['a'] [['a', 1]]"},
      {"{{ range(3) }} {{ range(1, 7, 2) }}", "[0, 1, 2] [1, 3, 5]"},
      {"{{ '{{' }} ds {{ \"}}\" }}", "{{ ds }}"},
  });
}

TEST_CASE("Template.EveryFilter") {
  check_table({
      {"{{ 'Hello'|upper }} {{ 'Hello'|lower }} {{ 'hello big-world'|title }} {{ 'hELLO'|capitalize }}",
       "HELLO hello Hello Big-World Hello"},
      {"[{{ '  x  '|trim }}] [{{ 'xxaxx'|trim('x') }}]", "[x] [a]"},
      {"{{ 'a-b-c'|replace('-', '+') }} {{ 'a-b-c'|replace('-', '+', 1) }}", "a+b+c a+b-c"},
      {"{{ params.nope|default('dflt') }} {{ params.nope|d('d') }} {{ ''|default('e') }} {{ ''|default('e', true) }}",
       "dflt d  e"},
      {"{{ '42'|int + 1 }} {{ '3.9'|int }} {{ 'x'|int }} {{ 'x'|int(7) }} {{ 'ff'|int(0, 16) }} {{ 2.7|int }}", "43 3 0 7 255 2"},
      {"{{ '2.5'|float }} {{ 'x'|float }} {{ 3|float }}", "2.5 0.0 3.0"},
      {"{{ 5|string ~ 'x' }} {{ 0|bool }}", "5x False"},
      {"{{ 'abc'|length }} {{ [1, 2]|length }} {{ {'a': 1}|length }} {{ [1, 2, 3]|count }}", "3 2 1 3"},
      {"{{ [1, 2, 3]|join(',') }} {{ ['a', 'b']|join }} {{ [{'n': 'x'}, {'n': 'y'}]|join('/', attribute='n') }}", "1,2,3 ab x/y"},
      {"{{ [3, 1]|first }} {{ [3, 1]|last }} {{ 'xyz'|first }}", "3 1 x"},
      {"{{ {'b': [1, 2], 'a': 'x<y'}|tojson }} {{ 'it\\'s'|tojson }} {{ none|tojson }} {{ [true, 1.5]|tojson }}",
       "{\"a\": \"x\\u003cy\", \"b\": [1, 2]} \"it\\u0027s\" null [true, 1.5]"},
      {"{{ {'a': [1]}|tojson(2) }}", "{\n  \"a\": [\n    1\n  ]\n}"},
      {"{{ ('{\"a\": [1, 2], \"b\": null}'|fromjson).a[1] }} {{ '[1, \"x\"]'|fromjson }}", "2 [1, 'x']"},
      {"{{ 'ab'|list }} {{ {'k': 1}|list }}", "['a', 'b'] ['k']"},
      {"{{ [3, 1, 2]|sort }} {{ [3, 1, 2]|sort(reverse=true) }} {{ ['b', 'A', 'c']|sort }} {{ ['b', 'A']|sort(case_sensitive=true) }}",
       "[1, 2, 3] [3, 2, 1] ['A', 'b', 'c'] ['A', 'b']"},
      {"{{ [{'n': 2}, {'n': 1}]|sort(attribute='n')|map(attribute='n')|list }}", "[1, 2]"},
      {"{{ [1, 2, 1, 3, 2]|unique|list }} {{ ['a', 'A', 'b']|unique|list }}", "[1, 2, 3] ['a', 'b']"},
      {"{{ [3, 1, 2]|min }} {{ [3, 1, 2]|max }} {{ ['b', 'C']|max }} {{ [{'n': 5}, {'n': 9}]|max(attribute='n') }}",
       "1 3 C {'n': 9}"},
      {"{{ 2.5|round }} {{ 3.5|round }} {{ 3.14159|round(2) }} {{ 3.1|round(0, 'ceil') }} {{ 3.9|round(method='floor') }}",
       "2.0 4.0 3.14 4.0 3.0"},
      {"{{ -3|abs }} {{ (-2.5)|abs }}", "3 2.5"},
      {"{{ 'one two three four'|truncate(9, leeway=0) }} {{ 'one two three four'|truncate(9, true, leeway=0) }} {{ 'short'|truncate(9) }}",
       "one... one tw... short"},
      {"{{ ds|ds_add(5) }} {{ ds|ds_add(-1) }} {{ ds|ds_format('%Y-%m-%d', '%d/%m/%Y') }}", "2024-01-06 2023-12-31 01/01/2024"},
      {"{{ data_interval_end|ds }} {{ data_interval_end|ds_nodash }} {{ data_interval_end|ts }} {{ data_interval_end|ts_nodash }} "
       "{{ data_interval_end|ts_nodash_with_tz }}",
       "2024-01-02 20240102 2024-01-02T00:00:00+00:00 20240102T000000 20240102T000000+0000"},
      {"{{ \"it's; rm -rf /\"|shquote }} {{ 'plain-word_1.txt'|shquote }} {{ ''|shquote }}",
       "'it'\"'\"'s; rm -rf /' plain-word_1.txt ''"},
      {"{{ [1, 2]|reverse|list }} {{ 'abc'|reverse }} {{ [1, 2, 3]|sum }} {{ [{'n': 2}, {'n': 3}]|sum(attribute='n') }}",
       "[2, 1] cba 6 5"},
      {"{{ 'a\\nb'|indent(2) }}|{{ 'a\\nb'|indent(2, true) }}", "a\n  b|  a\n  b"},
      {"{{ {'b': 1, 'a': 2}|dictsort }} {{ {'b': 1}|items|list }}", "[['a', 2], ['b', 1]] [['b', 1]]"},
      {"{{ ['a', 'b']|map('upper')|list }} {{ [0, 1, 2]|select|list }} {{ [0, 1, 2]|reject|list }} {{ [1, 2, 3, 4]|select('even')|list }}",
       "['A', 'B'] [1, 2] [0] [2, 4]"},
  });
}

TEST_CASE("Template.EveryTest") {
  check_table({
      {"{{ params.limit is defined }} {{ params.nope is defined }} {{ params.nope is undefined }} {{ 1 is not defined }}",
       "True False True False"},
      {"{{ none is none }} {{ true is true }} {{ 0 is false }} {{ false is boolean }}", "True True False True"},
      {"{{ 1 is number }} {{ 1 is integer }} {{ 1.0 is float }} {{ 'x' is string }}", "True True True True"},
      {"{{ {} is mapping }} {{ [] is sequence }} {{ 4 is even }} {{ 3 is odd }} {{ 9 is divisibleby 3 }} {{ 9 is divisibleby(2) }}",
       "True True True True True False"},
  });
}

TEST_CASE("Template.EveryTag") {
  check_table({
      {"{% if params.limit|int > 50 %}big{% elif params.limit %}small{% else %}none{% endif %}", "big"},
      {"{% if 0 %}a{% elif 0 %}b{% else %}c{% endif %}", "c"},
      {"{% if 0 %}a{% endif %}", ""},
      {"{% for x in ['a', 'b', 'c'] %}{{ loop.index }}{{ x }}{% if not loop.last %},{% endif %}{% endfor %}", "1a,2b,3c"},
      {"{% for x in [1, 2] %}{{ loop.index0 }}{{ loop.first }}{{ loop.revindex }}{{ loop.length }};{% endfor %}",
       "0True22;1False12;"},
      {"{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }} {% endfor %}", "a=1 b=2 "},
      {"{% for x in [] %}x{% else %}empty{% endfor %}", "empty"},
      {"{% set n = 3 %}{% set a, b = [1, 2] %}{{ n * 2 }} {{ a + b }}", "6 3"},
      {"{% set body %}x={{ ds }}{% endset %}[{{ body }}]", "[x=2024-01-01]"},
      {"{% for x in [1] %}{% set inner = 5 %}{{ inner }}{% endfor %}", "5"},
      {"{% raw %}{{ not rendered }} {% if %}{% endraw %}", "{{ not rendered }} {% if %}"},
      {"a {# note #} b", "a  b"},
  });
  SUBCASE("whitespace control") {
    check_table({
        {"a  \n {{- ds -}} \n b", "a2024-01-01b"},
        {"x\n{%- if true -%}\n  y\n{%- endif -%}\nz", "xyz"},
        {"{% for x in [1, 2] -%}\n  {{ x }}\n{%- endfor %}", "12"},
        {"a {#- c -#} b", "ab"},
    });
  }
}

TEST_CASE("Template.AirflowContextAndMacros") {
  auto c = fixed_context();
  c.logical_date = at(2024, 3, 9, 6, 5, 7);
  c.data_interval_start = at(2024, 3, 9, 6, 5, 7);
  c.data_interval_end = at(2024, 3, 10, 6, 5, 7);
  c.conf = R"({"region": "eu", "n": 3, "tags": ["x"]})";
  c.owner = "data-team";
  c.next_logical_date = at(2024, 3, 10, 6, 5, 7);
  c.prev_logical_date = at(2024, 3, 8, 6, 5, 7);
  c.prev_data_interval_start_success = at(2024, 3, 8);
  c.prev_data_interval_end_success = at(2024, 3, 9);
  c.prev_start_date_success = at(2024, 3, 9, 0, 1, 2);
  c.run_id = "manual__2024-03-09T06:05:07+00:00";
  check_table(
      {
          {"{{ macros.ds_add(ds, 7) }} {{ macros.ds_add('2024-03-01', -1) }}", "2024-03-16 2024-02-29"},
          {"{{ macros.ds_format(ds, '%Y-%m-%d', '%Y%m') }} {{ macros.ds_format('05/01/24', '%d/%m/%y', '%b %d %Y') }}",
           "202403 Jan 05 2024"},
          {"{{ (data_interval_end - macros.timedelta(days=1)).strftime('%Y-%m') }}", "2024-03"},
          {"{{ logical_date + macros.timedelta(hours=1, minutes=5) }}", "2024-03-09T07:10:07+00:00"},
          {"{{ data_interval_end - data_interval_start }} {{ macros.timedelta(seconds=90) }} {{ macros.timedelta(days=-1) }}",
           "1 day, 0:00:00 0:01:30 -1 day, 0:00:00"},
          {"{{ macros.datetime(2024, 2, 29, 12) }} {{ macros.datetime(2024, 1, 1).strftime('%A %j') }}",
           "2024-02-29 12:00:00 Monday 001"},
          {"{{ macros.datetime.strptime('2024-05-06', '%Y-%m-%d').day }} {{ logical_date.year }} {{ logical_date.hour }}",
           "6 2024 6"},
          {"{{ logical_date.strftime('%d.%m.%Y %H:%M:%S %a %b %p %I %y %z') }}", "09.03.2024 06:05:07 Sat Mar AM 06 24 +0000"},
          {"{{ logical_date > data_interval_end }} {{ (data_interval_end - logical_date).days }}", "False 1"},
          {"{{ prev_ds }} {{ prev_ds_nodash }} {{ next_ds }} {{ next_ds_nodash }}", "2024-03-08 20240308 2024-03-10 20240310"},
          {"{{ yesterday_ds }} {{ tomorrow_ds_nodash }} {{ ts_nodash_with_tz }}", "2024-03-08 20240310 20240309T060507+0000"},
          {"{{ prev_data_interval_start_success }} {{ prev_data_interval_end_success|ds }} {{ prev_start_date_success }}",
           "2024-03-08T00:00:00+00:00 2024-03-09 2024-03-09T00:01:02+00:00"},
          {"{{ dag_run.conf.region }} {{ dag_run.conf['n'] + 1 }} {{ dag_run.conf.tags|first }} {{ dag_run.conf.get('x', 'dflt') }}",
           "eu 4 x dflt"},
          {"{{ dag_run.run_id }} {{ dag_run.logical_date|ds }} {{ dag_run.run_type }} {{ dag_run.external_trigger }}",
           "manual__2024-03-09T06:05:07+00:00 2024-03-09 manual True"},
          {"{{ task.owner }} {{ task.task_id }} {{ ti.try_number }} {{ task_instance.task_id }}", "data-team cleanup 2 cleanup"},
          {"{{ ti.xcom_pull(task_ids='extract', key='rows') }} {{ ti.xcom_pull(task_ids=['extract', 'transform']) }}",
           "7 ['42', 't']"},
          {"{{ ti.xcom_pull('cleanup', default='none yet') }}", "none yet"},
      },
      c);
  SUBCASE("prev and next names are None where Airflow has none") {
    check_table({{"{{ prev_ds }} {{ next_ds }} {{ prev_start_date_success }}", "None None None"}});
  }
}

TEST_CASE("Template.VariablesAsJsonAndConnectionsAsObjects") {
  auto c = fixed_context();
  c.variable = [](std::string_view name) -> std::optional<std::string> {
    if (name == "cfg") return R"({"bucket": "b1", "limits": {"max": 5}})";
    if (name == "text") return "not json";
    return std::nullopt;
  };
  check_table({{"{{ var.json.cfg.bucket }} {{ var.json.cfg.limits.max * 2 }} {{ var.value.cfg|fromjson|length }}", "b1 10 2"},
               {"{{ var.json.text }}", "error: variable 'text' is not valid JSON"},
               {"{{ conn.warehouse.conn_type }} {{ conn.warehouse.extra_dejson }} {{ conn['warehouse'].login }}",
                "postgresql {} etl"}},
              c);
}

TEST_CASE("Template.TypedParamsAndTheirJson") {
  auto c = fixed_context();
  c.params = {{"n", "5"}, {"flags", R"(["a", "b"])"}, {"name", "x"}};
  c.typed_params = {"n", "flags"};
  check_table({{"{{ params.n + 1 }} {{ params.flags|join('+') }} {{ params.name }} {{ params.n is integer }}", "6 a+b x True"}}, c);
}

TEST_CASE("Template.RenderErrorsNameTheProblem") {
  check_table({
      {"{{ params.nope }}", "error: param 'nope' is not set"},
      {"{{ dag_run.conf.missing }}", "error: 'dict object' has no attribute 'missing'"},
      {"{{ 1 + 'a' }}", "error: unsupported operand types for +: 'int' and 'str'"},
      {"{{ 1 / 0 }}", "error: division by zero"},
      {"{{ 22222222222 ** 223 }}", "error: integer overflow in '**'"},
      {"{{ 9223372036854775807 + 1 }}", "error: integer overflow in '+'"},
      // The smallest integer has no positive counterpart: dividing it by -1 traps the CPU (SIGFPE).
      {"{{ (-9223372036854775807 - 1) // -1 }}", "error: integer overflow in '-'"},
      {"{{ (-9223372036854775807 - 1) % -1 }} {{ 7 // -1 }} {{ -7 % -1 }}", "0 -7 0"},
      {"{{ -(-9223372036854775807 - 1) }}", "error: integer overflow in '-'"},
      {"{{ (-9223372036854775807 - 1)|abs }}", "error: integer overflow in '-'"},
      {"{{ 1e999|int }}", "error: cannot convert float inf to integer"},
      {"{{ 1e300|int }}", "error: cannot convert float 1e+300 to integer"},
      {"{{ '%d' % 1e300 }}", "error: cannot convert float 1e+300 to integer"},
      {"{{ 2.9|int }} {{ -2.9|int }} {{ '%d' % 2.5 }} {{ '%d' % 9223372036854775807 }}", "2 -2 2 9223372036854775807"},
      {"{{ 1 ** 9000000000000000000 }}", "1"},
      {"{{ [1][5] }}", "error: list index 5 out of range"},
      {"{{ 'x'|ds_add(1) }}", "error: time data 'x' does not match format '%Y-%m-%d'"},
      {"{{ []|first }}", "error: No first item, sequence was empty."},
      {"{{ 1 < 'a' }}", "error: cannot compare int with str"},
      {"{{ 'x'|fromjson }}", "error: the value given to fromjson is not valid JSON"},
      {"{% for a, b in [[1]] %}{% endfor %}", "error: cannot unpack 1 values into 2 names"},
      {"{{ 5 is even and 'x'.nosuch() }}", "False"},
      {"{{ 'x'.nosuch() }}", "error: 'str' object has no attribute 'nosuch'"},
  });
}

TEST_CASE("Template.EveryLoadTimeErrorKind") {
  struct error_case {
    std::string text;
    std::string message;
    int column;
  };
  const std::vector<error_case> table{
      {"{{ dss }}", "unknown template variable 'dss' (did you mean 'ds'?)", 4},
      {"{{ execution_date }}", "template variable 'execution_date' is not supported by dagrun (use 'logical_date')", 4},
      {"{{ ds|uper }}", "unknown filter 'uper' (did you mean 'upper'?)", 7},
      {"{{ ds|replace('a') }}", "filter 'replace' takes 2 to 3 arguments, 1 given", 7},
      {"{{ ds|upper(1) }}", "filter 'upper' takes 0 arguments, 1 given", 7},
      {"{{ 1 is evn }}", "unknown test 'evn' (did you mean 'even'?) (defined, undefined, none, true, false, boolean, number, "
                         "integer, float, string, mapping, sequence, even, odd, divisibleby)", 9},
      {"{{ macros.ds_ad(ds, 1) }}", "unknown macro 'ds_ad' (did you mean 'ds_add'?) (macros has ds_add, ds_format, datetime, timedelta)", 11},
      {"{{ macros.ds_add(ds) }}", "macros.ds_add takes 2 arguments (ds, days), 1 given", 17},
      {"{{ dag_run.cnf }}", "unknown dag_run attribute 'cnf' (did you mean 'conf'?) (dag_run has conf, run_id, logical_date, "
                            "data_interval_start, data_interval_end, run_type, external_trigger, dag_id, execution_date)", 12},
      {"{{ task.ownr }}", "unknown task attribute 'ownr' (did you mean 'owner'?) (task has owner, task_id, dag_id)", 9},
      {"{{ var.jsn.x }}", "unknown variable accessor 'var.jsn'; use 'var.value.NAME' or 'var.json.NAME': 'jsn' (did you mean "
                          "'json'?) (var has value, json)", 8},
      {"{% iff %}", "unknown tag 'iff' (did you mean 'if'?) (supported: if/elif/else/endif, for/else/endfor, set, raw)", 4},
      {"{% if ds %}x", "'{% if %}' is never closed: expected '{% endif %}'", 1},
      {"{% for x in [1] %}x{% endif %}", "unexpected '{% endif %}' (expected '{% endfor %}')", 23},
      {"x{% endif %}", "unexpected '{% endif %}' with no open block", 5},
      {"{% for x in [1] %}{% endfor %}{{ x }}", "unknown template variable 'x'", 34},
      {"{{ loop.index }}", "unknown template variable 'loop'", 4},
      {"{% set = 1 %}", "expected a variable name in '{% set NAME = ... %}'", 8},
      {"{% for x [1] %}{% endfor %}", "expected 'in' in '{% for NAME in ... %}'", 10},
      {"{{ (1 + 2 }}", "expected ')' to close '(' but the expression ended", 11},
      {"{{ 1 + }}", "expected a value but the expression ended", 8},
      {"{{ ds ds }}", "unexpected 'ds' in '{{ ... }}'", 7},
      {"{{ ds | }}", "expected a filter name after '|' but the expression ended", 9},
      {"{{ f(a=1, 2) }}", "unknown template variable 'f'", 4},
      {"{{ 'x'.upper(a=1, 2) }}", "a positional argument follows a keyword argument", 19},
      {"{{ 1 $ 2 }}", "unexpected character '$' in template expression", 6},
      {"{{ 'abc }}", "unterminated string in template expression", 4},
      {"{% %}", "expected a tag name after '{%'", 1},
      {"{% raw %}x", "'{% raw %}' has no '{% endraw %}'", 1},
      {"a {% if x", "unclosed '{%' opened at column 3", 3},
      {"{{ conn.db.hots }}", "unknown connection attribute 'hots' (did you mean 'host'?) (a connection has host, port, login, "
                             "password, schema, conn_type, conn_id, extra, extra_dejson, description)", 12},
      {"{{ ti.xcom_pull('a', kye='b') }}", "unknown xcom_pull argument 'kye' (did you mean 'key'?) (task_ids, key, default)", 26},
  };
  for (const auto& row : table) {
    CAPTURE(row.text);
    auto e = parse_error(row.text);
    CHECK(std::string(e.what()) == row.message);
    CHECK(e.column() == row.column);
  }
}

TEST_CASE("Template.OptionalParamsPassTheLoadTimeCheck") {
  CHECK_NOTHROW(dag::check(dag::template_text::parse("{{ params.extra | default('x') }} {% if params.more is defined %}{% endif %}"),
                           scope()));
  CHECK(std::string(check_error("{{ params.extra }}", scope()).what()) == "unknown param 'extra'");
  SUBCASE("xcom task ids given in a list are checked one by one") {
    CHECK(std::string(check_error("{{ ti.xcom_pull(task_ids=['extract', 'extrct']) }}", scope()).what()) ==
          "xcom_pull of unknown task 'extrct' (did you mean 'extract'?)");
  }
}

TEST_CASE("Template.LocalNamesShadowNothingOutsideTheirBlock") {
  CHECK(render("{% set ds = 'mine' %}{{ ds }}") == "mine");
  CHECK(render("{% for ds in ['x'] %}{{ ds }}{% endfor %} {{ ds }}") == "x 2024-01-01");
  CHECK(dag::template_text::parse("a {# c #} {{ 'b' }}").is_constant());
  CHECK_FALSE(dag::template_text::parse("{% if true %}a{% endif %}").is_constant());
}

TEST_CASE("Template.WhatATemplateMayAskIsBounded") {
  // A template comes from a DAG file and renders values from outside (a run's conf): neither may
  // exhaust the stack, memory or time of the scheduler that renders it. Each bound fails the
  // render (the try) with a message saying which.
  const auto error_of = [](const std::string& text) -> std::string {
    try {
      (void)dag::render(text, fixed_context());
    } catch (const dag::error& e) {
      return e.what();
    }
    return "no error";
  };
  const auto has = [](const std::string& got, const std::string& part) {
    CAPTURE(got);
    CHECK(got.find(part) != std::string::npos);
  };
  // Nesting (each level is a recursion of the parser and the renderer): brackets, `not`, `-`, blocks.
  has(error_of("{{ " + std::string(5000, '[') + " }}"), "nests deeper than 64 levels");
  has(error_of("{{ " + std::string(5000, '(') + "1 }}"), "nests deeper than 64 levels");
  has(error_of("{{ " + std::string(20000, '-') + "1 }}"), "nests deeper than 64 levels");
  std::string nots = "{{ ";
  for (int i = 0; i < 5000; ++i) nots += "not ";
  has(error_of(nots + "true }}"), "nests deeper than 64 levels");
  std::string ifs;
  for (int i = 0; i < 3000; ++i) ifs += "{% if true %}";
  for (int i = 0; i < 3000; ++i) ifs += "{% endif %}";
  has(error_of(ifs), "nests deeper than 64 levels");
  // A long chain is a deep tree too (`1+1+…`, `a.b.c…`, `x|f|f…`).
  std::string sum = "{{ 1";
  for (int i = 0; i < 40000; ++i) sum += "+1";
  has(error_of(sum + " }}"), "at most 500 operators");
  std::string filters = "{{ 'x'";
  for (int i = 0; i < 5000; ++i) filters += "|upper";
  has(error_of(filters + " }}"), "at most 500 operators");
  // What is allowed still renders: 60 levels, a chain of 400.
  CHECK(dag::render("{{ " + std::string(60, '(') + "1" + std::string(60, ')') + " }}", fixed_context()) == "1");
  std::string fine = "{{ 0";
  for (int i = 0; i < 400; ++i) fine += "+1";
  CHECK(dag::render(fine + " }}", fixed_context()) == "400");
  // Sizes: a string or the output over 16 MiB, a list over 100,000 items, however they are made.
  has(error_of("{{ 'x' * 10000000000 }}"), "strings of at most 16 MiB");
  has(error_of("{{ ('x' * 20000000)|length }}"), "strings of at most 16 MiB");
  has(error_of("{% set s = 'x' * 9000000 %}{{ s ~ s }}"), "strings of at most 16 MiB");
  has(error_of("{% set s = 'x' * 9000000 %}{{ s + s }}"), "strings of at most 16 MiB");
  has(error_of("{{ ('x' * 1000000)|replace('x', 'yyyyyyyyyyyyyyyyyyyy') }}"), "strings of at most 16 MiB");
  has(error_of("{% set s %}a\nb{% endset %}{{ s|indent(100000000) }}"), "strings of at most 16 MiB");
  has(error_of("{% set s = 'x' * 1000000 %}{% for i in range(20) %}{{ s }}{% endfor %}"), "strings of at most 16 MiB");
  has(error_of("{{ ('x' * 200000)|list|length }}"), "lists of at most 100000 items");
  has(error_of("{% set l = range(60000)|list %}{{ (l + l)|length }}"), "lists of at most 100000 items");
  has(error_of("{{ [1]|tojson(1000000000) }}"), "indent must be at most 64");
  CHECK(dag::render("{{ ('x' * 1000000)|length }} {{ ('\xc3\xa9' * 3)|length }}", fixed_context()) == "1000000 3");
  // Time: nested loops that print nothing still count.
  has(error_of("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"),
      "at most 1000000 steps");
}

TEST_CASE("Template.ValuesBuiltWhileRenderingAreBoundedToo") {
  // What the parser cannot see: values nested, shared or compared as the template runs, and JSON
  // from outside (an XCom, a variable) given to fromjson.
  const auto error_of = [](const std::string& text) -> std::string {
    try {
      (void)dag::render(text, fixed_context());
    } catch (const dag::error& e) {
      return e.what();
    }
    return "no error";
  };
  const auto has = [](const std::string& got, const std::string& part, int line = __builtin_LINE()) {
    CAPTURE(line);
    CAPTURE(got);
    CHECK(got.find(part) != std::string::npos);
  };
  has(error_of("{% set x = [] %}{% for i in range(30000) %}{% set x = [x] %}{% endfor %}"), "nest lists and dicts at most 64 deep");
  has(error_of("{{ (('[' * 30000) ~ (']' * 30000))|fromjson|length }}"), "nest lists and dicts at most 64 deep");
  has(error_of("{% set a = [1] %}{% for i in range(60) %}{% set a = [a, a] %}{% if loop.last %}{{ a == a }}{% endif %}{% endfor %}"), "at most 1000000 steps");
  has(error_of("{% set a = [1] %}{% for i in range(60) %}{% set a = [a, a] %}{% if loop.last %}{{ a }}{% endif %}{% endfor %}"), "at most 1000000 steps");
  has(error_of("{% set a = [1] %}{% for i in range(60) %}{% set a = [a, a] %}{% if loop.last %}{{ a|tojson }}{% endif %}{% endfor %}"), "at most 1000000 steps");
  has(error_of("{{ range(100000)|unique|length }}"), "at most 1000000 steps");
  has(error_of("{{ ('x,' * 8000000).split(',')|length }}"), "lists of at most 100000 items");
  has(error_of("{{ ('[' ~ ('1,' * 200000) ~ '1]')|fromjson|length }}"), "lists of at most 100000 items");
  CHECK(dag::render("{{ '' * 9000000000000000000 }}|{{ 'ab' * 0 }}|{{ 'ab' * -3 }}", fixed_context()) == "||");
  // Within the bounds: 64 levels of JSON (as a run's conf may have, a value at the bottom), a loop
  // over 50,000 items.
  CHECK(dag::render("{{ (('[' * 64) ~ '1' ~ (']' * 64))|fromjson|length }}", fixed_context()) == "1");
  has(error_of("{{ (('[' * 65) ~ (']' * 65))|fromjson|length }}"), "nest lists and dicts at most 64 deep");
  // Refused before it is parsed (fuzzing found a million `[` that took seconds to build and free);
  // brackets inside a JSON string do not count.
  has(error_of("{{ ('[' * 1000000)|fromjson|length }}"), "nest lists and dicts at most 64 deep");
  CHECK(dag::render("{{ ('[\"' ~ ('[{' * 100) ~ '\"]')|fromjson|length }}", fixed_context()) == "1");
  CHECK(dag::render("{% for i in range(50000) %}{% endfor %}{{ range(50000)|sum }}", fixed_context()) == "1249975000");
}

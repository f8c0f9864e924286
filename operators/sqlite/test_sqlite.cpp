// The sqlite operator against real SQLite files.
#include <doctest/doctest.h>

#include <filesystem>

#include <unistd.h>

#include <dag/operators/sqlite.hpp>

namespace {
struct scratch {
  std::filesystem::path dir = std::filesystem::temp_directory_path() / ("dagrun-op-sqlite-" + std::to_string(::getpid()));
  scratch() { std::filesystem::create_directories(dir); }
  ~scratch() { std::filesystem::remove_all(dir); }
};

dag::operator_result run_sql(dag::task_context& ctx) {
  dag::task t;
  t.id = "q";
  return dag::operators::sqlite::run(t, ctx);
}
}  // namespace

TEST_CASE("SqliteOperator.RunsStatementsAndPushesRowsAsJson") {
  scratch s;
  dag::task_context ctx;
  ctx.fields["database"] = (s.dir / "w.db").string();
  ctx.fields["sql"] =
      "CREATE TABLE t(id INTEGER, name TEXT, score REAL, note TEXT); "
      "INSERT INTO t VALUES (1, 'a\"b', 1.5, NULL), (2, 'line\nbreak', 2.0, 'x'); "
      "SELECT id, name, note, score FROM t ORDER BY id;";
  auto r = run_sql(ctx);
  CHECK(r.outcome == dag::try_outcome::success);
  CHECK(r.xcom == R"([[1,"a\"b",null,1.5],[2,"line\nbreak","x",2]])");
}

TEST_CASE("SqliteOperator.BindsParametersAndUsesConnections") {
  scratch s;
  dag::task_context ctx;
  const std::string path = (s.dir / "c.db").string();
  ctx.connection_lookup = [&](std::string_view id) -> std::optional<dag::connection> {
    if (id != "local") return std::nullopt;
    return dag::parse_connection_uri("local", "sqlite://" + path);
  };
  ctx.fields["conn_id"] = "local";
  ctx.fields["sql"] = "SELECT ? || '-' || ?";
  ctx.fields["parameters.0"] = "2024-01-01";
  ctx.fields["parameters.1"] = "x";
  auto r = run_sql(ctx);
  CHECK(r.outcome == dag::try_outcome::success);
  CHECK(r.xcom == R"([["2024-01-01-x"]])");
  ctx.fields["conn_id"] = "missing";
  CHECK(run_sql(ctx).message == "connection 'missing' is not defined");
}

TEST_CASE("SqliteOperator.BadSqlThrowsForTheExecutorToRecord") {
  scratch s;
  dag::task_context ctx;
  ctx.fields["database"] = (s.dir / "b.db").string();
  ctx.fields["sql"] = "SELEC 1";
  CHECK_THROWS_WITH(run_sql(ctx), doctest::Contains("syntax error"));
}

TEST_CASE("SqliteOperator.LargeResultsAreCappedWithAMessage") {
  scratch s;
  dag::task_context ctx;
  ctx.fields["database"] = (s.dir / "big.db").string();
  ctx.fields["sql"] =
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) SELECT i, 'row' FROM n";
  auto r = run_sql(ctx);
  CHECK(r.outcome == dag::try_outcome::success);
  REQUIRE(r.xcom);
  CHECK(r.xcom->size() <= dag::operators::sqlite::xcom_limit);
  CHECK(r.message.find("result capped at 65536 bytes") != std::string::npos);
}

TEST_CASE("SqliteOperator.CommentsAndQuotedSemicolonsDoNotSplitStatements") {
  scratch s;
  dag::task_context ctx;
  ctx.fields["database"] = (s.dir / "comments.db").string();
  ctx.fields["sql"] =
      "-- the table; made once\n"
      "CREATE TABLE t(id INTEGER, note TEXT); /* a; b */\n"
      "INSERT INTO t VALUES (1, 'x;y'), (2, '-- not a comment');\n"
      "SELECT id, note FROM t ORDER BY id; -- the result; the last statement\n"
      "/* trailing; block */ ;;\n";
  auto r = run_sql(ctx);
  CHECK(r.outcome == dag::try_outcome::success);
  CHECK(r.xcom == R"([[1,"x;y"],[2,"-- not a comment"]])");
}

TEST_CASE("SqliteOperator.ParametersBindToEveryStatementWithPlaceholders") {
  scratch s;
  dag::task_context ctx;
  ctx.fields["database"] = (s.dir / "params.db").string();
  ctx.fields["sql"] =
      "CREATE TABLE t(day TEXT); INSERT INTO t VALUES (?); SELECT day, (SELECT count(*) FROM t WHERE day = ?) FROM t";
  ctx.fields["parameters.0"] = "2024-01-01";
  auto r = run_sql(ctx);
  CHECK(r.outcome == dag::try_outcome::success);
  CHECK(r.xcom == R"([["2024-01-01",1]])");
}

TEST_CASE("SqliteOperator.AFailingStatementRollsBackTheWholeScript") {
  scratch s;
  dag::task_context ctx;
  ctx.fields["database"] = (s.dir / "rollback.db").string();
  ctx.fields["sql"] = "CREATE TABLE t(id INTEGER PRIMARY KEY)";
  CHECK(run_sql(ctx).outcome == dag::try_outcome::success);
  ctx.fields["sql"] = "INSERT INTO t VALUES (1); INSERT INTO t VALUES (1); SELECT 1";
  CHECK_THROWS_WITH(run_sql(ctx), doctest::Contains("UNIQUE"));
  ctx.fields["sql"] = "SELECT count(*) FROM t";
  CHECK(run_sql(ctx).xcom == "[[0]]");
}

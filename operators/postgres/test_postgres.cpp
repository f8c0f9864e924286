// The postgres operator against the tests' throwaway PostgreSQL (scripts/test-postgres.sh).
#include <doctest/doctest.h>

#include <cstdlib>

#include <dag/operators/postgres.hpp>

namespace {
// The test server's URL; a clear failure when it is missing, never a silent skip.
std::string server_url() {
  const char* url = std::getenv("DAGRUN_TEST_POSTGRES_URL");
  if (!url || !*url)
    FAIL("DAGRUN_TEST_POSTGRES_URL is not set: start a server with scripts/test-postgres.sh start DIR PORT "
         "and export the URL it prints (scripts/test.sh does this)");
  return url;
}

struct pg_try {
  dag::task_context ctx;
  std::vector<std::string> logged;
  explicit pg_try(const std::string& url) {
    ctx.fields["conn_id"] = "warehouse";
    ctx.connection_lookup = [url](std::string_view id) -> std::optional<dag::connection> {
      if (id != "warehouse") return std::nullopt;
      return dag::parse_connection_uri("warehouse", url);
    };
    ctx.log = [this](std::string_view l) { logged.emplace_back(l); };
  }
  dag::operator_result run(const std::string& sql) {
    ctx.fields["sql"] = sql;
    return dag::operators::postgres::run(dag::task{}, ctx);
  }
};
}  // namespace

TEST_CASE("PostgresOperator.RowsGoToXComAsJson") {
  pg_try t(server_url());
  auto r = t.run("SELECT 1::int AS a, 'x\"y'::text AS b, NULL::text AS c, true AS d, 2.5::float8 AS e");
  CHECK(r.outcome == dag::try_outcome::success);
  CHECK(r.xcom == R"([[1,"x\"y",null,true,2.5]])");
}

TEST_CASE("PostgresOperator.ParametersBindAndATransactionCommitsOrRollsBack") {
  pg_try t(server_url());
  REQUIRE(t.run("DROP TABLE IF EXISTS op_test; CREATE TABLE op_test(id int, note text)").outcome == dag::try_outcome::success);
  t.ctx.fields["parameters.0"] = "7";
  t.ctx.fields["parameters.1"] = "seven";
  CHECK(t.run("INSERT INTO op_test VALUES ($1::int, $2) RETURNING id").xcom == "[[7]]");
  t.ctx.fields.erase("parameters.0");
  t.ctx.fields.erase("parameters.1");
  // The second statement fails, so the first one's insert is rolled back with it.
  auto bad = t.run("INSERT INTO op_test VALUES (8, 'eight'); SELECT no_such_column FROM op_test");
  CHECK(bad.outcome == dag::try_outcome::failed);
  CHECK(bad.message.starts_with("SQL error: "));
  CHECK(t.run("SELECT count(*) FROM op_test").xcom == "[[1]]");
  // Without a transaction, statements that refuse to run inside one work.
  CHECK(t.run("VACUUM op_test").outcome == dag::try_outcome::failed);
  t.ctx.fields["autocommit"] = "true";
  CHECK(t.run("VACUUM op_test").outcome == dag::try_outcome::success);
  t.run("DROP TABLE op_test");
}

TEST_CASE("PostgresOperator.LargeResultsAreCapped") {
  pg_try t(server_url());
  auto r = t.run("SELECT g, repeat('x', 50) FROM generate_series(1, 5000) g");
  CHECK(r.outcome == dag::try_outcome::success);
  CHECK(r.xcom->size() <= dag::operators::postgres::xcom_limit);
  CHECK(r.message.find("result capped") != std::string::npos);
}

TEST_CASE("PostgresOperator.UnknownConnectionAndUnreachableServerFailCleanly") {
  pg_try t(server_url());
  t.ctx.fields["conn_id"] = "nope";
  CHECK(t.run("SELECT 1").message == "connection 'nope' is not defined");
  pg_try down("postgresql://u:hunter2@127.0.0.1:1/db");
  auto r = down.run("SELECT 1");
  CHECK(r.outcome == dag::try_outcome::failed);
  CHECK(r.message.starts_with("cannot connect to 'warehouse'"));
  CHECK(r.message.find("hunter2") == std::string::npos);
}

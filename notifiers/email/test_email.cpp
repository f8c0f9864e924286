// The e-mail notifier against a real SMTP server on loopback (tests/support/smtp_sink.hpp).
#include <doctest/doctest.h>

#include <cstdlib>

#include <dag/notifiers/email.hpp>

#include "../../tests/support/smtp_sink.hpp"

namespace {
dag::alert failure() {
  return {"failure", "etl", "manual__2024-01-01T00:00:00+00:00", "load", 2, "failed", "exit status 3",
          "http://dagrun.local/dags/etl/runs/manual__2024-01-01T00%3A00%3A00%2B00%3A00/tasks/load/logs/2",
          dag::parse_time("2024-01-01")};
}
}  // namespace

TEST_CASE("EmailNotifier.SendsTheAlertToEveryRecipient" * doctest::timeout(30)) {
  dag_test::smtp_sink sink;
  dag::notifiers::smtp_settings s;
  s.port = sink.port();
  s.starttls = false;
  s.mail_from = "dagrun@example.com";
  dag::notifiers::send_email(s, dag::notifiers::alert_email(failure(), {"ops@example.com", "lead@example.com"}));
  const auto mails = sink.mails();
  REQUIRE(mails.size() == 1);
  CHECK(mails[0].from == "dagrun@example.com");
  CHECK(mails[0].to == std::vector<std::string>{"ops@example.com", "lead@example.com"});
  CHECK(mails[0].data.find("Subject: dagrun alert: task etl.load [failed]\r\n") != std::string::npos);
  CHECK(mails[0].data.find("To: ops@example.com, lead@example.com\r\n") != std::string::npos);
  CHECK(mails[0].data.find("Error: exit status 3\r\n") != std::string::npos);
  CHECK(mails[0].data.find("Log: http://dagrun.local/dags/etl/runs/") != std::string::npos);
}

TEST_CASE("EmailNotifier.SettingsComeFromTheEnvironmentOrAConnection") {
  ::setenv("DAGRUN_SMTP_HOST", "mail.local", 1);
  ::setenv("DAGRUN_SMTP_PORT", "2525", 1);
  ::setenv("DAGRUN_SMTP_STARTTLS", "False", 1);
  ::setenv("DAGRUN_SMTP_MAIL_FROM", "alerts@example.com", 1);
  auto env = dag::notifiers::smtp_settings::from_environment();
  ::unsetenv("DAGRUN_SMTP_HOST");
  ::unsetenv("DAGRUN_SMTP_PORT");
  ::unsetenv("DAGRUN_SMTP_STARTTLS");
  ::unsetenv("DAGRUN_SMTP_MAIL_FROM");
  CHECK(env.host == "mail.local");
  CHECK(env.port == 2525);
  CHECK_FALSE(env.starttls);
  CHECK(env.mail_from == "alerts@example.com");
  auto conn = dag::notifiers::smtp_settings::from_connection(
      dag::parse_connection_uri("smtp_default", "smtps://bot:secret-pw@smtp.example.com?mail_from=bot%40example.com"));
  CHECK(conn.ssl);
  CHECK(conn.port == 465);
  CHECK(conn.user == "bot");
  CHECK(conn.mail_from == "bot@example.com");
}

TEST_CASE("EmailNotifier.AClosedPortIsAnErrorNotACrash" * doctest::timeout(30)) {
  unsigned short port = 0;
  { dag_test::smtp_sink gone; port = gone.port(); }
  dag::notifiers::smtp_settings s;
  s.host = "127.0.0.1";
  s.port = port;
  s.password = "never-shown";
  s.user = "u";
  try {
    dag::notifiers::send_email(s, dag::notifiers::alert_email(failure(), {"ops@example.com"}));
    FAIL("no error");
  } catch (const dag::error& e) {
    CHECK(std::string(e.what()).starts_with("e-mail through 127.0.0.1:" + std::to_string(port) + ": "));
    CHECK(std::string(e.what()).find("never-shown") == std::string::npos);
  }
}

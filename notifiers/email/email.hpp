#pragma once
/// @file The e-mail notifier: an alert as a plain-text mail over SMTP (libcurl, kept in email.cpp).

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <dag/core/alert.hpp>
#include <dag/core/connection.hpp>

namespace dag::notifiers {

/// Where and how mail is sent: Airflow's `[smtp]` settings.
struct smtp_settings {
  std::string host = "localhost";            ///< server host
  int port = 25;                             ///< server port
  bool starttls = true;                      ///< upgrade with STARTTLS (required when on)
  bool ssl = false;                          ///< TLS from the first byte (`smtps`)
  std::string user;                          ///< login; none when empty
  std::string password;                      ///< secret
  std::string mail_from = "dagrun@localhost";  ///< the sender

  /// From `DAGRUN_SMTP_HOST`, `_PORT`, `_STARTTLS`, `_SSL`, `_USER`, `_PASSWORD`, `_MAIL_FROM`
  /// (each optional; the defaults above otherwise). Throws dag::usage_error on a bad port.
  static smtp_settings from_environment();
  /// From a connection: `smtp://user:password@host:port` (`smtps://` for SSL), with `starttls`
  /// and `mail_from` in its extra.
  static smtp_settings from_connection(const connection& c);
};

/// One mail.
struct email_message {
  std::vector<std::string> to;  ///< recipients
  std::string subject;          ///< the subject line
  std::string body;             ///< plain text
};

/// The mail an alert sends to `to`; `subject` replaces the default subject when not empty.
email_message alert_email(const alert& a, std::vector<std::string> to, const std::string& subject = "");

/// Sends `m` through `s` within `timeout`. Throws dag::error saying why (never the password).
void send_email(const smtp_settings& s, const email_message& m, std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace dag::notifiers

#pragma once
/// @file The webhook notifier: an alert as a JSON document POSTed to a URL (Slack, Teams and other
/// incoming webhooks read its `text`), sent by the http operator's request code.

#include <chrono>
#include <string>

#include <dag/core/alert.hpp>
#include <dag/core/connection.hpp>

namespace dag::notifiers {

/// The JSON document: `text` (one readable line), `event`, `dag_id`, `run_id`, `task_id`,
/// `try_number`, `state`, `logical_date`, `log_url`, `error`.
std::string webhook_payload(const alert& a);

/// POSTs the payload to `endpoint` on `target` (its base URL, auth and TLS settings as the http
/// operator reads them). Throws dag::error when no 2xx answer comes within `timeout`.
void send_webhook(const connection& target, const std::string& endpoint, const alert& a,
                  std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace dag::notifiers

// The webhook notifier, on the http operator's request code.
#include <dag/notifiers/webhook.hpp>

#include <nlohmann/json.hpp>

#include <dag/core/error.hpp>
#include <dag/core/secret_mask.hpp>
#include <dag/core/task.hpp>
#include <dag/operators/http.hpp>

namespace dag::notifiers {

std::string webhook_payload(const alert& a) {
  std::string text = "dagrun: ";
  text += a.task_id.empty() ? "run " + a.run_id + " of DAG " + a.dag_id : "task " + a.dag_id + "." + a.task_id + " (try " + std::to_string(a.try_number) + ", run " + a.run_id + ")";
  text += " is " + a.state;
  if (!a.error.empty()) text += ": " + a.error;
  if (!a.log_url.empty()) text += " — log: " + a.log_url;
  nlohmann::json doc{{"text", text},
                     {"event", a.event},
                     {"dag_id", a.dag_id},
                     {"run_id", a.run_id},
                     {"task_id", a.task_id},
                     {"try_number", a.try_number},
                     {"state", a.state},
                     {"logical_date", format_iso(a.logical_date)},
                     {"log_url", a.log_url},
                     {"error", a.error}};
  return doc.dump();
}

void send_webhook(const connection& target, const std::string& endpoint, const alert& a, std::chrono::milliseconds timeout) {
  task_context ctx;
  ctx.fields = {{"conn_id", target.conn_id},
                {"method", "POST"},
                {"endpoint", endpoint},
                {"data", webhook_payload(a)},
                {"headers.Content-Type", "application/json"}};
  ctx.timeout = timeout;
  ctx.connection_lookup = [&target](std::string_view) { return std::optional(target); };
  const auto reply = operators::http::send(ctx);
  // A webhook's path is often its secret (Slack's /services/T…/B…/…): messages never show it.
  if (auto why = operators::http::rejected(ctx, reply)) throw error("webhook: " + mask_secrets(*why, {target.schema, endpoint}));
}

}  // namespace dag::notifiers

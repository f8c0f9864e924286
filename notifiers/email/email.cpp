// The e-mail notifier over libcurl's SMTP (kept here: email.hpp does not include curl).
#include <dag/notifiers/email.hpp>

#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>

#include <curl/curl.h>
#include <nlohmann/json.hpp>

#include <dag/core/error.hpp>

namespace dag::notifiers {

namespace {

bool yes(std::string v) {
  for (char& c : v) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  return v == "true" || v == "1" || v == "yes" || v == "on";
}

int port_of(const std::string& text, const std::string& name) {
  if (text.empty() || text.size() > 5 || text.find_first_not_of("0123456789") != std::string::npos)
    throw usage_error(name + ": expected a port number, got '" + text + "'");
  return std::stoi(text);
}

struct outgoing {
  std::string text;
  std::size_t sent = 0;
};

std::size_t read_message(char* buffer, std::size_t size, std::size_t count, void* user) {
  auto& m = *static_cast<outgoing*>(user);
  const std::size_t n = std::min(size * count, m.text.size() - m.sent);
  std::memcpy(buffer, m.text.data() + m.sent, n);
  m.sent += n;
  return n;
}

// RFC 5322 date, e.g. `Tue, 01 Dec 2026 14:00:00 +0000`.
std::string mail_date() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &utc);
  return buf;
}

// Text with bare newlines as CRLF, as SMTP wants them.
std::string crlf(const std::string& text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r')) out += '\r';
    out += text[i];
  }
  return out;
}

// A header value on one line: a newline in it would start a header of its own.
std::string one_line(std::string v) {
  for (char& c : v)
    if (c == '\r' || c == '\n') c = ' ';
  return v;
}

}  // namespace

smtp_settings smtp_settings::from_environment() {
  smtp_settings s;
  auto env = [](const char* name) -> std::optional<std::string> {
    if (const char* v = std::getenv(name)) return std::string(v);
    return std::nullopt;
  };
  if (auto v = env("DAGRUN_SMTP_HOST")) s.host = *v;
  if (auto v = env("DAGRUN_SMTP_PORT")) s.port = port_of(*v, "DAGRUN_SMTP_PORT");
  if (auto v = env("DAGRUN_SMTP_STARTTLS")) s.starttls = yes(*v);
  if (auto v = env("DAGRUN_SMTP_SSL")) s.ssl = yes(*v);
  if (auto v = env("DAGRUN_SMTP_USER")) s.user = *v;
  if (auto v = env("DAGRUN_SMTP_PASSWORD")) s.password = *v;
  if (auto v = env("DAGRUN_SMTP_MAIL_FROM")) s.mail_from = *v;
  return s;
}

smtp_settings smtp_settings::from_connection(const connection& c) {
  smtp_settings s;
  s.ssl = c.conn_type == "smtps";
  if (!c.host.empty()) s.host = c.host;
  s.port = c.port.value_or(s.ssl ? 465 : 25);
  s.user = c.login;
  s.password = c.password;
  const auto extra = nlohmann::json::parse(c.extra.empty() ? "{}" : c.extra, nullptr, false);
  if (extra.is_object()) {
    auto text = [&](const char* name) -> std::optional<std::string> {
      if (!extra.contains(name)) return std::nullopt;
      const auto& v = extra.at(name);
      return v.is_string() ? v.get<std::string>() : v.dump();
    };
    if (auto v = text("starttls")) s.starttls = yes(*v);
    if (auto v = text("mail_from")) s.mail_from = *v;
    else if (auto from = text("from")) s.mail_from = *from;
  }
  return s;
}

email_message alert_email(const alert& a, std::vector<std::string> to, const std::string& subject) {
  email_message m;
  m.to = std::move(to);
  const std::string what = a.task_id.empty() ? "run " + a.run_id + " of DAG " + a.dag_id : "task " + a.dag_id + "." + a.task_id;
  // An SLA miss is not a state change: the subject names the miss, the body the state.
  m.subject = subject.empty() ? "dagrun alert: " + what + " [" + (a.event == "sla_miss" ? "sla_miss" : a.state) + "]" : subject;
  m.body = "DAG: " + a.dag_id + "\nRun: " + a.run_id + "\n";
  if (!a.task_id.empty()) m.body += "Task: " + a.task_id + "\nTry: " + std::to_string(a.try_number) + "\n";
  m.body += "State: " + a.state + "\n";
  if (!a.error.empty()) m.body += "Error: " + a.error + "\n";
  if (!a.log_url.empty()) m.body += "Log: " + a.log_url + "\n";
  return m;
}

void send_email(const smtp_settings& s, const email_message& m, std::chrono::milliseconds timeout) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (m.to.empty()) throw error("e-mail: no recipients");
  CURL* h = curl_easy_init();
  if (!h) throw error("e-mail: libcurl could not start a transfer");
  curl_slist* rcpt = nullptr;
  std::string to_header;
  for (const auto& r : m.to) {
    rcpt = curl_slist_append(rcpt, ("<" + r + ">").c_str());
    to_header += (to_header.empty() ? "" : ", ") + one_line(r);
  }
  outgoing out;
  out.text = "Date: " + mail_date() + "\r\nFrom: " + one_line(s.mail_from) + "\r\nTo: " + to_header +
             "\r\nSubject: " + one_line(m.subject) +
             "\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + crlf(m.body);
  const std::string where = s.host + ":" + std::to_string(s.port);
  const std::string url = (s.ssl ? "smtps://" : "smtp://") + where;
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
  const std::string from = "<" + s.mail_from + ">";
  curl_easy_setopt(h, CURLOPT_MAIL_FROM, from.c_str());
  curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpt);
  curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(h, CURLOPT_READFUNCTION, &read_message);
  curl_easy_setopt(h, CURLOPT_READDATA, &out);
  curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(out.text.size()));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  if (s.starttls && !s.ssl) curl_easy_setopt(h, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_ALL));
  if (!s.user.empty()) {
    curl_easy_setopt(h, CURLOPT_USERNAME, s.user.c_str());
    curl_easy_setopt(h, CURLOPT_PASSWORD, s.password.c_str());
  }
  const CURLcode code = curl_easy_perform(h);
  curl_slist_free_all(rcpt);
  curl_easy_cleanup(h);
  if (code != CURLE_OK) throw error("e-mail through " + where + ": " + curl_easy_strerror(code));
}

}  // namespace dag::notifiers

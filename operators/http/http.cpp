// The http operator on libcurl (kept here: http.hpp does not include curl).
#include <dag/operators/http.hpp>

#include <chrono>
#include <cstdio>
#include <mutex>

#include <curl/curl.h>
#include <nlohmann/json.hpp>

#include <dag/core/connection.hpp>
#include <dag/core/time.hpp>

namespace dag::operators {

namespace {

using json = nlohmann::json;

void init_curl_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// Owners of curl's handles, so every way out of send() frees them.
struct easy_handle {
  CURL* h = curl_easy_init();
  easy_handle() = default;
  easy_handle(const easy_handle&) = delete;
  easy_handle& operator=(const easy_handle&) = delete;
  ~easy_handle() { if (h) curl_easy_cleanup(h); }
};
struct header_list {
  curl_slist* list = nullptr;
  header_list() = default;
  header_list(const header_list&) = delete;
  header_list& operator=(const header_list&) = delete;
  ~header_list() { curl_slist_free_all(list); }
  void add(const std::string& line) {
    if (curl_slist* grown = curl_slist_append(list, line.c_str())) list = grown;
  }
};

// What the write and progress callbacks share with send().
struct transfer {
  std::string body;
  bool too_large = false;
  std::stop_token stop;
};

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
  auto& t = *static_cast<transfer*>(user);
  const std::size_t n = size * count;
  if (t.body.size() + n > http::body_limit) {
    t.too_large = true;
    return 0;  // curl ends the transfer with CURLE_WRITE_ERROR
  }
  t.body.append(data, n);
  return n;
}

// Called by curl at least once a second while the transfer lives: a stop request aborts it.
int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<transfer*>(user)->stop.stop_requested() ? 1 : 0;
}

std::string lower(std::string s) {
  for (char& c : s) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  return s;
}

// A member of the connection's `extra`, as text (`false` for a boolean false); nullopt if absent.
std::optional<std::string> extra_member(const connection& c, const std::string& name) {
  if (c.extra.empty()) return std::nullopt;
  const json extra = json::parse(c.extra, nullptr, false);
  if (!extra.is_object() || !extra.contains(name)) return std::nullopt;
  const json& v = extra.at(name);
  return v.is_string() ? v.get<std::string>() : v.dump();
}

// The connection's base URL, Airflow's way: a host holding `scheme://` is the base itself;
// otherwise `https` for an https connection, else `http`, then host, port and schema (its path).
std::string base_url(const connection& c) {
  std::string url = c.host.find("://") != std::string::npos ? c.host : (c.conn_type == "https" ? "https://" : "http://") + c.host;
  if (c.port && c.host.find("://") == std::string::npos) url += ":" + std::to_string(*c.port);
  if (!c.schema.empty()) url += (url.ends_with('/') ? "" : "/") + c.schema;
  return url;
}

// `base` and `endpoint` joined with one slash; an endpoint that is a whole URL stands alone.
std::string joined(const std::string& base, const std::string& endpoint) {
  if (endpoint.empty()) return base;
  if (endpoint.find("://") != std::string::npos) return endpoint;
  if (base.ends_with('/') && endpoint.starts_with('/')) return base + endpoint.substr(1);
  if (base.ends_with('/') || endpoint.starts_with('/') || endpoint.starts_with('?')) return base + endpoint;
  return base + "/" + endpoint;
}

bool truthy(const json& v) {
  if (v.is_null()) return false;
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number()) return v.get<double>() != 0.0;
  if (v.is_string() || v.is_array() || v.is_object()) return !v.empty();
  return true;
}

// A JSON pointer from text, or nullopt when it is not one.
std::optional<json::json_pointer> pointer(const std::string& text) {
  try {
    return json::json_pointer(text);
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

std::string field_or(const task_context& ctx, const std::string& name, std::string fallback) {
  const auto it = ctx.fields.find(name);
  return it == ctx.fields.end() ? fallback : it->second;
}

std::string seconds_text(std::chrono::steady_clock::duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3fs", std::chrono::duration<double>(d).count());
  return buf;
}

// A body shown in a message: its first line, cut short.
std::string excerpt(const std::string& body) {
  std::string out = body.substr(0, body.find('\n'));
  if (out.size() > 200) out = out.substr(0, 200) + "…";
  return out;
}

}  // namespace

http::reply http::send(task_context& ctx) {
  init_curl_once();
  reply out;
  const std::string conn_id = ctx.fields.at("conn_id");
  const auto c = ctx.connection_lookup ? ctx.connection_lookup(conn_id) : std::nullopt;
  if (!c) {
    out.failure = "connection '" + conn_id + "' is not defined";
    return out;
  }
  const std::string method = field_or(ctx, "method", "POST");
  const std::string data = field_or(ctx, "data", "");
  std::string url = joined(base_url(*c), field_or(ctx, "endpoint", ""));
  const bool body_method = method == "POST" || method == "PUT" || method == "PATCH";
  if (!body_method && !data.empty()) url += (url.find('?') == std::string::npos ? "?" : "&") + data;

  easy_handle easy;
  if (!easy.h) {
    out.failure = "libcurl could not start a transfer";
    return out;
  }
  CURL* h = easy.h;
  transfer t;
  t.stop = ctx.stop;
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "dagrun");
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, &on_progress);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, &t);
  const bool follow = !ctx.fields.contains("follow_redirects") || field_is_true(ctx, "follow_redirects");
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, follow ? 1L : 0L);
  curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);

  // The tighter of `timeout` and execution_timeout bounds the whole request.
  std::optional<std::chrono::milliseconds> limit = ctx.timeout;
  bool limit_is_execution_timeout = ctx.timeout.has_value();
  if (auto f = ctx.fields.find("timeout"); f != ctx.fields.end()) {
    const auto own = std::chrono::duration_cast<std::chrono::milliseconds>(parse_duration(f->second));
    if (!limit || own < *limit) {
      limit = own;
      limit_is_execution_timeout = false;
    }
  }
  if (limit) curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(limit->count()));

  // TLS: verified unless the connection's extra turns it off; its CA file when it names one.
  if (auto verify = extra_member(*c, "verify"); verify && (lower(*verify) == "false" || *verify == "0")) {
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (auto ca = extra_member(*c, "ca_file")) curl_easy_setopt(h, CURLOPT_CAINFO, ca->c_str());

  header_list headers;
  bool has_content_type = false;
  const std::string header_prefix = "headers.";
  for (const auto& [name, value] : ctx.fields) {
    if (!name.starts_with(header_prefix)) continue;
    const std::string header = name.substr(header_prefix.size());
    has_content_type = has_content_type || lower(header) == "content-type";
    headers.add(header + ": " + value);
  }
  if (!c->login.empty()) {
    curl_easy_setopt(h, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BASIC));
    curl_easy_setopt(h, CURLOPT_USERNAME, c->login.c_str());
    curl_easy_setopt(h, CURLOPT_PASSWORD, c->password.c_str());
  }
  if (auto token = extra_member(*c, "token")) headers.add("Authorization: Bearer " + *token);
  if (body_method) {
    if (!has_content_type && !data.empty()) {
      const bool is_json = json::accept(data) && (data.find_first_not_of(" \t\r\n") != std::string::npos) &&
                           (data[data.find_first_not_of(" \t\r\n")] == '{' || data[data.find_first_not_of(" \t\r\n")] == '[');
      headers.add(is_json ? "Content-Type: application/json" : "Content-Type: application/x-www-form-urlencoded");
    }
    headers.add("Expect:");  // no 100-continue round trip before a large body
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(data.size()));
    curl_easy_setopt(h, CURLOPT_COPYPOSTFIELDS, data.c_str());
    if (method != "POST") curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method.c_str());
  } else if (method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (method != "GET") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method.c_str());
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.list);

  if (ctx.log) ctx.log("[dagrun] " + method + " " + url);
  const auto began = std::chrono::steady_clock::now();
  const CURLcode code = curl_easy_perform(h);
  const std::string took = seconds_text(std::chrono::steady_clock::now() - began);
  out.body = std::move(t.body);
  if (code == CURLE_OK) {
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out.status);
    if (ctx.log) ctx.log("[dagrun] HTTP " + std::to_string(out.status) + " in " + took + ", " + std::to_string(out.body.size()) + " bytes");
    return out;
  }
  if (code == CURLE_ABORTED_BY_CALLBACK) out.failure = "stopped: the request was cancelled after " + took;
  else if (code == CURLE_OPERATION_TIMEDOUT && limit_is_execution_timeout) out.failure = "execution_timeout exceeded: request cancelled after " + took;
  else if (code == CURLE_OPERATION_TIMEDOUT) out.failure = "request timed out after " + took;
  else if (t.too_large) out.failure = "response body larger than " + std::to_string(body_limit) + " bytes";
  else out.failure = std::string(curl_easy_strerror(code)) + " (" + method + " " + url + ")";
  if (ctx.log) ctx.log("[dagrun] " + out.failure);
  return out;
}

std::optional<std::string> http::rejected(const task_context& ctx, const reply& r) {
  if (!r.failure.empty()) return r.failure;
  bool expected = false;
  std::string wanted;
  for (int i = 0;; ++i) {
    const auto it = ctx.fields.find("expected_status." + std::to_string(i));
    if (it == ctx.fields.end()) break;
    wanted += (wanted.empty() ? "" : ", ") + it->second;
    expected = expected || it->second == std::to_string(r.status);
  }
  if (wanted.empty()) {
    wanted = "2xx";
    expected = r.status >= 200 && r.status < 300;
  }
  if (!expected) {
    std::string why = "HTTP " + std::to_string(r.status) + ", expected " + wanted;
    if (!r.body.empty()) why += ": " + excerpt(r.body);
    return why;
  }
  if (auto check = ctx.fields.find("response_check"); check != ctx.fields.end())
    if (auto why = failed_check(check->second, r.body)) return "response_check failed: " + *why;
  return std::nullopt;
}

operator_result http::run(const task&, task_context& ctx) {
  const reply r = send(ctx);
  if (auto why = rejected(ctx, r)) {
    if (ctx.log && r.failure.empty()) ctx.log("[dagrun] " + *why);
    return operator_result::failed(*why);
  }
  return accepted(ctx, r);
}

operator_result http::accepted(task_context& ctx, const reply& r) {
  if (ctx.fields.contains("method") && ctx.fields.at("method") == "HEAD") return operator_result::success();
  std::string value = r.body;
  if (auto f = ctx.fields.find("response_filter"); f != ctx.fields.end()) {
    std::string why;
    auto picked = filtered(f->second, r.body, why);
    if (!picked) {
      if (ctx.log) ctx.log("[dagrun] response_filter: " + why);
      return operator_result::failed("response_filter: " + why);
    }
    value = std::move(*picked);
  }
  operator_result out = operator_result::success();
  if (value.size() > xcom_limit) {
    std::size_t cut = xcom_limit;
    while (cut > 0 && (static_cast<unsigned char>(value[cut]) & 0xC0) == 0x80) --cut;  // whole UTF-8 characters
    out.message = "response capped at " + std::to_string(xcom_limit) + " bytes of XCom (" + std::to_string(value.size()) + " received)";
    value.resize(cut);
    if (ctx.log) ctx.log("[dagrun] " + out.message);
  }
  out.xcom = std::move(value);
  return out;
}

std::optional<std::string> http::failed_check(std::string_view check, const std::string& body) {
  if (!check.starts_with('/')) {
    if (body.find(check) != std::string::npos) return std::nullopt;
    return "the response does not contain '" + std::string(check) + "'";
  }
  const json doc = json::parse(body, nullptr, false);
  if (doc.is_discarded()) return "the response is not JSON, so " + std::string(check) + " cannot be read";
  const auto p = pointer(std::string(check));
  if (!p) return "'" + std::string(check) + "' is not a JSON pointer";
  if (!doc.contains(*p)) return "the response has nothing at " + std::string(check);
  if (!truthy(doc.at(*p))) return std::string(check) + " is " + doc.at(*p).dump();
  return std::nullopt;
}

std::optional<std::string> http::filtered(const std::string& where, const std::string& body, std::string& why) {
  const json doc = json::parse(body, nullptr, false);
  if (doc.is_discarded()) {
    why = "the response is not JSON";
    return std::nullopt;
  }
  const auto p = pointer(where);
  if (!p || !doc.contains(*p)) {
    why = "the response has nothing at " + where;
    return std::nullopt;
  }
  const json& v = doc.at(*p);
  return v.is_string() ? v.get<std::string>() : v.dump();
}

std::optional<std::string> http::check_value(std::string_view field, std::string_view value) {
  if (field == "expected_status") {
    const bool digits = value.size() == 3 && value.find_first_not_of("0123456789") == std::string_view::npos;
    if (!digits || value < "100" || value > "599") return "'" + std::string(value) + "' is not an HTTP status (100 to 599)";
  }
  if (field == "response_filter" && (!value.starts_with('/') || !pointer(std::string(value))))
    return "'" + std::string(value) + "' is not a JSON pointer (like /data/0/id)";
  return std::nullopt;
}

}  // namespace dag::operators

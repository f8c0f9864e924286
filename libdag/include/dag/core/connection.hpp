#pragma once
/// @file A connection: how to reach an external system (database, HTTP service).

#include <algorithm>
#include <cctype>
#include <optional>
#include <string>
#include <string_view>

#include <dag/core/error.hpp>
#include <dag/core/json_text.hpp>

namespace dag {

/// A named connection, as `{{ conn.ID.host }}` and operators' `conn_id` see it.
struct connection {
  std::string conn_id;   ///< its id
  std::string conn_type; ///< `postgresql`, `https`, `sqlite`, …
  std::string host;      ///< host name or address (or file path for sqlite)
  std::optional<int> port;  ///< port, if given
  std::string login;     ///< user name
  std::string password;  ///< secret: never logged or listed
  std::string schema;    ///< database name or base path
  /// Airflow's `extra`: a JSON object of further settings (`{"ca_file": "/etc/ca.pem"}`); empty
  /// for none. Values whose names look secret (`token`, `api_key`, …) are masked like a password.
  std::string extra = {};
};

/// `text` with everything but letters, digits and `-_.~` as %XX: a URL path segment or query value.
inline std::string percent_encoded(std::string_view text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
      out += ch;
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

namespace detail {
/// Decodes %XX escapes (as in a URI's user and password).
inline std::string percent_decode(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && std::isxdigit(static_cast<unsigned char>(text[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(text.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

/// The JSON object text of a URI's query string (`a=1&b=x` → `{"a":"1","b":"x"}`; `__extra__=`
/// gives the object whole); empty for an empty query.
inline std::string extra_from_query(std::string_view query) {
  std::string out;
  for (std::size_t start = 0; start < query.size();) {
    const std::size_t end = std::min(query.find('&', start), query.size());
    const std::string_view pair = query.substr(start, end - start);
    start = end + 1;
    if (pair.empty()) continue;
    const std::size_t eq = pair.find('=');
    const std::string name = percent_decode(pair.substr(0, eq));
    const std::string value = eq == std::string_view::npos ? "" : percent_decode(pair.substr(eq + 1));
    if (name == "__extra__") return value;
    out += out.empty() ? "{" : ",";
    append_json_string(out, name);
    out += ':';
    append_json_string(out, value);
  }
  return out.empty() ? out : out + "}";
}
}  // namespace detail

/// Parses a connection URI such as `postgresql://user:pw@host:5432/db` or `https://host/base`
/// (Airflow's `AIRFLOW_CONN_*` form). The query string becomes `extra`, as in Airflow: each
/// `name=value` a text member of its JSON object, or `__extra__=` the whole (percent-encoded)
/// JSON object. Throws dag::usage_error naming the connection, never the
/// URI itself, since it may hold a password.
inline connection parse_connection_uri(std::string conn_id, std::string_view uri) {
  connection c;
  c.conn_id = std::move(conn_id);
  const auto scheme_end = uri.find("://");
  if (scheme_end == std::string_view::npos || scheme_end == 0)
    throw usage_error("connection '" + c.conn_id + "': expected a URI like scheme://user:password@host:port/schema");
  c.conn_type = std::string(uri.substr(0, scheme_end));
  std::string_view rest = uri.substr(scheme_end + 3);
  if (const auto query = rest.find('?'); query != std::string_view::npos) {
    c.extra = detail::extra_from_query(rest.substr(query + 1));
    rest = rest.substr(0, query);
  }
  const auto path_start = rest.find('/');
  std::string_view authority = rest.substr(0, path_start);
  if (path_start != std::string_view::npos) c.schema = detail::percent_decode(rest.substr(path_start + 1));
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    std::string_view credentials = authority.substr(0, at);
    authority = authority.substr(at + 1);
    const auto colon = credentials.find(':');
    c.login = detail::percent_decode(credentials.substr(0, colon));
    if (colon != std::string_view::npos) c.password = detail::percent_decode(credentials.substr(colon + 1));
  }
  if (const auto colon = authority.rfind(':'); colon != std::string_view::npos && authority.find(']') == std::string_view::npos) {
    const std::string port(authority.substr(colon + 1));
    authority = authority.substr(0, colon);
    if (port.empty() || port.find_first_not_of("0123456789") != std::string::npos || port.size() > 5)
      throw usage_error("connection '" + c.conn_id + "': bad port in URI");
    c.port = std::stoi(port);
  }
  c.host = detail::percent_decode(authority);
  return c;
}

/// libpq's keyword/value connection string for a connection: values quoted, so a password with
/// spaces or quotes works, and never built into an error message.
inline std::string libpq_conninfo(const connection& c, std::string_view application = "dagrun") {
  auto quoted = [](const std::string& v) {
    std::string out = "'";
    for (char ch : v) {
      if (ch == '\'' || ch == '\\') out += '\\';
      out += ch;
    }
    return out + "'";
  };
  std::string s = "host=" + quoted(c.host.empty() ? "localhost" : c.host);
  if (c.port) s += " port=" + std::to_string(*c.port);
  if (!c.login.empty()) s += " user=" + quoted(c.login);
  if (!c.password.empty()) s += " password=" + quoted(c.password);
  if (!c.schema.empty()) s += " dbname=" + quoted(c.schema);
  return s + " connect_timeout=10 application_name=" + quoted(std::string(application));
}

}  // namespace dag

#pragma once
/// @file Hiding secrets in log text, like Airflow's secrets masker: every occurrence of a known
/// secret value (a connection password, a variable whose name looks secret) becomes `***`.

#include <algorithm>
#include <cstddef>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

namespace dag {

/// Secrets shorter than this are not masked: masking `ab` would mangle every line that happens
/// to contain those letters (Airflow's `min_length_masked_secret`, 5 by default).
inline constexpr std::size_t min_masked_secret_length = 5;

/// What a masked secret is replaced with.
inline constexpr std::string_view secret_mask = "***";

/// True for a name whose value Airflow's secrets masker hides: one containing `password`,
/// `token`, `secret`, `api_key`, … (variables, and the members of a connection's `extra`).
inline bool looks_secret(std::string_view name) {
  static constexpr std::string_view words[] = {"access_token", "api_key", "apikey", "authorization",
                                                "passphrase", "passwd", "password", "private_key",
                                                "secret", "token", "keyfile_dict", "service_account"};
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; });
  return std::any_of(std::begin(words), std::end(words), [&](std::string_view w) { return lower.find(w) != std::string::npos; });
}

/// Adds `value` to `secrets` unless it is too short to mask or already there. A value of several
/// lines (a PEM key) adds each line as well: logs are masked a line at a time.
inline void add_secret(std::vector<std::string>& secrets, std::string_view value) {
  auto add_one = [&](std::string_view v) {
    if (!v.empty() && v.back() == '\r') v.remove_suffix(1);
    if (v.size() < min_masked_secret_length) return;
    if (std::find(secrets.begin(), secrets.end(), v) == secrets.end()) secrets.emplace_back(v);
  };
  add_one(value);
  if (value.find('\n') == std::string_view::npos) return;
  for (std::size_t start = 0; start <= value.size();) {
    const std::size_t end = std::min(value.find('\n', start), value.size());
    add_one(value.substr(start, end - start));
    start = end + 1;
  }
}

/// `text` with every occurrence of each of `secrets` replaced by `***` (longest secrets first, so
/// a secret that contains another is hidden whole).
inline std::string mask_secrets(std::string_view text, const std::vector<std::string>& secrets) {
  std::string out(text);
  if (secrets.empty()) return out;
  std::vector<const std::string*> order;
  for (const auto& s : secrets)
    if (s.size() >= min_masked_secret_length) order.push_back(&s);
  std::sort(order.begin(), order.end(), [](const std::string* a, const std::string* b) { return a->size() > b->size(); });
  for (const std::string* s : order) {
    for (std::size_t at = out.find(*s); at != std::string::npos; at = out.find(*s, at + secret_mask.size()))
      out.replace(at, s->size(), secret_mask);
  }
  return out;
}

/// The longest secret that would be masked (0 when none): how much of a stream a line-less
/// writer must hold back so that a secret split across two writes is still found.
inline std::size_t longest_secret(const std::vector<std::string>& secrets) {
  std::size_t n = 0;
  for (const auto& s : secrets)
    if (s.size() >= min_masked_secret_length) n = std::max(n, s.size());
  return n;
}

}  // namespace dag

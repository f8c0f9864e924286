// libFuzzer target: the URL and path decoding every HTTP request goes through: %XX escapes, path
// segments, query parameters, form fields (`+` as a space) and whole numbers in paths.
#include <cstddef>
#include <cstdint>
#include <string>

#include <dag/http/server.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  (void)dag::url_decoded(text);
  (void)dag::url_decoded(text, true);
  (void)dag::path_segments(text);
  dag::http_request r;
  r.target = text;
  (void)r.path();
  (void)r.query("limit");
  (void)r.query("");
  (void)dag::is_loopback_address(text);
  try {
    (void)dag::parse_listen_address(text, "--listen");
  } catch (const std::exception&) {
  }
  return 0;
}

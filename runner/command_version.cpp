// `dagrun version`.
#include <dag/runner/cli.hpp>

#include <fstream>
#include <ostream>
#include <string>

#include <dlfcn.h>

namespace dagrun {

namespace detail {
/// Set before main when the heap grows on memory marked for huge pages (huge_page_heap.cpp).
[[gnu::weak]] extern const bool heap_on_huge_pages;
}  // namespace detail

namespace {

// The malloc this process runs with, asked at run time, so that it holds however tcmalloc came
// in (linked, as dagrun's build does by default, or preloaded) and says so when it did not.
std::string allocator_name() {
  using version_fn = const char* (*)(int*, int*, const char**);
  if (auto* tc_version = reinterpret_cast<version_fn>(::dlsym(RTLD_DEFAULT, "tc_version"))) {
    int major = 0, minor = 0;
    const char* patch = nullptr;
    tc_version(&major, &minor, &patch);
    return "tcmalloc " + std::to_string(major) + "." + std::to_string(minor) + (patch ? patch : "");
  }
  return "not tcmalloc (the C library's malloc, or one preloaded)";
}

// The word the kernel's transparent huge page setting has chosen (`always`, `madvise`, `never`),
// or "" when it cannot be read (no such file: a kernel without them).
std::string huge_page_setting() {
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string line;
  if (!std::getline(in, line)) return "";
  const auto open = line.find('['), close = line.find(']');
  return open != std::string::npos && close > open ? line.substr(open + 1, close - open - 1) : "";
}

// Where the heap gets its memory: huge_page_heap.cpp, linked into programs with tcmalloc, defines
// the flag (true only when tcmalloc took its allocator); a program without it (glibc's malloc)
// leaves the weak reference null.
std::string heap_pages() {
  const bool marked = &detail::heap_on_huge_pages != nullptr && detail::heap_on_huge_pages;
  if (!marked) return "the allocator's own pages";
  const std::string setting = huge_page_setting();
  if (setting == "never" || setting.empty())
    return "marked for transparent huge pages, which this kernel does not make (" +
           (setting.empty() ? std::string("no setting found") : "its setting: never") + ")";
  return "on transparent huge pages (the kernel's setting: " + setting + ")";
}

}  // namespace

void print_version(std::ostream& out) {
  out << "dagrun " << DAGRUN_VERSION << "\n";
  out << "allocator: " << allocator_name() << "\n";
  out << "heap: " << heap_pages() << "\n";
}

void add_version_commands(std::vector<command>& out) {
  out.push_back({{"version"}, "version", "print dagrun's version and the memory allocator it runs with", nullptr,
                 [](invocation& inv) {
                   print_version(inv.out);
                   return exit_ok;
                 }});
}

}  // namespace dagrun

// `dagrun version`.
#include <dag/runner/cli.hpp>

#include <ostream>
#include <string>

#include <dlfcn.h>

namespace dagrun {

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

}  // namespace

void print_version(std::ostream& out) {
  out << "dagrun " << DAGRUN_VERSION << "\n";
  out << "allocator: " << allocator_name() << "\n";
}

void add_version_commands(std::vector<command>& out) {
  out.push_back({{"version"}, "version", "print dagrun's version and the memory allocator it runs with", nullptr,
                 [](invocation& inv) {
                   print_version(inv.out);
                   return exit_ok;
                 }});
}

}  // namespace dagrun

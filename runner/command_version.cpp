// `dagrun version`.
#include <dag/runner/cli.hpp>

#include <ostream>

namespace dagrun {

void add_version_commands(std::vector<command>& out) {
  out.push_back({{"version"}, "version", "print dagrun's version", nullptr, [](invocation& inv) {
                   inv.out << "dagrun " << DAGRUN_VERSION << "\n";
                   return exit_ok;
                 }});
}

}  // namespace dagrun

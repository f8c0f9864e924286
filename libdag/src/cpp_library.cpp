// C++ DAG libraries: dlopen a shared object of the DAGs folder, check that it speaks this libdag's
// ABI, and take its DAGs through the same checks as YAML ones.
#include <dag/load/cpp_library.hpp>

#include <exception>
#include <sstream>

#include <dlfcn.h>

#include <dag/load/check.hpp>

namespace dag {
namespace {

using abi_version_fn = int (*)();
using abi_layout_fn = std::uint64_t (*)();
using dags_fn = void (*)(std::vector<definition>*);

std::string hex(std::uint64_t v) {
  std::ostringstream s;
  s << "0x" << std::hex << v;
  return s.str();
}

// A symbol of `handle`, or nullptr; dlsym's own error is not interesting here (only "missing").
void* symbol(void* handle, const char* name) {
  dlerror();
  return dlsym(handle, name);
}

}  // namespace

bool is_dag_library(const std::filesystem::path& path) { return path.extension() == ".so"; }

cpp_library_result load_dag_library(const std::filesystem::path& path, const operator_catalog& operators) {
  cpp_library_result out;
  const std::string file = path.string();
  auto fail = [&](const std::string& message) {
    error_context where;
    where.file = file;
    out.problems.emplace_back(where, message);
    return out;
  };

  // An absolute path: dlopen searches the library path for a name without a slash.
  std::error_code ec;
  const std::filesystem::path absolute = std::filesystem::absolute(path, ec);
  dlerror();
  // RTLD_NOW reports a missing symbol here rather than when a task first calls into the library;
  // RTLD_LOCAL keeps two libraries' symbols from resolving against each other.
  void* handle = dlopen((ec ? path : absolute).c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* why = dlerror();
    return fail(std::string("cannot load DAG library: ") + (why ? why : "unknown dlopen error"));
  }
  // Once dagrun_dags has run, the handle is never closed: the DAGs' callables (and their
  // std::function managers) live in it. A library refused before that holds nothing of ours, so it
  // is closed, and a fixed file at the same path loads in a later scan of a long-lived process.
  auto refuse = [&](const std::string& message) {
    dlclose(handle);
    return fail(message);
  };

  auto version = reinterpret_cast<abi_version_fn>(symbol(handle, "dagrun_abi_version"));
  auto layout = reinterpret_cast<abi_layout_fn>(symbol(handle, "dagrun_abi_layout"));
  auto dags = reinterpret_cast<dags_fn>(symbol(handle, "dagrun_dags"));
  if (!version || !layout || !dags) {
    std::string missing;
    for (auto [present, name] : {std::pair{version != nullptr, "dagrun_abi_version"},
                                 std::pair{layout != nullptr, "dagrun_abi_layout"},
                                 std::pair{dags != nullptr, "dagrun_dags"}})
      if (!present) missing += (missing.empty() ? "" : ", ") + std::string(name);
    return refuse("not a dagrun DAG library: it does not export " + missing +
                  " (define its DAGs with DAGRUN_DAGS(fn) from <dag/load/cpp_library.hpp> and build it with "
                  "dagrun_add_dag_library)");
  }
  if (const int v = version(); v != cpp_library_abi_version)
    return refuse("DAG library built for ABI version " + std::to_string(v) + ", but this dagrun loads version " +
                  std::to_string(cpp_library_abi_version) + ": rebuild it against this libdag");
  if (const std::uint64_t l = layout(); l != cpp_library_abi_layout)
    return refuse("DAG library built against libdag headers whose types differ from this dagrun's (layout " + hex(l) +
                  ", expected " + hex(cpp_library_abi_layout) + "): rebuild it against this libdag");

  std::vector<definition> defined;
  try {
    dags(&defined);
  } catch (const std::exception& e) {
    return fail(std::string("DAG library threw while defining its DAGs: ") + e.what());
  } catch (...) {
    return fail("DAG library threw an exception of unknown type while defining its DAGs");
  }

  for (auto& d : defined) {
    // Problems name the library: a C++ DAG has no line of its own to point at.
    d.defined_at({file, 0});
    auto problems = check(d, operators);
    if (!problems.empty()) {
      out.problems.insert(out.problems.end(), problems.begin(), problems.end());
      continue;
    }
    out.dags.push_back(std::move(d));
  }
  return out;
}

}  // namespace dag

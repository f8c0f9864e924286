#pragma once
/// @file C++ DAG libraries: shared objects in the DAGs folder that define DAGs with libdag's
/// fluent API. A library defines its DAGs with `DAGRUN_DAGS(fn)`; dagrun loads it with
/// `load_dag_library`, which refuses a library built against another libdag.
///
/// The ABI, all `extern "C"` with default visibility (everything else in the library may stay
/// hidden):
///   int           dagrun_abi_version();                          // DAGRUN_DAG_LIBRARY_ABI
///   std::uint64_t dagrun_abi_layout();                           // dag::cpp_library_abi_layout
///   void          dagrun_dags(std::vector<dag::definition>* out); // fills `out`
///
/// C++ objects cross the boundary (the definitions, their std::function bodies), so the library
/// and the loading program must agree on libdag's headers and on the standard library: the
/// version is bumped by hand when those types change, and the layout fingerprint catches a
/// change nobody bumped the version for.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <dag/core/definition.hpp>
#include <dag/core/error.hpp>
#include <dag/core/operator.hpp>
#include <dag/core/task.hpp>
#include <dag/load/operator_catalog.hpp>

namespace dag {

/// The version of the DAG library ABI this libdag loads; bump it whenever a type that crosses
/// the boundary (definition, task, task_context, operator_result, …) changes.
inline constexpr int cpp_library_abi_version = 4;  // 4: a definition's task index hashes views, a context's environment holds extras only; 3: metadata_view::dags holds shared definitions; 2: tasks and contexts carry map indexes, datasets and pools

namespace detail {
// Mixes one value into a 64-bit FNV-1a style hash, at compile time.
constexpr std::uint64_t abi_mix(std::uint64_t h, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) {
    h ^= (v >> (8 * i)) & 0xffu;
    h *= 0x100000001b3ull;
  }
  return h;
}
// The size and alignment of every type that crosses the library boundary.
constexpr std::uint64_t abi_layout() {
  std::uint64_t h = 0xcbf29ce484222325ull;
  const std::size_t facts[] = {
      sizeof(definition),     alignof(definition),     sizeof(task),           alignof(task),
      sizeof(task_options),   sizeof(task_settings),   sizeof(field_value),    sizeof(source_location),
      sizeof(task_context),   alignof(task_context),   sizeof(operator_result), sizeof(std::string),
      sizeof(std::vector<definition>),                 sizeof(std::function<operator_result(task_context&)>),
  };
  for (std::size_t f : facts) h = abi_mix(h, f);
  return h;
}
}  // namespace detail

/// A fingerprint of the layouts of the types that cross the library boundary, as this program
/// was compiled; a library compiled against different headers has a different one.
inline constexpr std::uint64_t cpp_library_abi_layout = detail::abi_layout();

/// The DAGs of one library and the problems that kept some or all of them out.
struct cpp_library_result {
  std::vector<definition> dags;            ///< checked DAGs, in the order the library returned them
  std::vector<definition_error> problems;  ///< each naming the library file
};

/// True when `path` names a DAG library by its extension (`.so`).
bool is_dag_library(const std::filesystem::path& path);

/// Loads the DAG library at `path` (dlopen with RTLD_NOW | RTLD_LOCAL), checks its ABI, calls its
/// `dagrun_dags` and checks each DAG with `dag::check` (each DAG's file is set to `path`). Never
/// throws for a bad library: a file that cannot be loaded (with dlerror's text), a missing entry
/// point, an ABI mismatch, an exception thrown while building the DAGs and invalid DAGs are all
/// problems. A library whose DAGs were taken is never unloaded, because their callables point
/// into it: loading the same path again reuses it (a rebuilt file needs a new process). A library
/// refused before its DAGs were taken (entry points, ABI) is unloaded again.
cpp_library_result load_dag_library(const std::filesystem::path& path, const operator_catalog& operators);

}  // namespace dag

/// The ABI version a library reports. Only tests override it (to build a mismatching library).
#ifndef DAGRUN_DAG_LIBRARY_ABI
#define DAGRUN_DAG_LIBRARY_ABI (::dag::cpp_library_abi_version)
#endif
/// The layout fingerprint a library reports. Only tests override it.
#ifndef DAGRUN_DAG_LIBRARY_LAYOUT
#define DAGRUN_DAG_LIBRARY_LAYOUT (::dag::cpp_library_abi_layout)
#endif

/// Gives an entry point default visibility, whatever the library's visibility preset.
#if defined(__GNUC__) || defined(__clang__)
#define DAGRUN_DAG_LIBRARY_EXPORT __attribute__((visibility("default")))
#else
#define DAGRUN_DAG_LIBRARY_EXPORT
#endif

/// Defines the entry points of a DAG library; `fn` is a function returning
/// `std::vector<dag::definition>`. Use it once per library, at namespace scope:
/// `DAGRUN_DAGS(my_dags)`.
#define DAGRUN_DAGS(fn)                                                                                   \
  extern "C" DAGRUN_DAG_LIBRARY_EXPORT int dagrun_abi_version() { return DAGRUN_DAG_LIBRARY_ABI; }       \
  extern "C" DAGRUN_DAG_LIBRARY_EXPORT std::uint64_t dagrun_abi_layout() { return DAGRUN_DAG_LIBRARY_LAYOUT; } \
  extern "C" DAGRUN_DAG_LIBRARY_EXPORT void dagrun_dags(std::vector<::dag::definition>* out) { *out = fn(); }

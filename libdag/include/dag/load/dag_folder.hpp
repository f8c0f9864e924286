#pragma once
/// @file Loading every DAG of a folder: one broken file never keeps the others out.

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <dag/core/definition.hpp>
#include <dag/core/error.hpp>
#include <dag/load/operator_catalog.hpp>

namespace dag {

/// The DAGs of a folder (or of one file) and the problems of the files that failed.
struct dag_folder {
  std::vector<shared_definition> dags;     ///< loaded (checked) DAGs, sorted by dag_id
  std::vector<definition_error> problems;  ///< import errors, in file order

  /// The DAG with this id, or nullptr.
  const definition* find(std::string_view dag_id) const {
    for (const auto& d : dags)
      if (d->id() == dag_id) return d.get();
    return nullptr;
  }
};

/// Loads `path`: a `.yaml`/`.yml` file, or every such file in a folder (not recursive,
/// sorted by name). A dag_id defined by two files is a problem of the second file.
/// A missing path is a problem, not an exception.
dag_folder load_dag_folder(const std::filesystem::path& path, const operator_catalog& operators);

/// A DAGs folder loaded as load_dag_folder does and then kept up to date: refresh() reads again
/// only the files that are new or whose size or modification time changed since it last looked,
/// and keeps what the others gave (the daemon, when its folder changes: one file edited among a
/// thousand is the only one parsed again). Any other file of the folder changing (a template file
/// such as `query.sql`, read into a DAG when its YAML loads) makes every DAG file read again.
class dag_folder_loader {
public:
  /// Nothing is read until refresh(). `operators` must outlive it.
  dag_folder_loader(std::filesystem::path path, const operator_catalog& operators);
  /// Looks at the folder and reads the files that changed; returns how many it read (parsed or
  /// loaded). When it returns 0 and nothing was removed, folder() is unchanged: see changed().
  std::size_t refresh();
  /// Whether the last refresh() found the folder different from the look before it (a file new,
  /// changed or gone, or the folder's own problem), or was the first.
  bool changed() const { return changed_; }
  /// The DAGs and problems as of the last refresh(), as load_dag_folder gives them. The DAGs are
  /// the loader's own, shared: a file not read again gives the same definitions as before (the
  /// engine then keeps their scheduled form and runs as they are).
  dag_folder folder() const;

private:
  struct file_state {
    std::uintmax_t size = 0;
    std::filesystem::file_time_type modified{};
    std::vector<shared_definition> dags;
    std::vector<definition_error> problems;
  };
  std::filesystem::path path_;
  const operator_catalog& operators_;
  std::map<std::string, file_state> files_;  // by path, hence in name order
  std::vector<definition_error> own_problems_;  // the folder's: missing, unreadable
  std::string others_;  // names, sizes and times of the folder's other files, as last seen
  bool looked_ = false;  // refresh() ran
  bool changed_ = false;
};

}  // namespace dag

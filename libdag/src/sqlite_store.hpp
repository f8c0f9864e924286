#pragma once
/// @file The SQLite store's factory, private to libdag: `open_store` reaches it for `sqlite:` URLs,
/// and nothing else needs to see SQLiteCpp.

#include <memory>
#include <string>

#include <dag/store/store.hpp>

namespace dag {

/// Opens (creating if missing) the SQLite database at `path` and migrates it; throws dag::error
/// naming the path when it cannot be opened or its schema is newer than this build knows.
std::unique_ptr<store> open_sqlite_store(const std::string& path);

}  // namespace dag

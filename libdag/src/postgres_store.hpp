#pragma once
/// @file The PostgreSQL store's factory, private to libdag: `open_store` reaches it for
/// `postgresql://…` URLs, and nothing else needs to see libpqxx.

#include <memory>
#include <string>

#include <dag/store/store.hpp>

namespace dag {

/// Connects to the PostgreSQL database named by `url` (a libpq connection URI, `postgresql://` or
/// `postgres://`; a SQLAlchemy `postgresql+driver://` scheme is read as `postgresql://`) and
/// migrates it. The first connection is tried once, so that a wrong URL fails at once; a
/// connection lost later is re-established by the store. Throws dag::error naming the host and
/// database, never the password, when it cannot connect or the schema is newer than this build.
std::unique_ptr<store> open_postgres_store(const std::string& url);

}  // namespace dag

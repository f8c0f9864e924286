// SQLite's own VFS with the writes of a WAL file gathered, one system call per commit.
#pragma once

namespace dag::detail {

/// The name of a VFS, registered on first call, that is the default one (the OS's) except for
/// WAL files: the appends of a write transaction are gathered in memory and written with one
/// `pwrite` (64 KiB at most a call) when they complete the commit frame that ends it, instead of
/// two `pwrite`s a page (a frame's header, then its page). Nothing gathered is left once the
/// transaction's frames are published to other connections, nor once its write lock is released;
/// sqlite_wal_vfs.cpp says why. Null when it could not be registered.
const char* sqlite_wal_vfs_name();

}  // namespace dag::detail

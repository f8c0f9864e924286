// A VFS over SQLite's default one that gathers the writes of a WAL file (sqlite_wal_vfs.hpp).
//
// Why it is safe. SQLite appends a transaction's frames to the WAL and only then publishes the
// commit (the WAL index header in shared memory, which every other connection and a checkpoint
// look at), all while it holds the WAL's write lock. Here:
// - Only appends are gathered, from a frame's start on, and only while this connection holds the
//   write lock as seen through the database file (in exclusive locking mode, which takes none
//   there, every write goes straight through). Whatever rewrites bytes this write transaction
//   already wrote (SQLite rewrites frame headers when a page spilled earlier is written again)
//   goes straight through, after what was gathered.
// - The gathered bytes are written, in one `pwrite` of at most 64 KiB a call, inside SQLite's own
//   write of the last byte of a commit frame (found by the WAL file format: a frame header whose
//   "database size after the commit" field is not zero,
//   https://www.sqlite.org/fileformat2.html#walformat): before SQLite goes on to publish it, and
//   with the write's error returned to SQLite, which then fails the commit.
// - A read, sync, truncation, size query or file control of the WAL writes what was gathered
//   first; so does the release of the write lock (seen on the database file, through which SQLite
//   takes it), which leaves nothing gathered once another connection may write. What is gathered
//   then is a transaction that was rolled back (pages spilled from a full cache), written where
//   this connection still holds the lock and nobody reads.
// - Once gathered bytes could not be written, every later write and sync of the WAL fails until
//   the write lock is released: the transaction they belonged to can no longer commit.
// A crash loses gathered bytes only of a transaction that was not published, which recovery
// drops anyway.
#include "sqlite_wal_vfs.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>
#include <vector>

#include <sqlite3.h>

namespace dag::detail {
namespace {

constexpr sqlite3_int64 wal_header_size = 32;
constexpr sqlite3_int64 frame_header_size = 24;
// A transaction larger than this (a first pass over 100,000 task instances) is written as it
// goes, this much at a time: memory stays bounded, and SQLite publishes nothing before its end.
constexpr std::size_t most_gathered = std::size_t{1} << 20;
// The default VFS writes at most this much in one call of its own (its write masks a length to 17
// bits: a multiple of 128 KiB would write nothing); SQLite's own writes are at most a page.
constexpr std::size_t most_written = std::size_t{1} << 16;
// SQLite's WAL write lock is shared-memory lock 0 of the database file (wal.c's WAL_WRITE_LOCK).
constexpr int wal_write_lock = 0;

std::uint32_t big_endian_32(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
}

/// The page size a WAL header gives, or 0 when it is not a WAL header.
sqlite3_int64 page_size_of(const unsigned char* header) {
  const std::uint32_t magic = big_endian_32(header);
  const std::uint32_t size = big_endian_32(header + 8);
  if (magic != 0x377f0682 && magic != 0x377f0683) return 0;
  if (size < 512 || size > 65536 || (size & (size - 1)) != 0) return 0;
  return size;
}

struct database_file;

/// A WAL file: the default VFS's file, opened in the memory after this object, and the appends
/// gathered since the last flush (one contiguous stretch of the file, from a frame's start).
struct wal_file {
  sqlite3_file base{};  // what SQLite sees: first, so that a sqlite3_file* is a wal_file*
  sqlite3_file* real = nullptr;
  database_file* database = nullptr;  // whose write lock bounds a transaction; none: nothing is gathered
  std::vector<unsigned char> gathered;
  sqlite3_int64 gathered_at = 0;   // the file offset of gathered's first byte
  sqlite3_int64 page_size = 0;     // from the WAL header; 0 until known (then nothing is gathered)
  sqlite3_int64 next_frame = 0;    // offset of the next frame header in gathered not yet looked at
  sqlite3_int64 commit_end = 0;    // end of a commit frame whose header is gathered, 0 when none
  sqlite3_int64 appended_end = 0;  // end of the furthest write of this write transaction
  bool holding = false;            // this connection holds the write lock (seen through `database`)
  int failed = SQLITE_OK;          // a flush failed in this write transaction: its error

  int write_through(const unsigned char* bytes, std::size_t size, sqlite3_int64 offset) {
    int rc = SQLITE_OK;
    for (std::size_t done = 0; done < size && rc == SQLITE_OK; done += most_written) {
      const std::size_t n = std::min(most_written, size - done);
      rc = real->pMethods->xWrite(real, bytes + done, static_cast<int>(n), offset + static_cast<sqlite3_int64>(done));
    }
    return rc;
  }

  int flush() {
    if (gathered.empty()) return SQLITE_OK;
    const int rc = write_through(gathered.data(), gathered.size(), gathered_at);
    gathered.clear();
    commit_end = 0;
    if (rc != SQLITE_OK) failed = rc;
    return rc;
  }

  /// The database file's write lock was taken (for a write transaction, or a recovery or
  /// checkpoint, which write no frames). Nothing is gathered then: it was written when the lock
  /// was last released.
  void write_lock_taken() {
    gathered.clear();
    commit_end = 0;
    appended_end = 0;
    failed = SQLITE_OK;
    holding = true;
  }
  /// The write lock is about to be released: a transaction rolled back may have left appends
  /// gathered, written here under the lock still (see the top). Without the lock (exclusive
  /// locking mode takes none through the file) nothing is gathered: every write goes through.
  void write_lock_released() {
    flush();
    appended_end = 0;
    failed = SQLITE_OK;
    holding = false;
  }

  sqlite3_int64 frame_size() const { return frame_header_size + page_size; }
  /// Whether a gather may start at `offset`: the WAL header's, or a frame's start.
  bool starts_frame(sqlite3_int64 offset) const {
    return offset == 0 || (offset >= wal_header_size && (offset - wal_header_size) % frame_size() == 0);
  }

  int write(const void* data, int amount, sqlite3_int64 offset) noexcept {
    if (failed != SQLITE_OK) return failed;
    const auto* bytes = static_cast<const unsigned char*>(data);
    const auto size = static_cast<std::size_t>(amount);
    const sqlite3_int64 rewritten_until = appended_end;
    appended_end = std::max(appended_end, offset + amount);
    const bool contiguous = !gathered.empty() && offset == gathered_at + static_cast<sqlite3_int64>(gathered.size());
    if (!gathered.empty() && !contiguous) {
      if (const int rc = flush(); rc != SQLITE_OK) return rc;
    }
    if (offset == 0 && amount >= wal_header_size) page_size = page_size_of(bytes);  // a new WAL header
    if (page_size == 0 && gathered.empty()) {
      unsigned char header[wal_header_size];
      if (real->pMethods->xRead(real, header, sizeof header, 0) == SQLITE_OK) page_size = page_size_of(header);
    }
    const bool gather = holding && database != nullptr && page_size != 0 && offset >= rewritten_until &&
                        (contiguous || starts_frame(offset));
    if (!gather) {
      return write_through(bytes, size, offset);  // its error is SQLite's, about this write
    }
    try {
      gathered.insert(gathered.end(), bytes, bytes + size);
    } catch (const std::bad_alloc&) {  // nothing may unwind through SQLite's frames
      if (const int rc = flush(); rc != SQLITE_OK) return rc;
      return write_through(bytes, size, offset);
    }
    if (!contiguous) {
      gathered_at = offset;
      next_frame = offset == 0 ? wal_header_size : offset;
    }
    const sqlite3_int64 end = gathered_at + static_cast<sqlite3_int64>(gathered.size());
    for (; next_frame + frame_header_size <= end; next_frame += frame_size())
      if (big_endian_32(gathered.data() + (next_frame - gathered_at) + 4) != 0) commit_end = next_frame + frame_size();
    // Within a commit frame, only its end flushes: a flush between its header and its page would
    // leave the page to be gathered on its own, after the frame's header was looked at.
    if (commit_end != 0 ? end >= commit_end : gathered.size() >= most_gathered) return flush();
    return SQLITE_OK;
  }
};

/// The main database file: the default VFS's, after this object; its WAL's transactions are
/// bounded by the write lock SQLite takes and releases through it.
struct database_file {
  sqlite3_file base{};
  sqlite3_file* real = nullptr;
  wal_file* wal = nullptr;
};

template <class File>
File& ours(sqlite3_file* f) {
  return *reinterpret_cast<File*>(f);
}
template <class File>
sqlite3_file* real(sqlite3_file* f) {
  return ours<File>(f).real;
}

/// A method of `File` that is the default VFS file's method `Field`, called on the file it wraps.
template <class File, auto Field, class Method = std::remove_pointer_t<std::remove_cvref_t<decltype(sqlite3_io_methods{}.*Field)>>>
struct forward;
template <class File, auto Field, class R, class... A>
struct forward<File, Field, R(sqlite3_file*, A...)> {
  static R call(sqlite3_file* f, A... a) {
    sqlite3_file* r = real<File>(f);
    return (r->pMethods->*Field)(r, a...);
  }
};

/// A method of the WAL file that writes what was gathered first, and fails with `failure` (a
/// code of its own kind: SQLite takes a read's failure for a read's) when that cannot be written.
template <auto Field, int failure, class Method = std::remove_pointer_t<std::remove_cvref_t<decltype(sqlite3_io_methods{}.*Field)>>>
struct after_flush;
template <auto Field, int failure, class R, class... A>
struct after_flush<Field, failure, R(sqlite3_file*, A...)> {
  static R call(sqlite3_file* f, A... a) {
    if (ours<wal_file>(f).flush() != SQLITE_OK) return failure;
    return forward<wal_file, Field>::call(f, a...);
  }
};

// The WAL file's own methods.
int wal_close(sqlite3_file* f) {
  wal_file& w = ours<wal_file>(f);
  const int flushed = w.flush();
  const int closed = w.real->pMethods->xClose(w.real);
  if (w.database) w.database->wal = nullptr;
  w.~wal_file();
  return flushed != SQLITE_OK ? flushed : closed;
}
int wal_write(sqlite3_file* f, const void* data, int amount, sqlite3_int64 offset) {
  return ours<wal_file>(f).write(data, amount, offset);
}
int wal_sync(sqlite3_file* f, int flags) {
  wal_file& w = ours<wal_file>(f);
  if (w.failed != SQLITE_OK) return w.failed;
  if (const int rc = w.flush(); rc != SQLITE_OK) return rc;
  return w.real->pMethods->xSync(w.real, flags);
}

// The database file's own methods: its WAL is told when the write lock is taken and released.
int db_close(sqlite3_file* f) {
  database_file& d = ours<database_file>(f);
  if (d.wal) d.wal->database = nullptr;  // SQLite closes the WAL first; in case it does not
  const int rc = d.real->pMethods->xClose(d.real);
  d.~database_file();
  return rc;
}
int db_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
  database_file& d = ours<database_file>(f);
  const bool write_lock = (flags & SQLITE_SHM_EXCLUSIVE) != 0 && offset <= wal_write_lock && wal_write_lock < offset + n;
  if (write_lock && d.wal && (flags & SQLITE_SHM_UNLOCK) != 0) d.wal->write_lock_released();  // still held here
  const int rc = d.real->pMethods->xShmLock(d.real, offset, n, flags);
  if (write_lock && d.wal && (flags & SQLITE_SHM_LOCK) != 0 && rc == SQLITE_OK) d.wal->write_lock_taken();
  return rc;
}

/// The methods of a WAL file, for a real file of io_methods version `v` (1 to 3): no more than it has.
sqlite3_io_methods wal_methods(int v) {
  using m = sqlite3_io_methods;
  return {v,
          wal_close,
          after_flush<&m::xRead, SQLITE_IOERR_READ>::call,
          wal_write,
          after_flush<&m::xTruncate, SQLITE_IOERR_TRUNCATE>::call,
          wal_sync,
          after_flush<&m::xFileSize, SQLITE_IOERR_FSTAT>::call,
          forward<wal_file, &m::xLock>::call,
          forward<wal_file, &m::xUnlock>::call,
          forward<wal_file, &m::xCheckReservedLock>::call,
          after_flush<&m::xFileControl, SQLITE_IOERR_WRITE>::call,
          forward<wal_file, &m::xSectorSize>::call,
          forward<wal_file, &m::xDeviceCharacteristics>::call,
          v < 2 ? nullptr : forward<wal_file, &m::xShmMap>::call,
          v < 2 ? nullptr : forward<wal_file, &m::xShmLock>::call,
          v < 2 ? nullptr : forward<wal_file, &m::xShmBarrier>::call,
          v < 2 ? nullptr : forward<wal_file, &m::xShmUnmap>::call,
          v < 3 ? nullptr : after_flush<&m::xFetch, SQLITE_IOERR_READ>::call,
          v < 3 ? nullptr : forward<wal_file, &m::xUnfetch>::call};
}

/// The methods of a database file, as wal_methods.
sqlite3_io_methods database_methods(int v) {
  using m = sqlite3_io_methods;
  using f = database_file;
  return {v,
          db_close,
          forward<f, &m::xRead>::call,
          forward<f, &m::xWrite>::call,
          forward<f, &m::xTruncate>::call,
          forward<f, &m::xSync>::call,
          forward<f, &m::xFileSize>::call,
          forward<f, &m::xLock>::call,
          forward<f, &m::xUnlock>::call,
          forward<f, &m::xCheckReservedLock>::call,
          forward<f, &m::xFileControl>::call,
          forward<f, &m::xSectorSize>::call,
          forward<f, &m::xDeviceCharacteristics>::call,
          v < 2 ? nullptr : forward<f, &m::xShmMap>::call,
          v < 2 ? nullptr : db_shm_lock,
          v < 2 ? nullptr : forward<f, &m::xShmBarrier>::call,
          v < 2 ? nullptr : forward<f, &m::xShmUnmap>::call,
          v < 3 ? nullptr : forward<f, &m::xFetch>::call,
          v < 3 ? nullptr : forward<f, &m::xUnfetch>::call};
}

/// The methods of `File` for a real file of io_methods version `version`.
template <class File>
const sqlite3_io_methods* methods_for(int version) {
  constexpr auto make = std::is_same_v<File, wal_file> ? wal_methods : database_methods;
  static const sqlite3_io_methods methods[3] = {make(1), make(2), make(3)};
  return &methods[std::clamp(version, 1, 3) - 1];
}

template <class File>
bool is(const sqlite3_file* f) {
  if (f == nullptr || f->pMethods == nullptr) return false;
  for (int v = 1; v <= 3; ++v)
    if (f->pMethods == methods_for<File>(v)) return true;
  return false;
}

sqlite3_vfs* base_vfs(sqlite3_vfs* vfs) { return static_cast<sqlite3_vfs*>(vfs->pAppData); }
// Where the default VFS's file starts after ours (SQLite gives 8-byte aligned memory).
constexpr std::size_t real_offset = (std::max(sizeof(wal_file), sizeof(database_file)) + 7) / 8 * 8;

/// Opens `File` around the default VFS's file of `name`.
template <class File>
int open_wrapped(sqlite3_vfs* base, sqlite3_filename name, sqlite3_file* file, int flags, int* out_flags) {
  auto* w = new (file) File;
  w->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<unsigned char*>(file) + real_offset);
  w->real->pMethods = nullptr;
  const int rc = base->xOpen(base, name, w->real, flags, out_flags);
  if (rc != SQLITE_OK) {
    if (w->real->pMethods) w->real->pMethods->xClose(w->real);
    w->~File();
    file->pMethods = nullptr;  // SQLite then does not call xClose
    return rc;
  }
  w->base.pMethods = methods_for<File>(w->real->pMethods->iVersion);
  return SQLITE_OK;
}

int vfs_open(sqlite3_vfs* vfs, sqlite3_filename name, sqlite3_file* file, int flags, int* out_flags) {
  sqlite3_vfs* base = base_vfs(vfs);
  if ((flags & SQLITE_OPEN_MAIN_DB) != 0) return open_wrapped<database_file>(base, name, file, flags, out_flags);
  if ((flags & SQLITE_OPEN_WAL) == 0) return base->xOpen(base, name, file, flags, out_flags);  // the OS's file itself
  const int rc = open_wrapped<wal_file>(base, name, file, flags, out_flags);
  if (rc != SQLITE_OK) return rc;
  // Without its database file's write lock to bound transactions, nothing is gathered.
  sqlite3_file* database = name ? sqlite3_database_file_object(name) : nullptr;
  if (is<database_file>(database)) {
    ours<database_file>(database).wal = &ours<wal_file>(file);
    ours<wal_file>(file).database = &ours<database_file>(database);
  }
  return SQLITE_OK;
}

// Everything else is the default VFS's.
int vfs_delete(sqlite3_vfs* v, const char* name, int sync_dir) { return base_vfs(v)->xDelete(base_vfs(v), name, sync_dir); }
int vfs_access(sqlite3_vfs* v, const char* name, int flags, int* out) { return base_vfs(v)->xAccess(base_vfs(v), name, flags, out); }
int vfs_full_pathname(sqlite3_vfs* v, const char* name, int n, char* out) {
  return base_vfs(v)->xFullPathname(base_vfs(v), name, n, out);
}
void* vfs_dl_open(sqlite3_vfs* v, const char* name) { return base_vfs(v)->xDlOpen(base_vfs(v), name); }
void vfs_dl_error(sqlite3_vfs* v, int n, char* out) { base_vfs(v)->xDlError(base_vfs(v), n, out); }
void (*vfs_dl_sym(sqlite3_vfs* v, void* handle, const char* symbol))(void) {
  return base_vfs(v)->xDlSym(base_vfs(v), handle, symbol);
}
void vfs_dl_close(sqlite3_vfs* v, void* handle) { base_vfs(v)->xDlClose(base_vfs(v), handle); }
int vfs_randomness(sqlite3_vfs* v, int n, char* out) { return base_vfs(v)->xRandomness(base_vfs(v), n, out); }
int vfs_sleep(sqlite3_vfs* v, int micros) { return base_vfs(v)->xSleep(base_vfs(v), micros); }
int vfs_current_time(sqlite3_vfs* v, double* out) { return base_vfs(v)->xCurrentTime(base_vfs(v), out); }
int vfs_get_last_error(sqlite3_vfs* v, int n, char* out) { return base_vfs(v)->xGetLastError(base_vfs(v), n, out); }
int vfs_current_time_int64(sqlite3_vfs* v, sqlite3_int64* out) {
  return base_vfs(v)->xCurrentTimeInt64(base_vfs(v), out);
}
int vfs_set_system_call(sqlite3_vfs* v, const char* name, sqlite3_syscall_ptr call) {
  return base_vfs(v)->xSetSystemCall(base_vfs(v), name, call);
}
sqlite3_syscall_ptr vfs_get_system_call(sqlite3_vfs* v, const char* name) {
  return base_vfs(v)->xGetSystemCall(base_vfs(v), name);
}
const char* vfs_next_system_call(sqlite3_vfs* v, const char* name) { return base_vfs(v)->xNextSystemCall(base_vfs(v), name); }

constexpr const char* vfs_name = "dagrun-wal";

/// Registers the VFS once: on top of the default VFS of that moment (the OS's).
sqlite3_vfs* registered() {
  static sqlite3_vfs* vfs = []() -> sqlite3_vfs* {
    sqlite3_vfs* base = sqlite3_vfs_find(nullptr);
    if (base == nullptr || base->iVersion < 2) return nullptr;
    static sqlite3_vfs ours{};
    ours.iVersion = std::min(base->iVersion, 3);
    ours.szOsFile = static_cast<int>(real_offset) + base->szOsFile;
    ours.mxPathname = base->mxPathname;
    ours.zName = vfs_name;
    ours.pAppData = base;
    ours.xOpen = vfs_open;
    ours.xDelete = vfs_delete;
    ours.xAccess = vfs_access;
    ours.xFullPathname = vfs_full_pathname;
    ours.xDlOpen = vfs_dl_open;
    ours.xDlError = vfs_dl_error;
    ours.xDlSym = vfs_dl_sym;
    ours.xDlClose = vfs_dl_close;
    ours.xRandomness = vfs_randomness;
    ours.xSleep = vfs_sleep;
    ours.xCurrentTime = vfs_current_time;
    ours.xGetLastError = vfs_get_last_error;
    ours.xCurrentTimeInt64 = vfs_current_time_int64;
    if (ours.iVersion >= 3) {
      ours.xSetSystemCall = vfs_set_system_call;
      ours.xGetSystemCall = vfs_get_system_call;
      ours.xNextSystemCall = vfs_next_system_call;
    }
    return sqlite3_vfs_register(&ours, 0) == SQLITE_OK ? &ours : nullptr;
  }();
  return vfs;
}

}  // namespace

const char* sqlite_wal_vfs_name() { return registered() ? vfs_name : nullptr; }

}  // namespace dag::detail

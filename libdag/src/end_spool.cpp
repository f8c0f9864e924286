// The local executor's spool of unrecorded ends (see end_spool.hpp).
#include "end_spool.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>

#include <fcntl.h>
#include <unistd.h>

#include <dag/core/json_text.hpp>
#include <dag/core/retry_policy.hpp>

#include "result_json.hpp"

namespace dag::detail {
namespace {

using json = nlohmann::json;

// An end's identity: the key of its file (the try number, and a rescheduled try's poke, are the
// fence: an end replayed for a try the store settled meanwhile, or for a poke before the running
// one, is refused by the engine, and then forgotten here). An end that names no poke keeps the
// identity ends had before pokes were named.
std::string identity(const task_event& e) {
  std::string id = e.dag_id + '\n' + e.run_id + '\n' + e.task_id + '\n' + std::to_string(e.map_index) + '\n' +
                   std::to_string(e.try_number);
  if (e.instance_start != timestamp{}) id += '\n' + std::to_string(e.instance_start.time_since_epoch().count());
  return id;
}

// A file name for the identity: ids may hold any character and be long, so a stable 64-bit hash
// (retry_policy's FNV-1a) names the file, and the file itself says whose end it is.
std::string file_name(const std::string& id) {
  std::uint64_t h = fnv1a(id);
  static constexpr char digits[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, h >>= 4) out[static_cast<std::size_t>(i)] = digits[h & 0xf];
  return out + ".end";
}

std::string event_text(const task_event& e) {
  json j{{"dag_id", e.dag_id},
         {"run_id", e.run_id},
         {"task_id", e.task_id},
         {"map_index", e.map_index},
         {"try_number", e.try_number},
         {"started", e.started.time_since_epoch().count()},
         {"ended", e.ended.time_since_epoch().count()},
         {"pid", e.pid},
         {"result", result_json(e.result)}};
  if (e.instance_start != timestamp{}) j["instance_start"] = e.instance_start.time_since_epoch().count();
  return json_dump(j) + "\n";
}

task_event event_of(const std::string& text) {
  const json j = json::parse(text);
  task_event e;
  e.dag_id = j.at("dag_id").get<std::string>();
  e.run_id = j.at("run_id").get<std::string>();
  e.task_id = j.at("task_id").get<std::string>();
  e.map_index = j.at("map_index").get<int>();
  e.try_number = j.at("try_number").get<int>();
  e.started = timestamp{std::chrono::microseconds(j.at("started").get<std::int64_t>())};
  e.ended = timestamp{std::chrono::microseconds(j.at("ended").get<std::int64_t>())};
  e.pid = j.at("pid").get<int>();
  if (j.contains("instance_start")) e.instance_start = timestamp{std::chrono::microseconds(j.at("instance_start").get<std::int64_t>())};
  e.result = result_from_json(j.at("result"));
  return e;
}

// Writes `text` to `path` whole or not at all, and durably: a temporary file, flushed to disk,
// renamed into place, and the folder flushed so the rename itself survives a power cut.
void write_durably(const std::filesystem::path& path, const std::string& text) {
  const std::filesystem::path temporary = path.string() + ".tmp";
  const auto fail = [&](const char* what) {
    const int err = errno;
    ::unlink(temporary.c_str());
    throw std::system_error(err, std::generic_category(), std::string(what) + " " + temporary.string());
  };
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) fail("cannot create");
  std::size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      fail("cannot write");
    }
    written += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    fail("cannot flush");
  }
  if (::close(fd) != 0) fail("cannot close");
  if (::rename(temporary.c_str(), path.c_str()) != 0) fail("cannot rename");
  const int dir = ::open(path.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
}

}  // namespace

end_spool::end_spool(end_spool_options options) : options_(std::move(options)) {}

std::vector<task_event> end_spool::load() {
  std::vector<task_event> out;
  std::error_code ec;
  if (!std::filesystem::is_directory(options_.folder, ec)) return out;
  std::vector<std::filesystem::path> files;
  for (std::filesystem::directory_iterator it(options_.folder, ec); !ec && it != std::filesystem::directory_iterator();
       it.increment(ec))
    files.push_back(it->path());
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    std::error_code remove_ec;
    if (file.extension() != ".end") {
      std::filesystem::remove(file, remove_ec);  // a temporary file a crash left: never renamed, never whole
      continue;
    }
    std::ifstream in(file, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    try {
      task_event e = event_of(text.str());
      const auto bytes = static_cast<std::uintmax_t>(text.str().size());
      held_[identity(e)] = {file, bytes};
      bytes_ += bytes;
      out.push_back(std::move(e));
    } catch (const std::exception&) {
      std::filesystem::remove(file, remove_ec);
    }
  }
  return out;
}

bool end_spool::keep(const task_event& e) {
  std::string id = identity(e);
  if (held_.contains(id)) return true;
  const std::string text = event_text(e);
  const auto bytes = static_cast<std::uintmax_t>(text.size());
  if (held_.size() >= options_.max_entries || bytes_ + bytes > options_.max_bytes) {
    problem_ = "the spool of unrecorded ends in " + options_.folder.string() + " is full (" + std::to_string(held_.size()) +
               " ends, " + std::to_string(bytes_) + " bytes; at most " + std::to_string(options_.max_entries) + " ends, " +
               std::to_string(options_.max_bytes) + " bytes): the end of " + e.dag_id + "." + e.task_id + " (" + e.run_id +
               ", try " + std::to_string(e.try_number) + ") is held in memory only";
    return false;
  }
  try {
    std::filesystem::create_directories(options_.folder);
    const std::filesystem::path file = options_.folder / file_name(id);
    write_durably(file, text);
    held_[std::move(id)] = {file, bytes};
    bytes_ += bytes;
    problem_.clear();
    return true;
  } catch (const std::exception& ex) {
    problem_ = std::string("cannot spool an unrecorded end: ") + ex.what();
    return false;
  }
}

void end_spool::forget(const task_event& e) {
  auto it = held_.find(identity(e));
  if (it == held_.end()) return;
  std::error_code ec;
  std::filesystem::remove(it->second.file, ec);
  bytes_ -= it->second.bytes;
  held_.erase(it);
}

}  // namespace dag::detail

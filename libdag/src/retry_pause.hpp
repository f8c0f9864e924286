#pragma once
// How long a client of the database may pause between two attempts to reach it, apart from the
// connection layer (pg_connection.hpp) so that the queue's executor can allow for it too.

#include <chrono>

namespace dag::detail {

/// The longest pause between two attempts to reach the server (pauses start at 50 ms and
/// double): a client whose server came back may wait this long before it tries again.
inline constexpr std::chrono::milliseconds max_retry_delay{2000};

}  // namespace dag::detail

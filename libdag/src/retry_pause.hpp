#pragma once
// How long a client of the database pauses between two attempts to reach it: apart from the
// connection layer (pg_connection.hpp) so that the queue's executor can allow for it too.

#include <chrono>

namespace dag::detail {

/// The first pause before retrying after a broken connection; doubled after every failure.
inline constexpr std::chrono::milliseconds first_retry_delay{50};
/// The longest pause between two attempts to reach the server: a client whose server came back
/// may wait this long before it tries again.
inline constexpr std::chrono::milliseconds max_retry_delay{2000};

}  // namespace dag::detail

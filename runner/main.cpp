// dagrun's entry point: hands the command line to the CLI with the real clock.
#include <iostream>

#include <dag/runner/cli.hpp>

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  dag::system_clock clock;
  return dagrun::run_cli(args, std::cout, std::cerr, clock);
}

#pragma once
// The feedpipe commands (DESIGN.md's command table) and their dispatch.
#include <string>

namespace feedpipe::commands {

struct Command {
  const char* name;
  const char* summary;
  int (*run)(int argc, char** argv);  // arguments after the command name
};

const Command* find(const std::string& name);
std::string usage();
// Runs the command, turning configuration and start-up errors into a message and exit code 2/1.
int run(const Command& command, int argc, char** argv);

int standalone(int argc, char** argv);
int producer(int argc, char** argv);
int consumer(int argc, char** argv);
int broadcaster(int argc, char** argv);
int recorder(int argc, char** argv);
int migrate(int argc, char** argv);
int kafka_mock(int argc, char** argv);
int parse(int argc, char** argv);
int submit(int argc, char** argv);

}  // namespace feedpipe::commands

// `lunfs`: the lunfs admin command. `lunfs locks LOCKSPACE` prints the lock table of a
// running node (resources, granted/converting/waiting locks per node, LVB state) through
// the node's root-only control socket, like `dlm_tool lockdebug`.
#include <cstdio>
#include <string>

#include "dlm/control.h"

namespace {

int usage() {
  std::fprintf(stderr,
               "usage: lunfs locks LOCKSPACE   dump the lock space from this node\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  std::string cmd = argv[1];
  if (cmd == "locks" && argc == 3) {
    std::string text;
    auto s = lunfs::dlm::control_dump(argv[2], &text);
    if (s == lunfs::dlm::Status::kNotFound) {
      std::fprintf(stderr, "lunfs locks: no node serves lock space %s here\n", argv[2]);
      return 1;
    }
    if (s != lunfs::dlm::Status::kOk) {
      std::fprintf(stderr, "lunfs locks: %s (root only)\n",
                   std::string(lunfs::dlm::status_name(s)).c_str());
      return 1;
    }
    std::fwrite(text.data(), 1, text.size(), stdout);
    return 0;
  }
  return usage();
}

// RegisterHistory; see history_check.h.
#include "tests/cluster/history_check.h"

#include <algorithm>
#include <cstdio>
#include <limits>

namespace lunfs::testing {

namespace {

constexpr Time kForever = std::numeric_limits<Time>::max();

std::string at(Time start, Time end) {
  char buf[64];
  if (end == kForever) {
    std::snprintf(buf, sizeof buf, "[%.3f s, open]", start / 1e9);
  } else {
    std::snprintf(buf, sizeof buf, "[%.3f s, %.3f s]", start / 1e9, end / 1e9);
  }
  return buf;
}

}  // namespace

void RegisterHistory::initial(const std::string& reg, uint64_t value) { registers_[reg].initial = value; }

void RegisterHistory::write(const std::string& reg, uint64_t value, Time start, Time end, bool certain,
                            std::string what) {
  registers_[reg].writes.push_back({value, start, end, certain, std::move(what)});
}

void RegisterHistory::read(const std::string& reg, uint64_t value, Time start, Time end, std::string what) {
  registers_[reg].reads.push_back({value, start, end, true, std::move(what)});
}

std::string RegisterHistory::dump(const std::string& prefix) const {
  struct Line {
    const Op* op;
    const std::string* reg;
    bool is_write;
  };
  std::vector<Line> lines;
  for (const auto& [name, r] : registers_) {
    if (name.rfind(prefix, 0) != 0) continue;
    for (const Op& w : r.writes) lines.push_back({&w, &name, true});
    for (const Op& rd : r.reads) lines.push_back({&rd, &name, false});
  }
  std::sort(lines.begin(), lines.end(), [](const Line& a, const Line& b) { return a.op->start < b.op->start; });
  std::string out;
  for (const Line& l : lines) {
    out += at(l.op->start, l.op->end) + " " + *l.reg + (l.is_write ? (l.op->certain ? " write " : " uncertain write ") : " read ") +
           std::to_string(l.op->value) + "  " + l.op->what + "\n";
  }
  return out;
}

size_t RegisterHistory::reads() const {
  size_t n = 0;
  for (const auto& [name, r] : registers_) n += r.reads.size();
  return n;
}

size_t RegisterHistory::writes() const {
  size_t n = 0;
  for (const auto& [name, r] : registers_) n += r.writes.size();
  return n;
}

std::vector<std::string> RegisterHistory::check() const {
  std::vector<std::string> out;
  for (const auto& [name, r] : registers_) check_register(name, r, out);
  return out;
}

void RegisterHistory::check_register(const std::string& name, const Register& r, std::vector<std::string>& out) {
  // Rule 1: every read has a source that nothing certainly replaced before the read began.
  for (const Op& read : r.reads) {
    bool explained = false;
    std::string replaced_by;
    auto try_source = [&](uint64_t value, Time start, Time end) {
      if (explained || start >= read.end) return;
      for (const Op& x : r.writes) {
        if (x.certain && x.value != value && x.start > end && x.end < read.start) {
          replaced_by = x.what + " " + at(x.start, x.end);
          return;
        }
      }
      explained = true;
    };
    if (r.initial == read.value) try_source(r.initial, 0, 0);
    for (const Op& w : r.writes)
      if (w.value == read.value) try_source(w.value, w.start, w.certain ? w.end : kForever);
    if (!explained) {
      out.push_back(name + ": " + read.what + " " + at(read.start, read.end) + " read " + std::to_string(read.value) +
                    (replaced_by.empty() ? ", which no write that began before it wrote"
                                         : ", which had certainly been replaced by " + replaced_by + " before it began"));
    }
  }
  // Rule 2: no read returns a value older than one an earlier read returned.
  std::map<uint64_t, const Op*> only_write;  // value -> its write, when unique and certain
  std::map<uint64_t, int> count;
  for (const Op& w : r.writes) ++count[w.value];
  for (const Op& w : r.writes)
    if (count[w.value] == 1 && w.certain && w.value != r.initial) only_write[w.value] = &w;
  for (const Op& r1 : r.reads) {
    auto w1 = only_write.find(r1.value);
    if (w1 == only_write.end()) continue;
    for (const Op& r2 : r.reads) {
      if (!(r1.end < r2.start) || r2.value == r1.value) continue;
      auto w2 = only_write.find(r2.value);
      if (w2 == only_write.end() || !(w2->second->end < w1->second->start)) continue;
      out.push_back(name + ": " + r2.what + " " + at(r2.start, r2.end) + " read " + std::to_string(r2.value) +
                    " after " + r1.what + " " + at(r1.start, r1.end) + " had read " + std::to_string(r1.value) +
                    ", though " + std::to_string(r2.value) + " was written before " + std::to_string(r1.value) +
                    " (" + w2->second->what + " " + at(w2->second->start, w2->second->end) + ", then " +
                    w1->second->what + " " + at(w1->second->start, w1->second->end) + ")");
    }
  }
}

}  // namespace lunfs::testing

// The checker's judge (history_check.h) on hand-made histories: each rule catches what it
// is for, and concurrent or uncertain operations are given the latitude they have.
#include "tests/cluster/history_check.h"

#include <gtest/gtest.h>

namespace lunfs::testing {
namespace {

std::string all(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& line : v) s += line + "\n";
  return s;
}

TEST(HistoryCheck, ASequentialHistoryIsLinearizable) {
  RegisterHistory h;
  h.write("f/0", 5, 10, 20, true, "w5");
  h.read("f/0", 5, 30, 40, "r");
  h.write("f/0", 6, 50, 60, true, "w6");
  h.read("f/0", 6, 70, 80, "r");
  EXPECT_EQ(all(h.check()), "");
}

TEST(HistoryCheck, AStaleReadIsCaught) {
  RegisterHistory h;
  h.write("f/0", 5, 10, 20, true, "w5");
  h.write("f/0", 6, 30, 40, true, "w6");
  h.read("f/0", 5, 50, 60, "stale read");
  const std::string v = all(h.check());
  EXPECT_NE(v.find("stale read"), std::string::npos) << v;
  EXPECT_NE(v.find("certainly been replaced by w6"), std::string::npos) << v;
}

TEST(HistoryCheck, AReadOverlappingAWriteMaySeeEitherValue) {
  RegisterHistory h;
  h.write("f/0", 5, 10, 20, true, "w5");
  h.write("f/0", 6, 30, 60, true, "w6");
  h.read("f/0", 5, 40, 50, "old");
  h.read("f/0", 6, 40, 50, "new");
  EXPECT_EQ(all(h.check()), "");
}

TEST(HistoryCheck, AValueNobodyWroteIsCaught) {
  RegisterHistory h;
  h.write("f/0", 5, 10, 20, true, "w5");
  h.read("f/0", 7, 30, 40, "phantom");
  h.read("f/1", 0, 30, 40, "hole");  // the initial value of an untouched register
  h.write("f/2", 9, 50, 60, true, "late");
  h.read("f/2", 9, 30, 40, "from the future");
  const std::string v = all(h.check());
  EXPECT_NE(v.find("phantom"), std::string::npos) << v;
  EXPECT_NE(v.find("from the future"), std::string::npos) << v;
  EXPECT_EQ(v.find("hole"), std::string::npos) << v;
}

TEST(HistoryCheck, AnUncertainWriteMayHaveBeenLost) {
  RegisterHistory h;
  h.write("f/0", 5, 10, 20, true, "node 2 w5 unsynced");
  h.read("f/0", 0, 30, 40, "after the loss");
  EXPECT_NE(all(h.check()), "") << "a certain write was lost";
  h.make_uncertain([](const std::string& what, Time, Time) { return what.find("node 2") == 0; });
  EXPECT_EQ(all(h.check()), "");
}

TEST(HistoryCheck, AnUncertainWriteMayTakeEffectLate) {
  RegisterHistory h;
  h.write("f/0", 5, 10, 20, false, "failed w5");
  h.write("f/0", 6, 30, 40, true, "w6");
  h.read("f/0", 5, 50, 60, "r");  // the failed write landed after w6
  EXPECT_EQ(all(h.check()), "");
}

TEST(HistoryCheck, AReadInversionIsCaught) {
  // w6 is slow: a read during it may see 5 or 6, but once one read has seen 6, a later
  // read may not see 5 again.
  RegisterHistory h;
  h.write("f/0", 5, 0, 10, true, "w5");
  h.write("f/0", 6, 20, 100, true, "w6");
  h.read("f/0", 6, 30, 40, "first");
  h.read("f/0", 5, 50, 60, "second");
  const std::string v = all(h.check());
  EXPECT_NE(v.find("second"), std::string::npos) << v;
  EXPECT_NE(v.find("after first"), std::string::npos) << v;
}

TEST(HistoryCheck, NamesArePresenceRegisters) {
  RegisterHistory h;  // create, then a listing without it, then an unlink
  h.read("d/a", 0, 10, 20, "create a");
  h.write("d/a", 1, 10, 20, true, "create a");
  h.read("d/a", 0, 30, 40, "readdir d");
  const std::string v = all(h.check());
  EXPECT_NE(v.find("readdir d"), std::string::npos) << v;
}

}  // namespace
}  // namespace lunfs::testing

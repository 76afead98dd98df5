// The admin tools as an operator meets them: `lunfs tune` (each change read back by fsck,
// status and a mount; refused while mounted here or on "another host"; bad input changes
// nothing; a tune killed between the superblocks is finished), `lunfs status` (text and
// JSON, checked by a JSON parser, of a mount and of an unmounted device), the progress bars
// (on a pty from script(1), absent on a pipe and with -q), the man pages (rendered without
// warnings, every option of the tool's help in its page) and docs/admin.md's fstab line
// and mount unit (systemd-analyze verify).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "fs/core/filesystem.h"
#include "fs/core/heartbeat.h"
#include "fs/device/aligned_buffer.h"
#include "fs/device/block_device.h"
#include "fs/format/superblock.h"
#include "tests/fuse/mount_fixture.h"
#include "tests/support/temp_file.h"

namespace lunfs {
namespace {

using testing::run_command;
using testing::TempFile;

const std::string kBin = LUNFS_BIN_DIR;
const std::string kMkfs = kBin + "/mkfs.lunfs";
const std::string kFsck = kBin + "/fsck.lunfs";
const std::string kLunfs = kBin + "/lunfs";
const std::string kSource = LUNFS_SOURCE_DIR;

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  return std::string((std::istreambuf_iterator<char>(f)), {});
}

// Both superblocks as decoded from the device (nullopt: does not decode).
std::pair<std::optional<ondisk::Superblock>, std::optional<ondisk::Superblock>> superblocks(const std::string& path) {
  auto dev = FileBlockDevice::open(path, {.read_only = true, .direct = true});
  if (!dev) return {};
  auto primary = FileSystem::read_superblock(**dev);
  if (!primary) return {};
  const auto& g = primary->geometry;
  AlignedBuffer buf(g.block_size);
  std::optional<ondisk::Superblock> backup;
  if ((*dev)->read(g.backup_sb_block * g.block_size, buf.span())) {
    if (auto b = ondisk::decode_superblock(buf.span(), g.backup_sb_block)) backup = *b;
  }
  return {*primary, backup};
}

// `python3` reads JSON from `cmd` and runs `script` on it as `d`; its output (or the error).
std::string json_query(const std::string& cmd, const std::string& script) {
  std::string out;
  const int rc = run_command(cmd + " | python3 -c 'import json,sys\nd=json.load(sys.stdin)\n" + script + "'", &out);
  return rc == 0 ? out : "<python3 exit " + std::to_string(rc) + ">: " + out;
}

const char* kUuid = "7be6ce22-2049-4dcc-9cfe-504f600a331e";

// A mounted lunfs (tests/fuse/mount_fixture.h: a LUN file, mkfs -t test:fs -j 2, nolock).
class Admin : public testing::LunfsMount {
 protected:
  uint64_t lun_mib() const override { return 512; }
};

TEST_F(Admin, TuneChangesAreReadBackByFsckStatusAndTheMount) {
  ASSERT_TRUE(testing::write_synced(path("kept"), "written before the tune\n"));
  ASSERT_EQ(mkdir(path("dir").c_str(), 0755), 0);
  unmount_fs();
  const auto [old_primary, old_backup] = superblocks(lun_);
  ASSERT_TRUE(old_primary && old_backup);

  std::string out;
  ASSERT_EQ(run_command(kLunfs + " tune -L 'VM store' -t prod:images -U " + kUuid + " " + lun_, &out), 0) << out;
  EXPECT_NE(out.find("lock table: test:fs -> prod:images"), std::string::npos) << out;
  const auto [primary, backup] = superblocks(lun_);
  ASSERT_TRUE(primary && backup);
  EXPECT_EQ(*primary, *backup);
  EXPECT_EQ(primary->label, "VM store");
  EXPECT_EQ(primary->cluster_name, "prod");
  EXPECT_EQ(primary->fs_name, "images");
  EXPECT_EQ(ondisk::uuid_to_string(primary->uuid), kUuid);
  // The seeds stay: no block but the superblocks needed rewriting.
  EXPECT_EQ(primary->csum_seed, old_primary->csum_seed);
  EXPECT_EQ(primary->dir_hash_seed, old_primary->dir_hash_seed);

  // fsck: clean, and no journal record "of another file system" left behind by the old UUID.
  ASSERT_EQ(run_command(kFsck + " -n " + lun_, &out), 0) << out;
  EXPECT_NE(out.find("lunfs \"prod:images\""), std::string::npos) << out;
  EXPECT_NE(out.find("0 error(s), 0 warning(s)"), std::string::npos) << out;

  EXPECT_EQ(json_query(kLunfs + " status --json " + lun_, "print(d[\"label\"], d[\"cluster_name\"], d[\"fs_name\"], d[\"uuid\"])"),
            std::string("VM store prod images ") + kUuid + "\n");

  // The mount takes the new values, and the files are as they were.
  mount_fs("lockproto=nolock");
  EXPECT_EQ(testing::read_file(path("kept")), "written before the tune\n");
  struct stat st {};
  EXPECT_EQ(stat(path("dir").c_str(), &st), 0);
  EXPECT_TRUE(testing::write_synced(path("after"), "and after\n"));
  EXPECT_EQ(json_query(kLunfs + " status --json " + mnt_, "print(d[\"label\"], d[\"mountpoint\"])"),
            "VM store " + mnt_ + "\n");
  unmount_fs();

  // Once more, a label alone, with a random UUID: the rest stays.
  ASSERT_EQ(run_command(kLunfs + " tune -q -L '' -U random " + lun_, &out), 0) << out;
  EXPECT_EQ(out, "");
  const auto [again, again_backup] = superblocks(lun_);
  ASSERT_TRUE(again && again_backup);
  EXPECT_EQ(*again, *again_backup);
  EXPECT_EQ(again->label, "");
  EXPECT_EQ(again->cluster_name, "prod");
  EXPECT_NE(ondisk::uuid_to_string(again->uuid), kUuid);
  EXPECT_EQ(again->uuid[6] >> 4, 4) << "a version 4 UUID";
  mount_fs("lockproto=nolock");
  EXPECT_EQ(testing::read_file(path("after")), "and after\n");
}

TEST_F(Admin, TuneIsRefusedWhileMountedOnThisHost) {
  const auto before = superblocks(lun_);
  std::string out;
  EXPECT_EQ(run_command(kLunfs + " tune -L other " + lun_, &out), 1) << out;
  EXPECT_NE(out.find("in use on this host by mount.lunfs"), std::string::npos) << out;
  EXPECT_NE(out.find(mnt_), std::string::npos) << "names the mount point: " << out;
  EXPECT_NE(out.find("nothing was changed"), std::string::npos) << out;
  EXPECT_EQ(superblocks(lun_), before);
}

// Another host's mount, as the LUN shows it: a heartbeat renewed every second from this
// process, which holds no claim on the device.
TEST(Tune, IsRefusedWhileAHeartbeatIsLiveOrStaleAndNamesTheSlot) {
  TempFile lun(512ull << 20);
  std::string out;
  ASSERT_EQ(run_command(kMkfs + " -q -t test:fs -j 2 " + lun.path(), &out), 0) << out;
  const auto before = superblocks(lun.path());
  auto dev = FileBlockDevice::open(lun.path(), {.read_only = false, .direct = true});
  ASSERT_TRUE(dev) << dev.status().to_string();
  auto sb = FileSystem::read_superblock(**dev);
  ASSERT_TRUE(sb);
  auto hb = SlotHeartbeat::claim(**dev, *sb, 1, HeartbeatIdentity{.node = 7, .mount_id = 42, .host = "otherhost"},
                                 std::chrono::milliseconds(1000), steady_monotonic_clock(), [](const std::string&) {});
  ASSERT_TRUE(hb) << hb.status().to_string();
  (*hb)->start();
  EXPECT_EQ(run_command(kLunfs + " tune -L other " + lun.path(), &out), 1) << out;
  EXPECT_NE(out.find("is mounted on slot 1 by host otherhost"), std::string::npos) << out;
  EXPECT_NE(out.find("nothing was changed"), std::string::npos) << out;
  // status shows the same mount, by its owner's node id.
  EXPECT_EQ(json_query(kLunfs + " status --json " + lun.path(),
                       "s=d[\"slots\"][1][\"heartbeat\"]\nprint(s[\"state\"], s[\"node\"], s[\"host\"], s[\"age_s\"] < 5, "
                       "d[\"slots\"][0][\"heartbeat\"][\"state\"], d[\"glocks\"], d[\"recovery\"])"),
            "live 7 otherhost True free None []\n");
  // A crashed mount: live on disk, never renewed again.
  (*hb)->stop();
  EXPECT_EQ(run_command(kLunfs + " tune -L other " + lun.path(), &out), 1) << out;
  EXPECT_NE(out.find("slot 1: the heartbeat of host otherhost"), std::string::npos) << out;
  EXPECT_NE(out.find("fsck.lunfs -y --all-nodes-unmounted"), std::string::npos) << out;
  EXPECT_EQ(superblocks(lun.path()), before);
  ASSERT_TRUE((*hb)->release());
  EXPECT_EQ(run_command(kLunfs + " tune -L other " + lun.path(), &out), 0) << out;
  EXPECT_EQ(superblocks(lun.path()).first->label, "other");
}

TEST(Tune, BadInputIsRefusedInWordsAndChangesNothing) {
  TempFile lun(256ull << 20);
  std::string out;
  ASSERT_EQ(run_command(kMkfs + " -q -t test:fs -j 2 -L keep " + lun.path(), &out), 0) << out;
  const auto before = superblocks(lun.path());
  ASSERT_TRUE(before.first);
  const std::string l64(64, 'x');
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"-L " + l64, "at most 63"},
      {"-t nocolon", "-t wants CLUSTER:FSNAME"},
      {"-t 'a b:c'", "must each be 1-32 characters"},
      {"-t a:", "must each be 1-32 characters"},
      {"-t " + std::string(33, 'c') + ":x", "must each be 1-32 characters"},
      {"-U not-a-uuid", "UUID"},
      {"-U 00000000-0000-0000-0000-000000000000", "nil UUID"},
      {"", "nothing to change"},
      {"-x", "unknown option -x"},
      {"-L", "needs a value"},
  };
  for (const auto& [args, words] : cases) {
    const std::string device = args == "-L" ? "" : " " + lun.path();
    EXPECT_EQ(run_command(kLunfs + " tune " + args + device, &out), 2) << args << ": " << out;
    EXPECT_NE(out.find(words), std::string::npos) << args << ": " << out;
  }
  EXPECT_EQ(run_command(kLunfs + " tune -L a " + lun.path() + " " + lun.path(), &out), 2) << out;
  EXPECT_NE(out.find("more than one device"), std::string::npos) << out;
  EXPECT_EQ(superblocks(lun.path()), before);

  TempFile zeros(64ull << 20);
  EXPECT_EQ(run_command(kLunfs + " tune -L a " + zeros.path(), &out), 1) << out;
  EXPECT_NE(out.find("nothing was changed"), std::string::npos) << out;
  EXPECT_EQ(run_command("cmp -s -n 1048576 " + zeros.path() + " /dev/zero"), 0) << "the non-lunfs device was written";
  EXPECT_EQ(run_command(kLunfs + " tune -L a /nonexistent/lun", &out), 1) << out;
}

// A tune killed after the primary superblock and before the backup: the primary (what
// mounts read) has the new values, fsck reports the backup, and the same command finishes.
TEST(Tune, KilledBetweenPrimaryAndBackupTheSameCommandFinishes) {
  TempFile lun(256ull << 20);
  std::string out;
  ASSERT_EQ(run_command(kMkfs + " -q -t test:fs -j 2 -L old " + lun.path(), &out), 0) << out;
  {
    auto dev = FileBlockDevice::open(lun.path(), {.read_only = false, .direct = true});
    ASSERT_TRUE(dev);
    auto sb = FileSystem::read_superblock(**dev);
    ASSERT_TRUE(sb);
    sb->label = "new";
    AlignedBuffer buf(sb->geometry.block_size);
    ondisk::encode_superblock(*sb, buf.span(), sb->geometry.sb_block);
    ASSERT_TRUE((*dev)->write(sb->geometry.sb_block * sb->geometry.block_size, buf.span()));
    ASSERT_TRUE((*dev)->flush());
  }
  EXPECT_EQ(run_command(kFsck + " -n " + lun.path(), &out), 4) << out;
  EXPECT_NE(out.find("differs from the primary"), std::string::npos) << out;
  ASSERT_EQ(run_command(kLunfs + " tune -L new " + lun.path(), &out), 0) << out;
  EXPECT_NE(out.find("backup superblock written"), std::string::npos) << out;
  EXPECT_EQ(out.find("primary superblock written"), std::string::npos) << out;
  const auto [primary, backup] = superblocks(lun.path());
  ASSERT_TRUE(primary && backup);
  EXPECT_EQ(*primary, *backup);
  EXPECT_EQ(backup->label, "new");
  EXPECT_EQ(run_command(kFsck + " -n " + lun.path(), &out), 0) << out;
}

TEST_F(Admin, StatusOfAMountShowsSlotsRgrpsGlocksAndRecoveryAsTextAndJson) {
  ASSERT_EQ(mkdir(path("d").c_str(), 0755), 0);
  ASSERT_TRUE(testing::write_synced(path("d/f"), std::string(1 << 20, 'x')));
  char host[256] = {};
  ASSERT_EQ(gethostname(host, sizeof host - 1), 0);
  std::string out;
  ASSERT_EQ(run_command(kLunfs + " status " + mnt_, &out), 0) << out;
  EXPECT_NE(out.find(lun_ + " mounted on " + mnt_), std::string::npos) << out;
  EXPECT_NE(out.find("slot 0: mounted, owner a nolock mount on host " + std::string(host) + " (pid " +
                     std::to_string(pid_) + ")"), std::string::npos) << out;
  EXPECT_NE(out.find("slot 1: free (never mounted)"), std::string::npos) << out;
  EXPECT_NE(out.find("Glocks of the mount on this host: "), std::string::npos) << out;
  EXPECT_NE(out.find("Recovery: none"), std::string::npos) << out;

  // The JSON parses; its figures agree with the superblock and the mount.
  const auto sb = superblocks(lun_).first;
  ASSERT_TRUE(sb);
  struct stat d {};
  ASSERT_EQ(stat(path("d").c_str(), &d), 0);
  const std::string query =
      "s=d[\"slots\"]\nr=d[\"rgrps\"]\n"
      "print(len(s), s[0][\"heartbeat\"][\"state\"], s[0][\"heartbeat\"][\"pid\"], s[1][\"heartbeat\"][\"state\"])\n"
      "print(r[\"count\"], len(r[\"groups\"]), r[\"data_blocks\"] == sum(g[\"data_blocks\"] for g in r[\"groups\"]))\n"
      "print(any(l.startswith(\"inode:" + std::to_string(d.st_ino) + " \") for l in d[\"glocks\"]), d[\"recovery\"])";
  EXPECT_EQ(json_query(kLunfs + " status --json " + mnt_, query),
            "2 live " + std::to_string(pid_) + " free\n" + std::to_string(sb->geometry.rgrp_count) + " " +
                std::to_string(sb->geometry.rgrp_count) + " True\nTrue []\n");
  // By device, and with no argument (a list of every lunfs mounted here).
  EXPECT_EQ(json_query(kLunfs + " status --json " + lun_, "print(d[\"mountpoint\"], d[\"glocks\"] is not None)"),
            mnt_ + " True\n");
  EXPECT_EQ(json_query(kLunfs + " status --json", "print([m[\"device\"] for m in d if m[\"mountpoint\"] == \"" + mnt_ + "\"])"),
            "['" + lun_ + "']\n");

  // Unmounted: no glocks to ask for, and the rgrp figures are fsck's.
  unmount_fs();
  ASSERT_EQ(run_command(kFsck + " -n " + lun_, &out), 0) << out;
  // "..., N of M data blocks used; ..." (no std::regex: GCC 12 warns falsely inside it).
  const size_t tail = out.find(" data blocks used");
  ASSERT_NE(tail, std::string::npos) << out;
  unsigned long long used = 0, total = 0;
  ASSERT_EQ(std::sscanf(out.c_str() + out.rfind(", ", tail) + 2, "%llu of %llu", &used, &total), 2) << out;
  EXPECT_EQ(json_query(kLunfs + " status --json " + lun_,
                       "r=d[\"rgrps\"]\nprint(r[\"data_blocks\"], r[\"free_blocks\"], d[\"mountpoint\"], d[\"glocks\"], "
                       "d[\"glocks_note\"])"),
            std::to_string(total) + " " + std::to_string(total - used) + " None None not mounted on this host\n");
  ASSERT_EQ(run_command(kLunfs + " status " + lun_, &out), 0) << out;
  EXPECT_NE(out.find("Glocks: unknown (not mounted on this host)"), std::string::npos) << out;
}

// A label is bytes: quotes, backslashes, and bytes that are not UTF-8 still give JSON that
// parses, and UTF-8 stays as it is.
TEST(Status, JsonParsesWhateverTheLabelHolds) {
  TempFile lun(256ull << 20);
  std::string out;
  ASSERT_EQ(run_command(kMkfs + " -q -t test:fs -j 2 " + lun.path(), &out), 0) << out;
  ASSERT_EQ(run_command(kLunfs + " tune -q -L \"$(printf 'q\"\\\\ \\377 \\303\\251')\" " + lun.path(), &out), 0) << out;
  ASSERT_EQ(superblocks(lun.path()).first->label, "q\"\\ \xff \xc3\xa9");
  EXPECT_EQ(json_query(kLunfs + " status --json " + lun.path(),
                       "l=d[\"label\"]\nprint(len(l), l[0:2] == \"q\" + chr(34), ord(l[2]), ord(l[4]), ord(l[6]))"),
            "7 True 92 255 233\n");
}

TEST(Status, RefusesWhatIsNotLunfsInWords) {
  std::string out;
  EXPECT_EQ(run_command(kLunfs + " status /var/tmp", &out), 1) << out;
  EXPECT_NE(out.find("not the mount point of a lunfs"), std::string::npos) << out;
  EXPECT_EQ(run_command(kLunfs + " status --bogus", &out), 2) << out;
  EXPECT_EQ(run_command(kLunfs + " status /nonexistent", &out), 1) << out;
}

// The bar is drawn only on a terminal: script(1) gives the command a pty.
TEST(Progress, FsckAndTuneDrawABarOnATerminalOnlyAndNotWithQ) {
  if (run_command("command -v script >/dev/null") != 0) GTEST_SKIP() << "script(1) is not installed";
  TempFile lun(64ull << 30);  // sparse: 64 resource groups
  std::string out;
  ASSERT_EQ(run_command(kMkfs + " -q -t test:fs -j 2 " + lun.path(), &out), 0) << out;
  const std::string erase = "\r\033[K";
  ASSERT_EQ(run_command("script -qec '" + kFsck + " -n " + lun.path() + "' /dev/null", &out), 0) << out;
  EXPECT_NE(out.find(erase + "fsck.lunfs: 4/7 inodes ["), std::string::npos) << out;
  EXPECT_NE(out.find(erase + "fsck.lunfs: 6/7 block ownership ["), std::string::npos) << out;
  EXPECT_NE(out.find("0 error(s)"), std::string::npos) << out;
  ASSERT_EQ(run_command("script -qec '" + kFsck + " -n -q " + lun.path() + "' /dev/null", &out), 0) << out;
  EXPECT_EQ(out.find(erase), std::string::npos) << out;
  ASSERT_EQ(run_command(kFsck + " -n " + lun.path(), &out), 0) << out;  // a pipe
  EXPECT_EQ(out.find(erase), std::string::npos) << out;
  EXPECT_EQ(out.find("["), std::string::npos) << out;

  ASSERT_EQ(run_command("script -qec '" + kLunfs + " tune -U random " + lun.path() + "' /dev/null", &out), 0) << out;
  EXPECT_NE(out.find(erase + "lunfs tune: sweeping the journals ["), std::string::npos) << out;
  ASSERT_EQ(run_command(kLunfs + " tune -U random " + lun.path(), &out), 0) << out;
  EXPECT_EQ(out.find(erase), std::string::npos) << out;
}

// Options in a tool's help text: "-x" and "--long" at the start of its option lines, and
// for mount.lunfs the -o keys of its usage line.
std::set<std::string> help_options(const std::string& help) {
  auto part = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'; };
  std::set<std::string> out;
  std::istringstream in(help);
  for (std::string line; std::getline(in, line);) {
    size_t i = line.find_first_not_of(' ');
    if (i == 0 || i == std::string::npos || line[i] != '-') continue;
    for (;;) {  // "-x", "-x, --long"
      size_t end = i;
      while (end < line.size() && part(line[end])) ++end;
      out.insert(line.substr(i, end - i));
      if (line.compare(end, 3, ", -") != 0) break;
      i = end + 2;
    }
  }
  return out;
}

// Whether `word` occurs in `text` not as part of a longer option or word ("-r" is not in
// "--dry-run").
bool has_word(const std::string& text, const std::string& word) {
  auto part = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'; };
  for (size_t at = text.find(word); at != std::string::npos; at = text.find(word, at + 1)) {
    const size_t end = at + word.size();
    if ((at == 0 || !part(text[at - 1])) && (end == text.size() || !part(text[end]))) return true;
  }
  return false;
}

TEST(ManPages, RenderWithoutWarningsAndNameEveryOptionOfTheHelp) {
  if (run_command("command -v groff >/dev/null") != 0) GTEST_SKIP() << "groff is not installed";
  struct Page {
    std::string file, help_command;
  };
  const std::vector<Page> pages = {
      {"mkfs/mkfs.lunfs.8", kMkfs + " --help"},
      {"fsck/fsck.lunfs.8", kFsck + " --help"},
      {"fuse/mount.lunfs.8", kBin + "/mount.lunfs --help"},
      {"mkfs/lunfs/lunfs.8", kLunfs + " help"},
  };
  for (const auto& p : pages) {
    const std::string page = kSource + "/" + p.file;
    std::string out;
    EXPECT_EQ(run_command("groff -man -Tutf8 -ww -z " + page, &out), 0) << p.file << ": " << out;
    EXPECT_EQ(out, "") << p.file << " renders with warnings";
    if (run_command("command -v man >/dev/null") == 0) {
      EXPECT_EQ(run_command("MANWIDTH=80 man --warnings -l " + page + " 2>&1 >/dev/null", &out), 0) << out;
      EXPECT_EQ(out, "") << p.file;
    }
    std::string source = slurp(page);
    ASSERT_FALSE(source.empty()) << page;
    for (size_t at; (at = source.find("\\-")) != std::string::npos;) source.replace(at, 2, "-");
    std::string help;
    (void)run_command(p.help_command, &help);  // mount.lunfs exits 1 after its usage
    std::set<std::string> options = help_options(help);
    if (p.file == "fuse/mount.lunfs.8") {
      const size_t start = help.find("[-o ");
      ASSERT_NE(start, std::string::npos) << help;
      std::string keys = help.substr(start + 4, help.find(']', start) - start - 4);
      for (char& c : keys) c = (c == ',' || c == '|') ? ' ' : c;
      std::istringstream in(keys);
      for (std::string k; in >> k;) options.insert(k.substr(0, k.find('=')));
      options.insert("-o");
      options.insert("-f");
    }
    EXPECT_GE(options.size(), 4u) << p.file << ": the help's options were not found in:\n" << help;
    for (const auto& o : options) {
      EXPECT_TRUE(has_word(source, o)) << p.file << " does not document " << o;
    }
  }
}

// The code block of docs/admin.md that follows "```" + `lang`.
std::string doc_block(const std::string& lang) {
  const std::string doc = slurp(kSource + "/docs/admin.md");
  const size_t start = doc.find("```" + lang + "\n");
  if (start == std::string::npos) return "";
  const size_t body = start + 4 + lang.size();
  return doc.substr(body, doc.find("```", body) - body);
}

TEST(SystemdUnits, FstabLineAndMountUnitPassSystemdVerify) {
  if (run_command("command -v systemd-analyze >/dev/null") != 0) GTEST_SKIP() << "systemd-analyze is not installed";
  char tmpl[] = "/var/tmp/lunfs-units-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  struct Cleanup {
    std::string dir;
    ~Cleanup() { std::filesystem::remove_all(dir); }
  } cleanup{dir};

  const std::string unit = doc_block("systemd");
  ASSERT_NE(unit.find("Type=lunfs"), std::string::npos) << unit;
  EXPECT_NE(unit.find("After=corosync.service"), std::string::npos) << unit;
  EXPECT_NE(unit.find("_netdev"), std::string::npos) << unit;
  ASSERT_TRUE(testing::write_file(dir + "/vm.mount", unit));
  std::string out;
  EXPECT_EQ(run_command("cd " + dir + " && systemd-analyze verify --man=no " + dir + "/vm.mount", &out), 0) << out;
  EXPECT_EQ(out, "");

  const std::string fstab = doc_block("fstab");
  ASSERT_NE(fstab.find(" lunfs "), std::string::npos) << fstab;
  const std::string generator = "/lib/systemd/system-generators/systemd-fstab-generator";
  if (access(generator.c_str(), X_OK) != 0) return;  // the unit above is checked; the line needs the generator
  ASSERT_TRUE(testing::write_file(dir + "/fstab", fstab));
  ASSERT_EQ(mkdir((dir + "/gen").c_str(), 0755), 0);
  ASSERT_EQ(run_command("SYSTEMD_FSTAB=" + dir + "/fstab " + generator + " " + dir + "/gen " + dir + "/gen " + dir + "/gen",
                        &out), 0) << out;
  const std::string generated = slurp(dir + "/gen/vm.mount");
  EXPECT_NE(generated.find("After=corosync.service"), std::string::npos) << generated;
  EXPECT_NE(generated.find("Requires=corosync.service"), std::string::npos) << generated;
  EXPECT_NE(generated.find("Before=remote-fs.target"), std::string::npos) << "_netdev: " << generated;
  EXPECT_EQ(run_command("systemd-analyze verify --man=no " + dir + "/gen/vm.mount", &out), 0) << out;
  // mount.lunfs takes the line's options as mount(8) hands them over.
  std::istringstream fields(fstab);
  std::string what, where, type, options;
  ASSERT_TRUE(fields >> what >> where >> type >> options) << fstab;
  EXPECT_EQ(type, "lunfs");
  EXPECT_NE(run_command(kBin + "/mount.lunfs /nonexistent/lun " + dir + " -o " + options, &out), 1)
      << "options refused: " << out;
}

}  // namespace
}  // namespace lunfs

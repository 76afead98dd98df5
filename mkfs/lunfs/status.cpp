// lunfs status (status.h).
#include "mkfs/lunfs/status.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <vector>

#include "dlm/control.h"
#include "fs/core/heartbeat.h"
#include "fs/device/aligned_buffer.h"
#include "fs/device/block_device.h"
#include "fs/format/rgrp_format.h"
#include "fs/format/slot_format.h"
#include "fsck/checker.h"

namespace lunfs {

namespace {

std::string n(uint64_t v) { return std::to_string(v); }

// /proc/self/mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape_mountinfo(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    auto octal = [&](size_t k) { return k < s.size() && s[k] >= '0' && s[k] <= '7'; };
    if (s[i] == '\\' && octal(i + 1) && octal(i + 2) && octal(i + 3)) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 3), nullptr, 8));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// Length of the valid UTF-8 sequence at s[i], or 0.
size_t utf8_length(const std::string& s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  const size_t len = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
  if (len == 0 || i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((b(i + k) & 0xc0) != 0x80) return 0;
  }
  return len;
}

// A JSON string. Labels and host names are bytes: a byte that is not part of valid UTF-8
// is written as the code point of the same value, so the output always parses.
std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      if (size_t len = utf8_length(s, i)) {
        out += s.substr(i, len);
        i += len - 1;
      } else {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", c);
        out += buf;
      }
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

// The mount's glocks through its control socket (kNotFound: no mount of it here).
void ask_glocks(const std::string& device, StatusReport& r) {
  struct stat st {};
  if (stat(device.c_str(), &st) != 0) {
    r.glocks_note = "cannot stat " + device;
    return;
  }
  std::string text;
  dlm::Status s = dlm::control_request(dlm::mount_control_service_name(st), dlm::kControlGlocks, &text);
  // A cluster mount serves its lock space's socket (fuse/main.cpp); only a mount of this
  // very device is asked there.
  if (s == dlm::Status::kNotFound && !r.mountpoint.empty()) {
    s = dlm::control_request(dlm::control_service_name(r.sb.fs_name), dlm::kControlGlocks, &text);
  }
  if (s == dlm::Status::kNotFound) {
    r.glocks_note = r.mountpoint.empty() ? "not mounted on this host" : "the mount on this host has no control socket";
    return;
  }
  if (s != dlm::Status::kOk) {
    r.glocks_note = "the mount's control socket refused: " + std::string(dlm::status_name(s)) + " (root only)";
    return;
  }
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  r.glocks = std::move(lines);
  // A cluster mount answers on its lock space's socket with the members and recoveries.
  if (r.mountpoint.empty() ||
      dlm::control_request(dlm::control_service_name(r.sb.fs_name), dlm::kControlRecovery, &text) != dlm::Status::kOk) {
    return;
  }
  std::istringstream recovery(text);
  for (std::string line; std::getline(recovery, line);) {
    if (line.rfind("members", 0) == 0) {
      std::istringstream ids(line.substr(7));
      for (uint32_t id; ids >> id;) r.members.push_back(id);
    } else if (!line.empty()) {
      r.recovery.push_back(line);
    }
  }
}

Status read_slots(BlockDevice& dev, StatusReport& r) {
  const auto& g = r.sb.geometry;
  const uint64_t seed = r.sb.csum_seed;
  const uint32_t count = g.journal_count;
  AlignedBuffer area(2 * uint64_t{count} * g.block_size);  // headers, then heartbeats
  LUNFS_TRY(dev.read(g.slot_header_start * g.block_size, area.span()));
  auto block = [&](uint64_t i) { return std::span<const std::byte>(area.span().subspan(i * g.block_size, g.block_size)); };
  const int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                             std::chrono::system_clock::now().time_since_epoch()).count();
  for (uint32_t s = 0; s < count; ++s) {
    SlotStatus out;
    out.slot = s;
    if (auto h = ondisk::decode_slot_header(block(s), g.slot_header(s), seed, g)) {
      out.mounted_flag = (h->flags & ondisk::kSlotMounted) != 0;
      out.owner_node = h->owner_node;
      out.mount_generation = h->mount_generation;
    } else {
      out.header_damage = h.status().message();
    }
    if (auto hb = ondisk::decode_heartbeat(block(count + s), g.heartbeat(s), seed, g)) {
      out.live = hb->state == ondisk::HeartbeatState::kLive;
      out.node = hb->node;
      out.host = hb->host;
      out.pid = hb->pid;
      out.mount_id = hb->mount_id;
      out.counter = hb->counter;
      out.interval_ms = hb->interval_ms;
      if (hb->timestamp_ns != 0) out.age_s = static_cast<double>(now_ns - hb->timestamp_ns) / 1e9;
      const auto interval = hb->interval_ms ? std::chrono::milliseconds(hb->interval_ms) : kDefaultHeartbeatInterval;
      const double limit_s = std::chrono::duration<double>(heartbeat_lease(interval) + kHeartbeatMargin).count();
      out.overdue = out.live && out.age_s && *out.age_s > limit_s;
    } else {
      out.heartbeat_damage = hb.status().message();
    }
    r.slots.push_back(std::move(out));
  }
  return Status::ok();
}

Status read_rgrps(BlockDevice& dev, StatusReport& r) {
  const auto& g = r.sb.geometry;
  AlignedBuffer one(g.block_size);
  for (uint32_t i = 0; i < g.rgrp_count; ++i) {
    const auto loc = g.rgrp(i);
    RgrpStatus out;
    out.index = i;
    out.data_blocks = loc.data_blocks;
    r.data_blocks += loc.data_blocks;
    LUNFS_TRY(dev.read(loc.header * g.block_size, one.span()));
    if (auto h = ondisk::decode_rgrp_header(one.span(), loc.header, r.sb.csum_seed, loc)) {
      out.free_blocks = h->free_blocks;
      out.dinodes = h->dinodes;
      r.free_blocks += h->free_blocks;
      r.dinodes += h->dinodes;
    } else {
      out.damage = h.status().message();
    }
    r.rgrps.push_back(std::move(out));
  }
  return Status::ok();
}

// One character per resource group by how full it is: ' ' empty .. '#' full, '!' damaged.
std::string usage_map(const std::vector<RgrpStatus>& rgrps) {
  static const char kLevels[] = " .:-=+*%@#";
  std::string map;
  for (const auto& g : rgrps) {
    if (!g.damage.empty() || g.data_blocks == 0) {
      map += '!';
      continue;
    }
    const uint64_t used = g.data_blocks - std::min(g.free_blocks, g.data_blocks);
    map += kLevels[std::min<uint64_t>(9, used * 10 / g.data_blocks)];
  }
  return map;
}

std::string heartbeat_words(const SlotStatus& s) {
  if (!s.heartbeat_damage.empty()) return "heartbeat damaged: " + s.heartbeat_damage;
  std::string out = s.live ? "mounted" : "free";
  if (s.live || !s.host.empty()) {
    out += std::string(s.live ? ", owner " : ", last owner ") + (s.node ? "node " + n(s.node) : "a nolock mount") +
           " on host " + (s.host.empty() ? std::string("?") : s.host) + " (pid " + n(s.pid) + ")";
  }
  if (s.age_s) {
    out += std::string(s.live ? ", renewed " : ", last written ") + fixed(*s.age_s, 1) + " s ago";
    if (s.live && s.interval_ms) out += " (every " + fixed(s.interval_ms / 1000.0, 1) + " s)";
  } else if (!s.live) {
    out += " (never mounted)";
  }
  if (s.overdue) out += "; OVERDUE: not renewed within its lease (a crashed mount?)";
  return out;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> lunfs_mounts() {
  std::vector<std::pair<std::string, std::string>> out;
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::vector<std::string> f;
    for (std::string w; fields >> w;) f.push_back(w);
    size_t dash = 0;
    while (dash < f.size() && f[dash] != "-") ++dash;
    if (dash + 2 >= f.size() || f.size() < 5) continue;
    if (f[dash + 1] != "fuse.lunfs") continue;
    out.emplace_back(unescape_mountinfo(f[4]), unescape_mountinfo(f[dash + 2]));
  }
  return out;
}

// `path` made absolute, with no "." / ".." / empty components and no trailing slash,
// without looking at the file system (no symlinks resolved).
std::string lexically_absolute(const std::string& path) {
  std::string in = path;
  if (in.empty() || in[0] != '/') {
    char cwd[4096];
    if (getcwd(cwd, sizeof cwd)) in = std::string(cwd) + "/" + in;
  }
  std::vector<std::string> parts;
  std::istringstream ss(in);
  for (std::string p; std::getline(ss, p, '/');) {
    if (p.empty() || p == ".") continue;
    if (p == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.push_back(p);
  }
  std::string out;
  for (const auto& p : parts) out += "/" + p;
  return out.empty() ? "/" : out;
}

Result<StatusReport> gather_status(const std::string& target) {
  StatusReport r;
  r.device = target;
  // A mount point named as mountinfo names it is found without stat(2): stat of a mount's
  // root asks the mount, which may be waiting for a dead node's recovery, exactly when an
  // admin runs status.
  const std::string absolute = lexically_absolute(target);
  for (const auto& [mp, dev] : lunfs_mounts()) {
    if (mp == absolute) {
      r.mountpoint = mp;
      r.device = dev;
    }
  }
  if (r.mountpoint.empty()) {
    struct stat st {};
    if (stat(target.c_str(), &st) != 0) return error(errno, target + ": " + std::strerror(errno));
    for (const auto& [mp, dev] : lunfs_mounts()) {
      if (S_ISDIR(st.st_mode)) {  // the mount point by another name (a symlink, a bind mount)
        struct stat m {};
        if (stat(mp.c_str(), &m) == 0 && m.st_dev == st.st_dev && m.st_ino == st.st_ino) {
          r.mountpoint = mp;
          r.device = dev;
        }
        continue;
      }
      struct stat d {};
      if (stat(dev.c_str(), &d) != 0) continue;
      const bool same = S_ISBLK(st.st_mode) ? S_ISBLK(d.st_mode) && d.st_rdev == st.st_rdev
                                            : d.st_dev == st.st_dev && d.st_ino == st.st_ino;
      if (same) r.mountpoint = mp;
    }
    if (S_ISDIR(st.st_mode) && r.mountpoint.empty()) {
      return error(EINVAL, target + " is a directory but not the mount point of a lunfs");
    }
  }
  // O_DIRECT: another host's heartbeat renewals are seen, not a cached copy.
  LUNFS_ASSIGN(auto dev, FileBlockDevice::open(r.device, {.read_only = true, .direct = true}));
  LUNFS_ASSIGN(auto located, locate_superblock(*dev));
  r.sb = located.sb;
  LUNFS_TRY(read_slots(*dev, r));
  LUNFS_TRY(read_rgrps(*dev, r));
  ask_glocks(r.device, r);
  return r;
}

std::string status_text(const StatusReport& r) {
  const auto& g = r.sb.geometry;
  std::ostringstream o;
  o << r.device << (r.mountpoint.empty() ? " (not mounted on this host)" : " mounted on " + r.mountpoint) << "\n";
  o << "  lock table " << r.sb.cluster_name << ":" << r.sb.fs_name << ", label \"" << r.sb.label << "\", UUID "
    << ondisk::uuid_to_string(r.sb.uuid) << "\n";
  o << "  " << g.block_count << " blocks of " << g.block_size << " bytes, " << g.journal_count << " journals of "
    << (uint64_t{g.journal_blocks} * g.block_size >> 20) << " MiB\n";
  o << "Slots (owner from the heartbeat: a node id, or a nolock mount; ages by the writer's clock):\n";
  for (const auto& s : r.slots) {
    // The heartbeat names the owner; the slot header's owner fields are shown only when
    // set (nothing writes them yet) or damaged.
    o << "  slot " << s.slot << ": " << heartbeat_words(s);
    if (!s.header_damage.empty()) o << "; slot header damaged: " << s.header_damage;
    if (s.owner_node || s.mounted_flag) {
      o << "; header: owner node " << s.owner_node << (s.mounted_flag ? ", holds the slot" : "");
    }
    o << "\n";
  }
  const double pct = r.data_blocks ? 100.0 * static_cast<double>(r.free_blocks) / static_cast<double>(r.data_blocks) : 0;
  o << "Resource groups: " << r.rgrps.size() << ", " << r.free_blocks << " of " << r.data_blocks
    << " data blocks free (" << fixed(pct, 1) << "%), " << r.dinodes << " inodes (on disk; a mount's latest changes "
    << "reach the headers at its next checkpoint)\n";
  const std::string map = usage_map(r.rgrps);
  o << "  usage, one character per group (' ' empty, '.' :-=+*%@ by tenths, '#' full, '!' damaged):\n";
  for (size_t i = 0; i < map.size(); i += 64) {
    char idx[24];
    std::snprintf(idx, sizeof idx, "%6zu", i);
    o << "  " << idx << " [" << map.substr(i, 64) << "]\n";
  }
  for (const auto& rg : r.rgrps) {
    if (!rg.damage.empty()) o << "  rgrp " << rg.index << ": header damaged: " << rg.damage << "\n";
  }
  if (r.glocks) {
    o << "Glocks of the mount on this host: " << r.glocks->size() << "\n";
    for (const auto& line : *r.glocks) o << "  " << line << "\n";
  } else {
    o << "Glocks: unknown (" << r.glocks_note << ")\n";
  }
  if (!r.members.empty()) {
    o << "Cluster members (node ids):";
    for (uint32_t id : r.members) o << " " << id;
    o << "\n";
  }
  o << "Recovery: ";
  if (r.recovery.empty()) o << "none\n";
  for (const auto& line : r.recovery) o << "\n  " << line;
  if (!r.recovery.empty()) o << "\n";
  return o.str();
}

std::string status_json(const StatusReport& r) {
  const auto& g = r.sb.geometry;
  std::ostringstream o;
  o << "{\n  \"device\": " << json_string(r.device) << ",\n  \"mountpoint\": "
    << (r.mountpoint.empty() ? "null" : json_string(r.mountpoint)) << ",\n";
  o << "  \"cluster_name\": " << json_string(r.sb.cluster_name) << ", \"fs_name\": " << json_string(r.sb.fs_name)
    << ", \"label\": " << json_string(r.sb.label) << ", \"uuid\": " << json_string(ondisk::uuid_to_string(r.sb.uuid))
    << ",\n  \"block_size\": " << g.block_size << ", \"block_count\": " << g.block_count
    << ", \"journal_count\": " << g.journal_count << ", \"journal_blocks\": " << g.journal_blocks << ",\n";
  o << "  \"slots\": [";
  for (size_t i = 0; i < r.slots.size(); ++i) {
    const auto& s = r.slots[i];
    o << (i ? ",\n" : "\n") << "    {\"slot\": " << s.slot << ", \"header_damage\": "
      << (s.header_damage.empty() ? "null" : json_string(s.header_damage))
      << ", \"in_use\": " << (s.mounted_flag ? "true" : "false") << ", \"owner_node\": " << s.owner_node
      << ", \"mount_generation\": " << s.mount_generation << ", \"heartbeat\": {\"damage\": "
      << (s.heartbeat_damage.empty() ? "null" : json_string(s.heartbeat_damage)) << ", \"state\": "
      << json_string(s.live ? "live" : "free") << ", \"node\": " << s.node << ", \"host\": " << json_string(s.host)
      << ", \"pid\": " << s.pid << ", \"mount_id\": " << s.mount_id << ", \"counter\": " << s.counter
      << ", \"interval_ms\": " << s.interval_ms << ", \"age_s\": " << (s.age_s ? fixed(*s.age_s, 3) : "null")
      << ", \"overdue\": " << (s.overdue ? "true" : "false") << "}}";
  }
  o << "\n  ],\n  \"rgrps\": {\"count\": " << r.rgrps.size() << ", \"data_blocks\": " << r.data_blocks
    << ", \"free_blocks\": " << r.free_blocks << ", \"inodes\": " << r.dinodes << ", \"groups\": [";
  for (size_t i = 0; i < r.rgrps.size(); ++i) {
    const auto& rg = r.rgrps[i];
    o << (i ? ",\n" : "\n") << "    {\"index\": " << rg.index << ", \"data_blocks\": " << rg.data_blocks
      << ", \"free_blocks\": " << rg.free_blocks << ", \"inodes\": " << rg.dinodes
      << ", \"damage\": " << (rg.damage.empty() ? "null" : json_string(rg.damage)) << "}";
  }
  o << "\n  ]},\n  \"glocks\": ";
  if (r.glocks) {
    o << "[";
    for (size_t i = 0; i < r.glocks->size(); ++i) o << (i ? ", " : "") << json_string((*r.glocks)[i]);
    o << "], \"glocks_note\": null";
  } else {
    o << "null, \"glocks_note\": " << json_string(r.glocks_note);
  }
  o << ",\n  \"members\": [";
  for (size_t i = 0; i < r.members.size(); ++i) o << (i ? ", " : "") << r.members[i];
  o << "],\n  \"recovery\": [";
  for (size_t i = 0; i < r.recovery.size(); ++i) o << (i ? ", " : "") << json_string(r.recovery[i]);
  o << "]\n}\n";
  return o.str();
}

}  // namespace lunfs

// One lock resource of the replicated table: its three queues (granted, converting,
// waiting, each in arrival order) and its lock value block. Locks link into the queues
// intrusively so that a held lock costs one allocation on every node.
#pragma once

#include <cstdint>
#include <string>

#include "dlm/types.h"

namespace lunfs::dlm {

struct Resource;

enum class Queue : uint8_t { kNone, kGranted, kConvert, kWait };

struct Lock {
  Lock* prev = nullptr;  // circular links within the resource queue `queue`
  Lock* next = nullptr;
  Resource* res = nullptr;
  uint64_t cookie = 0;  // the owner's opaque value, handed back in its callbacks
  uint64_t seq = 0;     // the owner's lock id
  NodeId node = 0;      // owner
  uint32_t gen = 0;     // 0 while the owner lives, else the table's orphan number
  Mode grmode = Mode::NL;
  Mode rqmode = Mode::NL;
  Queue queue = Queue::kNone;
  bool noqueue = false;
  bool bast_sent = false;  // owner told once that someone waits on its grmode
  bool orphan = false;     // owner died; held until recovery_done(owner)
};

// Circular doubly-linked list of locks in arrival order; the head pointer is the oldest.
class LockQueue {
 public:
  bool empty() const { return head_ == nullptr; }
  Lock* front() const { return head_; }
  // Next lock after `l`, or nullptr at the end.
  Lock* after(const Lock* l) const { return l->next == head_ ? nullptr : l->next; }
  void push_back(Lock* l);
  void remove(Lock* l);

 private:
  Lock* head_ = nullptr;
};

struct Resource {
  const std::string* name = nullptr;  // this resource's key in the table
  LockQueue granted;
  LockQueue convert;
  LockQueue wait;
  LvbBytes lvb{};
  bool lvb_valid = false;
  uint32_t nlocks = 0;

  // Would `mode` conflict with the granted mode of any lock on this resource but `self`?
  bool conflicts(Mode mode, const Lock* self) const;
  bool unused() const { return nlocks == 0; }
};

}  // namespace lunfs::dlm

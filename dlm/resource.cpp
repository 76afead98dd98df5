// Resource queues and the compatibility test against the granted group (see resource.h).
#include "dlm/resource.h"

namespace lunfs::dlm {

void LockQueue::push_back(Lock* l) {
  if (!head_) {
    l->prev = l->next = l;
    head_ = l;
    return;
  }
  Lock* tail = head_->prev;
  l->prev = tail;
  l->next = head_;
  tail->next = l;
  head_->prev = l;
}

void LockQueue::remove(Lock* l) {
  if (l->next == l) {
    head_ = nullptr;
  } else {
    l->prev->next = l->next;
    l->next->prev = l->prev;
    if (head_ == l) head_ = l->next;
  }
  l->prev = l->next = nullptr;
}

bool Resource::conflicts(Mode mode, const Lock* self) const {
  // Converting locks still hold their granted mode, so both queues count.
  for (const LockQueue* q : {&granted, &convert})
    for (const Lock* l = q->front(); l; l = q->after(l))
      if (l != self && !compatible(l->grmode, mode)) return true;
  return false;
}

}  // namespace lunfs::dlm

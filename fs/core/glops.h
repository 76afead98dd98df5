// Glock operation tables ("glops", GFS2's glops.c): what a node must do before it gives a
// lock back to the cluster, per lock type. Syncing before demote makes every change the
// lock covered durable at its home location so the next holder reads it from the LUN;
// invalidating after demote drops cached copies that the next holder may change.
#pragma once

#include "fs/core/glock.h"
#include "fs/result.h"

namespace lunfs {

struct GlockOps {
  const char* name;
  // Before the lock is released or weakened: write back what it covers.
  Status (*go_sync)(void* fs, const GlockName& gl);
  // After the lock is released: forget cached state it covered.
  void (*go_inval)(void* fs, const GlockName& gl);
  // Another node asked for the lock while this node uses it (holders or pins): when set,
  // the demote does not wait for them to go; it asks whoever uses the lock to let go
  // (an iopen glock: the kernel to drop a name that another node removed).
  void (*go_wanted)(void* fs, const GlockName& gl) = nullptr;
};

// The tables for each type, implemented by the core (filesystem.cpp knows the caches).
const GlockOps* glops_for(GlockType type);

}  // namespace lunfs

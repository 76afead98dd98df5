// The xattr block of one inode: load it, change the entries, store it back (allocating
// the block with the first attribute and freeing it with the last). Shared by the xattr
// system calls, ACL-aware chmod and ACL inheritance at create.
#pragma once

#include <optional>
#include <string>

#include "fs/core/inode.h"
#include "fs/core/transaction.h"
#include "fs/format/xattr_format.h"

namespace lunfs {

struct Volume;

class XattrStore {
 public:
  XattrStore(Volume& vol, CoreInode& node, Transaction* txn) : vol_(vol), node_(node), txn_(txn) {}
  Result<ondisk::XattrBlock> load();
  // ENOSPC when the entries do not fit one block.
  Status store(const ondisk::XattrBlock& block);
  // The value of one attribute, if present.
  Result<std::optional<std::string>> get(ondisk::XattrNamespace ns, const std::string& name);
  // Sets (value) or removes (nullopt) one attribute.
  Status put(ondisk::XattrNamespace ns, const std::string& name, const std::optional<std::string>& value);

 private:
  Volume& vol_;
  CoreInode& node_;
  Transaction* txn_;
};

}  // namespace lunfs

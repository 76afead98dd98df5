// Errors as values (architecture decision 9, docs/decisions.md): every fallible core function returns
// Result<T> or Status, carrying an errno-style code and a human-readable message.
// No exceptions cross the core's boundary.
#pragma once

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <variant>

namespace lunfs {

// [[nodiscard]] like Result: an ignored error must not compile silently. Where ignoring one
// is right, the call site says so with (void) and a comment.
class [[nodiscard]] Status {
 public:
  Status() = default;  // success
  Status(int err, std::string message) : err_(err), message_(std::move(message)) {}

  static Status ok() { return {}; }

  bool is_ok() const { return err_ == 0; }
  explicit operator bool() const { return is_ok(); }
  const Status& status() const { return *this; }  // lets LUNFS_TRY take Status and Result
  int err() const { return err_; }
  const std::string& message() const { return message_; }
  std::string to_string() const {
    if (is_ok()) return "ok";
    return message_ + " (" + std::strerror(err_) + ")";
  }

 private:
  int err_ = 0;
  std::string message_;
};

inline Status error(int err, std::string message) { return Status(err, std::move(message)); }

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}  // NOLINT

  bool is_ok() const { return v_.index() == 0; }
  explicit operator bool() const { return is_ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }
  // The error; only meaningful when !is_ok().
  const Status& status() const {
    static const Status kOk;
    return is_ok() ? kOk : std::get<1>(v_);
  }
  int err() const { return is_ok() ? 0 : std::get<1>(v_).err(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace lunfs

// Propagates a failed Status/Result out of the calling function.
#define LUNFS_TRY(expr)                                     \
  do {                                                      \
    auto&& lunfs_try_result_ = (expr);                      \
    if (!lunfs_try_result_) return lunfs_try_result_.status(); \
  } while (0)

#define LUNFS_CONCAT_INNER(a, b) a##b
#define LUNFS_CONCAT(a, b) LUNFS_CONCAT_INNER(a, b)
// LUNFS_ASSIGN(auto x, expr): binds the value of a Result or returns its error.
#define LUNFS_ASSIGN(lhs, expr) LUNFS_ASSIGN_IMPL(LUNFS_CONCAT(lunfs_assign_, __LINE__), lhs, expr)
#define LUNFS_ASSIGN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                      \
  if (!tmp) return tmp.status();          \
  lhs = std::move(tmp).value()

#!/usr/bin/env bash
# Runs every lunfs test: installs dependencies, builds a normal, an ASan+UBSan and a TSan build,
# runs ctest in each (TSan: the tests labelled `threads`), and a short fuzz run of every
# on-disk parser. Ends with one line "N passed, N failed" summing all of them.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh || exit 1

total_pass=0 total_fail=0
run_ctest() { # build-dir label [ctest args...]
  local dir=$1 label=$2; shift 2
  local log; log=$(mktemp)
  (cd "$dir" && ctest -j2 --output-on-failure --timeout 600 "$@") 2>&1 | tee "$log"
  local p f
  p=$(grep -oE '[0-9]+% tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -1 \
      | awk '{print $NF - $4}')
  f=$(grep -oE '[0-9]+ tests failed out of' "$log" | tail -1 | awk '{print $1}')
  if grep -q 'No tests were found' "$log"; then p=0 f=0
  elif [[ -z $p || -z $f ]]; then echo "test.sh: $label: ctest did not finish"; f=1; p=0; fi
  total_pass=$((total_pass + p)); total_fail=$((total_fail + f))
  echo "test.sh: $label: $p passed, $f failed"
  rm -f "$log"
}
build() { # dir type target [cmake args...]
  local dir=$1 type=$2 target=$3; shift 3
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="$type" "$@" >/dev/null &&
    cmake --build "$dir" -j2 --target "$target"
}

if build build RelWithDebInfo all; then run_ctest build main; else echo "test.sh: main build failed"; total_fail=$((total_fail + 1)); fi
if build build-asan Sanitize all -DLUNFS_BUILD_BENCH=OFF; then
  run_ctest build-asan asan -LE 'cluster|slow'
else echo "test.sh: sanitizer build failed"; total_fail=$((total_fail + 1)); fi
if build build-tsan TSan threaded_tests -DLUNFS_BUILD_BENCH=OFF; then
  run_ctest build-tsan tsan -L threads
else echo "test.sh: tsan build failed"; total_fail=$((total_fail + 1)); fi
if build build-fuzz RelWithDebInfo fuzzers -DLUNFS_FUZZ=ON -DLUNFS_BUILD_BENCH=OFF \
     -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang; then
  run_ctest build-fuzz fuzz -L fuzz
else echo "test.sh: fuzz build failed"; total_fail=$((total_fail + 1)); fi

echo "${total_pass} passed, ${total_fail} failed"
((total_fail == 0))

#!/usr/bin/env bash
# Runs every lunfs test: installs dependencies, builds a normal, an ASan+UBSan and a TSan build,
# runs ctest in each (TSan: the tests labelled `threads`), and a short fuzz run of every
# on-disk parser. Every build treats warnings as errors (LUNFS_WERROR). Ends with one line
# "N passed, N failed, N skipped" summing all of them. With CI=true a skipped test fails the
# run: this machine kind (root, /dev/fuse, loop devices, namespaces, every package of
# scripts/deps.sh) can run them all.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh || exit 1

total_pass=0 total_fail=0 total_skip=0 skipped_list=()
skip_reason() { # build-dir test-name: the message its GTEST_SKIP printed, from ctest's log
  awk -v name="$2" 'index($0, " Test: ") && substr($0, index($0, " Test: ") + 7) == name {on = 1}
                    on && /^<end of output>/ {exit}
                    on && prev ~ /: Skipped$/ {print; exit}
                    {prev = $0}' "$1/Testing/Temporary/LastTest.log"
}
run_ctest() { # build-dir label [ctest args...]
  local dir=$1 label=$2; shift 2
  local log; log=$(mktemp)
  (cd "$dir" && ctest -j2 --output-on-failure --timeout 600 "$@") 2>&1 | tee "$log"
  # ctest counts a skipped test (GTEST_SKIP, through SKIP_REGULAR_EXPRESSION) among the
  # "tests passed" and lists it under "The following tests did not run:" as "(Skipped)".
  local n f s
  n=$(grep -oE '[0-9]+% tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -1 | awk '{print $NF}')
  f=$(grep -oE '[0-9]+ tests failed out of' "$log" | tail -1 | awk '{print $1}')
  local skipped=()
  mapfile -t skipped < <(awk '/^The following tests did not run:/ {on = 1; next}
                              on && !/^[ \t]/ {on = 0}
                              on && / \(Skipped\)$/ {sub(/^[ \t]*[0-9]+ - /, ""); sub(/ \(Skipped\)$/, ""); print}' "$log")
  s=${#skipped[@]}
  if grep -q 'No tests were found' "$log"; then n=0 f=0 s=0 skipped=()
  elif [[ -z $n || -z $f ]]; then echo "test.sh: $label: ctest did not finish"; n=1 f=1 s=0 skipped=(); fi
  local p=$((n - f - s))
  total_pass=$((total_pass + p)); total_fail=$((total_fail + f)); total_skip=$((total_skip + s))
  local t; for t in "${skipped[@]}"; do skipped_list+=("$label: $t: $(skip_reason "$dir" "$t")"); done
  echo "test.sh: $label: $p passed, $f failed, $s skipped"
  rm -f "$log"
}
build() { # dir type target [cmake args...]
  local dir=$1 type=$2 target=$3; shift 3
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="$type" -DLUNFS_WERROR=ON "$@" >/dev/null &&
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

ci_skips=0
if ((total_skip > 0)); then
  echo "test.sh: skipped:"
  printf '  %s\n' "${skipped_list[@]}"
  if [[ ${CI:-} == true ]]; then
    echo "test.sh: CI=true and $total_skip test(s) skipped: nothing may skip on the CI machine"
    ci_skips=1
  fi
fi
echo "${total_pass} passed, ${total_fail} failed, ${total_skip} skipped"
((total_fail == 0 && ci_skips == 0))

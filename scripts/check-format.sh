#!/usr/bin/env bash
# Fails, listing the files, when any C++ file in the repository differs from .clang-format.
# Fix with: git ls-files '*.cpp' '*.hpp' | xargs clang-format -i
set -euo pipefail
cd "$(dirname "$0")/.."
bad=()
while IFS= read -r f; do
  clang-format --dry-run --Werror "$f" > /dev/null 2>&1 || bad+=("$f")
done < <(git ls-files '*.cpp' '*.hpp' 2>/dev/null || find . -name '*.[ch]pp' -not -path './build*')
if ((${#bad[@]})); then
  printf 'not formatted with .clang-format: %s\n' "${bad[@]}"
  exit 1
fi
echo "all C++ files follow .clang-format"

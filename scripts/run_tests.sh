#!/usr/bin/env bash
# Runs each Criterion suite, then prints one closing line with the totals over all suites.
# An argument NAME=VALUE:SUITE runs SUITE with NAME=VALUE in its environment (a second kernel, say).
set -u
passed=0 failed=0 crashed=0 skipped=0 broken=()
for t in "$@"; do
  env=()
  case $t in *=*:*) env=("${t%%:*}"); t=${t#*:} ;; esac
  echo "== ${t#build/}${env:+ (${env[*]})}"
  log=$(mktemp)
  # --verbose so that skipped tests say so (and why); the per-test RUN/PASS lines stay out of the console.
  env "${env[@]}" "$t" --jobs 1 --verbose 2>&1 | tee "$log" | grep -av -E '\[(RUN |PASS)\]|Criterion v|Running [0-9]+ tests? from'
  rc=${PIPESTATUS[0]}
  line=$(grep -a "Synthesis:" "$log" | tail -1 | sed 's/\x1b\[[0-9;]*m//g')
  if [ -z "$line" ]; then broken+=("$t"); failed=$((failed + 1)); rm -f "$log"; continue; fi
  n() { echo "$line" | grep -o "$1: [0-9]*" | grep -o '[0-9]*$' || echo 0; }
  passed=$((passed + $(n Passing))); failed=$((failed + $(n Failing))); crashed=$((crashed + $(n Crashing)))
  skipped=$((skipped + $(grep -ac '\[SKIP\]' "$log" || true)))
  [ "$rc" -ne 0 ] && [ "$(n Failing)" = 0 ] && [ "$(n Crashing)" = 0 ] && broken+=("$t")
  rm -f "$log"
done
failed=$((failed + crashed))
[ ${#broken[@]} -gt 0 ] && echo "suites that exited badly: ${broken[*]}"
echo "tests: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ ${#broken[@]} -eq 0 ]

#!/usr/bin/env bash
# The set-up on a simulated fresh machine. Not run by `make test`: it does a full build (minutes).
# A copy of the working tree (tracked and untracked files, no build/) in a temporary folder, and a PATH whose shims
# make the machine look bare: `pkg-config` fails and `dpkg-query` reports every package missing until the `apt-get`
# shim has "installed" them (it records its arguments and creates a marker; its first `update` fails the way apt
# does when another apt holds the lists' lock); `id -u` says root (FAKE_UID otherwise), `cc`/`gcc`/`nvcc` log each
# compile and link. Checks:
#   1. `make -j2` succeeds in one invocation; apt-get ran before any compile, every call with the lock timeout, and
#      the held lock was waited for;
#   2. a second `make -j2` installs, restarts and compiles nothing;
#   3. `make experiment` on a machine without the packages installs what running needs, not the test oracles
#      (python3-torch, python3-sklearn, Criterion), and runs the demo;
#   4. `make test` installs them (run with -n: the install step runs, the suites do not), `make bench` GNU time too,
#      a single binary's goal nothing;
#   5. not root: `make` fails with the apt-get line to run and installs nothing;
#   6. `make clean` installs nothing and asks pkg-config nothing.
# Usage: bash tests/fresh_machine_check.sh [make variables, e.g. NO_CUDA=1]   (KEEP=1 keeps the temporary folder)
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/kanoclip-fresh.XXXXXX")
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
src=$work/src shims=$work/shims log=$work/calls.log marker=$work/installed
mkdir -p "$src" "$shims"
fails=0
ok() { echo "PASS  $*"; }
bad() { echo "FAIL  $*"; fails=$((fails + 1)); }
check() { if eval "$2"; then ok "$1"; else bad "$1"; fi; }  # check WHAT 'CONDITION'
installs() { grep '^apt-get .* install' "$log" | tail -1 | sed 's/.*--no-install-recommends //'; }  # the last list

# ---- a copy of the tree as a fresh clone has it (with the uncommitted changes), no build outputs --------------------
(cd "$root" && git ls-files -z --cached --others --exclude-standard) | while IFS= read -r -d '' f; do
  [ -e "$root/$f" ] && { mkdir -p "$src/$(dirname "$f")"; cp -p "$root/$f" "$src/$f"; }
done
[ -e "$src/build" ] && { echo "fresh_machine_check: build/ is in the copy" >&2; exit 1; }

# ---- shims -----------------------------------------------------------------------------------------------------------
for c in pkg-config dpkg-query id; do
  command -v "$c" >/dev/null || { echo "fresh_machine_check: no $c here to stand behind its shim" >&2; exit 1; }
done
real_pkgconfig=$(command -v pkg-config) real_dpkgq=$(command -v dpkg-query) real_id=$(command -v id)
cat >"$shims/pkg-config" <<EOF
#!/bin/sh
echo "pkg-config \$*" >>"$log"
[ -e "$marker" ] || { echo "Package hdf5 was not found in the pkg-config search path." >&2; exit 1; }
exec "$real_pkgconfig" "\$@"
EOF
cat >"$shims/dpkg-query" <<EOF
#!/bin/sh
[ -e "$marker" ] && exec "$real_dpkgq" "\$@"
for a in "\$@"; do case "\$a" in -*) ;; *) echo "dpkg-query: no packages found matching \$a" >&2 ;; esac; done
exit 1
EOF
cat >"$shims/apt-get" <<EOF
#!/bin/sh
echo "apt-get \$*" >>"$log"
case " \$* " in
*" update "*)
  if [ ! -e "$work/lock-was-held" ]; then
    touch "$work/lock-was-held"
    echo "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 1 (apt-get)" >&2
    echo "E: Unable to lock directory /var/lib/apt/lists/" >&2
    exit 100
  fi ;;
*" install "*) touch "$marker" ;;
esac
exit 0
EOF
cat >"$shims/id" <<EOF
#!/bin/sh
[ "\$1" = -u ] && { echo "\${FAKE_UID:-0}"; exit 0; }
exec "$real_id" "\$@"
EOF
for c in cc gcc nvcc; do
  r=$(command -v "$c") || continue
  # Only make's compiles and links (-o build/...): not nvcc's --dryrun, which the Makefile runs while it reads
  # itself to find the toolkit, nor the `gcc -E` on a temporary file that nvcc runs then to probe its host compiler.
  printf '#!/bin/sh\ncase " $* " in *" -o build/"*) echo "compile %s $*" >>"%s" ;; esac\nexec "%s" "$@"\n' \
    "$c" "$log" "$r" >"$shims/$c"
done
chmod +x "$shims"/*
export PATH="$shims:$PATH"
unset MAKEFLAGS MAKELEVEL

cd "$src" || exit 1
changes=$(git -C "$root" diff --quiet HEAD || echo ' + working-tree changes')
echo "== fresh machine: $(git -C "$root" rev-parse --short HEAD)$changes, make -j2 $*"
first() { grep -n "$1" "$log" | head -1 | cut -d: -f1; }
last() { grep -n "$1" "$log" | tail -1 | cut -d: -f1; }

# 1. one `make -j2`
: >"$log"
start=$(date +%s)
make -j2 "$@" >"$work/make1.out" 2>&1
rc=$?
echo "   make -j2: exit $rc in $(($(date +%s) - start)) s; apt-get calls:"
grep '^apt-get' "$log" | sed 's/^/     /'
check "make -j2 succeeds on the fresh machine, in one invocation" '[ $rc -eq 0 ]'
[ $rc -eq 0 ] || tail -20 "$work/make1.out"
check "build/kanoclip is built" '[ -x build/kanoclip ]'
check "apt-get install ran before the first of $(grep -c '^compile' "$log") compiles" \
  '[ -n "$(first "^apt-get .* install")" ] && [ -n "$(first ^compile)" ] &&
   [ "$(last ^apt-get)" -lt "$(first ^compile)" ]'
check "every apt-get call waits for a held lock (-o DPkg::Lock::Timeout=600)" \
  'grep -q ^apt-get "$log" && ! grep ^apt-get "$log" | grep -vq DPkg::Lock::Timeout=600'
check "a held lock on the package lists was waited for (update tried again)" \
  '[ "$(grep -c "^apt-get .* update" "$log")" -ge 2 ] && grep -q "waiting for another apt" "$work/make1.out"'
check "no 'hdf5.h: No such file' or pkg-config error in the output" \
  '! grep -qE "No such file or directory|was not found in the pkg-config" "$work/make1.out"'

# 2. again: nothing to do
: >"$log"
make -j2 "$@" --eval='$(if $(MAKE_RESTARTS),$(info RESTARTED))' >"$work/make2.out" 2>&1
rc=$?
check "a second make -j2 succeeds without installing, restarting or compiling" \
  '[ $rc -eq 0 ] && ! grep -q "^apt-get\|^compile" "$log" && ! grep -q RESTARTED "$work/make2.out"'

# 3. `make experiment` where the packages are missing again
rm -f "$marker"
: >"$log"
make -j2 "$@" experiment >"$work/experiment.out" 2>&1
rc=$?
list=$(installs)
echo "   make experiment installs: $list"
check "make experiment succeeds (installs, then runs the demo)" '[ $rc -eq 0 ]'
[ $rc -eq 0 ] || tail -20 "$work/experiment.out"
check "make experiment installs what building and running need (libhdf5-dev, gnuplot-nox)" \
  'grep -qw libhdf5-dev <<<"$list" && grep -qw gnuplot-nox <<<"$list"'
check "make experiment installs no test oracles (python3-torch, python3-sklearn, libcriterion-dev)" \
  '[ -n "$list" ] && ! grep -qwE "python3-torch|python3-sklearn|libcriterion-dev" <<<"$list"'

# 4. `make test` where the packages are missing again (-n: the install step is a makefile remake, so it still runs)
rm -f "$marker"
: >"$log"
make -j2 -n "$@" test >"$work/test.out" 2>&1
rc=$?
list=$(installs)
echo "   make test installs: $list"
check "make test installs the oracles and Criterion (python3-torch, python3-sklearn, libcriterion-dev)" \
  '[ $rc -eq 0 ] && grep -qw python3-torch <<<"$list" && grep -qw python3-sklearn <<<"$list" &&
   grep -qw libcriterion-dev <<<"$list"'

# `make bench` adds GNU time (and npm where there is none); a single binary (scripts/gpu_check.sh, gpu_bundle.sh build
# those on machines they have checked, perhaps offline) installs nothing
rm -f "$marker"
: >"$log"
make -n "$@" bench >"$work/bench.out" 2>&1
list=$(installs)
check "make bench installs the oracles and GNU time" 'grep -qw python3-torch <<<"$list" && grep -qw time <<<"$list"'
rm -f "$marker"
: >"$log"
make -n "$@" build/tests/test_common >"$work/file-goal.out" 2>&1
check "make build/tests/test_common installs nothing (and says pkg-config lacks the libraries)" \
  '! grep -q ^apt-get "$log" && grep -q "pkg-config cannot find" "$work/file-goal.out"'

# 5. not root
rm -f "$marker"
: >"$log"
FAKE_UID=1000 make -j2 "$@" >"$work/user.out" 2>&1
rc=$?
check "not root: make fails, prints the apt-get line, installs nothing, compiles nothing" \
  '[ $rc -ne 0 ] && grep -q "run as root: apt-get update && apt-get install" "$work/user.out" &&
   ! grep -q "^apt-get\|^compile" "$log"'
sed 's/^/     /' "$work/user.out"

# 6. `make clean`
rm -f "$marker"
: >"$log"
make clean "$@" >"$work/clean.out" 2>&1
rc=$?
check "make clean installs nothing and asks pkg-config nothing" '[ $rc -eq 0 ] && [ ! -s "$log" ] && [ ! -e build ]'

echo "fresh_machine_check: $fails failed"
[ $fails -eq 0 ]

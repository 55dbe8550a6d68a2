#!/usr/bin/env bash
# Installs the Debian packages a make goal needs. Idempotent: does nothing when all are present.
#   scripts/deps.sh build   building and running: compiler, pkg-config, the libraries, gnuplot (make, make experiment,
#                           tables, plots, paper, grid)
#   scripts/deps.sh test    build + Criterion and the tests' Python oracles (make test, test-build, fixtures)
#   scripts/deps.sh bench   test + GNU time and npm (make bench; npm fetches onnxruntime-node into build/ort)
#   scripts/deps.sh         everything (bench; make deps)
# As root it runs apt-get, waiting for a lock another apt or dpkg holds (DEPS_LOCK_WAIT seconds, 600 by default);
# otherwise it prints the command to run and fails.
set -eu
build=(
  build-essential pkg-config
  libopenblas-openmp-dev          # BLAS sharing OpenMP's thread pool with our loops
  libhdf5-dev                     # feature and embedding caches
  libyaml-dev                     # experiment configs
  libcurl4-openssl-dev            # knowledge-base client
  libcjson-dev                    # JSON: config.json, safetensors headers, metrics, chat API
  libpng-dev libjpeg-dev libstb-dev zlib1g-dev libzip-dev libssl-dev
  gnuplot-nox                     # plots, at run time
)
test=(
  libcriterion-dev                # the test suites
  slurmctld slurmd slurm-client   # a throw-away Slurm cluster for the grid tests (scripts/slurm_local.sh)
  python3-torch python3-sklearn python3-h5py python3-scipy python3-numpy python3-pil python3-regex  # test oracles
)
bench=(time)                      # /usr/bin/time -v: peak memory
command -v npm >/dev/null 2>&1 || bench+=(npm)  # any npm will do (nodejs from elsewhere may carry its own)
case "${1:-bench}" in
  build) packages=("${build[@]}") ;;
  test) packages=("${build[@]}" "${test[@]}") ;;
  bench) packages=("${build[@]}" "${test[@]}" "${bench[@]}") ;;
  *) echo "usage: scripts/deps.sh [build|test|bench]" >&2; exit 2 ;;
esac

installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${packages[@]}" 2>/dev/null |
  awk '/ install ok installed$/ {print $1}' || true)
missing=()
for p in "${packages[@]}"; do
  grep -qxF "$p" <<<"$installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "missing packages; run as root: apt-get update && $cmd" >&2
  exit 1
fi

wait_s=${DEPS_LOCK_WAIT:-600}
# apt-get, waiting for a held lock: DPkg::Lock::Timeout makes apt-get wait for dpkg's lock, but apt 2.6's `update`
# still fails at once on the package lists' lock (and any apt on the archives' lock), so those are retried here.
apt_get() {
  local deadline=$(($(date +%s) + wait_s)) err rc said=""
  err=$(mktemp)
  while :; do
    rc=0
    apt-get -o DPkg::Lock::Timeout="$wait_s" "$@" 2>"$err" || rc=$?
    if [ $rc -ne 0 ] && grep -q 'Could not get lock' "$err" && [ "$(date +%s)" -lt "$deadline" ]; then
      [ -n "$said" ] || echo "deps: waiting for another apt to finish ($(grep -m1 'Could not get lock' "$err"))" >&2
      said=1
      sleep 3
      continue
    fi
    cat "$err" >&2
    rm -f "$err"
    return $rc
  done
}
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt_get update -qq
apt_get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

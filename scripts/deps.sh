#!/usr/bin/env bash
# Installs the Debian packages the project needs. Idempotent: does nothing when all are present.
# As root it runs apt-get; otherwise it prints the command to run.
set -eu
packages=(
  build-essential pkg-config
  libopenblas-openmp-dev          # BLAS sharing OpenMP's thread pool with our loops
  libhdf5-dev                     # feature and embedding caches
  libyaml-dev                     # experiment configs
  libcurl4-openssl-dev            # knowledge-base client
  libcjson-dev                    # JSON: config.json, safetensors headers, metrics, chat API
  libpng-dev libjpeg-dev libstb-dev zlib1g-dev libzip-dev libssl-dev
  libcriterion-dev                # tests
  slurmctld slurmd slurm-client   # tests: a throw-away Slurm cluster (scripts/slurm_local.sh)
  gnuplot-nox                     # plots, at run time
  python3-torch python3-sklearn python3-h5py python3-scipy python3-numpy python3-pil python3-regex  # test oracles
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "missing packages; run as root: apt-get update && $cmd" >&2
  exit 1
fi
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

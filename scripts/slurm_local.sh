#!/usr/bin/env bash
# A throw-away single-node Slurm cluster under one folder, for tests and for trying `kanoclip grid --slurm`:
#   scripts/slurm_local.sh start DIR   writes DIR/slurm.conf, starts slurmctld and slurmd (their PIDs in DIR/pids),
#                                      waits until the node takes jobs; prints `export SLURM_CONF=DIR/slurm.conf`
#   scripts/slurm_local.sh stop DIR    cancels every job of the cluster, waits for them to end, then stops the
#                                      daemons and any slurmstepd left, by the PIDs this cluster started
# Needs Debian's slurmctld, slurmd and slurm-client (scripts/deps.sh); no systemd, no munge, no root (the daemons
# run as the user starting them). Everything it writes stays under DIR; the ports are free ones picked at start.
# Settings: the issue "Grids on a real Slurm cluster" (controller and node on 127.0.0.1, auth/none, linuxproc,
# task/none, cons_tres with CR_Core, no scheduling delay). Without slurmdbd sacct has nothing: finished jobs are
# in DIR/jobcomp.log (jobcomp/filetxt) and `scontrol show job` knows them for MinJobAge seconds.
# OWNER_PID=P in the environment: the cluster stops by itself once process P has ended (a test runner killed
# before it could call stop leaves nothing behind).
# GPUS=N in the environment (N <= 5) gives the node N stand-in GPUs (GresTypes=gpu), so jobs asking for
# --gres=gpu:K are scheduled, and see CUDA_VISIBLE_DEVICES, as on a GPU cluster.
set -euo pipefail

die() { echo "slurm_local.sh: $*" >&2; exit 1; }

# A TCP port nothing listens on or connects from (per /proc/net/tcp*), picked at random in 20000-59999.
free_port() {
  local used p
  used=" $(for f in /proc/net/tcp /proc/net/tcp6; do
    while read -r _ local _; do printf '%d ' "0x${local##*:}" 2>/dev/null; done < "$f"
  done) "
  while :; do
    p=$((20000 + RANDOM % 40000))
    [[ $used == *" $p "* ]] || { echo "$p"; return; }
  done
}

# Waits up to $1 seconds (of the clock: a command may itself take seconds on a busy machine) for the command after
# it to succeed.
wait_for() {
  local end=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -ge "$end" ] && return 1
    sleep 0.1
  done
}

node_idle() { sinfo -h -N -o '%t' | grep -qx 'idle'; }

start() {
  local dir=$1
  for b in slurmctld slurmd sinfo sbatch scontrol scancel squeue; do
    command -v "$b" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin command -v "$b" >/dev/null 2>&1 ||
      die "$b not found: install slurmctld slurmd slurm-client (scripts/deps.sh)"
  done
  export PATH=$PATH:/usr/sbin
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  [ -e "$dir/pids" ] && die "$dir/pids exists: a cluster was started there (stop it first)"
  mkdir -p "$dir/state" "$dir/spool" "$dir/log"
  local host user node gres_line="" gres_node=""
  host=$(hostname -s)
  user=$(id -un)
  # The node as slurmd sees it (CPUs, sockets, cores, memory), minus its name and uptime.
  node=$(slurmd -C 2>&1 | head -1) || true
  [[ $node == NodeName=* ]] || die "slurmd -C did not describe this node: ${node:-no output}"
  node=${node#NodeName=* }
  if [ "${GPUS:-0}" -gt 0 ]; then
    gres_line="GresTypes=gpu"
    gres_node=" Gres=gpu:${GPUS}"
    # Slurm's gpu plugin counts device files, one per GPU: any character devices stand in (no cgroup restricts
    # them here, and nothing opens them); Slurm still sets CUDA_VISIBLE_DEVICES to the indices it gave.
    local stand_ins=(/dev/null /dev/zero /dev/full /dev/random /dev/urandom)
    [ "$GPUS" -le ${#stand_ins[@]} ] || die "GPUS=$GPUS: at most ${#stand_ins[@]} stand-in GPUs"
    for ((g = 0; g < GPUS; g++)); do echo "Name=gpu File=${stand_ins[g]}"; done > "$dir/gres.conf"
  fi
  cat > "$dir/slurm.conf" <<EOF
ClusterName=kanoclip-local
SlurmctldHost=${host}(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=${user}
SlurmdUser=${user}
AuthType=auth/none
CredType=cred/none
StateSaveLocation=${dir}/state
SlurmdSpoolDir=${dir}/spool
SlurmctldPidFile=${dir}/slurmctld.pid
SlurmdPidFile=${dir}/slurmd.pid
SlurmctldLogFile=${dir}/log/slurmctld.log
SlurmdLogFile=${dir}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
MailProg=/bin/true
ReturnToService=2
MinJobAge=600
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=${dir}/jobcomp.log
PlugStackConfig=${dir}/plugstack.conf
${gres_line}
NodeName=${host} NodeAddr=127.0.0.1 ${node}${gres_node} State=UNKNOWN
PartitionName=local Nodes=${host} Default=YES MaxTime=INFINITE State=UP
EOF
  : > "$dir/plugstack.conf"
  export SLURM_CONF=$dir/slurm.conf
  local t0=$SECONDS
  # -D: in the foreground (their own PIDs, no pid-file race); -i: ignore state a crashed start may have left.
  # KANOCLIP_SLURM_DIR: their stepds inherit it, and `stop` finds what this cluster started by it.
  KANOCLIP_SLURM_DIR=$dir slurmctld -D -i -f "$dir/slurm.conf" >"$dir/log/slurmctld.out" 2>&1 &
  echo "slurmctld $!" >> "$dir/pids"
  KANOCLIP_SLURM_DIR=$dir slurmd -D -f "$dir/slurm.conf" -N "$host" >"$dir/log/slurmd.out" 2>&1 &
  echo "slurmd $!" >> "$dir/pids"
  if [ -n "${OWNER_PID:-}" ]; then
    local self
    self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
    setsid bash -c 'while kill -0 "$1" 2>/dev/null && [ -f "$2/pids" ]; do sleep 1; done
                    [ -f "$2/pids" ] && bash "$3" stop "$2"' watcher "$OWNER_PID" "$dir" "$self" \
      >"$dir/log/watcher.out" 2>&1 < /dev/null &
  fi
  if ! wait_for 60 node_idle; then
    echo "slurm_local.sh: the node did not become idle within 60 s; last log lines:" >&2
    tail -n 5 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" "$dir/log/slurmctld.out" "$dir/log/slurmd.out" >&2 2>/dev/null || true
    stop "$dir" >/dev/null 2>&1 || true
    exit 1
  fi
  echo "slurm_local.sh: cluster up in $((SECONDS - t0)) s under $dir" >&2
  echo "export SLURM_CONF=$dir/slurm.conf"
}

# PIDs of processes started under this cluster (their environment names it), except this shell.
cluster_pids() {
  grep -lzx "KANOCLIP_SLURM_DIR=$1" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3 | grep -vx "$$" || true
}

stop() {
  local dir=$1
  [ -d "$dir" ] || die "$dir: no such folder"
  dir=$(cd "$dir" && pwd)
  [ -f "$dir/pids" ] || die "$dir/pids: no cluster was started there"
  export SLURM_CONF=$dir/slurm.conf PATH=$PATH:/usr/sbin
  # Jobs first: slurmstepd outlives slurmd, so a job left running would outlive the cluster.
  if scancel --quiet --full --partition=local 2>/dev/null; then
    wait_for 30 bash -c '[ -z "$(squeue -h -o %i 2>/dev/null)" ]' || echo "slurm_local.sh: jobs still listed after 30 s" >&2
  fi
  local name pid
  while read -r name pid; do
    kill -TERM "$pid" 2>/dev/null || true
  done < "$dir/pids"
  # The state is thrown away with DIR: a daemon slow to save it is killed.
  while read -r name pid; do
    wait_for 2 bash -c "! kill -0 $pid" || kill -KILL "$pid" 2>/dev/null || true
  done < "$dir/pids"
  # Whatever the jobs left (stepds, job scripts, their children): found by the variable the daemons passed on.
  for pid in $(cluster_pids "$dir"); do kill -KILL "$pid" 2>/dev/null || true; done
  mv "$dir/pids" "$dir/pids.stopped"
}

case "${1:-}" in
  start) [ $# -eq 2 ] || die "usage: $0 start DIR"; start "$2" ;;
  stop) [ $# -eq 2 ] || die "usage: $0 stop DIR"; stop "$2" ;;
  *) die "usage: $0 start DIR | stop DIR" ;;
esac

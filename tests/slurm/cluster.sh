#!/usr/bin/env bash
# A real single-node Slurm cluster on this machine, for testing the workflow's Slurm profile.
#
#   tests/slurm/cluster.sh start BASE   # BASE: a fresh, empty state directory
#   tests/slurm/cluster.sh stop BASE    # stops what `start` started, by pid files; idempotent
#
# Needs root and Debian's packages (apt-get install -y slurm-wlm munge); no systemd. The node has the
# machine's CPUs and two fake GPUs, in two partitions: `cpu` (default) and `gpu`, the names the
# workflow's profile uses. Everything lives under BASE (a private munged with its own key and socket
# included) except one thing Slurm insists on: job steps drop SLURM_CONF, so /etc/slurm/slurm.conf must
# be the config; it is a symlink into BASE, made only where no other Slurm config is, and removed by stop.
# Exit status 3: this machine cannot host the test cluster (the reason is printed).
set -euo pipefail
cmd=${1:?usage: cluster.sh start|stop BASE}
BASE=$(realpath -m "${2:?usage: cluster.sh start|stop BASE}")
CONF=/etc/slurm/slurm.conf

stop() {
  local pids=() f p
  for f in "$BASE/run/slurmd.pid" "$BASE/run/slurmctld.pid" "$BASE/munge/munged.pid"; do
    [ -s "$f" ] && pids+=("$(cat "$f")")
  done
  if [ ${#pids[@]} -gt 0 ]; then
    kill -TERM "${pids[@]}" 2>/dev/null || true
    for _ in $(seq 100); do
      alive=0; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
      [ $alive = 0 ] && break; sleep 0.1
    done
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  fi
  # the config symlinks, only where they are ours
  for f in "$CONF" /etc/slurm/gres.conf; do
    [ -L "$f" ] && [ "$(readlink "$f")" = "$BASE/etc/$(basename "$f")" ] && rm -f "$f"
  done
  echo "slurm stopped (${pids[*]:-nothing was running})"
}

cant() { echo "cannot host the test cluster: $*" >&2; exit 3; }

start() {
  [ "$(id -u)" = 0 ] || cant "Slurm's daemons need root"
  for exe in slurmctld slurmd munged mungekey sinfo; do
    command -v "$exe" >/dev/null || [ -x "/usr/sbin/$exe" ] || cant "$exe is not installed (apt-get install -y slurm-wlm munge)"
  done
  if [ -e "$CONF" ] || [ -L "$CONF" ]; then
    cant "$CONF exists ($(readlink -f "$CONF")): another Slurm is configured here"
  fi
  pgrep -x slurmctld >/dev/null && cant "a slurmctld is already running"
  pgrep -x slurmd >/dev/null && cant "a slurmd is already running"

  local ncpu
  ncpu=$(nproc)
  trap 'echo "starting failed; stopping what was started" >&2; stop >&2' ERR
  mkdir -p "$BASE"/{etc,spool/ctld,spool/d,log,run,munge}
  chmod 755 "$BASE"

  # munge, private: own key, socket and pid file, run as the munge user
  /usr/sbin/mungekey --create --keyfile "$BASE/munge/munge.key" --force
  chown -R munge:munge "$BASE/munge"
  chmod 755 "$BASE/munge"  # clients need to reach the socket; the key itself is 400
  chmod 400 "$BASE/munge/munge.key"
  runuser -u munge -- /usr/sbin/munged --key-file "$BASE/munge/munge.key" \
    --socket "$BASE/munge/munge.socket" --pid-file "$BASE/munge/munged.pid" \
    --log-file "$BASE/munge/munged.log" --seed-file "$BASE/munge/munged.seed"
  for _ in $(seq 50); do munge -n -S "$BASE/munge/munge.socket" >/dev/null 2>&1 && break; sleep 0.1; done

  # fake GPUs: character devices like /dev/null (file-less GPUs make the node INVALID on 22.05)
  for i in 0 1; do mknod "$BASE/fakegpu$i" c 1 3 2>/dev/null || touch "$BASE/fakegpu$i"; done

  cat > "$BASE/etc/slurm.conf" <<CONFEOF
ClusterName=myreinflow-test
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$BASE/munge/munge.socket
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
GresTypes=gpu
ReturnToService=2
# the node's memory is not enforced here (no cgroups): it is declared large enough for the profile's
# requests on any test machine, and slurmd takes the declared node as it is
SlurmdParameters=config_overrides
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
SlurmctldPidFile=$BASE/run/slurmctld.pid
SlurmdPidFile=$BASE/run/slurmd.pid
SlurmdSpoolDir=$BASE/spool/d
StateSaveLocation=$BASE/spool/ctld
SlurmctldLogFile=$BASE/log/slurmctld.log
SlurmdLogFile=$BASE/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$BASE/log/jobcomp.txt
# no accounting database: squeue is the status command, so finished jobs must stay visible a while
MinJobAge=300
InactiveLimit=0
KillWait=5
Waittime=0
NodeName=localhost NodeHostname=localhost CPUs=$ncpu RealMemory=65536 Gres=gpu:2 State=UNKNOWN
PartitionName=cpu Nodes=ALL Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=ALL MaxTime=INFINITE State=UP
CONFEOF
  echo "NodeName=localhost Name=gpu File=$BASE/fakegpu[0-1]" > "$BASE/etc/gres.conf"
  mkdir -p /etc/slurm
  ln -s "$BASE/etc/slurm.conf" "$CONF"
  ln -sfn "$BASE/etc/gres.conf" /etc/slurm/gres.conf

  /usr/sbin/slurmctld            # daemonizes; pid file in BASE/run
  /usr/sbin/slurmd -N localhost  # the node is "localhost" whatever the machine's hostname
  for _ in $(seq 150); do
    if [ "$(sinfo -h -n localhost -p gpu -o %T 2>/dev/null)" = idle ]; then
      echo "slurm ready: $(sinfo -h -o '%P %T %N %G' | tr '\n' ';')"
      return 0
    fi
    sleep 0.2
  done
  echo "slurm did not become ready" >&2
  tail -n 30 "$BASE"/log/*.log >&2
  stop >&2
  exit 1
}

case $cmd in
  start) start ;;
  stop) stop ;;
  *) echo "usage: cluster.sh start|stop BASE (not $cmd)" >&2; exit 2 ;;
esac

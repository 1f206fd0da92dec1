#!/usr/bin/env bash
# The split demo site in containers, as k8s/overlays/podman describes it and
# `podman kube play` runs it: the simulator, the device drivers and the OCPP
# bridge in the site pod, the load balancer, the session service, the grid
# controller and the metrics exporter each in its own pod, every one a FROM
# scratch image built here from the binaries (tools/images). Checks:
#   - every container answers its health probe (the time from `kube play` to
#     all ready is printed);
#   - the load balancer's allocation reaches the simulated wallboxes, and
#     evgatectl on the host works against the split site;
#   - the metrics exporter is scraped and sees every peer up;
#   - kill -9 of the driver container: every wallbox at its failsafe within
#     its watchdog; started again: control resumes with no other action;
#   - the same for the load balancer (its setpoints expire to the failsafe);
#   - the session pod deleted and created again: the sessions are still there
#     (the claim's volume) and resume;
#   - a grid outage across containers: the grid controller sees the off-grid
#     box lose the grid, the load balancer pauses the wallboxes for the grid
#     mode, and both come back after the grid does;
#   - the all-in-one image runs the demo in one read-only container;
#   - the containers' total RSS and PSS, and the reaction times across
#     containers, are printed.
# Cleans up its pods, volumes and images; says so plainly when podman cannot
# run here.
#
# `containers_test.sh [--reaction-steps N]` (default 6): N steps of the
# building load on L1, each a meter sample the load balancer must react to;
# the reaction times of its WatchAllocations (meter reading at the driver to
# setpoints dispatched to the drivers, across containers) are printed.
# //e2e:containers_bench runs it with 200 (`bazel run -c opt`,
# docs/performance.md).

# Run by `bazel run` (the benchmark) the test environment is not set.
: "${TEST_SRCDIR:=${RUNFILES_DIR:-$0.runfiles}}" "${TEST_WORKSPACE:=evgate}"
own_tmp=""
[ -n "${TEST_TMPDIR:-}" ] || { TEST_TMPDIR=$(mktemp -d); own_tmp=$TEST_TMPDIR; }
export TEST_SRCDIR TEST_WORKSPACE TEST_TMPDIR
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/e2e/lib.sh"

reaction_steps=6
while [ $# -gt 0 ]; do
  case $1 in
    --reaction-steps) reaction_steps=$2; shift 2 ;;
    *) echo "usage: containers_test.sh [--reaction-steps N]"; exit 2 ;;
  esac
done

version=$(cat "$runfiles/VERSION")
tag="e2e-$$"
prefix="e2e$$-"
export CONTAINERS_CONF="$runfiles/tools/images/containers.conf"
export HOME="${HOME:-$tmp}"

if ! command -v podman >/dev/null; then
  echo "FAIL: podman is not installed (tools/setup.sh installs podman, runc and catatonit)"
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "FAIL: the container test runs rootful podman and needs root (it is $(id -un))"
  exit 1
fi
if ! kubectl kustomize --help >/dev/null 2>&1; then
  echo "FAIL: kubectl with kustomize (>= 1.27) renders the manifests and is not here (tools/packages.txt)"
  exit 1
fi
if ! podman info >/dev/null 2>"$tmp/podman-info.log"; then
  echo "FAIL: podman cannot run here: $(tail -3 "$tmp/podman-info.log")"
  exit 1
fi

rendered="$tmp/podman.yaml"
session_only="$tmp/session.yaml"
images=(device_drivers simulator ocpp_bridge load_balancer session grid_controller metrics_exporter
  evgate)
podman_cleanup() {
  podman kube down "$rendered" >/dev/null 2>&1
  podman pod rm -f $(podman pod ps -q --filter "name=^$prefix") >/dev/null 2>&1
  podman rm -f "${prefix}evgate" >/dev/null 2>&1
  podman volume rm -f $(podman volume ls -q --filter "name=^$prefix") >/dev/null 2>&1
  for image in "${images[@]}" base; do podman rmi -f "localhost/evgate/$image:$tag" >/dev/null 2>&1; done
}
cleanup() {  # lib.sh's (the processes this script started), then the containers'
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  podman_cleanup
  [ -z "$own_tmp" ] || rm -rf "$own_tmp"
}
trap cleanup EXIT

# --- images, from this build's binaries -----------------------------------
for image in base "${images[@]}"; do
  "$runfiles/tools/images/make_image.sh" "$image" "$runfiles/tools/images/${image}_layer.tar" \
    "$tag" test >/dev/null || { fail "image $image"; finish; }
done

# --- the podman overlay, on free ports, under this test's names -----------
cp -rL "$runfiles/k8s" "$tmp/k8s"
kubectl kustomize "$tmp/k8s/overlays/podman" > "$tmp/overlay.yaml" || { fail "kustomize"; finish; }
ports_json=$("$py" - <<'PYEOF'
import json, socket
ports = {}
for fixed in [51701, 51702, 51703, 51704, 51705, 51706, 51707, 51711, 51712, 51713, 51714]:
    kind = socket.SOCK_DGRAM if fixed == 51712 else socket.SOCK_STREAM  # 51712: the CAN bus (UDP)
    s = socket.socket(socket.AF_INET, kind); s.bind(("127.0.0.1", 0))
    ports[str(fixed)] = s.getsockname()[1]; s.close()
print(json.dumps(ports))
PYEOF
)
"$py" - "$tmp/overlay.yaml" "$rendered" "$session_only" "$ports_json" "$version" "$tag" "$prefix" <<'PYEOF'
import json, re, sys, yaml
src, out, session_out, ports, version, tag, prefix = sys.argv[1:8]
ports = json.loads(ports)
text = open(src).read()
for fixed, free in ports.items():
    text = re.sub(rf"\b{fixed}\b", str(free), text)
text = text.replace(f":{version}", f":{tag}")
docs = [d for d in yaml.safe_load_all(text) if d]
played = []
for d in docs:
    if d["kind"] not in ("Deployment", "ConfigMap", "PersistentVolumeClaim"):
        continue  # podman 4.3 plays no Namespace, Service or NetworkPolicy
    d["metadata"].pop("namespace", None)
    if d["kind"] in ("PersistentVolumeClaim", "ConfigMap"):
        d["metadata"]["name"] = prefix + d["metadata"]["name"]  # podman makes volumes of both
    if d["kind"] == "Deployment":
        d["metadata"]["name"] = prefix + d["metadata"]["name"]
        for v in d["spec"]["template"]["spec"].get("volumes", []):
            if "persistentVolumeClaim" in v:
                v["persistentVolumeClaim"]["claimName"] = prefix + v["persistentVolumeClaim"]["claimName"]
            if "configMap" in v:
                v["configMap"]["name"] = prefix + v["configMap"]["name"]
    played.append(d)
yaml.safe_dump_all(played, open(out, "w"))
# The session pod alone, to create it again later (its claim's volume exists).
yaml.safe_dump_all([d for d in played if d["kind"] == "ConfigMap" or
                    (d["kind"] == "Deployment" and d["metadata"]["name"] == prefix + "session")],
                   open(session_out, "w"))
PYEOF
port() { "$py" -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$ports_json" "$1"; }
sim="127.0.0.1:$(port 51703)" lb="127.0.0.1:$(port 51704)" sessions="127.0.0.1:$(port 51705)"
metrics="127.0.0.1:$(port 51714)" grid="127.0.0.1:$(port 51707)"

# container name -> its readiness probe, as the rendered manifest has it
# (podman runs exec probes through /bin/sh, which scratch images lack, so the
# test runs them itself).
declare -A probe_of
while IFS=$'\t' read -r container command; do
  probe_of["$container"]=$command
done < <("$py" - "$rendered" <<'PYEOF'
import shlex, sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d["kind"] == "Deployment":
        for c in d["spec"]["template"]["spec"]["containers"]:
            command = c["readinessProbe"]["exec"]["command"]
            print(f"{d['metadata']['name']}-pod-0-{c['name']}\t{shlex.join(command)}")
PYEOF
)
[ ${#probe_of[@]} -eq 7 ] || { fail "expected seven containers, found ${#probe_of[@]}"; finish; }
# shellcheck disable=SC2086  # the probe command's own words
ready_one() { podman exec "$1" ${probe_of[$1]} || { echo "$1 not ready"; return 1; }; }
all_ready() {
  local c
  for c in "${!probe_of[@]}"; do ready_one "$c" || return 1; done
}
logs() { local c; for c in "${!probe_of[@]}"; do podman logs "$c" > "$tmp/$c.log" 2>&1; done; }

# --- up --------------------------------------------------------------------
played_at=$(date +%s.%N)
if ! podman kube play "$rendered" > "$tmp/play.log" 2>&1; then
  fail "podman kube play: $(tail -5 "$tmp/play.log")"
  finish
fi
if wait_for 60 "every container ready" all_ready; then
  echo "split demo ready (every probe passing) $("$py" -c "print(round($(date +%s.%N) - $played_at, 2))") s after podman kube play"
else
  logs; finish
fi

driven() { wallboxes_driven "$sim"; }
at_failsafe_current() { wallboxes_at_failsafe "$sim"; }          # by the driver or the watchdog
all_failsafe() { wallboxes_at_failsafe "$sim" watchdog; }         # by the wallboxes' watchdog
wait_for 60 "the allocation reaches every simulated wallbox" driven || { logs; finish; }
watchdog=$(driven | tr -d 's\n')
echo "wallbox watchdog: ${watchdog}s"

grep -Eq '^wb1 +[0-9.]+ A ' <<<"$(ctl "$lb" allocation show)" ||
  fail "evgatectl allocation show from the host: $(ctl "$lb" allocation show 2>&1)"
wb1_session() {
  ctl "$sessions" -o json sessions list --state open | "$py" -c '
import json, sys
s = [x for x in json.load(sys.stdin).get("sessions", []) if x["evse_id"] == "wb1"]
assert s and s[0]["state"] == "SESSION_STATE_ACTIVE", s
print(s[0]["session_id"])'
}
wait_for 30 "wb1's session (its card tapped at the simulated wallbox)" wb1_session || { logs; finish; }
session_id=$(wb1_session)

scrape() { "$py" -c "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen('http://$metrics/metrics', timeout=5).read().decode())"; }
peers_up() {
  local out; out=$(scrape) || return 1
  for s in device_drivers load_balancer session ocpp_bridge grid_controller; do
    grep -q "^evgate_up{service=\"$s\"} 1" <<<"$out" || { echo "$s not up"; return 1; }
  done
}
wait_for 20 "the metrics exporter sees every peer up" peers_up

# Memory: RSS counts the shared libraries' pages in every process; PSS
# shares them out (the images share the base layer's files, so its pages).
rss_kb=0 pss_kb=0
for c in "${!probe_of[@]}"; do
  pid=$(podman inspect --format '{{.State.Pid}}' "$c")
  rss=$(awk '/^Rss:/ { print $2 }' "/proc/$pid/smaps_rollup" 2>/dev/null)
  pss=$(awk '/^Pss:/ { print $2 }' "/proc/$pid/smaps_rollup" 2>/dev/null)
  rss_kb=$((rss_kb + ${rss:-0})) pss_kb=$((pss_kb + ${pss:-0}))
  echo "  ${c#"$prefix"}: RSS $((${rss:-0} / 1024)) MB, PSS $((${pss:-0} / 1024)) MB"
done
echo "split demo memory in ${#probe_of[@]} containers: RSS $((rss_kb / 1024)) MB, PSS $((pss_kb / 1024)) MB"

# --- reaction time across containers ---------------------------------------
# The building load on L1 steps up and down; each step is a grid meter sample
# (read by the driver container) that changes the allocation.
"$ctl_bin" --server "$lb" -o json allocation watch > "$tmp/watch.json" 2>&1 &
watch_pid=$!
pids+=("$watch_pid")
sleep 1
for _ in $(seq 1 "$reaction_steps"); do
  ctl "$sim" sim building-load 45,8,10 >/dev/null || fail "sim building-load"
  sleep 1.2
  ctl "$sim" sim building-load 12,8,10 >/dev/null || fail "sim building-load"
  sleep 1.2
done
kill "$watch_pid" 2>/dev/null
wait "$watch_pid" 2>/dev/null
"$py" - "$tmp/watch.json" "$reaction_steps" <<'PYEOF' || fail "reaction times"
import json, sys
text, decoder, at, times = open(sys.argv[1]).read(), json.JSONDecoder(), 0, []
while True:
    while at < len(text) and text[at].isspace():
        at += 1
    if at >= len(text):
        break
    try:
        obj, at = decoder.raw_decode(text, at)
    except ValueError:
        break  # the last object, cut by the kill
    if "reaction_time" in obj:
        times.append(float(obj["reaction_time"].rstrip("s")) * 1000)
steps = int(sys.argv[2])
assert len(times) >= steps, f"{len(times)} reactions to {2 * steps} load steps"
times.sort()
pick = lambda p: times[min(len(times) - 1, int(p * len(times)))]
print(f"reaction time across containers over {len(times)} reactions: "
      f"p50 {pick(0.5):.2f} ms, p99 {pick(0.99):.2f} ms, max {times[-1]:.2f} ms")
PYEOF

# --- kill -9 a container, see the failsafe, start it again ------------------
# kill_and_restart CONTAINER WHAT CHECK MIN MAX: kill -9 the container, wait
# for CHECK, which must hold between MIN and MAX seconds after the kill, start
# the container again and wait for control to resume.
kill_and_restart() {
  local c=$1 what=$2 check=$3 min=$4 max=$5
  podman kill --signal KILL "$c" >/dev/null || { fail "cannot kill $c"; return; }
  local killed_at; killed_at=$(date +%s.%N)
  if wait_for "$("$py" -c "print($max + 10)")" "every wallbox at its failsafe after the $what died" $check; then
    local elapsed; elapsed=$("$py" -c "print(round($(date +%s.%N) - $killed_at, 2))")
    echo "$what killed: every wallbox at its failsafe current after ${elapsed}s (watchdog ${watchdog}s)"
    "$py" -c "import sys; sys.exit(0 if $min <= $elapsed <= $max else 1)" ||
      fail "failsafe ${elapsed}s after the $what died, expected in [$min, $max] s"
  fi
  podman start "$c" >/dev/null || fail "cannot start $c again"
  wait_for 60 "control resumes after the $what started again" driven &&
    echo "$what started again: control resumed after ${waited}s"
}
# Nobody commands the wallboxes: their own watchdog, not before it (the last
# setpoint went out at most a refresh period, 1 s, before the kill).
kill_and_restart "${prefix}device-drivers-pod-0-device-drivers" "device-drivers container" \
  all_failsafe "$("$py" -c "print($watchdog - 1.5)")" "$("$py" -c "print($watchdog + 3)")"
# The driver lives on: it sets the failsafe when the setpoints' TTL ends,
# before the wallboxes' watchdog would.
kill_and_restart "${prefix}load-balancer-pod-0-load-balancer" "load-balancer container" \
  at_failsafe_current 0 "$watchdog"

# --- the session pod deleted and created again -------------------------------
podman pod rm -f "${prefix}session-pod-0" >/dev/null || fail "cannot delete the session pod"
podman kube play "$session_only" > "$tmp/play-session.log" 2>&1 ||
  fail "playing the session pod again: $(tail -3 "$tmp/play-session.log")"
wait_for 30 "the new session container is ready" ready_one "${prefix}session-pod-0-session"
resumed() { [ "$(wb1_session)" = "$session_id" ]; }
wait_for 30 "wb1's session $session_id is still there and resumed after the session pod was recreated" resumed &&
  echo "session $session_id survived the session pod's deletion"

# --- a grid outage across containers ----------------------------------------
# The simulated off-grid box (site pod) loses the grid; the grid controller
# (its own pod) reads it through the device drivers and the load balancer
# (its own pod) takes the mode from the grid controller's stream.
wait_for 30 "the grid controller reports ON_GRID" grid_mode_is "$grid" ON_GRID || { logs; finish; }
ctl "$sim" sim grid-outage > /dev/null || fail "sim grid-outage"
wait_for 15 "the grid controller sees the outage (OUTAGE_STANDBY)" grid_mode_is "$grid" \
  OUTAGE_STANDBY && echo "grid outage: OUTAGE_STANDBY after ${waited}s"
wait_for 15 "the load balancer pauses wb1 for the grid mode" evse_allocation "$lb" wb1 \
  'e.get("paused") and e.get("pause_reason") == "PAUSE_REASON_GRID_MODE"' &&
  echo "grid outage: wb1 paused for the grid mode after ${waited}s"
ctl "$sim" sim grid-restore > /dev/null || fail "sim grid-restore"
wait_for 45 "ON_GRID after the grid came back" grid_mode_is "$grid" ON_GRID &&
  echo "grid restored: ON_GRID after ${waited}s"
wait_for 60 "wb1 charging again after the outage" evse_allocation "$lb" wb1 \
  'not e.get("paused") and e.get("current_a", 0) > 6'

# --- the all-in-one image: every service in one read-only container --------
logs
podman kube down "$rendered" >/dev/null 2>&1
all_in_one_port=$(free_port tcp)
make_site "$tmp/all-in-one.yaml" "s|session_database: .*|session_database: /data/sessions.db|"
podman run -d --name "${prefix}evgate" --network host --read-only --cap-drop=all \
  --security-opt no-new-privileges -v "$tmp/all-in-one.yaml:/etc/evgate/site.yaml:ro" \
  -v "${prefix}data:/data" "localhost/evgate/evgate:$tag" \
  --site /etc/evgate/site.yaml --listen "127.0.0.1:$all_in_one_port" > /dev/null ||
  fail "the all-in-one image does not run"
all_in_one_ready() {
  podman exec "${prefix}evgate" /usr/bin/evgate-probe --address "127.0.0.1:$all_in_one_port" \
    --service evgate.v1.LoadBalancer || return 1
  grep -Eq '^wb1 +([7-9]|[1-9][0-9])(\.[0-9]+)? A ' <<<"$(ctl "127.0.0.1:$all_in_one_port" allocation show)"
}
if wait_for 60 "the all-in-one image runs the demo (wb1 above 6 A)" all_in_one_ready; then
  echo "all-in-one image: the demo under control ${waited}s after start"
else
  podman logs "${prefix}evgate" > "$tmp/all-in-one.log" 2>&1
fi

finish

#!/usr/bin/env bash
# The k8s/ manifests: every overlay renders with kustomize, every object is
# valid against the Kubernetes schemas with no unknown field, every workload
# follows the policy (check_policy.py), the overlays' site files are what
# make_sites.py generates from the demo and pass `evgate validate`. Also shows
# that the schema check can fail: a misspelt field and a wrong type are
# rejected.
set -uo pipefail
runfiles="${TEST_SRCDIR}/${TEST_WORKSPACE}"
k8s="$runfiles/k8s"
py=/usr/bin/python3
tmp="${TEST_TMPDIR}"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

if ! command -v kubectl >/dev/null; then
  echo "FAIL: kubectl is not installed: it renders the overlays (kubectl >= 1.27, tools/packages.txt)"
  exit 1
fi
if ! kubectl kustomize --help >/dev/null 2>&1; then
  echo "FAIL: this kubectl has no 'kustomize' command (it must be >= 1.27)"
  exit 1
fi

# The checker imports its npm packages from a node_modules beside it.
cp "$k8s/check_manifests.mjs" "$tmp/"
ln -sfn "$runfiles/../npm" "$tmp/node_modules"
check() { node "$tmp/check_manifests.mjs" "$@"; }

# kustomize needs the overlays as a tree of real files it may read.
cp -rL "$k8s" "$tmp/k8s"
for overlay in base overlays/demo overlays/podman overlays/k3s-gateway; do
  name=$(basename "$overlay")
  if ! kubectl kustomize "$tmp/k8s/$overlay" > "$tmp/$name.yaml" 2> "$tmp/$name.err"; then
    fail "$overlay does not render: $(cat "$tmp/$name.err")"
    continue
  fi
  out=$(check "$tmp/$name.yaml") || fail "$overlay: schema problems:"$'\n'"$out"
  echo "$overlay: $(tail -1 <<<"$out")"
  if [ "$name" != base ]; then
    out=$("$py" "$k8s/check_policy.py" "$runfiles/VERSION" "$name" "$tmp/$name.yaml") ||
      fail "$overlay: policy problems:"$'\n'"$out"
    echo "$(tail -1 <<<"$out")"
    # The site the overlay's pods load.
    site="$k8s/$overlay/site.yaml"
    out=$("$runfiles/gateway/evgate" validate "$site" 2>&1) || fail "$overlay/site.yaml: $out"
  fi
done

# What the base must hold: a Deployment + Service per service, the volumes,
# the NetworkPolicy in front of the device drivers.
"$py" - "$tmp/base.yaml" <<'PYEOF' || fail "base objects"
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
have = {(d["kind"], d["metadata"]["name"]) for d in docs}
want = {("Namespace", "evgate"), ("PersistentVolumeClaim", "evgate-sessions"),
        ("PersistentVolumeClaim", "evgate-ocpp"), ("NetworkPolicy", "device-drivers-callers")}
for s in ("device-drivers", "load-balancer", "session", "ocpp-bridge", "grid-controller",
          "metrics-exporter"):
    want |= {("Deployment", s), ("Service", s)}
missing = want - have
assert not missing, f"missing from base: {sorted(missing)}"
assert all(d["metadata"].get("namespace") == "evgate" for d in docs if d["kind"] != "Namespace")
PYEOF

out=$("$py" "$k8s/make_sites.py" --check 2>&1) || fail "$out"

# The checks can fail: a misspelt field, a number as a string, an unknown kind.
"$py" - "$tmp/demo.yaml" "$tmp/broken.yaml" <<'PYEOF'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
dep = next(d for d in docs if d["kind"] == "Deployment")
dep["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Never"
dep["spec"]["replicas"] = "1"
docs.append({"apiVersion": "v1", "kind": "Sevice", "metadata": {"name": "x"}})
yaml.safe_dump_all(docs, open(sys.argv[2], "w"))
PYEOF
out=$(check "$tmp/broken.yaml")
if [ $? -eq 0 ]; then
  fail "the schema check accepted a broken manifest"
else
  for want in "imagePullPolicyy: unknown field" "replicas must be integer" "v1 Sevice is not a Kubernetes type"; do
    grep -qF "$want" <<<"$out" || fail "the schema check did not report '$want': $out"
  done
fi

# The policy can fail: probes without the site CA against k3s-gateway's
# TLS-only servers.
"$py" - "$tmp/k3s-gateway.yaml" "$tmp/k3s-plain.yaml" <<'PYEOF'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
for d in docs:
    if d["kind"] == "Deployment":
        for c in d["spec"]["template"]["spec"]["containers"]:
            c.pop("env", None)
yaml.safe_dump_all(docs, open(sys.argv[2], "w"))
PYEOF
out=$("$py" "$k8s/check_policy.py" "$runfiles/VERSION" k3s-gateway "$tmp/k3s-plain.yaml")
if [ $? -eq 0 ] || ! grep -q "speaks plaintext to a TLS-only server" <<<"$out"; then
  fail "the policy accepted plaintext probes against TLS-only servers: $out"
fi

[ $failures -eq 0 ] && echo PASS || { echo "$failures failures"; exit 1; }

#!/usr/bin/python3
"""What every evgate workload must be, checked on rendered manifests.

  check_policy.py VERSION_FILE OVERLAY_NAME RENDERED.yaml

Every container: an evgate image of this VERSION that is never pulled,
read-only root filesystem, no privilege escalation, all capabilities dropped,
CPU and memory requests and limits, startup / readiness / liveness probes
through evgate-probe. Every pod: non-root uid 65532, no service account
token, seccomp RuntimeDefault. Exceptions, each with its reason: the device
drivers' container of the k3s-gateway overlay is privileged (a serial port
without a device plugin, hardware.yaml). Prints each violation; exit 1 if any.
"""
import sys

import yaml

# (overlay, deployment, container) allowed to be privileged, and why.
PRIVILEGED = {("k3s-gateway", "device-drivers", "device-drivers"):
              "the RS-485 adapter as a character device (k8s/overlays/k3s-gateway/hardware.yaml)"}


def main():
    version = open(sys.argv[1]).read().strip()
    overlay, rendered = sys.argv[2], sys.argv[3]
    docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
    problems = []
    deployments = [d for d in docs if d["kind"] == "Deployment"]
    if not deployments:
        problems.append("no Deployment rendered")
    for d in deployments:
        name = d["metadata"]["name"]
        pod = d["spec"]["template"]["spec"]
        where = f"{overlay}: Deployment {name}"
        sc = pod.get("securityContext", {})
        if sc.get("runAsNonRoot") is not True or sc.get("runAsUser") != 65532:
            problems.append(f"{where}: pod must run as non-root uid 65532")
        if sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problems.append(f"{where}: seccompProfile RuntimeDefault missing")
        if pod.get("automountServiceAccountToken") is not False:
            problems.append(f"{where}: mounts a service account token it does not need")
        for c in pod["containers"]:
            cw = f"{where} container {c['name']}"
            image = c.get("image", "")
            if not image.startswith("localhost/evgate/") or not image.endswith(":" + version):
                problems.append(f"{cw}: image {image} is not localhost/evgate/...:{version}")
            if c.get("imagePullPolicy") != "Never":
                problems.append(f"{cw}: imagePullPolicy must be Never (no registry)")
            csc = c.get("securityContext", {})
            if csc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{cw}: root filesystem not read-only")
            if csc.get("capabilities", {}).get("drop") != ["ALL"]:
                problems.append(f"{cw}: capabilities not all dropped")
            if csc.get("privileged"):
                if (overlay, name, c["name"]) not in PRIVILEGED:
                    problems.append(f"{cw}: privileged")
            elif csc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{cw}: allowPrivilegeEscalation must be false")
            res = c.get("resources", {})
            for kind in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    if r not in res.get(kind, {}):
                        problems.append(f"{cw}: no {r} {kind[:-1]}")
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                cmd = c.get(probe, {}).get("exec", {}).get("command", [])
                if not cmd or cmd[0] != "/usr/bin/evgate-probe":
                    problems.append(f"{cw}: {probe} is not an evgate-probe exec probe")
    for p in problems:
        print(p)
    print(f"{overlay}: {len(deployments)} Deployments, {len(problems)} policy problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

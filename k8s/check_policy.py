#!/usr/bin/python3
"""What every evgate workload must be, checked on rendered manifests.

  check_policy.py VERSION_FILE OVERLAY_NAME RENDERED.yaml

Every container: an evgate image of this VERSION that is never pulled,
read-only root filesystem, no privilege escalation, all capabilities dropped,
CPU and memory requests and limits, startup / readiness / liveness probes
through evgate-probe. Every pod: non-root uid 65532, no service account
token, seccomp RuntimeDefault. Exceptions, each with its reason: the device
drivers' container of the k3s-gateway overlay is privileged (a serial port
without a device plugin, hardware.yaml); the host network, host paths and
host ports only where the tables below allow them. With services.tls every
probe must have the site CA. Prints each violation; exit 1 if any.
"""
import sys

import yaml

# (overlay, deployment, container) allowed to be privileged, and why.
PRIVILEGED = {("k3s-gateway", "device-drivers", "device-drivers"):
              "the RS-485 adapter as a character device (k8s/overlays/k3s-gateway/hardware.yaml)"}
# (overlay, deployment) allowed on the host network, and why ("*": any).
HOST_NETWORK = {("k3s-gateway", "device-drivers"): "SocketCAN interfaces are the host's",
                ("podman", "*"): "podman 4.3 has no DNS between pods (k8s/overlays/podman)"}
# (overlay, deployment) -> the hostPath volumes it may mount.
HOST_PATHS = {("k3s-gateway", "device-drivers"): {"/dev/evgate-rs485"}}
# (overlay, deployment) -> the host ports it may take.
HOST_PORTS = {("k3s-gateway", "ocpp-bridge"): {9000}}


def allowed(table, overlay, name):
    return table.get((overlay, name), table.get((overlay, "*")))


def main():
    version = open(sys.argv[1]).read().strip()
    overlay, rendered = sys.argv[2], sys.argv[3]
    docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
    problems = []
    deployments = [d for d in docs if d["kind"] == "Deployment"]
    if not deployments:
        problems.append("no Deployment rendered")
    # The site the pods load: with services.tls the servers speak TLS only, so
    # every probe needs the site CA.
    sites = [yaml.safe_load(d["data"]["site.yaml"]) for d in docs
             if d["kind"] == "ConfigMap" and "site.yaml" in d.get("data", {})]
    tls = any((site.get("services") or {}).get("tls") for site in sites)
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
        if pod.get("hostNetwork") and not allowed(HOST_NETWORK, overlay, name):
            problems.append(f"{where}: on the host network")
        for v in pod.get("volumes", []):
            path = v.get("hostPath", {}).get("path")
            if path and path not in (allowed(HOST_PATHS, overlay, name) or set()):
                problems.append(f"{where}: mounts the host's {path}")
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
            for port in c.get("ports") or []:
                if "hostPort" in port and port["hostPort"] not in (
                        allowed(HOST_PORTS, overlay, name) or set()):
                    problems.append(f"{cw}: takes host port {port['hostPort']}")
            env = {e["name"] for e in c.get("env") or []}
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                cmd = c.get(probe, {}).get("exec", {}).get("command", [])
                if not cmd or cmd[0] != "/usr/bin/evgate-probe":
                    problems.append(f"{cw}: {probe} is not an evgate-probe exec probe")
                elif tls and "--ca" not in cmd and "EVGATE_PROBE_CA" not in env:
                    problems.append(f"{cw}: {probe} speaks plaintext to a TLS-only server "
                                    "(set EVGATE_PROBE_CA or --ca)")
                elif probe != "livenessProbe" and "--service" not in cmd:
                    problems.append(f"{cw}: {probe} asks the server, not its service "
                                    "(--service NAME: SERVING only once the service started)")
    for p in problems:
        print(p)
    print(f"{overlay}: {len(deployments)} Deployments, {len(problems)} policy problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

"""The root filesystem of an evgate container image, built from a binary.

Bazel 4 here has no container rules (none can be downloaded), so the image is
a reproducible tarball (tools/images/rootfs.sh: the stripped binary,
evgate-probe and their shared-library closure) that tools/images/build.sh
turns into a `FROM scratch` image with podman.
"""

def evgate_rootfs(name, binary, visibility = None):
    """`name`.tar: the root filesystem of the image of `binary`."""
    native.genrule(
        name = name,
        srcs = [binary, "//tools/probe:evgate-probe"],
        outs = [name + ".tar"],
        cmd = "$(location //tools/images:rootfs.sh) $@ $(location %s) $(location //tools/probe:evgate-probe)" % binary,
        tools = ["//tools/images:rootfs.sh"],
        visibility = visibility,
    )

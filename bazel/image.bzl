"""The layers of evgate's container images, built from the binaries.

Bazel 4 here has no container rules (none can be downloaded), so each layer
is a reproducible tarball (tools/images/rootfs.sh) that
tools/images/make_image.sh turns into a podman image: a shared base layer
(the shared libraries, evgate-probe, the non-root user) and one layer per
binary on top.
"""

_PROBE = "//tools/probe:evgate-probe"

# The base layer copies libraries from the host, which Bazel does not track:
# tools/images/build.sh passes a hash of the installed packages as
# EVGATE_HOST_LIBS (.bazelrc's default: "unset"), so an `apt upgrade` makes a
# new base layer instead of a cached one with the old libraries.
_HOST_LIBS = ": host libraries $(EVGATE_HOST_LIBS); "
_ROOTFS = "//tools/images:rootfs.sh"

def evgate_base_layer(name, binaries, visibility = None):
    """`name`.tar and `name`.libs: the libraries every one of `binaries` needs."""
    native.genrule(
        name = name,
        srcs = [_PROBE] + binaries,
        outs = [name + ".tar", name + ".libs"],
        cmd = _HOST_LIBS + "$(location %s) base $(location %s.tar) $(location %s.libs) $(location %s) %s" % (
            _ROOTFS,
            name,
            name,
            _PROBE,
            " ".join(["$(location %s)" % b for b in binaries]),
        ),
        tools = [_ROOTFS],
        tags = ["no-remote"],
        visibility = visibility,
    )

def evgate_binary_layer(name, binary, base, visibility = None):
    """`name`.tar: `binary` in /usr/bin, checked against the libraries of `base`."""
    native.genrule(
        name = name,
        srcs = [binary, base + ".libs"],
        outs = [name + ".tar"],
        cmd = _HOST_LIBS + "$(location %s) binary $@ $(location %s.libs) $(location %s)" % (_ROOTFS, base, binary),
        tools = [_ROOTFS],
        tags = ["no-remote"],
        visibility = visibility,
    )

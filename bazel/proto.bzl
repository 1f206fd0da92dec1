"""C++ protobuf and gRPC code generation with the system protoc.

Bazel's native proto_library would fetch @com_google_protobuf, so this macro
runs Debian's /usr/bin/protoc with /usr/bin/grpc_cpp_plugin in a genrule and
compiles the result against the system libraries.
"""

def cc_grpc_library(name, srcs, deps = [], grpc = True, import_root = "proto", visibility = None):
    """Generates and compiles C++ code for `srcs` (.proto files in this package).

    Args:
      name: the cc_library to create.
      srcs: .proto files; imports are resolved from `import_root` and
        /usr/include (google/protobuf/*.proto).
      deps: other cc_grpc_library targets whose protos `srcs` import.
      grpc: also generate service stubs (.grpc.pb.*).
      import_root: the folder (from the workspace root) that .proto imports
        and generated #includes are relative to: `import "evgate/v1/x.proto"`
        and `#include "evgate/v1/x.pb.h"`.
      visibility: visibility of the cc_library.
    """
    if not pkg_startswith(native.package_name(), import_root):
        fail("cc_grpc_library: package {} is not under {}".format(native.package_name(), import_root))
    pkg = native.package_name()
    stems = [s[:-len(".proto")] for s in srcs]
    outs_h = [s + ".pb.h" for s in stems]
    outs_cc = [s + ".pb.cc" for s in stems]
    if grpc:
        outs_h += [s + ".grpc.pb.h" for s in stems]
        outs_cc += [s + ".grpc.pb.cc" for s in stems]

    # protoc writes under --cpp_out by the import path (relative to
    # import_root), so the outputs land in this package's part of $(GENDIR).
    out_root = "$(GENDIR)/" + import_root
    grpc_flags = " --grpc_out={} --plugin=protoc-gen-grpc=/usr/bin/grpc_cpp_plugin".format(out_root) if grpc else ""
    rel_pkg = pkg[len(import_root) + 1:]
    dep_protos = [d + "_protos" for d in deps]
    native.filegroup(
        name = name + "_protos",
        srcs = srcs + dep_protos,
        visibility = visibility,
    )
    native.genrule(
        name = name + "_codegen",
        srcs = srcs + dep_protos,
        outs = outs_h + outs_cc,
        cmd = ("/usr/bin/protoc -I{root} -I/usr/include --cpp_out={out}{grpc} {files}".format(
            root = import_root,
            out = out_root,
            grpc = grpc_flags,
            files = " ".join(["{}/{}".format(pkg, s) for s in srcs]),
        )),
        message = "protoc " + pkg,
    )
    native.cc_library(
        name = name,
        srcs = outs_cc,
        hdrs = outs_h,
        copts = ["-Wno-error", "-Wno-unused-parameter"],
        strip_include_prefix = "/" + import_root,
        deps = deps + [
            "@system//:protobuf",
        ] + (["@system//:grpc++"] if grpc else []),
        visibility = visibility,
    )

def pkg_startswith(pkg, root):
    return pkg == root or pkg.startswith(root + "/")

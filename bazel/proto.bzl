"""C++ protobuf and gRPC code generation with the system protoc.

Bazel's native proto_library would fetch @com_google_protobuf, so this macro
runs Debian's /usr/bin/protoc with /usr/bin/grpc_cpp_plugin in a genrule and
compiles the result against the system libraries.
"""

def cc_grpc_library(name, srcs, deps = [], grpc = True, visibility = None):
    """Generates and compiles C++ code for `srcs` (.proto files in this package).

    Args:
      name: the cc_library to create.
      srcs: .proto files; imports are resolved from the workspace root and
        /usr/include (google/protobuf/*.proto).
      deps: other cc_grpc_library targets whose protos `srcs` import.
      grpc: also generate service stubs (.grpc.pb.*).
      visibility: visibility of the cc_library.
    """
    pkg = native.package_name()
    stems = [s[:-len(".proto")] for s in srcs]
    outs_h = [s + ".pb.h" for s in stems]
    outs_cc = [s + ".pb.cc" for s in stems]
    if grpc:
        outs_h += [s + ".grpc.pb.h" for s in stems]
        outs_cc += [s + ".grpc.pb.cc" for s in stems]

    # protoc writes under --cpp_out by the import path, which is the path from
    # the workspace root; $(GENDIR) is where this package's outputs belong.
    grpc_flags = " --grpc_out=$(GENDIR) --plugin=protoc-gen-grpc=/usr/bin/grpc_cpp_plugin" if grpc else ""
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
        cmd = ("/usr/bin/protoc -I. -I$(GENDIR) -I/usr/include --cpp_out=$(GENDIR)" + grpc_flags +
               " " + " ".join(["{}/{}".format(pkg, s) if pkg else s for s in srcs])),
        message = "protoc " + pkg,
    )
    native.cc_library(
        name = name,
        srcs = outs_cc,
        hdrs = outs_h,
        copts = ["-Wno-error", "-Wno-unused-parameter"],
        deps = deps + [
            "@system//:protobuf",
        ] + (["@system//:grpc++"] if grpc else []),
        visibility = visibility,
    )

"""Fuzz targets: one macro for the project's fuzz convention.

    load("//tools/fuzz:fuzz.bzl", "evgate_fuzzer")
    evgate_fuzzer(
        name = "modbus_response",          # -> modbus_response_fuzzer_lib
        srcs = ["modbus_response_fuzzer.cc"],  #    modbus_response_fuzzer_corpus_test
        deps = [":register_map"],
    )

`<name>_fuzzer_lib` holds the `LLVMFuzzerTestOneInput` entry (alwayslink, so
the entry survives linking into any main). `<name>_fuzzer_corpus_test` links it
with //tools/fuzz:corpus_driver and runs it over the seed corpus
(default `testdata/<name>_fuzzer_corpus/`, one input per file), mutations of
each seed and `random_inputs` random inputs, in the normal gcc build.
`tools/fuzz.sh //pkg:<name>_fuzzer_lib RUNS` runs the same entry under
libFuzzer with ASan and UBSan (clang).
"""

def evgate_fuzzer(
        name,
        srcs,
        deps = [],
        corpus = None,
        random_inputs = 10000,
        max_len = 512,
        size = "small"):
    corpus = corpus or "testdata/%s_fuzzer_corpus" % name
    native.cc_library(
        name = name + "_fuzzer_lib",
        srcs = srcs,
        deps = deps,
        alwayslink = 1,
    )
    native.cc_test(
        name = name + "_fuzzer_corpus_test",
        size = size,
        deps = [
            ":" + name + "_fuzzer_lib",
            "//tools/fuzz:corpus_driver",
        ],
        data = native.glob([corpus + "/**"], allow_empty = False),
        args = [
            "--random_inputs=%d" % random_inputs,
            "--max_len=%d" % max_len,
            native.package_name() + "/" + corpus,
        ],
    )

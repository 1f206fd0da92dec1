"""Counts passed and failed test cases from Bazel's per-target XML reports.

Usage: count_test_results.py TESTLOGS_DIR //pkg:target ...

Prints one line per failed case and ends with "N passed, M failed". Exits 1 if
anything failed, so a caller can combine it with Bazel's own exit status.
"""

import glob
import os
import sys
import xml.etree.ElementTree as ET


def main(argv):
    testlogs, targets = argv[1], argv[2:]
    passed = failed = 0
    failures = []
    for target in targets:
        package, _, name = target.lstrip("/").partition(":")
        target_dir = os.path.join(testlogs, package, name)
        # A sharded test writes one report per shard.
        reports = [os.path.join(target_dir, "test.xml")]
        if not os.path.exists(reports[0]):
            reports = sorted(glob.glob(os.path.join(target_dir, "shard_*_of_*", "test.xml")))
        if not reports:
            failed += 1
            failures.append(f"{target}: no test report (did not build or did not run)")
            continue
        cases = []
        try:
            for report in reports:
                cases.extend(ET.parse(report).getroot().iter("testcase"))
        except ET.ParseError as e:
            failed += 1
            failures.append(f"{target}: unreadable test report: {e}")
            continue
        seen = 0
        for case in cases:
            seen += 1
            if case.find("failure") is not None or case.find("error") is not None:
                failed += 1
                failures.append(f"{target}: {case.get('classname', '')}.{case.get('name')}")
            elif case.get("result") == "skipped" or case.find("skipped") is not None:
                continue
            else:
                passed += 1
        if seen == 0:
            failed += 1
            failures.append(f"{target}: the report holds no test case")
    for line in failures:
        print("FAILED " + line)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env bash
# The full fault injection run of issue #10: 100 kills (fault_injection_test.sh
# with FAULT_INJECTION_KILLS=100; about 10-15 min). Not part of the suite
# (tag manual):
#
#   bazel test //e2e:fault_injection_soak --test_output=all \
#       [--test_env=FAULT_INJECTION_SEED=N]
export FAULT_INJECTION_KILLS=${FAULT_INJECTION_KILLS:-100}
exec "${TEST_SRCDIR}/${TEST_WORKSPACE}/e2e/fault_injection_test.sh"

#!/usr/bin/env bash
# Bazel's --workspace_status_command (.bazelrc): the git commit this build is
# from, for evgate_build_info and the images' revision label. "-dirty" when
# tracked files differ from it; "unknown" outside a git checkout.
revision=$(git rev-parse HEAD 2>/dev/null) || revision=unknown
if [ "$revision" != unknown ] && [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  revision="$revision-dirty"
fi
echo "STABLE_EVGATE_REVISION $revision"

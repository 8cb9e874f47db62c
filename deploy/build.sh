#!/bin/sh
# deploy/build.sh OUTPUT: build hookd the way a release is built, into
# OUTPUT. The Dockerfile's build stage runs this script, and so does the
# test that checks it (internal/e2e/build_test.go): one set of flags.
#
#   CGO_ENABLED=0   no C compiler needed: pure-Go SQLite (modernc.org/sqlite),
#                   a static binary that runs FROM scratch;
#   -trimpath       no paths of the build machine in the binary;
#   -ldflags        the version, revision and build time hookd version shows:
#                   VERSION (default dev); REVISION, when set (in a checkout,
#                   Go records the commit and whether the tree was modified
#                   by itself; an image build has no .git and passes it);
#                   BUILD_TIME (default: the time of SOURCE_DATE_EPOCH if set,
#                   else now; UTC, RFC 3339).
#
# Extra go build arguments (GOOS and GOARCH cross-compile) come from the
# environment.
set -eu
out=${1:?usage: deploy/build.sh OUTPUT}
cd "$(dirname "$0")/.."

version=${VERSION:-dev}
revision=${REVISION:-}
build_time=${BUILD_TIME:-}
if [ -z "$build_time" ]; then
	if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
		build_time=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
	else
		build_time=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	fi
fi

for v in "$version" "$revision" "$build_time"; do
	case $v in
	*[!A-Za-z0-9._:+-]*)
		echo "deploy/build.sh: VERSION, REVISION and BUILD_TIME take letters, digits and . _ : + - only (got '$v')" >&2
		exit 2
		;;
	esac
done

ldflags="-s -w -X hookd.Version=$version -X hookd.BuildTime=$build_time"
if [ -n "$revision" ]; then
	ldflags="$ldflags -X hookd.Revision=$revision"
fi

CGO_ENABLED=0 exec go build -trimpath -ldflags "$ldflags" -o "$out" ./cmd/hookd

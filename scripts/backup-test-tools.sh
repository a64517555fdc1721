#!/usr/bin/env bash
# Installs the programs the backup test tier (tests/backup) runs as processes, into the same
# cache as tools/build.sh:
#
#   ${PGA_TOOLS_CACHE:-$HOME/.cache/pganalytics-tools}/rclone-<version>/bin/rclone
#       rclone from the Go module proxy, the version the chart's uploader image runs
#       (charts/pganalytics/values.yaml backup.uploader.image.tag), with the backends the chart
#       uses (s3, googlecloudstorage, azureblob, local) and the commands its scripts call.
#   ${PGA_TOOLS_CACHE:-$HOME/.cache/pganalytics-tools}/azurite-<version>/node_modules/.bin/azurite-blob
#       the Azure Blob Storage emulator from npm.
#
# Usage: scripts/backup-test-tools.sh [install|list]
#   install (default) builds or installs what is missing; list prints "<tool> <path>" of each
#   installed tool. Idempotent: a tool whose stamp matches its pin is reused.
# The S3 (moto) and GCS (gcp-storage-emulator) emulators are Python packages pinned in
# requirements-dev.txt and installed by scripts/bootstrap.sh.
set -euo pipefail

RCLONE_VERSION=v1.76.0
AZURITE_VERSION=3.37.0
CACHE="${PGA_TOOLS_CACHE:-$HOME/.cache/pganalytics-tools}"
RCLONE_DIR="$CACHE/rclone-$RCLONE_VERSION"
AZURITE_DIR="$CACHE/azurite-$AZURITE_VERSION"

say() { printf '==> [backup-test-tools] %s\n' "$*" >&2; }
die() { printf 'error: [backup-test-tools] %s\n' "$*" >&2; exit 1; }

# rclone's own main imports every backend and command; this one imports only those the chart's
# scripts use, which keeps the build to a few minutes. The code of each backend is rclone's.
RCLONE_MAIN='package main

import (
	_ "github.com/rclone/rclone/backend/azureblob"
	_ "github.com/rclone/rclone/backend/googlecloudstorage"
	_ "github.com/rclone/rclone/backend/local"
	_ "github.com/rclone/rclone/backend/s3"
	"github.com/rclone/rclone/cmd"
	_ "github.com/rclone/rclone/cmd/cat"
	_ "github.com/rclone/rclone/cmd/copy"
	_ "github.com/rclone/rclone/cmd/copyto"
	_ "github.com/rclone/rclone/cmd/hashsum"
	_ "github.com/rclone/rclone/cmd/lsf"
	_ "github.com/rclone/rclone/cmd/lsjson"
	_ "github.com/rclone/rclone/cmd/md5sum"
	_ "github.com/rclone/rclone/cmd/mkdir"
	_ "github.com/rclone/rclone/cmd/version"
)

func main() { cmd.Main() }
'

rclone_stamp() { printf '%s\n%s\n' "github.com/rclone/rclone@$RCLONE_VERSION" "$RCLONE_MAIN" | sha256sum | cut -c1-16; }

install_rclone() {
  local stamp
  stamp="$(rclone_stamp)"
  if [[ -x "$RCLONE_DIR/bin/rclone" && "$(cat "$RCLONE_DIR/stamp" 2>/dev/null)" == "$stamp" ]]; then
    return
  fi
  command -v go >/dev/null || die "no 'go' on PATH: install Go >= 1.26 to build rclone $RCLONE_VERSION"
  say "building rclone $RCLONE_VERSION (Go module proxy) into $RCLONE_DIR"
  local work
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' RETURN
  printf '%s' "$RCLONE_MAIN" >"$work/main.go"
  (
    cd "$work"
    go mod init pganalytics.local/rclone >/dev/null 2>&1
    go get "github.com/rclone/rclone@$RCLONE_VERSION" >/dev/null 2>&1 \
      || die "cannot fetch github.com/rclone/rclone@$RCLONE_VERSION from $(go env GOPROXY)"
    go mod tidy >/dev/null 2>&1 || die "go mod tidy failed for rclone $RCLONE_VERSION"
    mkdir -p "$RCLONE_DIR/bin"
    CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/rclone/rclone/fs.Version=$RCLONE_VERSION" \
      -o "$RCLONE_DIR/bin/rclone" .
  )
  echo "$stamp" >"$RCLONE_DIR/stamp"
}

install_azurite() {
  if [[ -x "$AZURITE_DIR/node_modules/.bin/azurite-blob" ]]; then
    return
  fi
  command -v npm >/dev/null || die "no 'npm' on PATH: install Node.js >= 20 to run Azurite"
  say "installing azurite@$AZURITE_VERSION (npm) into $AZURITE_DIR"
  mkdir -p "$AZURITE_DIR"
  npm install --prefix "$AZURITE_DIR" --no-audit --no-fund --silent "azurite@$AZURITE_VERSION" >&2 \
    || die "npm install azurite@$AZURITE_VERSION failed"
}

case "${1:-install}" in
  install) install_azurite; install_rclone ;;
  list)
    [[ -x "$RCLONE_DIR/bin/rclone" ]] && echo "rclone $RCLONE_DIR/bin/rclone"
    [[ -x "$AZURITE_DIR/node_modules/.bin/azurite-blob" ]] && echo "azurite-blob $AZURITE_DIR/node_modules/.bin/azurite-blob"
    true ;;
  *) die "usage: scripts/backup-test-tools.sh [install|list]" ;;
esac

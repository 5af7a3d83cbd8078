#!/usr/bin/env bash
# Docker for the docker-backend tests: install the engine from Debian if missing, start
# it if it is not answering, bootstrap debian:bookworm-slim when no registry has it, and
# build bot-bottle's images. Idempotent; a few seconds when everything is already done.
#
#   BOT_BOTTLE      command to run bot-bottle (default: bot-bottle, else python3 -m bot_bottle)
#   DOCKERD_LOG     where a dockerd we start logs (default /tmp/dockerd.log)
#   BB_CA_BUNDLE    extra CA bundle for image builds (default: the host's trust store)
#   BB_IMAGES       images to build (default, or "all": the agent images launches use)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[docker-setup] %s\n' "$*" >&2; }

if [ -n "${BOT_BOTTLE:-}" ]; then
  read -r -a bb <<<"$BOT_BOTTLE"
elif command -v bot-bottle >/dev/null 2>&1; then
  bb=(bot-bottle)
else
  bb=(python3 -m bot_bottle)
fi

if ! command -v dockerd >/dev/null 2>&1; then
  log "installing docker.io from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q docker.io >/tmp/docker-setup-apt.log 2>&1 \
    || { tail -20 /tmp/docker-setup-apt.log >&2; exit 1; }
fi

if ! docker info >/dev/null 2>&1; then
  log "starting dockerd (log: ${DOCKERD_LOG:-/tmp/dockerd.log})"
  setsid dockerd >"${DOCKERD_LOG:-/tmp/dockerd.log}" 2>&1 </dev/null &
  # Poll readiness; give up after ~60 s with the daemon's own words.
  for _ in $(seq 1 300); do
    docker info >/dev/null 2>&1 && break
    sleep 0.2
  done
  if ! docker info >/dev/null 2>&1; then
    log "dockerd did not come up:"; tail -20 "${DOCKERD_LOG:-/tmp/dockerd.log}" >&2; exit 1
  fi
fi
log "engine: $(docker version --format '{{.Server.Version}}' 2>/dev/null)"

# gVisor: when runsc is installed but unknown to the engine, register it so `doctor`
# can test it for real (it decides; bottles use runsc only if that test passes).
if command -v runsc >/dev/null 2>&1 && ! docker info --format '{{json .Runtimes}}' | grep -q runsc; then
  log "registering $(command -v runsc) with dockerd"
  mkdir -p /etc/docker
  python3 - "$(command -v runsc)" <<'PY'
import json, os, sys
p = "/etc/docker/daemon.json"
d = json.load(open(p)) if os.path.exists(p) else {}
d.setdefault("runtimes", {})["runsc"] = {"path": sys.argv[1]}
open(p, "w").write(json.dumps(d, indent=2) + "\n")
PY
  kill -HUP "$(pidof dockerd)"
  for _ in $(seq 1 50); do
    docker info --format '{{json .Runtimes}}' | grep -q runsc && break
    sleep 0.1
  done
fi

ca=()
if [ -n "${BB_CA_BUNDLE:-}" ]; then ca=(--ca-bundle "$BB_CA_BUNDLE"); fi

"${bb[@]}" images bootstrap "${ca[@]}"
images=(${BB_IMAGES:-agent-general agent-claude agent-codex})
if [ "${images[*]}" = all ]; then images=(); fi
"${bb[@]}" images build "${ca[@]}" "${images[@]}"

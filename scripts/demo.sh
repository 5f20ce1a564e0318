#!/usr/bin/env bash
# The syncd demo, on a fresh machine: installs what it needs, starts a real Slurm sandbox, the
# Kubernetes simulator (16 GPU nodes) and Redis if none runs, runs syncd and plays a short
# story. Ends by itself in under 2 minutes and stops everything it started (--keep: after
# Ctrl-C). Run it as root: slurmd runs as root.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "demo: run it as root (sudo scripts/demo.sh): it starts a Slurm with 16 slurmd, and slurmd runs as root" >&2
  exit 1
fi
scripts/bootstrap
exec .venv/bin/python scripts/demo.py "$@"

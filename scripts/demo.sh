#!/usr/bin/env bash
# The syncd demo, on a fresh machine: installs what it needs, starts a real Slurm sandbox, the
# Kubernetes simulator (16 GPU nodes) and Redis if none runs, runs syncd and plays a short
# story. Ends by itself in under 2 minutes and stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap
exec .venv/bin/python scripts/demo.py "$@"

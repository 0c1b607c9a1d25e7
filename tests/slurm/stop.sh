#!/usr/bin/env bash
# Stop the daemons started by start.sh (by pid file, never by name) and remove the pid files.
for f in /run/slurmd.pid /run/slurmctld.pid /run/munge/munged.pid; do
  if [ -s "$f" ]; then kill "$(cat "$f")" 2>/dev/null || true; fi
  rm -f "$f"
done

#!/bin/bash
# Regenerate image/requirements.lock: the versions pip resolves today for the appliance's
# dependencies (pyproject.toml) plus lgpio (gpiozero's pin factory on the Pi).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=$(mktemp -d)
trap 'rm -rf "$venv"' EXIT
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --dry-run --ignore-installed --report "$venv/report.json" \
  "$here/.." lgpio
{
  echo "# The hub's Python dependencies, pinned: what the image's venv installs (from PyPI wheels for"
  echo "# the image's architecture). Regenerate with image/lock.sh after changing pyproject.toml."
  "$venv/bin/python" - "$venv/report.json" <<'PY'
import json, sys
skip = {"upazila-hub", "pip"}
report = json.load(open(sys.argv[1]))
for line in sorted(f"{i['metadata']['name']}=={i['metadata']['version']}"
                   for i in report["install"] if i["metadata"]["name"] not in skip):
    print(line)
PY
} >"$here/requirements.lock"

# Sourced by scripts/run, scripts/test and scripts/lock: one virtual environment,
# installed from the repo's own pinned files (constraints.txt, made by scripts/lock).
# Whether PostgreSQL and RabbitMQ must answer is for the caller to say: scripts/run checks
# them (scripts/check_infra.py); pytest checks them only when it selected tests marked
# integration or e2e (tests/conftest.py), so `scripts/test tests/unit` needs neither.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
VENV="$ROOT/.venv"
if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
STAMP="$VENV/.installed-$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)"
if [ ! -f "$STAMP" ]; then
  echo "setup: installing dependencies (pinned by constraints.txt)"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -c constraints.txt -e ".[dev]"
  rm -f "$VENV"/.installed-*
  touch "$STAMP"
fi
export PATH="$VENV/bin:$PATH"

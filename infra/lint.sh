#!/usr/bin/env bash
# Lints infra/template.yaml with cfn-lint (PyPI), installed into a
# virtualenv under target/ on first use. Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
CFN_LINT_VERSION=1.58.0
venv=target/cfn-lint-venv
if [ ! -f "$venv/.installed-$CFN_LINT_VERSION" ]; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "cfn-lint==$CFN_LINT_VERSION"
    touch "$venv/.installed-$CFN_LINT_VERSION"
fi
"$venv/bin/cfn-lint" --version
"$venv/bin/cfn-lint" infra/template.yaml
echo "cfn-lint: infra/template.yaml passes"

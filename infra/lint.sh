#!/usr/bin/env bash
# Lints the infrastructure, each tool from PyPI in its own virtualenv under
# target/, installed on first use (pinned versions). Run from anywhere.
# - cfn-lint: infra/template.yaml, informational checks included (-c I);
# - checkov: infra/template.yaml, zero failed checks; every waiver is
#   written next to its resource (Metadata: checkov: skip:) with its reason;
# - check-jsonschema: infra/policy-repo-ci.example.yml against the GitHub
#   workflow schema (vendored in check-jsonschema);
# - sam validate --lint: the template as the SAM CLI reads it for a deploy,
#   with infra/samconfig.toml (it runs offline, but wants a region).
set -euo pipefail
cd "$(dirname "$0")/.."

# venv <dir> <package==version>: installs the package into target/<dir>.
venv() {
    local dir="target/$1" spec="$2"
    local marker="$dir/.installed-${spec//[^A-Za-z0-9._-]/_}"
    if [ ! -f "$marker" ]; then
        rm -rf "$dir"
        python3 -m venv "$dir"
        "$dir/bin/pip" install --quiet --disable-pip-version-check "$spec"
        touch "$marker"
    fi
}

CFN_LINT_VERSION=1.58.0
CHECKOV_VERSION=3.3.30
CHECK_JSONSCHEMA_VERSION=0.39.0
SAM_CLI_VERSION=1.170.0

venv cfn-lint-venv "cfn-lint==$CFN_LINT_VERSION"
target/cfn-lint-venv/bin/cfn-lint --version
target/cfn-lint-venv/bin/cfn-lint -c I -- infra/template.yaml
echo "cfn-lint (informational checks included): infra/template.yaml passes"

venv checkov-venv "checkov==$CHECKOV_VERSION"
target/checkov-venv/bin/checkov --version
target/checkov-venv/bin/checkov --skip-download --quiet --compact --framework cloudformation \
    --file infra/template.yaml
echo "checkov: infra/template.yaml passes (waivers are listed next to their resources)"

venv check-jsonschema-venv "check-jsonschema==$CHECK_JSONSCHEMA_VERSION"
target/check-jsonschema-venv/bin/check-jsonschema --version
target/check-jsonschema-venv/bin/check-jsonschema --builtin-schema vendor.github-workflows \
    infra/policy-repo-ci.example.yml
echo "check-jsonschema: infra/policy-repo-ci.example.yml is a valid GitHub workflow"

venv sam-venv "aws-sam-cli==$SAM_CLI_VERSION"
target/sam-venv/bin/sam --version
(cd infra && SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}" \
    ../target/sam-venv/bin/sam validate --lint)
echo "sam validate --lint: infra/template.yaml is a valid SAM template (with infra/samconfig.toml)"

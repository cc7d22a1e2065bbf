#!/usr/bin/env bash
# The modern-network studies (issue 13), one after another, each resumable: rerun this script after
# an interruption and every stored point is reused. Needs the checkpoints of train_modern.sh.
# Times and headlines go to experiments/results/modern_studies.log.
set -euo pipefail
cd "$(dirname "$0")/.."
for name in "$@"; do
    cfg=experiments/configs/$name.yaml
    study=$(.venv/bin/python -c "import yaml,sys; print(yaml.safe_load(open(sys.argv[1]))['name'])" "$cfg")
    out=results/$study
    flag=""; [ -f "$out/results.sqlite" ] && flag="--resume"
    start=$(date +%s)
    .venv/bin/quantscope study "$cfg" --out "$out" --data-dir ../shared/datasets $flag
    echo "$name: $(( $(date +%s) - start )) s wall (this invocation)" >> experiments/results/modern_studies.log
done

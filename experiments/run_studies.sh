#!/usr/bin/env bash
# Run experiment studies one after another, each resumable:
#     bash experiments/run_studies.sh hill_lenet gpt_fortunes ...   (config names in experiments/configs/)
# Each writes its store and report to experiments/results/studies/<study name>/ (committed, so a
# later session resumes it: rerun the same command and every stored point is reused). Wall times
# go to experiments/results/study_times.log. The modern-network studies need the checkpoints of
# experiments/train_checkpoints.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
for name in "$@"; do
    cfg=experiments/configs/$name.yaml
    study=$(.venv/bin/python -c "import yaml,sys; print(yaml.safe_load(open(sys.argv[1]))['name'])" "$cfg")
    out=experiments/results/studies/$study
    flag=""; [ -f "$out/results.sqlite" ] && flag="--resume"
    start=$(date +%s)
    .venv/bin/quantscope study "$cfg" --out "$out" --data-dir ../shared/datasets $flag
    echo "$name: $(( $(date +%s) - start )) s wall ($(date -u +%F), this invocation${flag:+, resumed})" >> experiments/results/study_times.log
done

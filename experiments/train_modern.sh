#!/usr/bin/env bash
# Float training of the modern networks (checkpoints/ for the experiment configs). Each run saves
# its state after every epoch (checkpoints/NAME.pt.progress): run this script again to continue
# an interrupted run; finished checkpoints are skipped. Times on 2 CPU cores are in the README.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/datasets}
Q=${Q:-.venv/bin/quantscope}
run() {  # name, dataset, then training options
    local name=$1 dataset=$2; shift 2
    local out=checkpoints/$name-$dataset.pt
    if [[ -f $out ]]; then echo "$out: done"; return; fi
    "$Q" train "$name" --dataset "$dataset" --data-dir "$DATA" --out "$out" --resume "$@"
}
run lstm-mnist mnist --epochs 8 --batch-size 128 --optimizer adam --lr 0.002 --weight-decay 0
run gpt-char fortunes --epochs 8 --batch-size 64 --optimizer adam --lr 0.002 --weight-decay 0
run resnet20 cifar10-jpeg --epochs 30 --batch-size 128 --lr 0.1 --weight-decay 0.0005 --augment
run vit cifar10-jpeg --epochs 30 --batch-size 128 --optimizer adam --lr 0.001 --weight-decay 0 --augment
run mobilenetv2 cifar10-jpeg --epochs 10 --batch-size 128 --lr 0.1 --weight-decay 0.00004 --augment

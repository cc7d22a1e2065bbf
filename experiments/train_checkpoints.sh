#!/usr/bin/env bash
# Float training of the experiment configs' checkpoints that benchmarks/train.py does not make: the
# modern networks and Hashemi's widened ALEX+/ALEX++.
#     bash experiments/train_checkpoints.sh              # every network below
#     bash experiments/train_checkpoints.sh alex+ alex++ # only these
# Each run saves its state after every epoch (checkpoints/NAME-DATASET.pt.progress): run the same
# command again to continue an interrupted run; finished checkpoints are skipped. Training runs on
# CUDA where one is available (`quantscope train --device auto`). Times on 2 CPU cores are in the
# README.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/datasets}
Q=${Q:-.venv/bin/quantscope}
selected=${*:+ $* }
run() {  # name, dataset, then training options
    local name=$1 dataset=$2; shift 2
    if [[ -n $selected && $selected != *" $name "* ]]; then return; fi
    local out=checkpoints/$name-$dataset.pt
    if [[ -f $out ]]; then echo "$out: done"; return; fi
    "$Q" train "$name" --dataset "$dataset" --data-dir "$DATA" --out "$out" --resume "$@"
}
run lstm-mnist mnist --epochs 8 --batch-size 128 --optimizer adam --lr 0.002 --weight-decay 0
run gpt-char fortunes --epochs 8 --batch-size 64 --optimizer adam --lr 0.002 --weight-decay 0
run resnet20 cifar10-jpeg --epochs 30 --batch-size 128 --lr 0.1 --weight-decay 0.0005 --augment
run vit cifar10-jpeg --epochs 30 --batch-size 128 --optimizer adam --lr 0.001 --weight-decay 0 --augment
run mobilenetv2 cifar10-jpeg --epochs 10 --batch-size 128 --lr 0.1 --weight-decay 0.00004 --augment
# Hashemi Table V's widened ALEX (the configs hashemi_alex_plus{,_plus}.yaml): ALEX's own recipe
run alex+ cifar10-jpeg --epochs 30 --batch-size 128 --lr 0.05 --augment
run alex++ cifar10-jpeg --epochs 30 --batch-size 128 --lr 0.05 --augment

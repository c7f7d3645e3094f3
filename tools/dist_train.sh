#!/usr/bin/env bash
# Usage: tools/dist_train.sh CONFIG NPROC [train.py args...]   (MMDetection's, on torchrun)
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT. On CPU add
#   --cfg-options env_cfg.dist_cfg.backend=gloo
# A rank that dies ends the job: torchrun stops the other ranks within seconds and exits non-zero,
# naming the rank (docs/reliable_runs.md); --max-restarts=0 whatever PET_MAX_RESTARTS says, as a
# restart would run train.py from its first iteration again (continue with --resume instead).
CONFIG=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}

PYTHONPATH="$(dirname $0)/..":$PYTHONPATH \
$PYTHON -m torch.distributed.run \
    --nnodes=$NNODES \
    --node_rank=$NODE_RANK \
    --master_addr=$MASTER_ADDR \
    --nproc_per_node=$GPUS \
    --max-restarts=0 \
    --master_port=$PORT \
    $(dirname "$0")/train.py \
    $CONFIG \
    --launcher pytorch ${@:3}

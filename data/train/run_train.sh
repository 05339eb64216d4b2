#!/bin/sh
# Exact retrain command for data/monet-tiny (model v2; run from the repository root). 87 min on one
# CPU thread (the Debian torch build is slower with two); needs `scripts/ensure-deps.sh train`.
# The tokenizer is v1's and is not retrained: `build_corpus.py` without --v2 followed by
# `sh data/train/train_tokenizer.sh` rebuilds it byte for byte.
set -e
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=4294967296 MALLOC_TOP_PAD_=536870912
/usr/bin/python3 data/train/build_corpus.py --seed 1234 --v2
/usr/bin/python3 data/train/train.py --seed 1234 --steps 3200 --batch 16 --ctx 256 --lr 3e-3 \
  --warmup 100 --wd 0.1 --aux 1e-2 --threads 1 --eval-every 200 --max-minutes 110 --mix balanced \
  --d 128 --layers 4 --heads 4 --experts 64 --moe-heads 4 --moe-dim 16 --topk 4 --groups 2
/usr/bin/python3 data/train/evaluate.py

#!/bin/sh
# Exact retrain command for data/monet-tiny (run from the repository root). ~1 h on one CPU thread.
set -e
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=4294967296 MALLOC_TOP_PAD_=536870912
/usr/bin/python3 data/train/build_corpus.py --seed 1234
sh data/train/train_tokenizer.sh
/usr/bin/python3 data/train/train.py --seed 1234 --steps 2400 --batch 16 --ctx 256 --lr 3e-3 \
  --warmup 100 --wd 0.1 --aux 1e-3 --threads 1 --eval-every 100 --max-minutes 66 \
  --d 128 --layers 4 --heads 4 --experts 32 --moe-heads 4 --moe-dim 16 --topk 4 --groups 2
/usr/bin/python3 data/train/evaluate.py

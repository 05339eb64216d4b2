#!/bin/sh
# Train the monet-tiny SentencePiece tokenizer (LLaMA-style BPE, byte fallback, identity normalization).
# Usage: sh data/train/train_tokenizer.sh [WORK] [OUTDIR]
set -e
WORK=${1:-data/train/work}
OUT=${2:-data/monet-tiny}
spm_train --input="$WORK/spm_input.txt" --model_prefix="$WORK/tokenizer" \
  --model_type=bpe --vocab_size=4096 --character_coverage=0.9995 \
  --byte_fallback=true --normalization_rule_name=identity --add_dummy_prefix=true \
  --remove_extra_whitespaces=false --allow_whitespace_only_pieces=true --split_digits=true \
  --unk_id=0 --bos_id=1 --eos_id=2 --pad_id=-1 \
  --input_sentence_size=2000000 --shuffle_input_sentence=true --seed_sentencepiece_size=1000000 \
  --max_sentence_length=8192 --num_threads=1 --random_seed=1234 \
  --minloglevel=1
cp "$WORK/tokenizer.model" "$OUT/tokenizer.model"

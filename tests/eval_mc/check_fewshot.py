"""tests/eval_mc/check_fewshot.py — few-shot prompts vs lm-evaluation-harness.

Rebuilds, from the staged files, what lm-eval v0.4.9.2 puts before each
document: ContextSampler.get_context with the task's sampler rnd =
random.Random(1234) (fewshot_random_seed; one generator per task, advanced
document by document in evaluation order), n_samples = k + 1 when the YAML's
fewshot_split == test_split (both None: social_iqa, piqa), else k (arc_easy,
openbookqa have test_split "test"); `[x for x in fewshotex if x != doc][:k]`;
each shot is doc_to_text + target_delimiter " " + gold choice + "\\n\\n".
Templates from the YAMLs: arc "Question: {{question}}\\nAnswer:", openbookqa
question_stem, social_iqa "Q: {{context}} {{question}}\\nA:", piqa
"Question: {{goal}}\\nAnswer:". Pools: the staged train splits; piqa has none
staged, so its pool is the validation split itself (fewshot_docs() falls back
to it), as monet-probe does. Compares test_fewshot's output byte for byte.
usage: check_fewshot.py TEST_FEWSHOT DATA_DIR"""
import json
import os
import random
import subprocess
import sys


def jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


def labels(path):
    with open(path) as f:
        return [int(l) for l in f if l.strip()]


def arc_docs(path):
    out = []
    for o in jsonl(path):
        q = o["question"]
        texts = [c["text"] for c in q["choices"]]
        labs = [c["label"] for c in q["choices"]]
        out.append({"text": "Question: " + q["stem"] + "\nAnswer:", "choices": texts,
                    "gold": labs.index(o["answerKey"].lstrip())})
    return out


def obqa_docs(path):
    out = []
    for o in jsonl(path):
        q = o["question"]
        labs = [c["label"] for c in q["choices"]]
        out.append({"text": q["stem"], "choices": [c["text"] for c in q["choices"]],
                    "gold": labs.index(o["answerKey"].lstrip())})
    return out


def siqa_docs(path, lab):
    return [{"text": "Q: " + o["context"] + " " + o["question"] + "\nA:",
             "choices": [o["answerA"], o["answerB"], o["answerC"]], "gold": l - 1}
            for o, l in zip(jsonl(path), labels(lab))]


def piqa_docs(path, lab):
    return [{"text": "Question: " + o["goal"] + "\nAnswer:", "choices": [o["sol1"], o["sol2"]], "gold": l}
            for o, l in zip(jsonl(path), labels(lab))]


def harness(eval_docs, pool, k, extra, n):
    rnd = random.Random(1234)
    out = []
    for doc in eval_docs[:n]:
        fewshotex = rnd.sample(pool, k + 1 if extra else k)
        selected = [x for x in fewshotex if x is not doc and x != doc][:k]
        ctx = "".join(x["text"] + " " + x["choices"][x["gold"]] + "\n\n" for x in selected)
        out.append(ctx + doc["text"])
    return out


def main():
    bin_, data = sys.argv[1], sys.argv[2]
    d = lambda *p: os.path.join(data, *p)
    piqa_val = piqa_docs(d("piqa", "valid.jsonl"), d("piqa", "valid-labels.lst"))
    cases = [
        ("arc_easy", 5, 12, arc_docs(d("arc", "ARC-Easy-Test.jsonl")), arc_docs(d("arc", "ARC-Easy-Train.jsonl")), False),
        ("arc_challenge", 25, 3, arc_docs(d("arc", "ARC-Challenge-Test.jsonl")),
         arc_docs(d("arc", "ARC-Challenge-Train.jsonl")), False),
        ("openbookqa", 3, 10, obqa_docs(d("openbookqa", "test.jsonl")), obqa_docs(d("openbookqa", "train.jsonl")), False),
        ("siqa", 2, 10, siqa_docs(d("siqa", "dev.jsonl"), d("siqa", "dev-labels.lst")),
         siqa_docs(d("siqa", "train.jsonl"), d("siqa", "train-labels.lst")), True),
        ("piqa", 2, 10, piqa_val, piqa_val, True),
    ]
    bad = 0
    for task, k, n, ev, pool, extra in cases:
        want = harness(ev, pool, k, extra, n)
        p = subprocess.run([bin_, data, task, str(k), str(n)], capture_output=True, text=True)
        if p.returncode != 0:
            print(f"FAIL {task}: test_fewshot exit {p.returncode}: {p.stderr}")
            bad += 1
            continue
        got = [json.loads(l) for l in p.stdout.splitlines()]
        if len(got) != len(want):
            print(f"FAIL {task}: {len(got)} contexts, want {len(want)}")
            bad += 1
            continue
        for i, (g, w) in enumerate(zip(got, want)):
            if g != w:
                print(f"FAIL {task} doc {i} ({k}-shot):\n  got:  {g[:400]!r}\n  want: {w[:400]!r}")
                bad += 1
                break
        else:
            print(f"{task}: {n} documents {k}-shot identical to the harness's contexts")
    sys.exit(1 if bad else 0)


main()

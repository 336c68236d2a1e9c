#!/usr/bin/env python3
"""Scores answers to the local teacher's task (spell the last number in the
prompt digit by digit) against the true spelling, for the demo's table.

  score_spelling.py --prompts test_prompts.jsonl [--teacher URL] \
      [--student NAME=ANSWERS.jsonl ...]

ANSWERS.jsonl is `distilld generate DIR --file PROMPTS` output (one
{"id", "answer"} per line). With --teacher, the teacher (the local server,
with whatever noise it was started with) answers the same prompts. Prints
one row per model: exact-match count and share, and the share of the
teacher's exact match each student reached.
"""
import argparse
import json
import re
import sys
import urllib.request

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def truth(prompt):
    numbers = re.findall(r"[0-9]+", prompt)
    return " ".join(WORDS[int(d)] for d in numbers[-1]) if numbers else None


def ask_teacher(url, system, prompt):
    body = {"model": "teacher-small", "temperature": 0, "max_tokens": 64,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": prompt}]}
    for _ in range(20):  # the demo's teacher injects 429s and 500s
        request = urllib.request.Request(url.rstrip("/") + "/chat/completions", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.load(response)["choices"][0]["message"]["content"]
        except (OSError, ValueError, KeyError):
            continue
    raise RuntimeError("the teacher did not answer: " + prompt)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", required=True)
    parser.add_argument("--teacher")
    parser.add_argument("--system", default="You spell numbers digit by digit.")
    parser.add_argument("--student", action="append", default=[], metavar="NAME=ANSWERS.jsonl")
    args = parser.parse_args()

    prompts = [json.loads(line) for line in open(args.prompts) if line.strip()]
    expected = {p["id"]: truth(p["prompt"]) for p in prompts}
    rows = []
    if args.teacher:
        answers = {p["id"]: ask_teacher(args.teacher, args.system, p["prompt"]) for p in prompts}
        rows.append(("teacher", sum(answers[i].strip() == expected[i] for i in expected)))
    for spec in args.student:
        name, _, path = spec.partition("=")
        answers = {a["id"]: a["answer"] for a in map(json.loads, open(path)) if "id" in a}
        missing = set(expected) - set(answers)
        if missing:
            sys.exit(f"{path}: no answer for {len(missing)} prompts, e.g. {sorted(missing)[0]}")
        rows.append((name, sum(answers[i].strip() == expected[i] for i in expected)))

    teacher = rows[0][1] if args.teacher else None
    print(f"{'model':<28}{'exact match':>14}{'share':>9}{'of teacher':>12}")
    for name, right in rows:
        share = f"{100 * right / teacher:.1f}%" if teacher and name != "teacher" else ""
        print(f"{name:<28}{f'{right}/{len(expected)}':>14}{100 * right / len(expected):>8.1f}%{share:>12}")


if __name__ == "__main__":
    main()

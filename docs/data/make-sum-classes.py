#!/usr/bin/python3
"""A small sequence-classification set for the README: is the sum of a sequence low, middling or high?

Each row is 3..12 numbers in (-1, 1) (x [B, T, 1], zero past the row's length, with "lengths");
its class at every step is that of the whole row's sum s: 0 if s < -1, 1 if -1 <= s <= 1, 2 if
s > 1 (y [B, T] class indices, as nn.CrossEntropyLoss takes them), so a classifier reads it at
the row's last valid step (--loss-over last) or from h_n (--head final).  Writes
sum-train.json (5 windows: four of 32 rows and a partial last batch of 20) and sum-test.json
(2 windows: 32 rows and 18).  Deterministic (seeded).

    python3 docs/data/make-sum-classes.py
"""
import json
import os
import random

T = 12
rng = random.Random(22)


def window(B):
    x, y, lengths = [], [], []
    for _ in range(B):
        n = rng.randint(3, T)
        row = [round(rng.uniform(-1, 1), 3) for _ in range(n)]
        s = sum(row)
        c = 0 if s < -1 else 2 if s > 1 else 1
        x += row + [0.0] * (T - n)
        y += [c] * T
        lengths.append(n)
    return {"x": {"shape": [B, T, 1], "data": x}, "y": {"shape": [B, T], "data": y}, "lengths": {"shape": [B], "data": lengths}}


here = os.path.dirname(os.path.abspath(__file__))
for name, sizes in (("sum-train.json", [32, 32, 32, 32, 20]), ("sum-test.json", [32, 18])):
    with open(os.path.join(here, name), "w") as f:
        json.dump({"windows": [window(B) for B in sizes]}, f, separators=(",", ":"))
        f.write("\n")

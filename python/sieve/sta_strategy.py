"""STA's tuned mask strategies as sieve mask-search files.

FastVideo keeps a tuned STA strategy as JSON: {"STEP_LAYER_HEAD": [t, y, x]},
each head's window as kernel sizes in tiles, the first skip_time_steps (12)
steps given the full-attention window (STA_configuration.py,
select_best_mask_strategy and configure_sta's STA_inference, on FastVideo's
archived branch sta_do_not_delete at e4de776). sieve's sta pattern runs a
mask-search file instead (`-p strategy=FILE`), which names the pattern, the
shape and the candidate windows, so that a plan can refuse a file made for
something else. `convert` writes one from STA's JSON: the steps from
dense_steps on, each window named as the pattern's class for it ("3x3x3"
for [3, 3, 3]), which must be one of the candidates.

    python3 -m sieve.sta_strategy IN.json OUT --shape T,Y,X,HEADS[,TEXT[,AFTER]]
        [--candidates "3,1,10 1,5,7 ..."] [--dense-steps 12]

The candidates and dense steps must be the pattern's (`-p candidates`,
`-p dense_steps`); the defaults are sta.lua's.
"""
import argparse
import json
import sys

MAGIC = "sieve-mask-search 1"  # runtime/rt_strategy.h
CANDIDATES = "3,1,10 1,5,7 3,3,3 1,6,5 1,3,10 3,6,1"  # patterns/sta.lua


def class_names(candidates):
    """sta.lua's class names, in its order: "3,1,10 1,5,7" -> ["3x1x10", "1x5x7"]."""
    names = []
    for word in candidates.replace(";", " ").split():
        sizes = word.split(",")
        if len(sizes) != 3 or not all(s.isdigit() and int(s) >= 1 for s in sizes):
            raise ValueError("candidates: %r is not t,y,x kernel sizes in tiles" % word)
        names.append("x".join(str(int(s)) for s in sizes))
    if not names or len(set(names)) != len(names):
        raise ValueError("candidates: name at least one window, each once")
    return names


def convert(strategy, frames, height, width, heads, text=0, text_after=False, candidates=CANDIDATES,
            dense_steps=12):
    """The text of a mask-search file holding STA's strategy (a dict as
    json.load gives it) for that shape, from dense_steps on."""
    names = class_names(candidates)
    at = {}
    for key, window in strategy.items():
        parts = key.split("_")
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            raise ValueError("strategy: key %r is not STEP_LAYER_HEAD" % key)
        step, layer, head = (int(p) for p in parts)
        if head >= heads:
            raise ValueError("strategy: key %r names head %d of %d" % (key, head, heads))
        if step < dense_steps:
            continue  # STA's full-attention steps: the pattern's dense warm-up
        if not isinstance(window, list) or len(window) != 3 or not all(isinstance(w, int) for w in window):
            raise ValueError("strategy: %r is %r, not [t, y, x]" % (key, window))
        name = "x".join(str(w) for w in window)
        if name not in names:
            raise ValueError("strategy: %r chose window %s, which is not among the candidates %s"
                             % (key, name, " ".join(names)))
        at.setdefault((step, layer), [None] * heads)[head] = name
    if not at:
        raise ValueError("strategy: no entry at step %d or later" % dense_steps)
    lines = ["# sieve mask search, converted from an STA mask strategy (FastVideo JSON)", MAGIC, "pattern sta",
             "shape T%d Y%d X%d text%d after%d heads%d" % (frames, height, width, text, int(bool(text_after)), heads),
             "classes " + " ".join(names), "calls 1"]
    for (step, layer), chosen in sorted(at.items()):
        missing = [h for h, c in enumerate(chosen) if c is None]
        if missing:
            raise ValueError("strategy: step %d layer %d has no window for heads %s" % (step, layer, missing))
        lines.append("at %d %d %s" % (step, layer, " ".join(chosen)))
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description="STA mask strategy (JSON) -> sieve mask-search file")
    ap.add_argument("json")
    ap.add_argument("out")
    ap.add_argument("--shape", required=True, help="T,Y,X,HEADS[,TEXT[,AFTER]]: latent frames, rows, columns, "
                    "heads, text tokens, 1 if the text follows the video")
    ap.add_argument("--candidates", default=CANDIDATES)
    ap.add_argument("--dense-steps", type=int, default=12)
    a = ap.parse_args(argv)
    dims = [int(x) for x in a.shape.split(",")]
    if len(dims) < 4 or len(dims) > 6:
        ap.error("--shape takes T,Y,X,HEADS[,TEXT[,AFTER]]")
    dims += [0] * (6 - len(dims))
    with open(a.json) as f:
        strategy = json.load(f)
    try:
        text = convert(strategy, *dims[:4], text=dims[4], text_after=bool(dims[5]), candidates=a.candidates,
                       dense_steps=a.dense_steps)
    except ValueError as e:
        print("sta_strategy: %s: %s" % (a.json, e), file=sys.stderr)
        return 1
    with open(a.out, "w") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

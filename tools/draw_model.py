"""Draw the UnLoc model as it runs: images/unloc_model.png, the figure the book opens its tour with.

    python tools/draw_model.py [--out images/unloc_model.png]

Every number on the figure is computed here: the shipped `tiny-mr` model reads the sample video syn_11 (frames shown
on the left) with the query "a red circle moves up"; the pyramid cells are coloured by the relevancy the model gives
each anchor, and the timeline on the right is its top segment against the ground truth.
"""
import argparse
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle

from unloc_nb.data import load_sample_ground_truth, read_video, sample_path
from unloc_nb.postprocess import postprocess
from unloc_nb.train import load_checkpoint

QUERY, VIDEO = "a red circle moves up", 11


def run_model():
    "The shipped moment-retrieval model on the sample video: clip, per-level relevancy, top segment, ground truth."
    model, _ = load_checkpoint("tiny-mr")
    clip = read_video(sample_path(f"videos/syn_{VIDEO:02d}.mp4"), model.config.num_frames, model.config.image_size)
    with torch.no_grad(): out = model.eval()(clip.frames[None], [QUERY], task="mr")
    pred = postprocess(out, torch.tensor([clip.unit_seconds]), torch.tensor([clip.duration]), task="mr")[0]
    truth = next(e for e in load_sample_ground_truth()[VIDEO].events if e.caption == QUERY)
    relevancy = [torch.sigmoid(l[0, 0]) for l in out.logits]  # L levels of (N_l,)
    return model, clip, relevancy, pred["segments"][0].tolist(), (truth.start, truth.end)


def box(ax, x, y, w, h, text, color):
    "A rounded box with centred text, in axes coordinates."
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.01", fc=color, ec="0.3", lw=1))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=9)


def arrow(ax, a, b):
    ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=12, color="0.3", lw=1.2))


def draw(out: Path) -> Path:
    model, clip, relevancy, (start, end), (t_start, t_end) = run_model()
    n, width = model.config.num_frames, model.config.proj_dim
    fig = plt.figure(figsize=(15, 6.2))
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set(xlim=(0, 1), ylim=(0, 1))
    ax.axis("off")
    shown = range(0, n, n // 8)  # 8 of the N frames as thumbnails
    for k, i in enumerate(shown):
        img = fig.add_axes([0.01 + 0.028 * k, 0.62, 0.026, 0.062])
        img.imshow(clip.frames[i].permute(1, 2, 0).numpy())
        img.axis("off")
    ax.text(0.12, 0.71, f"video: N = {n} frames sampled over {clip.duration:.0f} s", ha="center", fontsize=9)
    ax.text(0.12, 0.26, f'text: "{QUERY}"', ha="center", fontsize=9, style="italic")
    box(ax, 0.04, 0.44, 0.16, 0.1, "image tower (CLIP ViT)\none token per frame: (B, N, D)", "#dbe9f6")
    box(ax, 0.04, 0.1, 0.16, 0.1, "text tower (CLIP)\none token per text: (K, D)", "#fde2c8")
    arrow(ax, (0.12, 0.61), (0.12, 0.545))
    arrow(ax, (0.12, 0.25), (0.12, 0.205))
    box(ax, 0.27, 0.27, 0.16, 0.2, f"fusion transformer\nN frame tokens + 1 text token\nS = N + 1 per pair: (P, S, D)"
        f"\nD = {width}", "#e3f1df")
    arrow(ax, (0.2, 0.49), (0.27, 0.42))
    arrow(ax, (0.2, 0.15), (0.27, 0.32))
    ax.text(0.6, 0.93, "feature pyramid: L levels, N_l = N / 2^l anchors\n(colour: the relevancy the model gives each, "
            "yellow = its highest)", ha="center", fontsize=9)
    x0, span = 0.5, 0.2
    top = max(float(r.max()) for r in relevancy)
    ax.add_patch(Rectangle((x0 + span * t_start / clip.duration, 0.865), span * (t_end - t_start) / clip.duration, 0.02,
                           fc="white", ec="k", hatch="////"))
    ax.text(x0 + span + 0.005, 0.875, "true moment", va="center", fontsize=8)
    for level, rel in enumerate(relevancy):
        y, cells = 0.78 - 0.16 * level, len(rel)
        for i, r in enumerate(rel.tolist()):
            colour = plt.cm.viridis(r / top)
            ax.add_patch(Rectangle((x0 + span * i / cells, y), span / cells, 0.08, fc=colour, ec="white"))
        ax.text(x0 - 0.01, y + 0.04, f"l = {level}\nN_l = {cells}", ha="right", va="center", fontsize=8)
        arrow(ax, (0.43, 0.37), (x0 - 0.045, y + 0.04))
    box(ax, 0.5, 0.1, 0.09, 0.12, "relevancy head\nscore per anchor", "#f3e0f3")
    box(ax, 0.61, 0.1, 0.09, 0.12, "boundary head\ndistances to\nstart and end", "#f3e0f3")
    arrow(ax, (0.6, 0.46), (0.6, 0.225))
    box(ax, 0.74, 0.27, 0.1, 0.14, "decode to seconds\n+ Soft-NMS\n(A candidates\nper pair)", "#eeeeee")
    arrow(ax, (0.7, 0.2), (0.74, 0.3))
    tl = fig.add_axes([0.87, 0.3, 0.12, 0.12])
    tl.barh(1, end - start, left=start, color="tab:green", label=f"predicted {start:.1f}-{end:.1f} s")
    tl.barh(0, t_end - t_start, left=t_start, color="white", ec="k", hatch="//", label=f"true {t_start}-{t_end} s")
    tl.set(xlim=(0, clip.duration), yticks=[], xlabel="seconds")
    tl.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, 2.1))
    arrow(ax, (0.84, 0.34), (0.87, 0.36))
    ax.text(0.01, 0.95, "UnLoc (Yan et al., ICCV 2023) on one query:\nthe shipped tiny model, run while drawing",
            fontsize=12, va="center")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "images/unloc_model.png")
    print(draw(parser.parse_args().out))

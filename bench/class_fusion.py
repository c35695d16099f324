"""Batched versus looped class fusion: the fusion + pyramid + heads of UnLoc for one video and C class names.

UnLoc fuses every video with every class name (TAL, action segmentation). `UnLoc.fuse` runs the B x C pairs as one
batch of sequences (chunks of `pair_chunk`); the alternative is a Python loop that fuses one class at a time. This
script times both on CPU for the tiny and the base fusion widths (towers excluded: random frame and text tokens), a few
runs each, and prints the per-run times and the looped / batched ratio.

usage: python bench/class_fusion.py [--classes 200] [--frames 128] [--videos 1] [--runs 3] [--sizes tiny base]
"""
import argparse, os, platform, statistics, time
import torch
from unloc_nb.model import UnLoc, UnLocConfig


def time_once(fn) -> float:
    start = time.perf_counter(); fn(); return time.perf_counter() - start


def bench(size: str, classes: int, frames: int, videos: int, runs: int, threads: int) -> list[dict]:
    torch.manual_seed(0)
    config = UnLocConfig.preset(size, num_frames=frames)
    model = UnLoc(config, towers=False).eval()  # fusion + pyramid + heads only
    video_tokens = torch.randn(videos, frames, config.proj_dim)  # (B, N, D)
    text_tokens = torch.randn(classes, config.proj_dim)  # (C, D)
    batched = lambda: model.fuse(video_tokens, text_tokens, "tal")
    looped = lambda: [model.fuse(video_tokens, text_tokens[c:c + 1], "tal") for c in range(classes)]
    with torch.inference_mode():
        out_batched, out_looped = batched(), looped()  # warm-up, and a check that both agree
        diff = max(float((out_batched.logits[l] - torch.cat([o.logits[l] for o in out_looped], 1)).abs().max())
                   for l in range(config.num_levels))
        rows = []
        for run in range(runs):
            t_batched, t_looped = time_once(batched), time_once(looped)
            rows.append(dict(size=size, width=config.proj_dim, layers=config.fusion_layers, chunk=config.pair_chunk,
                             run=run, batched=t_batched, looped=t_looped, ratio=t_looped / t_batched, diff=diff))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=200)
    parser.add_argument("--frames", type=int, default=128)
    parser.add_argument("--videos", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--sizes", nargs="+", default=["tiny", "base"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {args.threads} threads, "
          f"{os.cpu_count()} CPUs | {args.videos} video(s) x {args.classes} classes, N = {args.frames} frames")
    print(f"{'size':5s} {'D':>4s} {'layers':>6s} {'chunk':>5s} {'run':>3s} {'batched s':>10s} {'looped s':>9s} "
          f"{'looped/batched':>14s} {'max|diff|':>10s}")
    for size in args.sizes:
        rows = bench(size, args.classes, args.frames, args.videos, args.runs, args.threads)
        for r in rows:
            print(f"{r['size']:5s} {r['width']:4d} {r['layers']:6d} {r['chunk']:5d} {r['run']:3d} {r['batched']:10.3f} "
                  f"{r['looped']:9.3f} {r['ratio']:14.2f} {r['diff']:10.2e}")
        ratios = [r["ratio"] for r in rows]
        print(f"{size:5s} median ratio {statistics.median(ratios):.2f} (min {min(ratios):.2f}, max {max(ratios):.2f}); "
              f"pairs/s batched {args.videos * args.classes / statistics.median(r['batched'] for r in rows):.0f}, "
              f"looped {args.videos * args.classes / statistics.median(r['looped'] for r in rows):.0f}")


if __name__ == "__main__":
    main()

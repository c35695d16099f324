"""Speed and memory of UnLoc-B on one GPU: what the paper's model costs to train, measured, not guessed.

1. the ViT-B/16 image tower alone: frames per second, forward (inference) and forward + backward (training it);
2. a whole UnLoc-B training step (`train_step`: image and text towers, fusion, pyramid, heads, loss, clipped SGD):
   steps and videos per second, moment retrieval, 128 frames per video;
3. the peak GPU memory of each, and the model FLOP utilisation (MFU): FLOPs counted by PyTorch's FlopCounterMode
   on one step, divided by the measured time and the GPU's dense bf16 peak.

Random weights (no download), random frames: speed does not depend on either.

    python bench/gpu_throughput.py                       # bf16 autocast on cuda; --precision fp32 to compare
    python bench/gpu_throughput.py --grad-checkpointing  # the image tower's blocks recomputed in backward
    python bench/gpu_throughput.py --smoke               # the tiny model on CPU: checks the code paths in seconds

It prints one line per measurement and, last, one JSON object with every number (also written to --out).
"""
from __future__ import annotations
import argparse, json, math, sys, time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from unloc_nb.data import Batch
from unloc_nb.model import UnLoc, UnLocConfig
from unloc_nb.train import TrainConfig, UnLocLoss, amp_dtype, make_optimizer, set_grad_checkpointing, train_step

PEAK_BF16_TFLOPS = {  # dense (no sparsity) bf16 tensor-core peaks from the vendors' data sheets
    "H200": 989.5, "H100 SXM": 989.5, "H100 PCIe": 756.0, "H100 NVL": 835.0, "H100": 989.5, "A100": 312.0,
    "L40S": 362.0, "L4": 121.0, "A10G": 70.0, "A10": 125.0, "RTX 4090": 165.2}


MEASURED = ("tower_forward", "tower_forward_backward", "train_step")


def peak_tflops(name: str) -> float | None:
    "The dense bf16 peak of a GPU named `name` (the longest matching key of PEAK_BF16_TFLOPS), None if unknown."
    found = [key for key in PEAK_BF16_TFLOPS if key.lower() in name.lower()]
    return PEAK_BF16_TFLOPS[max(found, key=len)] if found else None


def synchronize(device: torch.device):
    if device.type == "cuda": torch.cuda.synchronize(device)


def timed(run, device: torch.device, warmup: int, iters: int) -> tuple[float, float]:
    "(seconds per call of `run()`, peak memory in GiB) after `warmup` untimed calls."
    for _ in range(warmup): run()
    synchronize(device)
    if device.type == "cuda": torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(iters): run()
    synchronize(device)
    seconds = (time.perf_counter() - start) / iters
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    return seconds, peak


def flops_of(run, model: UnLoc) -> int:
    "Model FLOPs of one `run()` as FlopCounterMode counts them (matmuls, convolutions, attention), no recompute."
    checkpointing = model.video_tower.transformer.grad_checkpointing
    set_grad_checkpointing(model, False)  # MFU counts the model's FLOPs, not those gradient checkpointing repeats
    try:
        with FlopCounterMode(display=False) as counter: run()
    finally: set_grad_checkpointing(model, checkpointing)
    return counter.get_total_flops()


def random_batch(config: UnLocConfig, videos: int, device: torch.device) -> Batch:
    "A moment-retrieval batch of random frames and one caption and segment per video."
    frames = torch.randint(0, 256, (videos, config.num_frames, 3, config.image_size, config.image_size),
                           dtype=torch.uint8, device=device)  # (B, N, 3, S, S)
    return Batch(frames, torch.ones(videos, config.num_frames, dtype=torch.bool, device=device),
                 torch.full((videos,), 0.25, device=device), torch.full((videos,), 32.0, device=device),
                 [f"a person does thing number {b}" for b in range(videos)],
                 [torch.tensor([[4.0, 12.0]], device=device) for _ in range(videos)],
                 [torch.zeros(1, dtype=torch.long, device=device) for _ in range(videos)], None,
                 [f"v{b}" for b in range(videos)], "mr")


def measure(preset: str, device: torch.device, precision: str, videos: int, tower_videos: int,
            grad_checkpointing: bool, warmup: int, iters: int) -> dict:
    "Every number of this bench for one model size on one device."
    amp = amp_dtype(precision, device)
    autocast = lambda: torch.autocast(device.type, dtype=amp, enabled=amp is not None)
    config = UnLocConfig.preset(preset, pretrained=None, freeze_video=False, freeze_text=True)  # Charades-STA setting
    model = set_grad_checkpointing(UnLoc(config).to(device), grad_checkpointing)
    tower, size = model.video_tower, config.image_size
    clips = torch.randint(0, 256, (tower_videos, config.num_frames, 3, size, size), dtype=torch.uint8, device=device)
    frames = tower_videos * config.num_frames  # images per image-tower call
    results = {"preset": preset, "clip_arch": config.clip_arch, "num_frames": config.num_frames, "precision": precision,
               "autocast": str(amp), "grad_checkpointing": grad_checkpointing, "videos_per_step": videos,
               "frames_per_tower_call": frames}

    def tower_forward():
        with torch.no_grad(), autocast(): tower.encode_frames(clips)  # (V, N, width)

    def tower_train():
        with autocast(): tokens = tower.encode_frames(clips)  # (V, N, width)
        tokens.float().square().mean().backward()

    for name, run in [("tower_forward", tower_forward), ("tower_forward_backward", tower_train)]:
        seconds, peak = timed(run, device, warmup, iters)
        flops = flops_of(run, model)
        results[name] = {"frames_per_s": frames / seconds, "seconds": seconds, "peak_gib": peak,
                         "tflops_per_call": flops / 1e12, "achieved_tflops": flops / seconds / 1e12}
        print(f"{name:24s} {frames / seconds:10.1f} frames/s  peak {peak:6.2f} GiB  "
              f"{flops / seconds / 1e12:8.2f} TFLOP/s", flush=True)
    model.zero_grad(set_to_none=True)

    batch = random_batch(config, videos, device)
    optimizer = make_optimizer(model, TrainConfig(preset=preset, lr=0.01, model={"pretrained": None}))
    scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)
    step = UnLocLoss(model, amp)
    run = lambda: train_step(step, batch, optimizer, 1.0, scaler)
    seconds, peak = timed(run, device, warmup, iters)
    flops = flops_of(lambda: step(batch)["loss"].backward(), model)  # forward + backward; the SGD update is noise
    results["train_step"] = {"steps_per_s": 1 / seconds, "videos_per_s": videos / seconds,
                             "frames_per_s": videos * config.num_frames / seconds, "seconds": seconds,
                             "peak_gib": peak, "tflops_per_step": flops / 1e12,
                             "achieved_tflops": flops / seconds / 1e12}
    print(f"{'train_step':24s} {1 / seconds:10.2f} steps/s ({videos} videos x {config.num_frames} frames)  "
          f"peak {peak:6.2f} GiB  {flops / seconds / 1e12:8.2f} TFLOP/s", flush=True)
    return results


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="base", help="UnLocConfig preset (base = UnLoc-B, ViT-B/16)")
    parser.add_argument("--precision", default="bf16", choices=["bf16", "fp16", "fp32", "auto"])
    parser.add_argument("--videos", type=int, default=8, help="videos per training step")
    parser.add_argument("--tower-videos", type=int, default=2, help="videos (of N frames) per image-tower call")
    parser.add_argument("--grad-checkpointing", action="store_true")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--peak-tflops", type=float, default=None, help="the GPU's dense bf16 peak (default: a table)")
    parser.add_argument("--smoke", action="store_true", help="tiny model, CPU, 1 iteration: checks the code paths")
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    if args.smoke:
        args.preset, args.videos, args.tower_videos, args.warmup, args.iters = "tiny", 2, 1, 1, 1
        device = torch.device("cpu")
        if args.precision == "fp16": args.precision = "bf16"
    else:
        if not torch.cuda.is_available():
            parser.error("no CUDA device here: this bench measures a GPU (--smoke runs its code on CPU)")
        device = torch.device("cuda")
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(0)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    peak = args.peak_tflops or (peak_tflops(gpu) if device.type == "cuda" else None)
    print(f"{gpu}, torch {torch.__version__}, bf16 peak {peak} TFLOP/s", flush=True)
    results = {"device": gpu, "torch": torch.__version__, "peak_bf16_tflops": peak,
               **measure(args.preset, device, args.precision, args.videos, args.tower_videos, args.grad_checkpointing,
                         args.warmup, args.iters)}
    for name in MEASURED:
        results[name]["mfu"] = results[name]["achieved_tflops"] / peak if peak else None
    if peak: print("MFU: " + ", ".join(f"{n} {results[n]['mfu']:.1%}" for n in MEASURED), flush=True)
    if args.out: Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results))
    return results


if __name__ == "__main__":
    main()

"""One training epoch of the main job (tiny model, moment retrieval, frozen image tower), three ways, in one process:

1. no cache: every epoch decodes every video and runs the frozen image tower on its frames;
2. decoded frames kept in memory (`cache=True` on the dataset): every epoch crops and runs the image tower;
3. the frozen tower's features kept in memory (`encode_frames_with`, what `train` does): every epoch trains only
   the projections, fusion, pyramid and heads.

The same model, data, batches and steps in each; the times are of the second epoch (the first fills the caches).

    python bench/epoch_cache.py
"""
import time, warnings

import torch
from torch.utils.data import DataLoader

from unloc_nb.data import collate
from unloc_nb.train import TrainConfig, make_dataset, make_optimizer, train_step
from unloc_nb.model import UnLoc


def epoch_seconds(dataset, model, cfg) -> float:
    "Seconds of the second of two epochs over `dataset`."
    optimizer = make_optimizer(model, cfg)
    times = []
    for _ in range(2):
        torch.manual_seed(0)
        start = time.perf_counter()
        for batch in DataLoader(dataset, batch_size=cfg.batch_size, shuffle=True, collate_fn=collate):
            train_step(model, batch, optimizer, cfg.clip_grad_norm)
        times.append(time.perf_counter() - start)
    return times[-1]


def main():
    warnings.simplefilter("ignore")
    torch.manual_seed(0)
    cfg = TrainConfig()
    model = UnLoc(cfg.model_config())
    encode = lambda frames: model.video_tower.encode_frames(frames[None])[0]
    plain = make_dataset(TrainConfig(cache=False), train=True)
    frames = make_dataset(cfg, train=True)
    features = make_dataset(cfg, train=True)
    features.encode_frames_with(encode)
    seconds = {name: epoch_seconds(ds, model, cfg) for name, ds in
               [("no cache", plain), ("decoded frames cached", frames), ("features cached", features)]}
    for name, s in seconds.items():
        print(f"{name:22s} {s:6.2f} s/epoch  ({seconds['no cache'] / s:.1f}x)")


if __name__ == "__main__":
    main()

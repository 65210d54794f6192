"""Pre-train the VGGish trunk on the synthetic sound events: the stand-in for AudioSet pre-training.

  python -m dtfsal.pretrain_vggish --root DATA --db SYNTH --config tiny --out vggish.safetensors \
      [--epochs 8] [--stride 4] [--threads N]

The spec's audio trunk is VGGish with AudioSet weights, frozen (spec 2.2, 10). No AudioSet weights exist
here, and a trunk trained from scratch *with* the saliency loss learns to flatten its audio (the visual
stream lowers the loss first; the audio then only adds noise). So the demo recipe pre-trains the trunk on
the task AudioSet pre-training stands for, recognising sound events: from each clip's 1.6 s log-mel
window (the model's input, [9, 1, 112, 192]), which of the synthetic sound kinds (tone, noise burst,
speech, chirp; `sounds.txt` of dtfsal.synth) play at the clip's centre frame, as 4 independent
yes/no outputs (a linear head on the trunk's globally pooled features, binary cross-entropy).

Writes the trunk alone as a `vggish` part weight file, for `python -m dtfsal.train --init-vggish`,
which then keeps it frozen as the spec does. Prints per-epoch loss and validation accuracy.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import audio_frontend
from .config import get_config
from .data import read_fold_list, read_wav_16k_mono
from .model.audio import VGGishTrunk
from .weights import save_weights

SOUND_KINDS = ("tone", "noise", "speech", "chirp")


def _video_windows(job: tuple[Path, str, str, float, int, int]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    root, db, name, fps, frames, stride = job
    labels_path = root / "annotations" / db / name / "sounds.txt"
    if not labels_path.is_file():
        raise FileNotFoundError(f"{labels_path}: no sound labels (generate the data with this dtfsal.synth)")
    kinds = labels_path.read_text().splitlines()
    audio = read_wav_16k_mono(root / "video_audio" / db / name / f"{name}.wav")
    xs, ys = [], []
    for f in range(0, frames, stride):
        xs.append(torch.from_numpy(audio_frontend.clip_audio(audio, f / fps)))
        ys.append(torch.tensor([float(k in kinds[f].split()) for k in SOUND_KINDS]))
    return xs, ys


def sound_windows(root: Path, db: str, split: str, stride: int, jobs: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Every `stride`-th frame's audio window [N, 9, 1, 112, 192] and its sound kinds [N, 4] (0/1)."""
    work = [(root, db, v.name, v.fps, v.frames, stride) for v in read_fold_list(root, db, split)]
    if jobs > 1:
        import multiprocessing

        # one torch thread per worker: a forked child must not use the parent's OpenMP pool (it hangs)
        with multiprocessing.get_context("fork").Pool(jobs, initializer=torch.set_num_threads, initargs=(1,)) as pool:
            parts = pool.map(_video_windows, work)
    else:
        parts = [_video_windows(j) for j in work]
    return torch.stack([x for xs, _ in parts for x in xs]), torch.stack([y for _, ys in parts for y in ys])


class SoundEventNet(nn.Module):
    """The VGGish trunk with a linear multi-label head on its globally pooled features."""

    def __init__(self, cfg) -> None:
        super().__init__()
        self.vggish = VGGishTrunk(cfg)
        self.head = nn.Linear(cfg.audio_dim, len(SOUND_KINDS))
        # He initialisation: VGGish has no normalisation layers, and with PyTorch's default init each of
        # its six conv+ReLU layers shrinks the signal ~2.4x (features ~1e-2 of the input), which stalls
        # learning from scratch
        for m in self.vggish.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.head(self.vggish(audio).mean(dim=(2, 3, 4)))  # [B, C, S, h, w] -> [B, 4] logits


def accuracy(net: SoundEventNet, x: torch.Tensor, y: torch.Tensor, batch: int = 64) -> tuple[float, float]:
    """(exact-match accuracy of the 4 yes/no answers, mean per-kind accuracy)."""
    net.eval()
    with torch.no_grad():
        pred = torch.cat([net(x[i : i + batch]) for i in range(0, len(x), batch)]) > 0
    right = pred == (y > 0.5)
    return float(right.all(dim=1).float().mean()), float(right.float().mean())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dtfsal.pretrain_vggish", description=__doc__.split("\n")[0])
    p.add_argument("--root", required=True)
    p.add_argument("--db", required=True)
    p.add_argument("--train-split", default="train_1")
    p.add_argument("--val-split", default="val_1")
    p.add_argument("--config", default="tiny")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--stride", type=int, default=4, help="frames between training windows")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda, ...)")
    p.add_argument("--jobs", type=int, default=1, help="processes computing the log-mel windows")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    torch.manual_seed(a.seed)
    if a.threads:
        torch.set_num_threads(a.threads)
    cfg = get_config(a.config, "av")
    root = Path(a.root)
    t0 = time.time()
    x, y = (t.to(a.device) for t in sound_windows(root, a.db, a.train_split, a.stride, a.jobs))
    xv, yv = (t.to(a.device) for t in sound_windows(root, a.db, a.val_split, a.stride, a.jobs))
    print(f"{len(x)} training and {len(xv)} validation windows in {time.time() - t0:.0f} s; "
          f"kind frequencies {np.round(y.mean(0).cpu().numpy(), 2).tolist()} {SOUND_KINDS}", flush=True)
    net = SoundEventNet(cfg).to(a.device)
    opt = torch.optim.Adam(net.parameters(), lr=a.lr)
    loss_fn = nn.BCEWithLogitsLoss()
    for epoch in range(1, a.epochs + 1):
        net.train()
        order, total = torch.randperm(len(x)).to(a.device), 0.0
        for i in range(0, len(x), a.batch_size):
            idx = order[i : i + a.batch_size]
            loss = loss_fn(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        exact, per_kind = accuracy(net, xv, yv)
        print(f"epoch {epoch}: loss {total / len(x):.4f}  val exact {exact:.3f}  per-kind {per_kind:.3f}  "
              f"({time.time() - t0:.0f} s)", flush=True)
    state = {f"audio.vggish.{k}": v for k, v in net.vggish.state_dict().items()}
    save_weights(state, cfg, a.out, part="vggish")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Train DTFSal with the KL - CC loss on STAViS-layout data.

  python -m dtfsal.train --root DATA --db DB --config tiny --variant av --epochs 10 --out W.safetensors \
      [--init-mvit mvit.safetensors] [--init-vggish vggish.safetensors] [--init W0.safetensors]

Adam 1e-4, x0.1 every 3 epochs, early stop after 3 epochs without validation improvement (spec 10).
The VGGish trunk stays frozen when it is initialised from AudioSet weights (--init-vggish, the spec's
setting); without them it is trained with the rest (there is nothing to keep).
Writes the best weights (project weight file) and a CSV training curve next to them (<out>.curve.csv).

--freeze-trunk (with --init, a trained model) fine-tunes the rest with the visual trunk (encoder + neck)
frozen: its features, and the frozen VGGish trunk's, are computed once per clip (trunk_cache.py), and an
epoch runs only the rest. Meant for audio twins (`synth --twins`), where the trained part
must learn which object the sound belongs to.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from .config import get_config
from .clip_cache import ClipCache
from .trunk_cache import TrunkCache, trunk_modules
from .data import StavisClips
from .loss import saliency_loss
from .model import DTFSal
from .weights import read_weights, save_weights


def init_from(model: DTFSal, path: str, part: str) -> None:
    """Load a (partial) project weight file into `model`; its config must match the model's."""
    cfg, tensors, _ = read_weights(path, part=part)
    if cfg.to_dict() | {"variant": ""} != model.cfg.to_dict() | {"variant": ""}:
        raise ValueError(f"{path}: config {cfg.name} does not match the model's ({model.cfg.name})")
    missing = set(tensors) - set(model.state_dict())
    if missing:
        raise ValueError(f"{path}: tensors not in this model: {sorted(missing)[:5]}")
    model.load_state_dict(tensors, strict=False)


def run_epoch(model, loader, opt=None, clip_grad: float = 0.0, warmup=None, device: str = "cpu") -> float:
    train = opt is not None
    model.train(train)
    if hasattr(model, "audio"):
        model.audio.vggish.eval()  # frozen trunk
    total, n = 0.0, 0
    with torch.set_grad_enabled(train):
        for batch in loader:
            batch = {k: [x.to(device) for x in v] if isinstance(v, list) else v.to(device, non_blocking=True)
                     for k, v in batch.items()}
            if "neck" in batch:  # frozen trunk (TrunkCache): the audio trunk's output is cached too
                a = model.audio.te(batch["vggish"]) if "vggish" in batch else None
                pred = model.head(batch["neck"], a)
            else:
                pred = model(batch["video"], batch.get("audio"))
            loss = saliency_loss(pred, batch["sal"])
            if train:
                opt.zero_grad()
                loss.backward()
                if clip_grad > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
                if warmup is not None:
                    warmup.step()
                opt.step()
            total += float(loss.detach()) * len(batch["sal"])
            n += len(batch["sal"])
    return total / max(n, 1)


def train(a: argparse.Namespace) -> Path:
    torch.manual_seed(a.seed)
    if a.threads:
        torch.set_num_threads(a.threads)
    cfg = get_config(a.config, a.variant)
    model = DTFSal(cfg)
    if a.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = False  # keep fp32 maths: the engine is checked against fp32
        torch.backends.cudnn.allow_tf32 = False
    if a.freeze_trunk and not a.init:
        raise SystemExit("--freeze-trunk fine-tunes a trained model: give it with --init")
    if a.trunk_cache and not a.freeze_trunk:
        raise SystemExit("--trunk-cache keeps --freeze-trunk's features: add --freeze-trunk")
    if a.freeze_trunk and a.cache:
        raise SystemExit("--freeze-trunk keeps its own cache (trunk features): drop --cache")
    if a.init:
        init_from(model, a.init, "model")
    if a.init_mvit:
        init_from(model, a.init_mvit, "mvit")
    if a.init_vggish and cfg.variant == "av":
        init_from(model, a.init_vggish, "vggish")
    elif cfg.variant == "av":
        for p in model.audio.vggish.parameters():
            p.requires_grad_(True)
    train_set = StavisClips(a.root, a.db, a.train_split, cfg, stride=a.stride)
    val_set = StavisClips(a.root, a.db, a.val_split, cfg, stride=a.stride * 2)
    if a.max_clips:
        train_set.index = train_set.index[: a.max_clips]
        val_set.index = val_set.index[: max(1, a.max_clips // 4)]
    model.to(a.device)
    if a.freeze_trunk:  # trunk features once per clip, batches sliced from them (trunk_cache.py)
        for _, module in trunk_modules(model):  # the AV model's VGGish output is cached too
            for p in module.parameters():
                p.requires_grad_(False)
        t0 = time.time()
        if a.trunk_cache:  # kept on disk under a fingerprint of the trunks and the data
            train_cache, val_cache = (TrunkCache.open(model, s, a.trunk_cache) for s in (train_set, val_set))
            for c in (train_cache, val_cache):
                print(f"trunk features {'loaded from' if c.loaded else 'saved to'} {c.path}", flush=True)
        else:
            train_cache, val_cache = TrunkCache(model, train_set), TrunkCache(model, val_set)
        print(f"trunk features of {train_cache.distinct} + {val_cache.distinct} distinct clips "
              f"({len(train_cache)} + {len(val_cache)} clips) in {time.time() - t0:.0f} s", flush=True)
    elif a.cache:  # every clip decoded once, batches sliced on the device (clip_cache.py)
        t0 = time.time()
        train_cache = ClipCache(a.root, a.db, a.train_split, cfg, a.stride, a.device, a.workers, a.max_clips)
        val_cache = ClipCache(a.root, a.db, a.val_split, cfg, a.stride * 2, a.device, a.workers,
                              max(1, a.max_clips // 4) if a.max_clips else 0)
        print(f"cached {len(train_cache)} + {len(val_cache)} clips on {a.device} in {time.time() - t0:.0f} s", flush=True)
    if a.freeze_trunk or a.cache:
        shuffle = torch.Generator().manual_seed(a.seed)

        class Batches:
            def __init__(self, cache: ClipCache | TrunkCache, shuffled: bool) -> None:
                self.cache, self.shuffled = cache, shuffled

            def __iter__(self):
                return self.cache.batches(a.batch_size, self.shuffled, shuffle)

        loader, val_loader = Batches(train_cache, True), Batches(val_cache, False)
    else:
        gpu = a.device.startswith("cuda")
        extra = {"persistent_workers": True} if a.workers else {}
        loader = DataLoader(train_set, batch_size=a.batch_size, shuffle=True, num_workers=a.workers, pin_memory=gpu, **extra)
        val_loader = DataLoader(val_set, batch_size=a.batch_size, num_workers=a.workers, pin_memory=gpu, **extra)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=a.lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=a.lr_step, gamma=0.1)
    # optional linear warm-up over the first --warmup steps (from-scratch training)
    lr0 = a.lr

    class Warmup:
        def __init__(self) -> None:
            self.n = 0

        def step(self) -> None:
            self.n += 1
            if self.n <= a.warmup:  # then the step schedule alone
                for g in opt.param_groups:
                    g["lr"] = lr0 * self.n / a.warmup

    warmup = Warmup()
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    curve = out.with_suffix(".curve.csv")
    best, stale = float("inf"), 0
    started = time.time()
    with curve.open("w", newline="") as f:
        log = csv.writer(f)
        log.writerow(["epoch", "train_loss", "val_loss", "lr", "seconds"])
        for epoch in range(1, a.epochs + 1):
            t0 = time.time()
            tr = run_epoch(model, loader, opt, a.clip_grad, warmup if a.warmup else None, a.device)
            va = run_epoch(model, val_loader, device=a.device)
            log.writerow([epoch, f"{tr:.6f}", f"{va:.6f}", opt.param_groups[0]["lr"], f"{time.time() - t0:.1f}"])
            f.flush()
            print(f"epoch {epoch}: train {tr:.4f} val {va:.4f}", flush=True)
            sched.step()
            if va < best:
                best, stale = va, 0
                save_weights(model.state_dict(), cfg, out, dtype=a.dtype)
            else:
                stale += 1
                if stale >= a.patience:
                    print(f"early stop after epoch {epoch}")
                    break
            if a.max_minutes and time.time() - started > a.max_minutes * 60 * epoch / (epoch + 1):
                # the next epoch would (on average) end past the budget
                print(f"time budget of {a.max_minutes} min reached after epoch {epoch}")
                break
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dtfsal.train", description=__doc__.split("\n")[0])
    p.add_argument("--root", required=True)
    p.add_argument("--db", required=True)
    p.add_argument("--train-split", default="train_1")
    p.add_argument("--val-split", default="val_1")
    p.add_argument("--config", default="tiny")
    p.add_argument("--variant", default="av", choices=["av", "v"])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--patience", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--lr-step", type=int, default=3, help="epochs between x0.1 learning-rate steps")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--warmup", type=int, default=0, help="linear learning-rate warm-up steps (0: none)")
    p.add_argument("--clip-grad", type=float, default=0.0, help="clip the gradient norm (0: no clipping)")
    p.add_argument("--stride", type=int, default=8, help="frames between training clips")
    p.add_argument("--max-clips", type=int, default=0, help="cap the clips per epoch (0: all)")
    p.add_argument("--workers", type=int, default=0, help="data loader (or --cache builder) processes")
    p.add_argument("--cache", action="store_true", help="decode every clip once and keep the split on --device")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1, ...)")
    p.add_argument("--max-minutes", type=float, default=0.0, help="stop before an epoch would end past this (0: no limit)")
    p.add_argument("--dtype", default="f32", choices=["f32", "f16"])
    p.add_argument("--init", help="start from this trained model (project weight file)")
    p.add_argument("--freeze-trunk", action="store_true",
                   help="with --init: keep the visual trunk (encoder + neck) frozen, its features computed once per clip")
    p.add_argument("--trunk-cache", metavar="DIR",
                   help="with --freeze-trunk: keep the trunk features in DIR, reused by runs on the same model and data")
    p.add_argument("--init-mvit")
    p.add_argument("--init-vggish")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    print(f"wrote {train(a)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

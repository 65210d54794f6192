"""The trainer runs end to end on a small STAViS-layout database and writes a loadable model."""

import csv
import math
import wave

import numpy as np
import pytest
import torch
from PIL import Image

from dtfsal.data import StavisClips, read_wav_16k_mono
from dtfsal.config import tiny
from dtfsal.train import main as train_main
from dtfsal.weights import load_model


def make_db(root, db="synth", videos=(("v1", 16000, 1), ("v2", 44100, 2)), frames=36, fps=25.0):
    for name, rate, channels in videos:
        fdir = root / "video_frames" / db / name
        mdir = root / "annotations" / db / name / "maps"
        fdir.mkdir(parents=True)
        mdir.mkdir(parents=True)
        for i in range(1, frames + 1):
            img = np.zeros((48, 80, 3), np.uint8)
            img[10:30, (2 * i) % 60 : (2 * i) % 60 + 15] = (255, 40, 40)
            Image.fromarray(img).save(fdir / f"img_{i:05d}.jpg")
            yy, xx = np.mgrid[:48, :80]
            m = np.exp(-((yy - 20) ** 2 + (xx - (2 * i) % 60 - 7) ** 2) / 30.0)
            Image.fromarray((255 * m).astype(np.uint8)).save(mdir / f"eyeMap_{i:05d}.jpg")
        adir = root / "video_audio" / db / name
        adir.mkdir(parents=True)
        t = np.arange(int(rate * frames / fps)) / rate
        x = (0.3 * np.sin(2 * math.pi * 330 * t) * 32767).astype("<i2")
        with wave.open(str(adir / f"{name}.wav"), "wb") as w:
            w.setnchannels(channels)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(np.repeat(x[:, None], channels, axis=1).tobytes())
    (root / "fold_lists").mkdir()
    for split, names in (("train_1", ["v1"]), ("val_1", ["v2"])):
        (root / "fold_lists" / f"{db}_list_{split}_fps.txt").write_text("".join(f"{n} {frames} {fps}\n" for n in names))


def test_dataset_reads_the_layout(tmp_path):
    make_db(tmp_path)
    ds = StavisClips(tmp_path, "synth", "train_1", tiny("av"), stride=4)
    assert len(ds) == 2  # starts 0 and 4 of 36 frames
    s = ds[1]
    assert s["video"].shape == (3, 32, 96, 160)
    assert s["audio"].shape == (9, 1, 112, 192)
    assert s["sal"].shape == (96, 160) and float(s["sal"].max()) == 1.0
    # 44.1 kHz stereo is down-mixed and resampled to 16 kHz
    x = read_wav_16k_mono(tmp_path / "video_audio" / "synth" / "v2" / "v2.wav")
    assert abs(len(x) - 16000 * 36 / 25) <= 2


def test_training_writes_curve_and_loadable_weights(tmp_path):
    make_db(tmp_path)
    out = tmp_path / "model" / "tiny.safetensors"
    rc = train_main(["--root", str(tmp_path), "--db", "synth", "--config", "tiny", "--epochs", "2",
                     "--stride", "4", "--out", str(out), "--dtype", "f16"])  # fmt: skip
    assert rc == 0
    rows = list(csv.DictReader(out.with_suffix(".curve.csv").open()))
    assert len(rows) == 2 and all(math.isfinite(float(r["train_loss"])) for r in rows)
    model = load_model(out)
    with torch.no_grad():
        sal = model(torch.zeros(1, 3, 32, 96, 160), torch.zeros(1, 9, 1, 112, 192))
    assert sal.shape == (1, 96, 160)


def test_vggish_trains_without_audioset_weights_and_warmup_sets_the_lr(tmp_path):
    """No --init-vggish: the trunk learns with the rest; --warmup ramps the lr; --clip-grad bounds steps."""
    make_db(tmp_path)
    out = tmp_path / "m.safetensors"
    torch.manual_seed(0)
    before = DTFSal_state(tiny("av"))
    rc = train_main(["--root", str(tmp_path), "--db", "synth", "--config", "tiny", "--epochs", "1", "--stride", "4",
                     "--out", str(out), "--lr", "1e-3", "--warmup", "100", "--clip-grad", "0.5", "--seed", "0"])  # fmt: skip
    assert rc == 0
    after = load_model(out).state_dict()
    moved = [k for k in before if k.startswith("audio.vggish.") and not torch.equal(before[k], after[k])]
    assert moved, "the VGGish trunk did not change"
    rows = list(csv.DictReader(out.with_suffix(".curve.csv").open()))
    # 2 steps of a 100-step warm-up: the logged lr is the warmed-up fraction of --lr
    assert float(rows[0]["lr"]) == pytest.approx(1e-3 * 2 / 100)


def DTFSal_state(cfg):
    from dtfsal.model import DTFSal

    torch.manual_seed(0)
    return {k: v.clone() for k, v in DTFSal(cfg).state_dict().items()}


def test_clip_cache_gives_the_samples_of_the_dataset(tmp_path):
    """--cache decodes each video once; its clips, maps and audio equal StavisClips' samples exactly."""
    from dtfsal.clip_cache import ClipCache

    make_db(tmp_path, frames=40)
    cfg = tiny("av")
    ds = StavisClips(tmp_path, "synth", "train_1", cfg, stride=4)
    for jobs in (1, 2):
        cache = ClipCache(tmp_path, "synth", "train_1", cfg, stride=4, device="cpu", jobs=jobs)
        assert len(cache) == len(ds) == 3
        batch = next(cache.batches(batch_size=8, shuffle=False))
        for i in range(len(ds)):
            s = ds[i]
            assert torch.equal(batch["video"][i], s["video"])
            assert torch.equal(batch["sal"][i], s["sal"])
            assert torch.equal(batch["audio"][i], s["audio"])
    # shuffled batches cover every clip once
    seen = torch.cat([b["sal"] for b in cache.batches(2, shuffle=True, generator=torch.Generator().manual_seed(1))])
    assert seen.shape[0] == 3


def test_cached_training_and_time_budget(tmp_path, capsys):
    make_db(tmp_path)
    out = tmp_path / "c.safetensors"
    rc = train_main(["--root", str(tmp_path), "--db", "synth", "--config", "tiny", "--variant", "v", "--epochs", "5",
                     "--stride", "4", "--cache", "--max-minutes", "0.0001", "--out", str(out)])  # fmt: skip
    assert rc == 0
    assert "time budget" in capsys.readouterr().out
    assert len(list(csv.DictReader(out.with_suffix(".curve.csv").open()))) == 1  # stopped after epoch 1
    load_model(out)


def test_pretrained_vggish_loads_frozen_into_training(tmp_path):
    """pretrain_vggish learns the sound kinds of labelled windows; train --init-vggish keeps that trunk fixed."""
    from dtfsal.pretrain_vggish import main as pretrain_main

    make_db(tmp_path)
    for name in ("v1", "v2"):  # the 330 Hz tone plays throughout
        (tmp_path / "annotations" / "synth" / name / "sounds.txt").write_text("tone\n" * 36)
    vgg = tmp_path / "vggish.safetensors"
    assert pretrain_main(["--root", str(tmp_path), "--db", "synth", "--epochs", "2", "--stride", "6",
                          "--out", str(vgg)]) == 0  # fmt: skip
    out = tmp_path / "m.safetensors"
    assert train_main(["--root", str(tmp_path), "--db", "synth", "--config", "tiny", "--epochs", "1", "--stride", "4",
                       "--init-vggish", str(vgg), "--out", str(out)]) == 0  # fmt: skip
    from dtfsal.weights import read_weights

    _, trunk, _ = read_weights(vgg, part="vggish")
    after = load_model(out).state_dict()
    for k, v in trunk.items():
        assert torch.equal(after[k], v), f"{k} moved during training"


def test_pretrain_vggish_needs_sound_labels(tmp_path):
    from dtfsal.pretrain_vggish import main as pretrain_main

    make_db(tmp_path)
    with pytest.raises(FileNotFoundError, match="sounds.txt"):
        pretrain_main(["--root", str(tmp_path), "--db", "synth", "--out", str(tmp_path / "x.safetensors")])

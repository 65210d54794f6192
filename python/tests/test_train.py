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


@pytest.mark.parametrize("variant", ["av", "v"])
def test_freeze_trunk_trains_the_head_on_cached_features(tmp_path, repo, variant):
    """--freeze-trunk: one trunk pass per distinct clip, the encoder and neck unchanged, the rest trained."""
    from dtfsal.weights import read_weights

    make_db(tmp_path)
    # an audio twin of v1: the same frames (a link), another soundtrack
    db = tmp_path / "video_frames" / "synth"
    (db / "v1_s1").symlink_to("v1", target_is_directory=True)
    (tmp_path / "annotations/synth/v1_s1").symlink_to(tmp_path / "annotations/synth/v2")
    (tmp_path / "video_audio/synth/v1_s1").mkdir()
    (tmp_path / "video_audio/synth/v1_s1/v1_s1.wav").write_bytes((tmp_path / "video_audio/synth/v2/v2.wav").read_bytes())
    (tmp_path / "fold_lists/synth_list_train_1_fps.txt").write_text("v1 36 25\nv1_s1 36 25\n")
    init = repo / ("tests/data/tiny-av.weights.safetensors" if variant == "av" else "models/training/tiny-v.safetensors")
    out = tmp_path / "ft.safetensors"
    rc = train_main(["--root", str(tmp_path), "--db", "synth", "--config", "tiny", "--epochs", "1", "--stride", "4",
                     "--variant", variant,
                     "--batch-size", "2", "--lr", "1e-3", "--init", str(init), "--freeze-trunk", "--out", str(out)])  # fmt: skip
    assert rc == 0
    _, before, _ = read_weights(init, part="model")
    _, after, _ = read_weights(out, part="model")
    moved = {k for k in before if not torch.equal(before[k].float(), after[k].float())}
    assert moved, "nothing trained"
    assert not any(k.startswith(("encoder.", "fe.", "audio.vggish.")) for k in moved), sorted(moved)[:5]
    assert any(k.startswith("decoders.") for k in moved)
    assert any(k.startswith("amfb.") for k in moved) == (variant == "av")
    with pytest.raises(SystemExit, match="--init"):
        train_main(["--root", str(tmp_path), "--db", "synth", "--freeze-trunk", "--out", str(out)])


def test_trunk_cache_shares_one_pass_between_twins_and_matches_the_model(tmp_path, repo):
    from dtfsal.trunk_cache import TrunkCache

    make_db(tmp_path)
    db = tmp_path / "video_frames" / "synth"
    (db / "v2").rename(db / "v2_frames")
    (db / "v2").symlink_to("v1", target_is_directory=True)  # v2 shows v1's frames with its own audio
    (tmp_path / "fold_lists/synth_list_train_1_fps.txt").write_text("v1 36 25\nv2 36 25\n")
    model = load_model(repo / "tests/data/tiny-av.weights.safetensors").eval()
    ds = StavisClips(tmp_path, "synth", "train_1", model.cfg, stride=4)
    cache = TrunkCache(model, ds, batch_size=3)
    assert len(cache) == 4 and cache.distinct == 2
    batch = next(cache.batches(4, shuffle=False))
    with torch.no_grad():
        from_cache = model.head(batch["neck"], model.audio.te(batch["vggish"]))
        direct = torch.stack([model(s["video"][None], s["audio"][None])[0] for s in (ds[i] for i in range(4))])
    # the trunk features are kept in f16: the maps agree to f16 rounding
    assert (from_cache - direct).abs().max() < 2e-3
    assert not torch.equal(direct[0], direct[2])  # same frames, other audio, other map


def test_training_deform_path_has_torchvisions_values_and_gradients():
    """In training the AMFB deformable conv runs the grid_sample decomposition (faster backward on CPU);
    its output and every gradient (input, offset predictor, weight, bias) equal torchvision's (float64)."""
    from dtfsal.model.amfb import DeformConv2d

    torch.manual_seed(0)
    conv = DeformConv2d(6, 5).double()
    with torch.no_grad():
        conv.offset.weight.normal_(0, 0.3)  # off the integer grid, where bilinear sampling is differentiable
        conv.offset.bias.normal_(0, 0.7)
    x = torch.randn(3, 6, 7, 9, dtype=torch.float64)
    probe = torch.randn(3, 5, 7, 9, dtype=torch.float64)
    grads = []
    for training in (True, False):
        conv.train(training)
        xi = x.clone().requires_grad_()
        conv.zero_grad()
        y = conv(xi)
        (y * probe).sum().backward()
        grads.append([y.detach(), xi.grad] + [p.grad.clone() for p in conv.parameters()])
    for got, ref in zip(*grads):
        assert (got - ref).abs().max().item() <= 1e-9 * max(1.0, ref.abs().max().item())


def test_paired_eval_reports_the_per_video_difference_and_its_interval(tmp_path):
    from dtfsal.paired_eval import main as paired_main, paired

    head = "video,frames,skipped,cc,nss,auc_j,sim,kld,sauc\n"
    (tmp_path / "a.csv").write_text(head + "v1,10,0,0.60,1.5,0.8,0.5,1.0,0.7\nv2,10,0,0.50,1.2,0.8,0.5,1.1,\nv3,10,0,0.70,1.9,0.8,0.5,0.9,0.7\n")
    (tmp_path / "b.csv").write_text(head + "v3,10,0,0.60,1.7,0.8,0.5,1.0,0.7\nv1,10,0,0.55,1.4,0.8,0.5,1.0,0.6\nv2,10,0,0.48,1.2,0.8,0.5,1.2,0.6\n")
    r = paired(tmp_path / "a.csv", tmp_path / "b.csv")
    d = np.array([0.05, 0.02, 0.10])  # matched by name, not by row
    assert r["cc"]["mean"] == pytest.approx(d.mean())
    assert r["cc"]["ci95"] == pytest.approx(4.302653 * d.std(ddof=1) / np.sqrt(3), rel=1e-5)  # t(0.975, 2)
    assert r["cc"]["a_better"] == 3 and r["sauc"]["videos"] == 2  # an empty cell is no value
    (tmp_path / "c.csv").write_text(head + "v1,10,0,0.6,1.5,0.8,0.5,1.0,0.7\n")
    with pytest.raises(ValueError, match="different videos"):
        paired(tmp_path / "a.csv", tmp_path / "c.csv")
    assert paired_main([str(tmp_path / "a.csv"), str(tmp_path / "b.csv"), "--metrics", "cc"]) == 0


def test_trunk_cache_on_disk_is_reused_only_for_the_same_trunk_and_data(tmp_path, repo):
    """TrunkCache.open: a second run loads the saved features (no trunk pass) and gets the same tensors;
    a changed trunk weight or a changed data file makes a new file, computed afresh."""
    from dtfsal.trunk_cache import TrunkCache

    make_db(tmp_path)
    model = load_model(repo / "tests/data/tiny-av.weights.safetensors").eval()
    ds = StavisClips(tmp_path, "synth", "train_1", model.cfg, stride=8)
    folder = tmp_path / "trunk-cache"
    first = TrunkCache.open(model, ds, folder, batch_size=4)
    assert not first.loaded and first.path.is_file() and first.path.parent == folder

    real_trunk = model.trunk
    model.trunk = lambda *_: (_ for _ in ()).throw(AssertionError("the trunk ran again"))
    again = TrunkCache.open(model, ds, folder)
    assert again.loaded and again.path == first.path and again.distinct == first.distinct
    assert torch.equal(again.feature_of, first.feature_of) and torch.equal(again.sal, first.sal)
    assert torch.equal(again.vggish, first.vggish)
    assert all(torch.equal(a, b) for a, b in zip(again.neck, first.neck))
    model.trunk = real_trunk

    with torch.no_grad():
        model.fe.parameters().__next__().add_(1e-3)
    moved = TrunkCache.open(model, ds, folder)
    assert not moved.loaded and moved.path != first.path
    # a map rewritten with other contents (size changes with the JPEG): the data fingerprint moves
    maps = sorted((tmp_path / "annotations/synth/v1/maps").iterdir())
    maps[0].write_bytes(maps[1].read_bytes() + b"\0")
    assert not TrunkCache.open(model, ds, folder).loaded
    assert len(list(folder.glob("trunk-*.pt"))) == 3 and not list(folder.glob("*.tmp*"))


def test_train_trunk_cache_flag_reuses_features_and_trains_the_same(tmp_path, repo, capsys):
    """`train --freeze-trunk --trunk-cache DIR`: the second run loads what the first saved and, with the
    same seed, writes the same weights; without --freeze-trunk the flag is refused."""
    from dtfsal.weights import read_weights

    make_db(tmp_path)
    init = repo / "tests/data/tiny-av.weights.safetensors"
    outs = [tmp_path / f"ft{i}.safetensors" for i in range(2)]
    for out in outs:
        assert train_main(["--root", str(tmp_path), "--db", "synth", "--config", "tiny", "--epochs", "1", "--stride", "8",
                           "--batch-size", "2", "--lr", "1e-3", "--init", str(init), "--freeze-trunk",
                           "--trunk-cache", str(tmp_path / "tc"), "--out", str(out)]) == 0  # fmt: skip
    log = capsys.readouterr().out
    assert log.count("trunk features saved to") == 2 and log.count("trunk features loaded from") == 2, log
    (_, a, _), (_, b, _) = (read_weights(o, part="model") for o in outs)
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(SystemExit, match="--freeze-trunk"):
        train_main(["--root", str(tmp_path), "--db", "synth", "--init", str(init), "--trunk-cache", "x", "--out", str(outs[0])])

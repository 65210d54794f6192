"""The synthetic audio-visual generator: layout, reproducibility, and a ground truth that follows the sound."""

import hashlib
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from dtfsal import synth
from dtfsal.config import get_config
from dtfsal.data import StavisClips

pytestmark = pytest.mark.skipif(synth.shutil.which("espeak-ng") is None, reason="espeak-ng not installed")


def tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_layout_is_readable_and_reproducible(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    synth.generate(a, "SYN", {"train": 2, "test": 1}, frames=40, fps=25, h=96, w=160, seed=3)
    synth.generate(b, "SYN", {"train": 1, "test": 1}, frames=40, fps=25, h=96, w=160, seed=3)
    # a video depends on (seed, split, index) only, not on how many others were generated
    assert tree_digest(a / "video_frames/SYN/train_000") == tree_digest(b / "video_frames/SYN/train_000")
    assert tree_digest(a / "annotations/SYN/test_000") == tree_digest(b / "annotations/SYN/test_000")
    assert (a / "video_audio/SYN/train_001/train_001.wav").is_file()
    assert (a / "fold_lists/SYN_list_test_1_fps.txt").read_text() == "test_000 40 25\n"
    ds = StavisClips(a, "SYN", "train_1", get_config("tiny", "av"), stride=8)
    assert len(ds) == 2 * 2  # starts 0 and 8 of 40 frames, clip 32
    s = ds[1]
    assert s["video"].shape == (3, 32, 96, 160) and s["audio"].shape == (9, 1, 112, 192)
    assert float(s["sal"].max()) == pytest.approx(1.0)
    other = synth.generate  # a different seed gives a different video
    c = tmp_path / "c"
    other(c, "SYN", {"test": 1}, frames=40, fps=25, h=96, w=160, seed=4)
    assert tree_digest(c / "video_frames/SYN/test_000") != tree_digest(a / "video_frames/SYN/test_000")


@pytest.mark.parametrize("index", [0, 1, 2])
def test_ground_truth_and_sound_follow_the_sounding_objects(index):
    h, w, fps = 96, 160, 25.0
    v = synth.make_video(synth.video_seed(7, "test", index), frames=75, fps=fps, h=h, w=w)
    assert v.frames.shape == (75, h, w, 3) and v.density.shape == (75, h, w)
    assert v.fixations.reshape(75, -1).sum(1).max() <= synth.FIXATIONS_PER_FRAME
    assert all(1 <= len(s) <= 2 for s in v.sounding)
    # the density peaks on a sounding object in (nearly) every frame
    hits = 0
    for f in range(75):
        y, x = np.unravel_index(np.argmax(v.density[f]), (h, w))
        hits += any(np.hypot(*(v.objects[i].pos[f] - (x, y))) <= v.objects[i].radius + 3 for i in v.sounding[f])
    assert hits >= 0.9 * 75, hits
    # the soundtrack's loudness follows the sounding objects' activity, not the silent ones'
    n = len(v.audio)
    loud = gaussian_filter(np.abs(v.audio), 0.02 * synth.RATE)
    sounding_at = np.zeros((len(v.objects), n), bool)
    for f, s in enumerate(v.sounding):
        a, b = int(f / fps * synth.RATE), int((f + 1) / fps * synth.RATE)
        sounding_at[s, a:b] = True
    heard = sum(o.activity * sounding_at[i] for i, o in enumerate(v.objects))
    silent = sum(o.activity * ~sounding_at[i] for i, o in enumerate(v.objects))
    r_heard = np.corrcoef(loud[:b], heard[:b])[0, 1]
    assert r_heard > 0.5, r_heard
    if np.std(silent[:b]) > 0:
        assert np.corrcoef(loud[:b], silent[:b])[0, 1] < r_heard


def test_many_seeds_generate():
    # speech onsets before the start, two sounding objects, 2-5 objects: none of it may fail
    for i in range(24):
        v = synth.make_video(synth.video_seed(11, "train", i), frames=6, fps=25, h=48, w=80)
        assert np.isfinite(v.audio).all() and np.abs(v.audio).max() <= 0.8 + 1e-6


def test_audio_ablation_sees_a_model_that_listens(tmp_path):
    from pathlib import Path as P

    from dtfsal.audio_ablation import ablate

    synth.generate(tmp_path, "SYN", {"test": 2}, frames=40, fps=25, h=96, w=160, seed=5)
    weights = P(__file__).resolve().parents[2] / "tests/data/tiny-av.weights.safetensors"
    r = ablate(str(tmp_path), "SYN", "test_1", str(weights), stride=8)
    assert r["clips"] == 4
    assert all(-1 <= r[k] <= 1 for k in ("cc_own", "cc_other", "cc_silence"))
    # the random parity model's AMFBs mix the audio in: its maps move when the soundtrack changes
    assert r["max_map_change"] > 1e-4


def test_audio_twins_share_the_frames_and_differ_in_sound_and_ground_truth():
    ss = synth.video_seed(7, "train", 1)
    original, t1, t2 = synth.make_videos(ss, frames=60, fps=25, h=48, w=80, twins=2)
    alone = synth.make_video(synth.video_seed(7, "train", 1), frames=60, fps=25, h=48, w=80)
    # asking for twins changes nothing in the video itself
    for k in ("frames", "audio", "density", "fixations"):
        assert np.array_equal(getattr(original, k), getattr(alone, k)), k
    assert original.sounding == alone.sounding
    for twin in (t1, t2):
        assert np.array_equal(twin.frames, original.frames)  # only the sound tells them apart
        assert all(set(a) != set(b) for a, b in zip(twin.sounding, original.sounding))
        assert all(len(a) == len(b) for a, b in zip(twin.sounding, original.sounding))
        assert not np.allclose(twin.audio, original.audio)
        assert np.abs(twin.density - original.density).max() > 0.5
    # twins are seeded too
    again = synth.make_videos(synth.video_seed(7, "train", 1), frames=60, fps=25, h=48, w=80, twins=2)
    assert np.array_equal(again[2].audio, t2.audio) and again[2].sounding == t2.sounding


def test_generated_twins_link_their_frames_and_read_as_clips(tmp_path):
    synth.generate(tmp_path, "SYN", {"train": 1, "test": 1}, frames=40, fps=25, h=96, w=160, seed=3,
                   twins={"train": 1})
    assert (tmp_path / "fold_lists/SYN_list_train_1_fps.txt").read_text() == "train_000 40 25\ntrain_000_s1 40 25\n"
    assert (tmp_path / "fold_lists/SYN_list_test_1_fps.txt").read_text() == "test_000 40 25\n"
    link = tmp_path / "video_frames/SYN/train_000_s1"
    assert link.is_symlink() and link.resolve() == (tmp_path / "video_frames/SYN/train_000").resolve()
    ds = StavisClips(tmp_path, "SYN", "train_1", get_config("tiny", "av"), stride=8)
    a, b = ds[0], ds[2]  # train_000 and its twin, start 0
    assert torch_equal(a["video"], b["video"])
    assert not torch_equal(a["audio"], b["audio"]) and not torch_equal(a["sal"], b["sal"])


def torch_equal(x, y) -> bool:
    return bool((x == y).all())

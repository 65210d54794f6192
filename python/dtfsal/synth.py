"""Synthetic audio-visual saliency data in the STAViS layout (the demo model's training data).

  python -m dtfsal.synth --out DATA [--db SYNTH] [--train 60 --val 8 --test 12] [--frames 100] [--seed 0] [--jobs N]
      [--twins K [--twin-splits train,val,test]]
  python -m dtfsal.synth --write-speech-bank BANK.npz     # espeak-ng's words, for machines without it

Generation needs espeak-ng, or a speech bank written where espeak-ng is (`--speech-bank BANK.npz` or
DTFSAL_SPEECH_BANK): the bank holds the exact samples espeak-ng gave, so the data is the same.

Each video: a textured, noisy background seen by a slowly panning camera; 2-5 objects (circle,
square, triangle, diamond; random colour and size) that move and pulse. Every object has its own
activity envelope (bursts at random onsets) that drives its brightness and size, so visually all of
them flash alike. At any time one or two objects *sound*: their sound, whose onsets and loudness
follow their own activity envelope, is what the soundtrack carries. The sound's kind belongs to the
shape (circle: tone, pitch falling with size; square: noise burst; triangle: espeak-ng speech;
diamond: chirp), so only the sound tells which object matters.

Ground truth per frame (density, `eyeMap_%05d.jpg`): a Gaussian around each sounding object
(weight 1), a weaker one on the fastest-moving object (0.3) and a centre bias (0.15), each term
normalised to unit mass first. Fixations (`fixMap_%05d.png`, binary): 16 points sampled from it.
`sounds.txt` beside them: per frame, the kinds of sound playing (tone, noise, speech, chirp).

Seeded per video (seed, split, index), so a video is the same whatever else is generated.
"""

from __future__ import annotations

import argparse
import colorsys
import functools
import os
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter
from scipy.signal import resample_poly

RATE = 16_000
SHAPES = ("circle", "square", "triangle", "diamond")
SOUND_OF_SHAPE = {"circle": "tone", "square": "noise", "triangle": "speech", "diamond": "chirp"}
WORDS = ("look", "here", "hello", "over", "there", "yes", "now", "go", "wait", "right", "up", "ball")
# GT mixture weights (each term has unit mass before weighting)
W_SOUND, W_MOTION, W_CENTRE = 1.0, 0.3, 0.15
FIXATIONS_PER_FRAME = 16


@dataclass
class SceneObject:
    shape: str
    colour: np.ndarray  # [3] in 0..255
    radius: float
    pos: np.ndarray  # [F, 2] (x, y) per frame
    activity: np.ndarray  # [samples] in 0..1 at RATE
    pitch: float


@dataclass
class Video:
    frames: np.ndarray  # [F, H, W, 3] uint8
    audio: np.ndarray  # [samples] float32 in -1..1
    density: np.ndarray  # [F, H, W] float32, max 1
    fixations: np.ndarray  # [F, H, W] bool
    sounding: list[list[int]]  # per frame, indices of sounding objects
    objects: list[SceneObject]


def video_seed(seed: int, split: str, index: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([seed, sum(map(ord, split)) * 1000 + len(split), index])


VOICES = ("en", "en-us", "en+f3", "en+m3")


@functools.lru_cache(maxsize=1)
def speech_bank() -> dict[str, np.ndarray] | None:
    """The pre-rendered words named by DTFSAL_SPEECH_BANK (None when unset)."""
    path = os.environ.get("DTFSAL_SPEECH_BANK")
    if not path:
        return None
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


@functools.lru_cache(maxsize=None)
def spoken_word(word: str, voice: str) -> np.ndarray:
    """espeak-ng's rendering of `word` at 16 kHz (espeak-ng is deterministic for a text and voice)."""
    bank = speech_bank()
    if bank is not None:
        if f"{voice}|{word}" not in bank:
            raise KeyError(f"speech bank {os.environ['DTFSAL_SPEECH_BANK']}: no word {word!r} in voice {voice!r}")
        return bank[f"{voice}|{word}"]
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng not found: install it (apt install espeak-ng; scripts/setup.sh does), "
                           "or give a speech bank (--speech-bank) written where it is installed")
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "w.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", "190", "-w", str(path), word], check=True, capture_output=True)
        with wave.open(str(path), "rb") as w:
            rate, raw = w.getframerate(), w.readframes(w.getnframes())
    x = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    x = resample_poly(x, 160, rate // 100).astype(np.float32) if rate != RATE else x
    return x / max(float(np.abs(x).max()), 1e-6)


def envelope_from_onsets(onsets: np.ndarray, n: int, decay_s: float) -> np.ndarray:
    """Bursts: an attack of 10 ms then an exponential decay, one per onset, summed and clipped to 1."""
    t = np.arange(n) / RATE
    env = np.zeros(n, np.float32)
    for o in onsets:
        d = t - o
        seg = (d >= 0) & (d < 6 * decay_s)
        env[seg] += (np.minimum(d[seg] / 0.01, 1.0) * np.exp(-d[seg] / decay_s)).astype(np.float32)
    return np.clip(env, 0.0, 1.0)


def background(rng: np.random.Generator, frames: int, h: int, w: int) -> np.ndarray:
    """Two-scale coloured noise texture on a canvas larger than the frame, seen by a panning camera."""
    pad = 48
    ch, cw = h + 2 * pad, w + 2 * pad
    coarse = gaussian_filter(rng.standard_normal((ch, cw)), 12)
    fine = gaussian_filter(rng.standard_normal((ch, cw)), 2)
    tex = coarse / (coarse.std() + 1e-6) + 0.5 * fine / (fine.std() + 1e-6)
    tex = (tex - tex.min()) / (np.ptp(tex) + 1e-6)  # 0..1
    c0, c1 = rng.uniform(20, 150, 3), rng.uniform(60, 200, 3)
    canvas = c0[None, None] * (1 - tex[..., None]) + c1[None, None] * tex[..., None]  # [ch, cw, 3]
    # camera: slow drift plus a sway, within the padding
    v = rng.uniform(-0.35, 0.35, 2)
    sway, phase = rng.uniform(2, 8), rng.uniform(0, 2 * np.pi)
    out = np.empty((frames, h, w, 3), np.float32)
    for f in range(frames):
        ox = int(np.clip(pad + v[0] * f + sway * np.sin(0.05 * f + phase), 0, 2 * pad))
        oy = int(np.clip(pad + v[1] * f + 0.5 * sway * np.cos(0.04 * f + phase), 0, 2 * pad))
        out[f] = canvas[oy : oy + h, ox : ox + w]
    return out


def trajectory(rng: np.random.Generator, frames: int, h: int, w: int, r: float) -> np.ndarray:
    pos = np.empty((frames, 2))
    p = np.array([rng.uniform(r, w - r), rng.uniform(r, h - r)])
    speed = rng.uniform(0.5, 3.0)
    ang = rng.uniform(0, 2 * np.pi)
    for f in range(frames):
        if rng.random() < 0.03:  # occasional turn
            ang += rng.normal(0, 1.2)
        vel = speed * np.array([np.cos(ang), np.sin(ang)])
        p = p + vel
        for k, lim in ((0, w), (1, h)):  # bounce off the borders
            if p[k] < r or p[k] > lim - r:
                p[k] = np.clip(p[k], r, lim - r)
                ang = np.pi - ang if k == 0 else -ang
        pos[f] = p
    return pos


def shape_mask(shape: str, dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    """Soft (1-pixel anti-aliased) mask of `shape` with radius `r` on offsets (dx, dy)."""
    if shape == "circle":
        d = np.hypot(dx, dy) - r
    elif shape == "square":
        d = np.maximum(np.abs(dx), np.abs(dy)) - 0.85 * r
    elif shape == "diamond":
        d = (np.abs(dx) + np.abs(dy)) - 1.2 * r
    else:  # upward triangle: inside of three half-planes
        s = np.sqrt(3) / 2
        d = np.maximum.reduce([dy - 0.5 * r, -s * dx - 0.5 * dy - 0.5 * r, s * dx - 0.5 * dy - 0.5 * r])
    return np.clip(0.5 - d, 0.0, 1.0)


def gaussian(xx: np.ndarray, yy: np.ndarray, x: float, y: float, sx: float, sy: float) -> np.ndarray:
    """Unit-mass Gaussian on the pixel grid (xx, yy)."""
    g = np.exp(-0.5 * (((xx - x) / sx) ** 2 + ((yy - y) / sy) ** 2))
    return g / g.sum()


def object_sound(obj: SceneObject, onsets: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """The object's sound over the whole video (mixed in only while it is sounding)."""
    t = np.arange(n) / RATE
    kind = SOUND_OF_SHAPE[obj.shape]
    if kind == "speech":
        out = np.zeros(n, np.float32)
        voice = rng.choice(list(VOICES))
        for o in onsets:
            word = spoken_word(str(rng.choice(WORDS)), str(voice))
            i = int(o * RATE)
            if i < 0:  # began before the video
                word, i = word[-i:], 0
            k = min(len(word), n - i)
            if k > 0:
                out[i : i + k] += word[:k]
        return out
    if kind == "tone":
        s = np.sin(2 * np.pi * obj.pitch * t) + 0.3 * np.sin(4 * np.pi * obj.pitch * t)
    elif kind == "noise":
        s = gaussian_filter(rng.standard_normal(n), 1.5)
        s /= s.std() + 1e-6
    else:  # chirp: an up-sweep restarting at every onset
        last = np.full(n, t[0] - 1.0)
        for o in sorted(onsets):
            last[t >= o] = o
        tau = t - last
        ph = 2 * np.pi * (obj.pitch * tau + 0.5 * 2400 * tau**2)
        s = np.sin(ph)
    return (0.5 * s * obj.activity).astype(np.float32)


def twin_rng(ss: np.random.SeedSequence, twin: int) -> np.random.Generator:
    """The generator of twin `twin`'s own draws (its sounding schedule and fixations); the scene's rng is untouched."""
    return np.random.default_rng(np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, 7919, twin)))


def sounding_schedule(rng: np.random.Generator, n_objects: int, n: int) -> np.ndarray:
    """Which objects sound: segments of 1.5-3 s, one object (70 %) or two -> [objects, samples] bool."""
    sounding_at = np.zeros((n_objects, n), bool)
    s0 = 0
    while s0 < n:
        s1 = min(n, s0 + int(rng.uniform(1.5, 3.0) * RATE))
        k = 2 if (n_objects > 2 and rng.random() < 0.3) else 1
        for i in rng.choice(n_objects, k, replace=False):
            sounding_at[i, s0:s1] = True
        s0 = s1
    return sounding_at


def twin_schedule(rng: np.random.Generator, original: np.ndarray) -> np.ndarray:
    """A schedule that never agrees with `original`: each of its segments (same boundaries) gives the sound
    to as many objects as sounded there, drawn first from the ones that were silent."""
    n_objects, n = original.shape
    out = np.zeros_like(original)
    change = np.flatnonzero(np.any(original[:, 1:] != original[:, :-1], axis=0)) + 1
    for s0, s1 in zip([0, *change], [*change, n]):
        was = np.flatnonzero(original[:, s0])
        silent = rng.permutation(np.setdiff1d(np.arange(n_objects), was))
        pick = list(silent[: len(was)]) + list(rng.permutation(was)[: max(0, len(was) - len(silent))])
        out[pick, s0:s1] = True
    return out


def make_video(ss: np.random.SeedSequence, frames: int, fps: float, h: int, w: int) -> Video:
    return make_videos(ss, frames, fps, h, w)[0]


def make_videos(ss: np.random.SeedSequence, frames: int, fps: float, h: int, w: int, twins: int = 0) -> list[Video]:
    """The video of `ss`, then `twins` audio twins of it: the same frames (scene, motion, flashes, noise) with
    another object sounding at every moment (`twin_schedule`), so another soundtrack and ground truth.
    In a twin set only the sound tells the videos apart: a visual-only model scores the same map against each."""
    rng = np.random.default_rng(ss)
    n = int(round(frames / fps * RATE))
    bg = background(rng, frames, h, w)
    objects, onsets_of = [], []
    for _ in range(rng.integers(2, 6)):
        shape = str(rng.choice(SHAPES))
        r0 = float(rng.uniform(9, 26))  # radius at 320 x 192, scaled to the frame
        r = r0 * min(h / 192, w / 320)
        colour = 255 * np.array(colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.5, 1), rng.uniform(0.6, 1)))
        onsets = np.sort(rng.uniform(-0.3, n / RATE, rng.poisson(2.2 * n / RATE) + 1))
        env = envelope_from_onsets(onsets, n, decay_s=float(rng.uniform(0.15, 0.35)))
        pitch = float(np.interp(r0, [9, 26], [900, 250]) * rng.uniform(0.9, 1.1))
        objects.append(SceneObject(shape, colour, r, trajectory(rng, frames, h, w, r), env, pitch))
        onsets_of.append(onsets)
    schedules = [sounding_schedule(rng, len(objects), n)]
    room = 0.01 * rng.standard_normal(n).astype(np.float32)  # room noise
    sounds = []
    for i, obj in enumerate(objects):
        snd = object_sound(obj, onsets_of[i], n, rng)
        if SOUND_OF_SHAPE[obj.shape] == "speech":  # its pulses follow its own speech
            obj.activity = np.clip(gaussian_filter(np.abs(snd), 0.03 * RATE) * 4, 0, 1).astype(np.float32)
        sounds.append(snd)
    twin_rngs = [twin_rng(ss, k) for k in range(1, twins + 1)]
    schedules += [twin_schedule(r, schedules[0]) for r in twin_rngs]

    def soundtrack(sounding_at: np.ndarray) -> np.ndarray:
        audio = room.copy()
        for i, snd in enumerate(sounds):
            audio += snd * gaussian_filter(sounding_at[i].astype(np.float32), 0.01 * RATE)  # 10 ms fades
        return (0.8 * audio / max(float(np.abs(audio).max()), 1e-6)).astype(np.float32)

    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    centre = gaussian(xx, yy, w / 2, h / 2, w / 5, h / 5)
    video = bg.copy()
    i_audio = [min(int(f / fps * RATE), n - 1) for f in range(frames)]
    for f in range(frames):  # draw
        for obj in objects:
            a = float(obj.activity[i_audio[f]])
            x, y = obj.pos[f]
            m = shape_mask(obj.shape, xx - x, yy - y, obj.radius * (1 + 0.2 * a))[..., None]
            video[f] = video[f] * (1 - m) + m * obj.colour * (0.55 + 0.45 * a)

    def g_object(i: int, f: int) -> np.ndarray:
        o = objects[i]
        return gaussian(xx, yy, *o.pos[f], 0.8 * o.radius + 6, 0.8 * o.radius + 6)

    def g_motion(f: int) -> np.ndarray:  # the fastest-moving object
        speed = [np.hypot(*(o.pos[f] - o.pos[max(f - 1, 0)])) for o in objects]
        fast = objects[int(np.argmax(speed))]
        return gaussian(xx, yy, *fast.pos[f], fast.radius + 6, fast.radius + 6)

    motion = [g_motion(f) for f in range(frames)]  # the same for every twin

    def ground_truth(sounding_at: np.ndarray, r: np.random.Generator):
        density = np.empty((frames, h, w), np.float32)
        fixations = np.zeros((frames, h, w), bool)
        sounding = []
        for f in range(frames):
            snd = [i for i in range(len(objects)) if sounding_at[i, i_audio[f]]]
            sounding.append(snd)
            g_s = sum(g_object(i, f) for i in snd)
            d = W_SOUND * g_s / len(snd) + W_MOTION * motion[f] + W_CENTRE * centre
            density[f] = d / d.max()
            p = (d / d.sum()).ravel()
            fixations[f].flat[r.choice(p.size, FIXATIONS_PER_FRAME, p=p)] = True
        return density, fixations, sounding

    truths = [ground_truth(schedules[0], rng)]
    video = np.clip(video + rng.normal(0, 5, video.shape), 0, 255).astype(np.uint8)  # sensor noise
    truths += [ground_truth(s, r) for s, r in zip(schedules[1:], twin_rngs)]
    return [Video(video, soundtrack(s), d, fx, snd, objects) for s, (d, fx, snd) in zip(schedules, truths)]


def write_video(root: Path, db: str, name: str, v: Video, frames_of: str | None = None) -> None:
    """Writes `v` under `name`; with `frames_of` (an audio twin's original), its frames are a link to that video's."""
    fdir = root / "video_frames" / db / name
    adir = root / "video_audio" / db / name
    mdir = root / "annotations" / db / name / "maps"
    for d in (adir, mdir):
        d.mkdir(parents=True, exist_ok=True)
    if frames_of is None:
        fdir.mkdir(parents=True, exist_ok=True)
    elif not fdir.is_symlink():
        fdir.parent.mkdir(parents=True, exist_ok=True)
        fdir.symlink_to(frames_of, target_is_directory=True)  # relative: the dataset can move
    for f in range(len(v.frames)):
        if frames_of is None:
            Image.fromarray(v.frames[f]).save(fdir / f"img_{f + 1:05d}.jpg", quality=92)
        Image.fromarray((255 * v.density[f]).round().astype(np.uint8)).save(mdir / f"eyeMap_{f + 1:05d}.jpg", quality=95)
        Image.fromarray(v.fixations[f].astype(np.uint8) * 255).save(mdir.parent / f"fixMap_{f + 1:05d}.png")
    # which sounds play at each frame (the audio pre-training's labels, python -m dtfsal.pretrain_vggish)
    kinds = [" ".join(sorted(SOUND_OF_SHAPE[v.objects[i].shape] for i in snd)) for snd in v.sounding]
    (mdir.parent / "sounds.txt").write_text("\n".join(kinds) + "\n")
    with wave.open(str(adir / f"{name}.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes((np.clip(v.audio, -1, 1) * 32767).round().astype("<i2").tobytes())


def write_speech_bank(path: Path) -> None:
    """Every word in every voice, as espeak-ng renders it here."""
    words = {f"{v}|{w}": spoken_word(w, v) for v in VOICES for w in WORDS}
    np.savez_compressed(path, **words)


def video_names(split: str, i: int, twins: int) -> list[str]:
    """The video `i` of `split` and its audio twins (`_s1`, `_s2`, ...)."""
    return [f"{split}_{i:03d}"] + [f"{split}_{i:03d}_s{k}" for k in range(1, twins + 1)]


def _generate_one(job: tuple[Path, str, str, int, int, float, int, int, int, int]) -> str:
    out, db, split, i, frames, fps, h, w, seed, twins = job
    names = video_names(split, i, twins)
    for k, (name, v) in enumerate(zip(names, make_videos(video_seed(seed, split, i), frames, fps, h, w, twins))):
        write_video(out, db, name, v, frames_of=names[0] if k else None)
    return " ".join(f"{db}/{n}" for n in names)


def generate(out: Path, db: str, counts: dict[str, int], frames: int, fps: float, h: int, w: int, seed: int,
             jobs: int = 1, twins: dict[str, int] | None = None) -> None:
    """Writes every split; `jobs` worker processes (a video depends only on its seed, so the output is the same).
    `twins` (per split, default none): audio twins written after each video and listed in its split."""
    twins = twins or {}
    (out / "fold_lists").mkdir(parents=True, exist_ok=True)
    work = [(out, db, split, i, frames, fps, h, w, seed, twins.get(split, 0))
            for split, count in counts.items() for i in range(count)]
    if jobs > 1:
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            for done in pool.imap_unordered(_generate_one, work):
                print(done, flush=True)
    else:
        for job in work:
            print(_generate_one(job), flush=True)
    for split, count in counts.items():
        lines = [f"{n} {frames} {fps:g}" for i in range(count) for n in video_names(split, i, twins.get(split, 0))]
        (out / "fold_lists" / f"{db}_list_{split}_1_fps.txt").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dtfsal.synth", description=__doc__.split("\n")[0])
    p.add_argument("--out")
    p.add_argument("--db", default="SYNTH")
    p.add_argument("--train", type=int, default=60)
    p.add_argument("--val", type=int, default=8)
    p.add_argument("--test", type=int, default=12)
    p.add_argument("--frames", type=int, default=100)
    p.add_argument("--fps", type=float, default=25.0)
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=192)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=1, help="worker processes")
    p.add_argument("--twins", type=int, default=0,
                   help="audio twins per video (same frames, another object sounding): the data that only sound tells apart")
    p.add_argument("--twin-splits", default="train,val,test", help="the splits that get --twins (comma-separated)")
    p.add_argument("--speech-bank", help="pre-rendered words (.npz) instead of espeak-ng")
    p.add_argument("--write-speech-bank", metavar="BANK", help="write espeak-ng's words to BANK.npz and exit")
    a = p.parse_args(argv)
    if a.write_speech_bank:
        write_speech_bank(Path(a.write_speech_bank))
        return 0
    if not a.out:
        p.error("--out is required")
    if a.speech_bank:
        os.environ["DTFSAL_SPEECH_BANK"] = a.speech_bank
        speech_bank.cache_clear()
    counts = {k: c for k, c in (("train", a.train), ("val", a.val), ("test", a.test)) if c > 0}
    twins = {k: a.twins for k in a.twin_splits.split(",") if k}
    unknown = set(twins) - {"train", "val", "test"}
    if unknown:
        p.error(f"--twin-splits: unknown split(s) {sorted(unknown)} (train, val, test)")
    generate(Path(a.out), a.db, counts, a.frames, a.fps, a.height, a.width, a.seed, a.jobs, twins)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

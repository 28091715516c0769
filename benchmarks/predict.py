"""The predict benchmark: how long tagging your own music takes, stage by stage.

`python -m benchmarks predict` measures, on the machine it runs on:

- `audio`: one 4-minute audio file (a synthetic MP3 at 44.1 kHz stereo, written once into the
  cache folder; WAV where libsndfile cannot write MP3) tagged end to end as `emotion-keras
  predict` tags it, split by stage: `decode_s` (`audio.load_audio`: decode, mono, resample to
  12 kHz), `melspec_s` (`audio.melspectrogram`, the dataset's features in NumPy) and `model_s`
  (the 20-crop average of the model, `Predictor.outputs`), each the median of `--repeats` runs
  after one untimed warm-up (the first model call traces the graph; `first_call_s` reports it).
- `npy`: tracks per second for a folder of `--tracks` 4-minute `.npy` melspecs through
  `serving.predict.predict_files` (read, validate, 20-crop model), after a warm-up.

The model is an untrained `--model` (vgg6 by default) in a throw-away run directory with the
paper's crop (1,280 frames) and test crop count (20): speed does not depend on the weights.
Threads are TensorFlow's defaults unless `TF_NUM_INTRAOP_THREADS` is set; the report says which.
This module only measures; it uses the serving code exactly as the command line does.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.corpus import DEFAULT_CACHE_DIR, machine_description

TRACK_SECONDS = 240.0
AUDIO_RATE_HZ = 44100


def _synthetic_song(path: Path, seconds: float, seed: int = 0) -> Path:
    """Writes a stereo tone-and-noise song; returns the path written (MP3, or WAV fallback)."""
    import soundfile

    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * AUDIO_RATE_HZ)) / AUDIO_RATE_HZ
    notes = 220 * 2 ** (rng.integers(0, 24, size=int(seconds * 2)) / 12)
    melody = np.sin(2 * np.pi * np.repeat(notes, len(t) // len(notes) + 1)[: len(t)] * t)
    signal = 0.3 * melody + 0.05 * rng.normal(size=len(t))
    stereo = np.stack([signal, np.roll(signal, 441)], axis=1).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        soundfile.write(path, stereo, AUDIO_RATE_HZ, format="MP3")
        return path
    except (soundfile.LibsndfileError, TypeError, ValueError):
        wav = path.with_suffix(".wav")
        soundfile.write(wav, stereo, AUDIO_RATE_HZ)
        return wav


def _throwaway_run(root: Path, model: str) -> Path:
    from emotion_keras.config import Config
    from emotion_keras.data.metadata import MOODTHEME_TAGS
    from emotion_keras.models import build_model

    config = Config(model=model)
    run = root / "run"
    (run / "checkpoints").mkdir(parents=True)
    config.to_json(run / "config.json")
    (run / "tags.txt").write_text("\n".join(MOODTHEME_TAGS) + "\n")
    shape = (config.n_bands, config.crop_frames, 1)
    build_model(model, input_shape=shape).save(run / "checkpoints" / "best.keras")
    return run


def _median_time(function, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def run_predict_benchmark(
    model: str = "vgg6", tracks: int = 20, repeats: int = 3, cache_dir: str | None = None
) -> dict:
    from emotion_keras.config import Config
    from emotion_keras.data import audio
    from emotion_keras.serving.predict import load_predictor, predict_files

    cache = Path(cache_dir or DEFAULT_CACHE_DIR) / "predict"
    song = _synthetic_song(cache / f"song-{TRACK_SECONDS:.0f}s.mp3", TRACK_SECONDS)
    with tempfile.TemporaryDirectory() as tmp:
        predictor = load_predictor(_throwaway_run(Path(tmp), model))
        decode_s, signal = _median_time(lambda: audio.load_audio(song), repeats)
        melspec_s, melspec = _median_time(lambda: audio.melspectrogram(signal), repeats)
        start = time.perf_counter()
        predictor.outputs(melspec)
        first_call_s = time.perf_counter() - start
        model_s, _ = _median_time(lambda: predictor.outputs(melspec), repeats)

        folder = Path(tmp) / "npy"
        folder.mkdir()
        for i in range(tracks):
            np.save(folder / f"{i:03d}.npy", np.roll(melspec, 37 * i, axis=1))
        files = sorted(folder.iterdir())
        predict_files(predictor, files[:1])  # warm-up
        start = time.perf_counter()
        records, errors = predict_files(predictor, files)
        npy_s = time.perf_counter() - start
    if errors or len(records) != tracks:
        raise RuntimeError(f"predict benchmark: {len(errors)} of {tracks} tracks failed: {errors}")
    return {
        "machine": machine_description(),
        "threads": {
            "TF_NUM_INTRAOP_THREADS": os.environ.get("TF_NUM_INTRAOP_THREADS", "default"),
            "TF_NUM_INTEROP_THREADS": os.environ.get("TF_NUM_INTEROP_THREADS", "default"),
        },
        "model": model,
        "crops": Config().test_crops,
        "audio": {
            "file": song.name,
            "seconds_of_audio": TRACK_SECONDS,
            "frames": int(melspec.shape[1]),
            "decode_s": round(decode_s, 3),
            "melspec_s": round(melspec_s, 3),
            "model_s": round(model_s, 3),
            "total_s": round(decode_s + melspec_s + model_s, 3),
            "first_call_s": round(first_call_s, 3),
        },
        "npy": {
            "tracks": tracks,
            "seconds": round(npy_s, 3),
            "tracks_per_s": round(tracks / npy_s, 3),
        },
    }


def format_report(result: dict) -> str:
    a, n, m = result["audio"], result["npy"], result["machine"]
    threads = result["threads"]
    return "\n".join(
        [
            f"machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['ram_gb']} GB; TensorFlow "
            f"intra-op threads {threads['TF_NUM_INTRAOP_THREADS']}, inter-op "
            f"{threads['TF_NUM_INTEROP_THREADS']}",
            f"one {a['seconds_of_audio']:.0f} s audio file ({a['file']}, {a['frames']} frames), "
            f"{result['model']}, {result['crops']} crops:",
            f"  decode   {a['decode_s']:7.3f} s",
            f"  melspec  {a['melspec_s']:7.3f} s",
            f"  model    {a['model_s']:7.3f} s   (first call, with tracing: "
            f"{a['first_call_s']:.3f} s)",
            f"  total    {a['total_s']:7.3f} s",
            f".npy folder: {n['tracks']} tracks in {n['seconds']:.3f} s = "
            f"{n['tracks_per_s']:.2f} tracks/s",
        ]
    )

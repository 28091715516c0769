"""The pipeline benchmark: crops per second and peak memory on a cached stand-in corpus.

`python -m benchmarks pipeline` (and `make bench`) measures, on the machine it runs on:

- `train_crops_per_s`: random crops with labels through the real `tf.data` training pipeline
  (`pipeline.train_dataset`, batches of 64, epoch after epoch from one iterator, as the
  trainer builds it: one dataset holds all the epochs of a training phase);
- `eval_crops_per_s`: regular crops through `pipeline.eval_dataset` (10 per track);
- `baseline_crops_per_s`: a plain loop that `np.load`s each whole file and slices a random crop,
  as the original implementation's data loader did, batched the same way;
- `peak_rss_mb`: the peak resident memory of the process that ran the two pipelines, and the
  same for a corpus a quarter the size, to show that memory does not grow with the corpus;
- `frames_major`: both pipelines on a frames-major copy of that quarter
  (`melspec_files.relayout_melspecs`, the optional faster layout), beside the same tracks'
  figures in the official bands-major layout.

The stand-in corpus is `benchmarks/corpus.py`'s (real track lengths; the output says where they
came from). It is read once before measuring so that the page cache is warm, as the targets
assume.

Each measurement runs in a fresh process so that its peak memory is its own. This module only
measures and reports; it must not change what it measures (the pipeline is used as training
uses it).
"""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.corpus import (
    DEFAULT_CACHE_DIR,
    FRAMES_MAJOR,
    MARKER,
    N_BANDS,
    PACKED,
    SHARED_META,
    corpus_bytes,
    corpus_subset,
    drop_page_cache,
    ensure_corpus,
    ensure_packed,
    machine_description,
    warm_file,
    warm_page_cache,
)
from emotion_keras.data.crops import open_reader
from emotion_keras.data.melspec_files import scan_melspecs
from emotion_keras.data.metadata import Subset
from emotion_keras.errors import ConfigError

#: The issue's targets on the 2-core CI machine.
TARGETS = {"train_crops_per_s": 5000.0, "speedup_vs_baseline": 2.5, "rss_growth_mb": 100.0}
#: The packed float16 corpus's targets (issue 15), warm page cache, 2 cores.
PACKED_TARGETS = {
    "train_crops_per_s": 8000.0,
    "eval_crops_per_s": 20000.0,
    "speedup_vs_baseline": 3.0,
    "rss_growth_mb": 100.0,
}


# ---------------------------------------------------------------------------------------------
# Measurements (each call runs in a fresh process when isolated)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _current_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _disk_read_bytes() -> int:
    """Bytes this process (all its threads) has caused to be read from storage so far."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("read_bytes:"):
            return int(line.split()[1])
    raise OSError("/proc/self/io has no read_bytes line")


def _rate(crops: int, seconds: float) -> float:
    return crops / seconds if seconds > 0 else float("nan")


def _time_passes(dataset, seconds: float) -> tuple[float, int]:
    """Crops/s over whole passes of `dataset` after one untimed warm-up pass, and passes timed.

    Each pass iterates the dataset afresh, as `model.fit` does every epoch; the warm-up pass
    absorbs tf.data's start-up and the header cache's first fill.
    """
    from emotion_keras.data.pipeline import data_errors

    crops, timed, passes = 0, 0.0, 0
    global _LAST_CPU_US_PER_CROP
    with data_errors():
        for _ in dataset:
            pass
        cpu_before = _cpu_seconds()
        while timed < seconds or passes == 0:
            started = time.perf_counter()
            for batch in dataset:
                x = batch[0] if isinstance(batch, tuple) else batch
                crops += int(x.shape[0])
            timed += time.perf_counter() - started
            passes += 1
    _LAST_CPU_US_PER_CROP = (_cpu_seconds() - cpu_before) / crops * 1e6 if crops else float("nan")
    return _rate(crops, timed), passes


def _time_stream(dataset, seconds: float, warmup_batches: int = 8) -> tuple[float, int]:
    """Crops/s of one iterator over an endless training dataset (`n_epochs=None`), as the
    trainer's `model.fit` reads it: epochs follow each other without a new iterator. The first
    `warmup_batches` absorb tf.data's start-up; batches are then counted for `seconds`.

    Returns:
        (crops/s, batches timed).
    """
    from emotion_keras.data.pipeline import data_errors

    global _LAST_CPU_US_PER_CROP
    crops, batches = 0, 0
    with data_errors():
        iterator = iter(dataset)
        for _ in range(warmup_batches):
            next(iterator)
        cpu_before, started = _cpu_seconds(), time.perf_counter()
        while time.perf_counter() - started < seconds or batches == 0:
            x, _ = next(iterator)
            crops += int(x.shape[0])
            batches += 1
        timed = time.perf_counter() - started
    _LAST_CPU_US_PER_CROP = (_cpu_seconds() - cpu_before) / crops * 1e6
    return _rate(crops, timed), batches


#: The process CPU time per crop of the last `_time_passes` (user + system, all threads): less
#: sensitive to other jobs on the machine than crops/s; 2 cores give at most 2e6 / it crops/s.
_LAST_CPU_US_PER_CROP = float("nan")


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def measure_pipeline(
    corpus_dir: str,
    n_tracks: int,
    *,
    seconds: float,
    baseline: bool,
    frames_major: bool = False,
    crop_frames: int = 1280,
    batch_size: int = 64,
    eval_crops: int = 10,
    seed: int = 0,
) -> dict:
    """Times the training and evaluation pipelines on the first `n_tracks` of a corpus.

    Peak memory is taken after the two pipelines. Then, for profiling and comparison: the NumPy
    reader alone, the pipelines on the frames-major copy (`frames_major`), and the baseline.
    """
    from emotion_keras.data import pipeline

    corpus_dir = Path(corpus_dir)
    info = json.loads((corpus_dir / MARKER).read_text(encoding="utf-8"))
    subset = corpus_subset(corpus_dir, info, n_tracks)
    data_dir = corpus_dir / "melspecs"
    result = {
        "tracks": n_tracks,
        "corpus_gb": corpus_bytes(data_dir, subset) / 1e9,
        "rss_after_import_mb": _current_rss_mb(),
    }

    # Warm the page cache here, just before measuring: some VMs (this project's CI among them)
    # page out file pages left untouched for a minute.
    result["page_cache_warm_s"] = warm_page_cache(data_dir, subset)
    started = time.perf_counter()
    n_frames = scan_melspecs(data_dir, subset, n_bands=N_BANDS)
    result["scan_s"] = time.perf_counter() - started

    # Training: epoch after epoch from one iterator, as the trainer's model.fit reads them.
    train = pipeline.train_dataset(
        data_dir,
        subset,
        n_frames,
        crop_frames=crop_frames,
        batch_size=batch_size,
        n_bands=N_BANDS,
        seed=seed,
        n_epochs=None,
    )
    result["train_crops_per_s"], result["train_batches_timed"] = _time_stream(train, seconds)
    result["train_cpu_us_per_crop"] = _LAST_CPU_US_PER_CROP
    evaluation = pipeline.eval_dataset(
        data_dir,
        subset,
        n_frames,
        n_crops=eval_crops,
        crop_frames=crop_frames,
        batch_size=batch_size,
        n_bands=N_BANDS,
    )
    result["eval_crops_per_s"], result["eval_passes_timed"] = _time_passes(evaluation, seconds / 2)
    result["peak_rss_mb"] = _peak_rss_mb()

    # For profiling: the NumPy reader alone on this thread, i.e. what one parallel call of the
    # tf.data map does per crop, without TensorFlow.
    reader = pipeline.CropReader(
        data_dir, subset, n_frames, crop_frames=crop_frames, n_bands=N_BANDS
    )
    result["reader_1thread_crops_per_s"] = _reader_alone(
        reader, n_tracks, seconds, batch_size, seed
    )

    if frames_major:
        copy_dir = corpus_dir / FRAMES_MAJOR
        warm_page_cache(copy_dir, subset)
        train = pipeline.train_dataset(
            copy_dir,
            subset,
            n_frames,
            crop_frames=crop_frames,
            batch_size=batch_size,
            n_bands=N_BANDS,
            seed=seed,
            n_epochs=None,
        )
        result["frames_major_train_crops_per_s"], _ = _time_stream(train, seconds)
        evaluation = pipeline.eval_dataset(
            copy_dir,
            subset,
            n_frames,
            n_crops=eval_crops,
            crop_frames=crop_frames,
            batch_size=batch_size,
            n_bands=N_BANDS,
        )
        result["frames_major_eval_crops_per_s"], _ = _time_passes(evaluation, seconds / 2)

    if baseline:
        result["eval_cached_crops_per_s"] = measure_cached_eval(
            data_dir, subset, n_frames, seconds, crop_frames, batch_size, eval_crops
        )
        warm_page_cache(data_dir, subset)
        result["baseline_crops_per_s"] = measure_baseline(
            data_dir, subset, seconds, crop_frames, batch_size, seed
        )
    return result


def _cache_bytes(data_dir, n_tracks: int, crop_frames: int, batch_size: int, eval_crops: int):
    """Bytes the validation crop cache needs, or None if over a quarter of the RAM."""
    n_batches = -(-n_tracks * eval_crops // batch_size)
    itemsize = 2 if str(data_dir).endswith(".h5") else 4  # the packed copy is float16
    needed = n_batches * batch_size * N_BANDS * crop_frames * itemsize
    return None if needed > machine_description()["ram_gb"] * 1e9 / 4 else needed


def _reader_alone(reader, n_tracks: int, seconds: float, batch_size: int, seed: int) -> float:
    """Crops/s of a crop reader alone on this thread (one parallel call of the tf.data map,
    without TensorFlow; for the packed reader, its frames-major crops, before TensorFlow's
    transposition and cast)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n_tracks)
    crops, started = 0, time.perf_counter()
    while time.perf_counter() - started < min(seconds, 3.0) or crops == 0:
        for k in range(0, n_tracks, batch_size):
            tracks = order[k : k + batch_size]
            crops += len(reader.read_random(tracks, rng.integers(0, 2**62, len(tracks))))
    return _rate(crops, time.perf_counter() - started)


def measure_cached_eval(
    data_dir,
    subset,
    n_frames,
    seconds: float,
    crop_frames: int,
    batch_size: int,
    eval_crops: int,
    spill_dir: Path | None = None,
) -> float | None:
    """Evaluation crops/s from the validation crop cache (`pipeline.CropCache`) once filled:
    in RAM, or with `spill_dir` in its temporary file there (no RAM allowed; the file's pages
    warm in the page cache, as after a first validation); None when the crops would take more
    than a quarter of the RAM."""
    from emotion_keras.data import pipeline

    needed = _cache_bytes(data_dir, len(subset), crop_frames, batch_size, eval_crops)
    if needed is None:
        return None
    cache = pipeline.CropCache(0, spill_dir) if spill_dir else pipeline.CropCache(needed)
    settings = dict(n_crops=eval_crops, crop_frames=crop_frames, batch_size=batch_size)
    for _ in pipeline.eval_dataset(data_dir, subset, n_frames, cache=cache, **settings):
        pass  # the first validation: reads the crops and fills the cache
    assert cache.complete and cache.on_disk == bool(spill_dir)
    cached = pipeline.eval_dataset(data_dir, subset, n_frames, cache=cache, **settings)
    return _time_passes(cached, seconds / 2)[0]


def measure_packed(
    corpus_dir: str,
    n_tracks: int,
    *,
    seconds: float,
    cached_eval: bool,
    crop_frames: int = 1280,
    batch_size: int = 64,
    eval_crops: int = 10,
    seed: int = 0,
) -> dict:
    """Training and evaluation crops/s from the packed float16 copy, warm page cache."""
    from emotion_keras.data import pipeline

    corpus_dir = Path(corpus_dir)
    info = json.loads((corpus_dir / MARKER).read_text(encoding="utf-8"))
    subset = corpus_subset(corpus_dir, info, n_tracks)
    path = corpus_dir / PACKED
    result = {
        "format": "packed",
        "dtype": "float16",
        "tracks": n_tracks,
        "file_gb": path.stat().st_size / 1e9,
        "page_cache_warm_s": warm_file(path),
    }
    n_frames = scan_melspecs(path, subset, n_bands=N_BANDS)
    settings = dict(crop_frames=crop_frames, batch_size=batch_size, n_bands=N_BANDS)
    train = pipeline.train_dataset(path, subset, n_frames, seed=seed, n_epochs=None, **settings)
    result["train_crops_per_s"], result["train_batches_timed"] = _time_stream(train, seconds)
    result["train_cpu_us_per_crop"] = _LAST_CPU_US_PER_CROP
    evaluation = pipeline.eval_dataset(path, subset, n_frames, n_crops=eval_crops, **settings)
    result["eval_crops_per_s"], result["eval_passes_timed"] = _time_passes(evaluation, seconds / 2)
    result["peak_rss_mb"] = _peak_rss_mb()
    reader = open_reader(path, subset, n_frames, crop_frames=crop_frames, n_bands=N_BANDS)
    result["reader_1thread_crops_per_s"] = _reader_alone(
        reader, n_tracks, seconds, batch_size, seed
    )
    if cached_eval:
        result["eval_cached_crops_per_s"] = measure_cached_eval(
            path, subset, n_frames, seconds, crop_frames, batch_size, eval_crops
        )
        result["eval_disk_cached_crops_per_s"] = measure_cached_eval(
            path, subset, n_frames, seconds, crop_frames, batch_size, eval_crops, corpus_dir
        )
    return result


def measure_cold(
    corpus_dir: str,
    n_tracks: int,
    *,
    source: str,
    crop_frames: int = 1280,
    batch_size: int = 64,
    eval_crops: int = 10,
    seed: int = 0,
) -> dict:
    """One training epoch and one validation pass from a cold page cache: crops/s and bytes read
    from disk (`/proc/self/io` read_bytes), then a validation served by the crop cache.

    The cache is dropped for exactly the files the benchmark wrote (`posix_fadvise(DONTNEED)`).
    The tf.data start-up (a fraction of a second) is inside the timed epoch.
    """
    from emotion_keras.data import pipeline

    corpus_dir = Path(corpus_dir)
    info = json.loads((corpus_dir / MARKER).read_text(encoding="utf-8"))
    subset = corpus_subset(corpus_dir, info, n_tracks)
    if source == "packed":
        data_dir = corpus_dir / PACKED
        files = [data_dir]
    else:
        data_dir = corpus_dir / "melspecs"
        files = [data_dir / p for p in subset.melspec_paths]
    n_frames = scan_melspecs(data_dir, subset, n_bands=N_BANDS)
    settings = dict(crop_frames=crop_frames, batch_size=batch_size, n_bands=N_BANDS)

    def cold_pass(dataset) -> tuple[float, int]:
        drop_page_cache(files)
        read_before, crops, started = _disk_read_bytes(), 0, time.perf_counter()
        with pipeline.data_errors():
            for batch in dataset:
                crops += int((batch[0] if isinstance(batch, tuple) else batch).shape[0])
        return _rate(crops, time.perf_counter() - started), _disk_read_bytes() - read_before

    result = {"format": source, "tracks": n_tracks}
    train = pipeline.train_dataset(data_dir, subset, n_frames, seed=seed, **settings)
    result["cold_train_crops_per_s"], result["disk_bytes_per_epoch"] = cold_pass(train)
    evaluation = pipeline.eval_dataset(data_dir, subset, n_frames, n_crops=eval_crops, **settings)
    result["cold_eval_crops_per_s"], result["disk_bytes_per_validation"] = cold_pass(evaluation)
    # With the validation crop cache: the first validation fills it, later ones read nothing.
    needed = _cache_bytes(data_dir, n_tracks, crop_frames, batch_size, eval_crops)
    result["disk_bytes_per_cached_validation"] = None
    if needed is not None:
        cache = pipeline.CropCache(needed)
        eval_settings = dict(n_crops=eval_crops, cache=cache, **settings)
        cold_pass(pipeline.eval_dataset(data_dir, subset, n_frames, **eval_settings))
        cached = pipeline.eval_dataset(data_dir, subset, n_frames, **eval_settings)
        _, result["disk_bytes_per_cached_validation"] = cold_pass(cached)
    result["data_bytes"] = sum(Path(f).stat().st_size for f in files)
    return result


def measure_baseline(
    data_dir: Path, subset: Subset, seconds: float, crop_frames: int, batch_size: int, seed: int
) -> float:
    """Crops/s of the original approach: load each whole file, slice a random crop, batch."""
    rng = np.random.default_rng(seed)
    labels = subset.labels.astype(np.float32)
    crops, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds or crops == 0:
        order = rng.permutation(len(subset))
        for k in range(0, len(order), batch_size):
            batch = []
            for track in order[k : k + batch_size]:
                melspec = np.load(data_dir / subset.melspec_paths[track])  # the whole file
                start = int(rng.integers(0, melspec.shape[1] - crop_frames + 1))
                batch.append(melspec[:, start : start + crop_frames])
            x, _ = np.stack(batch)[..., None], labels[order[k : k + batch_size]]
            crops += len(x)
            if time.perf_counter() - started >= seconds:
                break
    return _rate(crops, time.perf_counter() - started)


def _run(isolate: bool, function, **kwargs) -> dict:
    if not isolate:
        return function(**kwargs)
    # A fresh process per measurement: its peak RSS is the pipeline's own, not the corpus
    # writer's or a previous measurement's.
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as executor:
        return executor.submit(function, **kwargs).result()


# ---------------------------------------------------------------------------------------------
# The benchmark


def run_pipeline_benchmark(
    corpus_dir: str | Path | None = None,
    tracks: int = 1000,
    *,
    seconds: float = 8.0,
    seed: int = 0,
    isolate: bool = True,
    meta_dir: Path | None = SHARED_META,
    progress: bool = True,
) -> dict:
    """Runs the whole benchmark and returns its figures (see the module docstring).

    Args:
        corpus_dir: where the corpus is cached (default `.cache/bench/corpus-N`).
        tracks: tracks in the corpus (1,000 is about 4 GB with the real lengths).
        seconds: at least this long for each throughput figure.
        seed: fixes the corpus and the crops.
        isolate: measure in fresh processes (off only for quick tests: peak RSS then includes
            whatever the calling process holds).
        meta_dir: where the real durations are (None: use the fallback).
        progress: print progress to stderr.
    """
    if tracks < 4:
        raise ConfigError(
            f"--tracks {tracks}: must be at least 4 (a quarter of the corpus is measured too)"
        )
    if not seconds > 0:
        raise ConfigError(f"--seconds {seconds}: must be positive")
    corpus_dir = Path(corpus_dir) if corpus_dir else DEFAULT_CACHE_DIR / f"corpus-{tracks}"
    info, generated = ensure_corpus(
        corpus_dir, tracks, seed=seed, meta_dir=meta_dir, progress=progress
    )
    load_before = os.getloadavg()[0]

    def say(message):
        if progress:
            print(message, file=sys.stderr)

    say(f"Measuring {tracks} tracks ({info['bytes'] / 1e9:.2f} GB) ...")
    large = _run(
        isolate,
        measure_pipeline,
        corpus_dir=str(corpus_dir),
        n_tracks=tracks,
        seconds=seconds,
        baseline=True,
        seed=seed,
    )
    small_tracks = tracks // 4
    say(f"Measuring {small_tracks} tracks (peak memory of a smaller corpus) ...")
    small = _run(
        isolate,
        measure_pipeline,
        corpus_dir=str(corpus_dir),
        n_tracks=small_tracks,
        seconds=seconds,
        baseline=False,
        frames_major=True,
        seed=seed,
    )
    packed_path = ensure_packed(corpus_dir, info, progress)
    say(f"Measuring the packed float16 copy ({packed_path.stat().st_size / 1e9:.2f} GB) ...")
    common = dict(corpus_dir=str(corpus_dir), seconds=seconds, seed=seed)
    packed_large = _run(isolate, measure_packed, n_tracks=tracks, cached_eval=True, **common)
    packed_small = _run(isolate, measure_packed, n_tracks=small_tracks, cached_eval=False, **common)
    say("Measuring from a cold page cache (both formats) ...")
    cold = {
        source: _run(
            isolate,
            measure_cold,
            corpus_dir=str(corpus_dir),
            n_tracks=tracks,
            source=source,
            seed=seed,
        )
        for source in ("npy", "packed")
    }
    cold_keys = (
        "cold_train_crops_per_s",
        "disk_bytes_per_epoch",
        "cold_eval_crops_per_s",
        "disk_bytes_per_validation",
        "disk_bytes_per_cached_validation",
        "data_bytes",
    )
    packed_result = {
        **{
            k: packed_large[k]
            for k in (
                "format",
                "dtype",
                "file_gb",
                "train_crops_per_s",
                "eval_crops_per_s",
                "eval_cached_crops_per_s",
                "eval_disk_cached_crops_per_s",
                "reader_1thread_crops_per_s",
                "train_cpu_us_per_crop",
            )
        },
        "speedup_vs_baseline": packed_large["train_crops_per_s"] / large["baseline_crops_per_s"],
        "peak_rss_mb": packed_large["peak_rss_mb"],
        "small_corpus": {
            k: packed_small[k]
            for k in ("tracks", "peak_rss_mb", "train_crops_per_s", "eval_crops_per_s")
        },
        "rss_growth_mb": packed_large["peak_rss_mb"] - packed_small["peak_rss_mb"],
        **{k: cold["packed"][k] for k in cold_keys},
    }
    result = {
        "format": "npy",
        "dtype": "float32",
        "train_crops_per_s": large["train_crops_per_s"],
        "eval_crops_per_s": large["eval_crops_per_s"],
        "baseline_crops_per_s": large["baseline_crops_per_s"],
        "speedup_vs_baseline": large["train_crops_per_s"] / large["baseline_crops_per_s"],
        "peak_rss_mb": large["peak_rss_mb"],
        "tracks": tracks,
        "corpus_gb": large["corpus_gb"],
        "small_corpus": {
            k: small[k]
            for k in ("tracks", "corpus_gb", "peak_rss_mb", "train_crops_per_s", "eval_crops_per_s")
        },
        # The optional frames-major layout, measured on the small corpus beside its own
        # bands-major figures above (same tracks, same crops).
        "frames_major": {
            "tracks": small["tracks"],
            "train_crops_per_s": small["frames_major_train_crops_per_s"],
            "eval_crops_per_s": small["frames_major_eval_crops_per_s"],
        },
        "rss_growth_mb": large["peak_rss_mb"] - small["peak_rss_mb"],
        "eval_cached_crops_per_s": large["eval_cached_crops_per_s"],
        "train_cpu_us_per_crop": large["train_cpu_us_per_crop"],
        **{k: cold["npy"][k] for k in cold_keys},
        "packed": packed_result,
        "rss_after_import_mb": large["rss_after_import_mb"],
        "reader_1thread_crops_per_s": large["reader_1thread_crops_per_s"],
        "scan_s": large["scan_s"],
        "settings": {
            "crop_frames": 1280,
            "n_bands": N_BANDS,
            "batch_size": 64,
            "eval_crops": 10,
            "seconds": seconds,
            "seed": seed,
            "isolated": isolate,
        },
        "lengths_source": info["lengths_source"],
        "corpus_dir": str(corpus_dir),
        "corpus_generated_now": generated,
        "page_cache_warm_s": large["page_cache_warm_s"],
        "machine": machine_description(),
        "load_avg_1min": {"before": load_before, "after": os.getloadavg()[0]},
    }
    result["targets_met"] = {
        "train_crops_per_s >= 5000": result["train_crops_per_s"] >= TARGETS["train_crops_per_s"],
        "speedup_vs_baseline >= 2.5": result["speedup_vs_baseline"]
        >= TARGETS["speedup_vs_baseline"],
        "rss_growth_mb < 100": result["rss_growth_mb"] < TARGETS["rss_growth_mb"],
        **{
            f"packed {key} {'<' if key == 'rss_growth_mb' else '>='} {target:g}": (
                packed_result[key] < target
                if key == "rss_growth_mb"
                else packed_result[key] >= target
            )
            for key, target in PACKED_TARGETS.items()
        },
    }
    return result


def format_report(result: dict) -> str:
    """The benchmark's figures as a short human-readable report."""
    machine = result["machine"]
    small = result["small_corpus"]
    met = ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in result["targets_met"].items())
    return "\n".join(
        [
            f"Pipeline benchmark on {machine['nproc']} x {machine['cpu_model']}, "
            f"{machine['ram_gb']} GB RAM (load average {result['load_avg_1min']['before']:.2f} "
            f"before, {result['load_avg_1min']['after']:.2f} after)",
            f"corpus: {result['tracks']} tracks, {result['corpus_gb']:.2f} GB in "
            f"{result['corpus_dir']}; lengths: {result['lengths_source']}",
            f"  training crops/s (tf.data, batch 64, labels)  {result['train_crops_per_s']:10,.0f}",
            f"  evaluation crops/s (10 regular crops/track)   {result['eval_crops_per_s']:10,.0f}",
            f"  baseline crops/s (np.load whole file, slice)  "
            f"{result['baseline_crops_per_s']:10,.0f}",
            f"  speed-up of training over baseline            "
            f"{result['speedup_vs_baseline']:10.2f}x",
            f"  optional frames-major copy ({result['frames_major']['tracks']} tracks): training "
            f"{result['frames_major']['train_crops_per_s']:,.0f} crops/s, evaluation "
            f"{result['frames_major']['eval_crops_per_s']:,.0f} (bands-major, same tracks: "
            f"{small['train_crops_per_s']:,.0f} and {small['eval_crops_per_s']:,.0f})",
            f"  NumPy reader alone, one thread, crops/s       "
            f"{result['reader_1thread_crops_per_s']:10,.0f}",
            f"  header scan of {result['tracks']} files             {result['scan_s']:10.2f} s",
            f"  peak RSS: {result['peak_rss_mb']:,.0f} MB with {result['tracks']} tracks "
            f"({result['corpus_gb']:.2f} GB), {small['peak_rss_mb']:,.0f} MB with "
            f"{small['tracks']} tracks ({small['corpus_gb']:.2f} GB): growth "
            f"{result['rss_growth_mb']:+.0f} MB (resident after importing TensorFlow: "
            f"{result['rss_after_import_mb']:,.0f} MB)",
            _packed_lines(result),
            _cold_lines(result),
            f"targets met: {met}",
        ]
    )


def _rate_or_none(value) -> str:
    return "n/a (over a quarter of the RAM)" if value is None else f"{value:,.0f}"


def _packed_lines(result: dict) -> str:
    packed = result["packed"]
    return "\n".join(
        [
            f"packed float16 copy ({packed['file_gb']:.2f} GB, same tracks):",
            f"  training crops/s                              {packed['train_crops_per_s']:10,.0f}",
            f"  evaluation crops/s                            {packed['eval_crops_per_s']:10,.0f}",
            f"  evaluation crops/s from the crop cache        "
            f"{_rate_or_none(packed['eval_cached_crops_per_s']):>10}"
            f" (.npy: {_rate_or_none(result['eval_cached_crops_per_s'])})",
            f"  ... from the crop cache's file on disk        "
            f"{_rate_or_none(packed['eval_disk_cached_crops_per_s']):>10}",
            f"  speed-up of training over baseline            "
            f"{packed['speedup_vs_baseline']:10.2f}x",
            f"  packed reader alone, one thread, crops/s      "
            f"{packed['reader_1thread_crops_per_s']:10,.0f}",
            f"  training CPU time per crop (all threads)      "
            f"{packed['train_cpu_us_per_crop']:10,.0f} us (.npy: "
            f"{result['train_cpu_us_per_crop']:,.0f} us)",
            f"  peak RSS: {packed['peak_rss_mb']:,.0f} MB with {result['tracks']} tracks, "
            f"{packed['small_corpus']['peak_rss_mb']:,.0f} MB with "
            f"{packed['small_corpus']['tracks']}: growth {packed['rss_growth_mb']:+.0f} MB",
        ]
    )


def _cold_lines(result: dict) -> str:
    lines = ["cold page cache (posix_fadvise DONTNEED on the benchmark's files):"]
    for name, figures in (("npy float32", result), ("packed float16", result["packed"])):
        cached = figures["disk_bytes_per_cached_validation"]
        lines.append(
            f"  {name:15s} training {figures['cold_train_crops_per_s']:8,.0f} crops/s, "
            f"{figures['disk_bytes_per_epoch'] / 1e6:8,.1f} MB read per epoch; validation "
            f"{figures['cold_eval_crops_per_s']:8,.0f} crops/s, "
            f"{figures['disk_bytes_per_validation'] / 1e6:8,.1f} MB per pass "
            f"({'n/a' if cached is None else f'{cached / 1e6:,.1f} MB'} with the crop cache); "
            f"data {figures['data_bytes'] / 1e9:.2f} GB"
        )
    return "\n".join(lines)

"""Tags for a user's own files: audio or `.npy` mel-spectrograms, through a run or an export.

A model source is either a run directory (its best checkpoint; thresholds from `evaluate` when
present) or an export folder (`emotion-keras export`; loaded with TensorFlow alone; thresholds
from its `export.json` when the run was evaluated before export). Both go
through the same crop-averaging function the export serves (`emotion_keras.serving.export`), so a
run and its export give the same probabilities. Audio is turned into the dataset's own features
first (`emotion_keras.data.audio`); `.npy` files are validated as the training data is
(`emotion_keras.data.melspec_files`).

A file that cannot be read gets one error line naming it; the others still complete.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from emotion_keras.data.audio import AUDIO_SUFFIXES
from emotion_keras.data.dataset import MTG_JAMENDO
from emotion_keras.errors import DataFileError, EmotionKerasError, ModelError
from emotion_keras.progress import Progress, no_progress
from emotion_keras.rundir import RunDir
from emotion_keras.serving.export import EXPORT_MARKER, WINDOWS_ENDPOINT

SUFFIXES = (".npy",) + AUDIO_SUFFIXES


@dataclasses.dataclass
class Predictor:
    """Maps one `[n_bands, frames]` melspec to crop-averaged probabilities."""

    tags: tuple[str, ...]
    n_bands: int
    thresholds: np.ndarray | None
    serve: Callable
    source: str
    #: What `serve` belongs to (a loaded SavedModel): its variables live as long as it does.
    owner: object = None
    #: Scores windows `[n, n_bands, crop_frames]` one by one (`export.windows_fn`); None for an
    #: export written before it had that endpoint.
    windows: Callable | None = None
    crop_frames: int = 0

    def __call__(self, melspec: np.ndarray) -> np.ndarray:
        return self.outputs(melspec)["probabilities"]

    def outputs(self, melspec: np.ndarray) -> dict[str, np.ndarray]:
        """`probabilities` (float32 `[tags]`) and, with thresholds, `decisions` (bool)."""
        import tensorflow as tf

        served = self.serve(tf.constant(melspec, tf.float32))
        return {k: np.asarray(served[k]) for k in ("probabilities", "decisions") if k in served}

    def score_windows(self, windows: np.ndarray) -> np.ndarray:
        """Probabilities `[n, tags]` of windows `[n, n_bands, crop_frames]`."""
        import tensorflow as tf

        if self.windows is None:
            raise ModelError(
                f"{self.source}: this export has no windows endpoint (an ensemble, or written "
                f"by an older version); use a run or a single run's new export for timelines "
                f"and plots"
            )
        return np.asarray(self.windows(tf.constant(windows, tf.float32))["probabilities"])


def load_predictor(path: str | Path) -> Predictor:
    """A predictor from a run directory or an export folder."""
    path = Path(path)
    if (path / EXPORT_MARKER).is_file():
        return _load_export(path)
    run_dir = RunDir(path)
    if run_dir.is_run():
        from emotion_keras.rundir import load_run
        from emotion_keras.serving.export import crop_average_fn, read_thresholds, windows_fn

        run = load_run(run_dir)
        config = run.config
        thresholds = read_thresholds(run_dir, len(run.tags))
        serve = crop_average_fn(
            run.model,
            n_bands=config.n_bands,
            crop_frames=config.crop_frames,
            n_crops=config.test_crops,
            tags=run.tags,
            pad_value=MTG_JAMENDO.pad_value,
            thresholds=thresholds,
            hop_frames=config.eval_hop_frames,
            whole_track=config.eval_mode == "track",
        )
        windows = windows_fn(run.model, n_bands=config.n_bands, crop_frames=config.crop_frames)
        return Predictor(
            run.tags,
            config.n_bands,
            thresholds,
            serve,
            str(run.checkpoint),
            windows=windows,
            crop_frames=config.crop_frames,
        )
    if run_dir.is_ensemble():  # an ensemble serves through its one-graph export
        if (run_dir.default_export / EXPORT_MARKER).is_file():
            return _load_export(run_dir.default_export)
        raise ModelError(
            f"{path}: an ensemble folder without its export; export it first "
            f"(emotion-keras export {path}), then give the ensemble or its export"
        )
    raise ModelError(
        f"{path}: neither a run directory (config.json) nor an export ({EXPORT_MARKER})"
    )


def _load_export(path: Path) -> Predictor:
    import tensorflow as tf

    for part in ("saved_model", "tags.txt"):
        if not (path / part).exists():
            raise ModelError(f"{path}: an incomplete export (no {part}); export the run again")
    try:
        info = json.loads((path / EXPORT_MARKER).read_text(encoding="utf-8"))
        n_bands = int(info["n_bands"])
        crop_frames = int(info.get("crop_frames", 0))  # an ensemble's members have their own
        thresholds = info.get("thresholds")
        thresholds = None if thresholds is None else np.asarray(thresholds, np.float64)
    except (ValueError, KeyError, TypeError) as error:
        raise ModelError(
            f"{path / EXPORT_MARKER}: not an export description ({type(error).__name__}: {error})"
        ) from None
    try:
        served = tf.saved_model.load(str(path / "saved_model"))
    except (OSError, ValueError, tf.errors.OpError) as error:
        detail = (str(error).strip().splitlines() or [""])[0][:200]
        raise ModelError(
            f"{path / 'saved_model'}: not a loadable SavedModel ({type(error).__name__}: {detail})"
        ) from None
    tags = tuple((path / "tags.txt").read_text(encoding="utf-8").split())
    if thresholds is not None and thresholds.shape != (len(tags),):
        raise ModelError(
            f"{path / EXPORT_MARKER}: {thresholds.size} thresholds for {len(tags)} tags; "
            f"export the run again"
        )
    return Predictor(
        tags,
        n_bands,
        thresholds,
        served.serve,
        str(path),
        owner=served,
        windows=getattr(served, WINDOWS_ENDPOINT, None),
        crop_frames=crop_frames,
    )


def expand_inputs(inputs) -> list[Path]:
    """Files as given, folders searched recursively for `.npy` and audio files, sorted."""
    files = []
    for item in map(Path, inputs):
        if item.is_dir():
            files.extend(sorted(p for p in item.rglob("*") if p.suffix.lower() in SUFFIXES))
        else:
            files.append(item)
    return files


def melspec_of(path: Path, n_bands: int) -> np.ndarray:
    if not path.is_file():
        raise DataFileError(f"{path}: file not found")
    if path.suffix.lower() == ".npy":
        from emotion_keras.data.melspec_files import load_melspec

        return load_melspec(path, n_bands)
    if path.suffix.lower() in AUDIO_SUFFIXES:
        from emotion_keras.data import audio

        return audio.melspec_file(path)
    raise DataFileError(
        f"{path}: unsupported file type (expected .npy or {', '.join(AUDIO_SUFFIXES)})"
    )


def predict_files(
    predictor: Predictor,
    files,
    top_k: int = 5,
    progress: Progress | None = None,
    each: Callable[[Path, np.ndarray, dict], None] | None = None,
) -> tuple[list[dict], list[str]]:
    """Predicts every file; returns (one record per good file, one error line per bad file).

    `progress` is told before each file, with the file as its note. `each(path, melspec,
    record)` is called for every good file (timelines and plots, without decoding it again).
    """
    records, errors = [], []
    progress = progress or no_progress
    for i, path in enumerate(files):
        progress(i, len(files), str(path))
        try:
            melspec = melspec_of(Path(path), predictor.n_bands)
            outputs = predictor.outputs(melspec)
        except EmotionKerasError as error:
            errors.append(str(error))
            continue
        probabilities = outputs["probabilities"]
        order = np.argsort(-probabilities, kind="stable")[:top_k]
        record = {
            "file": str(path),
            "top_tags": [predictor.tags[j] for j in order],
            "probabilities": dict(zip(predictor.tags, map(float, probabilities))),
        }
        if "decisions" in outputs:  # probabilities >= the thresholds, in the graph
            record["decisions"] = [t for t, d in zip(predictor.tags, outputs["decisions"]) if d]
        records.append(record)
        if each is not None:
            each(Path(path), melspec, record)
    progress(len(files), len(files), "")
    return records, errors


def format_records(records: list[dict], tags, fmt: str) -> str:
    """CSV (one row per file: file, top tags, then every tag's probability) or JSON."""
    if fmt == "json":
        return json.dumps(records, indent=2) + "\n"
    import pandas as pd

    rows = []
    for record in records:
        row = {"file": record["file"], "top_tags": ";".join(record["top_tags"])}
        if "decisions" in record:
            row["decisions"] = ";".join(record["decisions"])
        row.update(record["probabilities"])
        rows.append(row)
    columns = (
        ["file", "top_tags"]
        + (["decisions"] if any("decisions" in r for r in records) else [])
        + list(tags)
    )
    return pd.DataFrame(rows, columns=columns).to_csv(index=False, float_format="%.6f")

"""Tags for a user's own files: audio or `.npy` mel-spectrograms, through a run or an export.

A model source is either a run directory (its best checkpoint; thresholds from `evaluate` when
present) or an export folder (`emotion-keras export`; loaded with TensorFlow alone). Both go
through the same crop-averaging function the export serves (`emotion_keras.export`), so a run
and its export give the same probabilities. Audio is turned into the dataset's own features
first (`emotion_keras.audio`).

A file that cannot be read gets one error line naming it; the others still complete.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Callable

import numpy as np

from emotion_keras.errors import DataFileError, EmotionKerasError, ModelError

AUDIO_SUFFIXES = (".mp3", ".wav", ".ogg", ".flac")
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

    def __call__(self, melspec: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        return np.asarray(self.serve(tf.constant(melspec, tf.float32))["probabilities"])


def load_predictor(path: str | Path) -> Predictor:
    """A predictor from a run directory or an export folder."""
    path = Path(path)
    if (path / "export.json").is_file():
        import tensorflow as tf

        info = json.loads((path / "export.json").read_text())
        served = tf.saved_model.load(str(path / "saved_model"))
        tags = tuple((path / "tags.txt").read_text(encoding="utf-8").split())
        return Predictor(tags, info["n_bands"], None, served.serve, str(path), owner=served)
    if (path / "config.json").is_file():
        from emotion_keras import inference
        from emotion_keras.export import crop_average_fn

        run = inference.load_run(path)
        config = run.config
        thresholds_path = path / "thresholds.npy"
        thresholds = (np.load(thresholds_path, allow_pickle=False)
                      if thresholds_path.is_file() else None)
        serve = crop_average_fn(run.model, n_bands=config.n_bands,
                                crop_frames=config.crop_frames, n_crops=config.test_crops,
                                tags=run.tags, pad_value=inference.PAD_VALUE)
        return Predictor(run.tags, config.n_bands, thresholds, serve, str(run.checkpoint))
    raise ModelError(f"{path}: neither a run directory (config.json) nor an export "
                     f"(export.json)")


def expand_inputs(inputs) -> list[Path]:
    """Files as given, folders searched recursively for `.npy` and audio files, sorted."""
    files = []
    for item in map(Path, inputs):
        if item.is_dir():
            files.extend(sorted(p for p in item.rglob("*") if p.suffix.lower() in SUFFIXES))
        else:
            files.append(item)
    return files


def load_melspec_npy(path: Path, n_bands: int) -> np.ndarray:
    """A user's `[n_bands, frames]` melspec `.npy`, validated (never unpickled)."""
    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataFileError(f"{path}: file not found") from None
    except ValueError as error:
        raise DataFileError(f"{path}: not a plain .npy array ({error})") from None
    except (OSError, EOFError) as error:
        raise DataFileError(f"{path}: unreadable or truncated .npy ({error})") from None
    if array.ndim != 2 or array.shape[0] != n_bands:
        raise DataFileError(f"{path}: shape {array.shape}, expected [{n_bands}, frames]")
    if not np.issubdtype(array.dtype, np.floating):
        raise DataFileError(f"{path}: dtype {array.dtype}, expected float32")
    if array.shape[1] < 1:
        raise DataFileError(f"{path}: no frames")
    if not np.isfinite(array).all():
        raise DataFileError(f"{path}: holds NaN or infinite values")
    return array.astype(np.float32, copy=False)


def melspec_of(path: Path, n_bands: int) -> np.ndarray:
    if not path.is_file():
        raise DataFileError(f"{path}: file not found")
    if path.suffix.lower() == ".npy":
        return load_melspec_npy(path, n_bands)
    if path.suffix.lower() in AUDIO_SUFFIXES:
        from emotion_keras import audio

        return audio.melspec_file(path)
    raise DataFileError(f"{path}: unsupported file type (expected .npy or "
                        f"{', '.join(AUDIO_SUFFIXES)})")


def predict_files(predictor: Predictor, files, top_k: int = 5,
                  progress: bool = True) -> tuple[list[dict], list[str]]:
    """Predicts every file; returns (one record per good file, one error line per bad file)."""
    records, errors = [], []
    for i, path in enumerate(files, start=1):
        if progress and len(files) > 1:
            print(f"[{i}/{len(files)}] {path}", file=sys.stderr)
        try:
            probabilities = predictor(melspec_of(Path(path), predictor.n_bands))
        except EmotionKerasError as error:
            errors.append(str(error))
            continue
        order = np.argsort(-probabilities, kind="stable")[:top_k]
        record = {"file": str(path),
                  "top_tags": [predictor.tags[j] for j in order],
                  "probabilities": dict(zip(predictor.tags, map(float, probabilities)))}
        if predictor.thresholds is not None:
            record["decisions"] = [t for t, p, th in zip(predictor.tags, probabilities,
                                                         predictor.thresholds) if p >= th]
        records.append(record)
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
    columns = ["file", "top_tags"] + (["decisions"] if any("decisions" in r for r in records)
                                      else []) + list(tags)
    return pd.DataFrame(rows, columns=columns).to_csv(index=False, float_format="%.6f")

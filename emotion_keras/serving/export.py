"""Exporting a trained run as a TensorFlow SavedModel that needs nothing of this package.

The export's serving endpoint takes one full-length mel-spectrogram (float32 `[96, frames]`, any
number of frames >= 1, unbatched: tracks differ in length) and returns the tag probabilities
averaged over regular crops, computed in-graph exactly as `emotion-keras evaluate` computes them:
crop i of K starts at `i * (frames - T) // (K - 1)` (or, for a run with `eval_mode` "windows",
crop-long windows slide over the whole track, `pipeline.sliding_window_starts`; or, with
"track", the whole track goes through the network in one pass), and a track shorter than T
frames is first padded as the training pipeline pads it (`emotion_keras.data.pipeline`). When the
run was evaluated, the per-tag thresholds chosen on validation travel with it and the endpoint
also returns the decisions (`probabilities >= thresholds`). The tag names travel with it, as an
output, in `export.json` and as `tags.txt`; the native `.keras` model is written beside it.

    OUT/saved_model/    tf.saved_model.load(...).serve(melspec)
                          -> {"probabilities", "tags"[, "decisions"]}
                        .windows(windows [n, 96, T]) -> {"probabilities" [n, 56]}, one per window
    OUT/model.keras     the same network for Keras users
    OUT/tags.txt        one tag per line, in output order
    OUT/export.json     tags, thresholds (or null), crop length and count, source run, versions
    OUT/MODEL_CARD.md   what the model is, how it was trained and scored, and its limits
    OUT/model.tflite, OUT/model.onnx   with `formats` (`emotion_keras.serving.formats`)

The folder is built under a temporary name and renamed when complete, so an interrupted export
never leaves a directory that looks complete.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from emotion_keras.data.dataset import MTG_JAMENDO
from emotion_keras.errors import ConfigError
from emotion_keras.fileio import atomic_directory
from emotion_keras.progress import log
from emotion_keras.rundir import RunDir, load_run

SERVE_ENDPOINT = "serve"
#: The endpoint that scores fixed-length windows one by one (timelines and taggrams).
WINDOWS_ENDPOINT = "windows"
#: Export formats; the SavedModel is always written (the others are converted from it).
FORMATS = ("savedmodel", "tflite", "onnx")
#: The file that marks a folder as an export of ours (and that `overwrite` may replace).
EXPORT_MARKER = "export.json"
MODEL_CARD = "MODEL_CARD.md"


def check_export_target(out_dir: str | Path, run_dir: str | Path, overwrite: bool = False) -> None:
    """Refuses an export folder whose replacement would destroy something.

    An export replaces its folder whole, so the folder must be new, empty, or a previous export
    of ours (`export.json`) with `overwrite`; it may never be a run directory, hold one, or be
    the folder of the run being exported or one above it.

    Raises:
        ConfigError: naming `out_dir` and what it holds.
    """
    out_dir, run_dir = Path(out_dir), Path(run_dir)
    target = out_dir.resolve()
    run = run_dir.resolve()

    def refuse(reason: str):
        raise ConfigError(f"out_dir {out_dir}: {reason}", arguments=("out_dir", "overwrite"))

    if target == run or target in run.parents:
        refuse(
            f"is the run directory {run_dir} or a folder above it; an export replaces its "
            f"folder whole and would destroy the run (give a new folder, or none for "
            f"{RunDir(run_dir).default_export})"
        )
    if out_dir.exists() and not out_dir.is_dir():
        refuse("is a file, expected a folder for the export")
    if not out_dir.is_dir() or not any(out_dir.iterdir()):
        return
    if RunDir(out_dir).is_run():
        refuse("is a run directory; an export never replaces one (give a new folder)")
    if not (out_dir / EXPORT_MARKER).is_file():
        refuse(
            f"exists and is not an export of emotion-keras (no {EXPORT_MARKER}); give a new "
            f"or empty folder"
        )
    if not overwrite:
        refuse("holds an earlier export; give overwrite to replace it, or a new folder")


def crop_average_fn(
    model,
    *,
    n_bands: int,
    crop_frames: int,
    n_crops: int,
    tags,
    pad_value: float,
    thresholds=None,
    with_tags: bool = True,
    hop_frames: int | None = None,
    whole_track: bool = False,
):
    """A `tf.function` from one `[n_bands, frames]` melspec to crop-averaged probabilities.

    Args:
        model: a Keras model taking `[batch, n_bands, crop_frames, 1]`.
        n_bands, crop_frames, n_crops: the crop geometry (T and K).
        hop_frames: None for K regular crops; else sliding windows this many frames apart over
            the whole track, the last ending at its end (`n_crops` is then not used).
        whole_track: instead, the whole track (padded to `crop_frames` if shorter) in one pass
            through `models.whole_track_model(model)`, which shares `model`'s variables.
        tags: tag names, returned as the `tags` output (unless not `with_tags`: ONNX).
        pad_value: what a track shorter than `crop_frames` is padded with at its end (the
            pipeline's rule, so the export agrees with evaluation).
        thresholds: per-tag thresholds; when given, a `decisions` output (bool) is added.
    """
    import tensorflow as tf

    # Constants are made inside the function: captured tensors would become inputs in ONNX.
    tag_names = list(tags)
    cutoffs = None if thresholds is None else np.asarray(thresholds, np.float32)
    if whole_track:
        from emotion_keras.models import whole_track_model

        track_model = whole_track_model(model)

    @tf.function(input_signature=[tf.TensorSpec([n_bands, None], tf.float32, name="melspec")])
    def serve(melspec):
        frames = tf.shape(melspec)[1]
        padded = tf.pad(
            melspec, [[0, 0], [0, tf.maximum(crop_frames - frames, 0)]], constant_values=pad_value
        )
        if whole_track:
            probabilities = track_model(padded[None, :, :, None], training=False)
            outputs = {"probabilities": tf.cast(probabilities[0], tf.float32)}
        else:
            span = tf.maximum(frames, crop_frames) - crop_frames
            if hop_frames is not None:  # pipeline.sliding_window_starts, in-graph
                count = 1 + (span + hop_frames - 1) // hop_frames
                starts = tf.minimum(tf.range(count) * hop_frames, span)
            elif n_crops > 1:
                starts = tf.range(n_crops) * span // (n_crops - 1)
            else:
                starts = tf.reshape(span // 2, [1])
            index = starts[:, None] + tf.range(crop_frames)[None, :]  # [K, T]
            crops = tf.transpose(tf.gather(padded, index, axis=1), [1, 0, 2])  # [K, bands, T]
            probabilities = tf.cast(model(crops[..., None], training=False), tf.float32)
            outputs = {"probabilities": tf.reduce_mean(probabilities, axis=0)}
        if with_tags:
            outputs["tags"] = tf.constant(tag_names)
        if cutoffs is not None:
            outputs["decisions"] = tf.greater_equal(outputs["probabilities"], tf.constant(cutoffs))
        return outputs

    return serve


def windows_fn(model, *, n_bands: int, crop_frames: int):
    """A `tf.function` from windows `[n, n_bands, crop_frames]` to probabilities `[n, tags]`."""
    import tensorflow as tf

    @tf.function(
        input_signature=[tf.TensorSpec([None, n_bands, crop_frames], tf.float32, name="windows")]
    )
    def windows(batch):
        return {"probabilities": tf.cast(model(batch[..., None], training=False), tf.float32)}

    return windows


def read_thresholds(run_dir: str | Path | RunDir, n_tags: int) -> np.ndarray | None:
    """The per-tag thresholds `evaluate` chose on validation, or None before evaluation."""
    run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    if not run.thresholds_file.is_file():
        return None
    thresholds = np.load(run.thresholds_file, allow_pickle=False)
    if thresholds.shape != (n_tags,):
        raise ConfigError(
            f"{run.thresholds_file}: shape {thresholds.shape}, expected ({n_tags},); evaluate "
            f"the run again",
            arguments=("run_dir",),
        )
    return thresholds


def export_model(
    model,
    out_dir: str | Path,
    *,
    tags,
    n_bands: int,
    crop_frames: int,
    n_crops: int,
    pad_value: float,
    hop_frames: int | None = None,
    whole_track: bool = False,
    source: str = "",
    thresholds=None,
    model_card: str = "",
    formats=("savedmodel",),
) -> Path:
    """Writes the SavedModel, the `.keras` model, the tag list, `export.json`, the model card
    and any other `formats` (`tflite`, `onnx`) to `out_dir` atomically.

    Training-only layers (SpecAugment, an identity outside training) are left out, so the
    export holds built-in Keras layers only.
    """
    import keras
    import tensorflow as tf

    from emotion_keras.models.augment import without_spec_augment
    from emotion_keras.serving import formats as converters

    model = without_spec_augment(model)
    out_dir = Path(out_dir)
    geometry = dict(n_bands=n_bands, crop_frames=crop_frames, n_crops=n_crops, pad_value=pad_value)
    outputs = {"probabilities": f"float32 [{len(tags)}]", "tags": "string"}
    if thresholds is not None:
        outputs["decisions"] = f"bool [{len(tags)}], probabilities >= thresholds"
    with atomic_directory(out_dir) as tmp:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(
            SERVE_ENDPOINT,
            crop_average_fn(
                model,
                tags=tags,
                thresholds=thresholds,
                hop_frames=hop_frames,
                whole_track=whole_track,
                **geometry,
            ),
        )
        archive.add_endpoint(
            WINDOWS_ENDPOINT, windows_fn(model, n_bands=n_bands, crop_frames=crop_frames)
        )
        archive.write_out(str(tmp / "saved_model"), verbose=False)
        model.save(tmp / "model.keras")
        (tmp / "tags.txt").write_text("\n".join(tags) + "\n", encoding="utf-8")
        written = converters.convert(
            tmp,
            formats,
            lambda: crop_average_fn(
                model, tags=tags, thresholds=thresholds, with_tags=False, **geometry
            ),
        )
        written["model.keras"] = (tmp / "model.keras").stat().st_size
        if model_card:
            (tmp / MODEL_CARD).write_text(model_card, encoding="utf-8")
        (tmp / EXPORT_MARKER).write_text(
            json.dumps(
                {
                    "endpoint": SERVE_ENDPOINT,
                    "windows_endpoint": WINDOWS_ENDPOINT,
                    "input": f"float32 [{n_bands}, frames], unbatched",
                    "outputs": outputs,
                    "tags": list(tags),
                    "thresholds": None if thresholds is None else [float(t) for t in thresholds],
                    "files": written,
                    "n_bands": n_bands,
                    "crop_frames": crop_frames,
                    "n_crops": n_crops if hop_frames is None and not whole_track else None,
                    "hop_frames": hop_frames,
                    "whole_track": whole_track,
                    "pad_value": pad_value,
                    "source": source,
                    "tensorflow": tf.__version__,
                    "keras": keras.__version__,
                },
                indent=2,
            )
            + "\n"
        )
    return out_dir


def export_run(
    run_dir: str | Path,
    out_dir: str | Path | None = None,
    n_crops: int | None = None,
    overwrite: bool = False,
    formats=("savedmodel",),
) -> Path:
    """Exports the best checkpoint of a run (default: `RUN/export`), averaging as the run's
    evaluation does: its test crop count, its sliding windows or one pass of the whole track
    (`eval_mode`). `n_crops` asks for that many regular crops instead.

    An existing export folder is replaced only with `overwrite`; anything else already in
    `out_dir` is refused (`check_export_target`). The thresholds of an evaluated run go with
    it (decisions in the export); an unevaluated run exports probabilities only, with a log line
    that says so.
    """
    from emotion_keras.serving import formats as converters
    from emotion_keras.serving.model_card import model_card

    converters.check_formats(formats)
    out_dir = Path(out_dir) if out_dir else RunDir(run_dir).default_export
    check_export_target(out_dir, run_dir, overwrite)
    run = load_run(run_dir)
    thresholds = read_thresholds(run.run_dir, len(run.tags))
    if thresholds is None:
        log.warning(
            "Note: %s is not evaluated, so the export has no thresholds and gives probabilities "
            "only, no decisions; run `emotion-keras evaluate %s` and export again for them.",
            run.run_dir,
            run.run_dir,
        )
    config = run.config
    # `n_crops` asks for regular crops; otherwise the export averages as the run's evaluation.
    hop_frames = None if n_crops else config.eval_hop_frames
    whole_track = not n_crops and config.eval_mode == "track"
    n_crops = n_crops or config.test_crops
    if whole_track:
        averaging = "runs the whole track through the network in one pass"
    elif hop_frames is not None:
        averaging = f"averages crop-long windows every {hop_frames} frames over the whole track"
    else:
        averaging = f"averages {n_crops} regular crops over the whole track"
    log.info("Exporting %s to %s ...", run.checkpoint, out_dir)
    return export_model(
        run.model,
        out_dir,
        tags=run.tags,
        n_bands=run.config.n_bands,
        crop_frames=run.config.crop_frames,
        n_crops=n_crops,
        pad_value=MTG_JAMENDO.pad_value,
        hop_frames=hop_frames,
        whole_track=whole_track,
        source=str(run.checkpoint),
        thresholds=thresholds,
        model_card=model_card(run, thresholds, averaging),
        formats=formats,
    )

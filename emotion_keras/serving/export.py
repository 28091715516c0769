"""Exporting a trained run as a TensorFlow SavedModel that needs nothing of this package.

The export's serving endpoint takes one full-length mel-spectrogram (float32 `[96, frames]`, any
number of frames >= 1, unbatched: tracks differ in length) and returns the tag probabilities
averaged over regular crops, computed in-graph exactly as `emotion-keras evaluate` computes them:
crop i of K starts at `i * (frames - T) // (K - 1)` (or, for a run with `eval_mode` "windows",
crop-long windows slide over the whole track, `pipeline.sliding_window_starts`; or, with
"track", the whole track goes through the network in one pass), and a track
shorter than T frames is first padded as the training pipeline pads it
(`emotion_keras.data.pipeline`). The tag names travel with
it, both as a second output and as `tags.txt`; the native `.keras` model is written beside it.

    OUT/saved_model/    tf.saved_model.load(...).serve(melspec) -> {"probabilities", "tags"}
    OUT/model.keras     the same network for Keras users
    OUT/tags.txt        one tag per line, in output order
    OUT/export.json     crop length, crop count, bands, source run, versions

The folder is built under a temporary name and renamed when complete, so an interrupted export
never leaves a directory that looks complete.
"""

from __future__ import annotations

import json
from pathlib import Path

from emotion_keras.data.dataset import MTG_JAMENDO
from emotion_keras.errors import ConfigError
from emotion_keras.fileio import atomic_directory
from emotion_keras.progress import log
from emotion_keras.rundir import RunDir, load_run

SERVE_ENDPOINT = "serve"
#: The file that marks a folder as an export of ours (and that `overwrite` may replace).
EXPORT_MARKER = "export.json"


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
        tags: tag names, returned as the `tags` output.
        pad_value: what a track shorter than `crop_frames` is padded with at its end (the
            pipeline's rule, so the export agrees with evaluation).
    """
    import tensorflow as tf

    tag_names = tf.constant(list(tags))
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
            return {"probabilities": tf.cast(probabilities[0], tf.float32), "tags": tag_names}
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
        return {"probabilities": tf.reduce_mean(probabilities, axis=0), "tags": tag_names}

    return serve


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
) -> Path:
    """Writes the SavedModel, the `.keras` model and the tag list to `out_dir` atomically."""
    import keras
    import tensorflow as tf

    out_dir = Path(out_dir)
    with atomic_directory(out_dir) as tmp:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(
            SERVE_ENDPOINT,
            crop_average_fn(
                model,
                n_bands=n_bands,
                crop_frames=crop_frames,
                n_crops=n_crops,
                tags=tags,
                pad_value=pad_value,
                hop_frames=hop_frames,
                whole_track=whole_track,
            ),
        )
        archive.write_out(str(tmp / "saved_model"), verbose=False)
        model.save(tmp / "model.keras")
        (tmp / "tags.txt").write_text("\n".join(tags) + "\n", encoding="utf-8")
        (tmp / EXPORT_MARKER).write_text(
            json.dumps(
                {
                    "endpoint": SERVE_ENDPOINT,
                    "input": f"float32 [{n_bands}, frames], unbatched",
                    "outputs": {"probabilities": f"float32 [{len(tags)}]", "tags": "string"},
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
) -> Path:
    """Exports the best checkpoint of a run (default: `RUN/export`), averaging as the run's
    evaluation does: its test crop count, its sliding windows or one pass of the whole track
    (`eval_mode`). `n_crops` asks for that many regular crops instead.

    An existing export folder is replaced only with `overwrite`; anything else already in
    `out_dir` is refused (`check_export_target`).
    """
    out_dir = Path(out_dir) if out_dir else RunDir(run_dir).default_export
    check_export_target(out_dir, run_dir, overwrite)
    run = load_run(run_dir)
    log.info("Exporting %s to %s ...", run.checkpoint, out_dir)
    return export_model(
        run.model,
        out_dir,
        tags=run.tags,
        n_bands=run.config.n_bands,
        crop_frames=run.config.crop_frames,
        n_crops=n_crops or run.config.test_crops,
        pad_value=MTG_JAMENDO.pad_value,
        hop_frames=None if n_crops else run.config.eval_hop_frames,
        whole_track=not n_crops and run.config.eval_mode == "track",
        source=str(run.checkpoint),
    )

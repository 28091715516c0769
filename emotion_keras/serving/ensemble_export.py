"""Exporting an ensemble (`emotion-keras ensemble`) as one SavedModel that averages its members.

The export serves what a single run's export serves (`emotion_keras.serving.export`): one
full-length mel-spectrogram `[n_bands, frames]` in, `{"probabilities", "tags"}` out. Inside, each
member crop-averages the track with its own crop length and crop count (the function a single
export serves, `crop_average_fn`), and the graph returns the mean of the members' probabilities:
exactly what `emotion-keras ensemble` averaged from the members' evaluations.

    OUT/saved_model/    tf.saved_model.load(...).serve(melspec)
                          -> {"probabilities", "tags"[, "decisions"]}
    OUT/tags.txt        one tag per line, in output order
    OUT/export.json     tags, the ensemble's thresholds (chosen on the averaged validation
                        predictions), bands, each member's source, crop length and crop count

The folder is written under a temporary name and renamed when complete; like a single export it
replaces only an earlier export, and never a member, the ensemble folder or a folder above them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from emotion_keras.data.dataset import MTG_JAMENDO
from emotion_keras.errors import ModelError
from emotion_keras.evaluation.ensemble import read_ensemble
from emotion_keras.fileio import atomic_directory
from emotion_keras.progress import log
from emotion_keras.rundir import RunDir, load_run
from emotion_keras.serving.export import (
    EXPORT_MARKER,
    SERVE_ENDPOINT,
    check_export_target,
    crop_average_fn,
    read_thresholds,
)


def ensemble_average_fn(member_fns, *, n_bands: int, tags, thresholds=None):
    """A `tf.function` from one `[n_bands, frames]` melspec to the mean of the members' outputs.

    Args:
        member_fns: per member, a function of the melspec returning `{"probabilities": [tags]}`
            (`crop_average_fn`).
        n_bands: the input's bands.
        tags: tag names, returned as the `tags` output.
        thresholds: the ensemble's per-tag thresholds; when given, a `decisions` output (bool,
            probabilities >= thresholds) is added, as a single run's export has.
    """
    import tensorflow as tf

    tag_names = tf.constant(list(tags))
    cutoffs = None if thresholds is None else np.asarray(thresholds, np.float32)

    @tf.function(input_signature=[tf.TensorSpec([n_bands, None], tf.float32, name="melspec")])
    def serve(melspec):
        probabilities = [fn(melspec)["probabilities"] for fn in member_fns]
        outputs = {
            "probabilities": tf.reduce_mean(tf.stack(probabilities), axis=0),
            "tags": tag_names,
        }
        if cutoffs is not None:
            outputs["decisions"] = tf.greater_equal(outputs["probabilities"], tf.constant(cutoffs))
        return outputs

    return serve


def export_ensemble(
    ensemble_dir: str | Path,
    out_dir: str | Path | None = None,
    n_crops: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Exports the best checkpoints of an ensemble's members as one SavedModel (`ENSEMBLE/export`).

    Each member averages as its evaluation did: its own `test_crops`, or its sliding windows or
    whole-track pass (`eval_mode`); or with `n_crops` regular crops for all of them when given.

    Raises:
        ConfigError: not an ensemble folder, or an `out_dir` that may not be replaced.
        ModelError: a member that can no longer be loaded, or whose tags changed since.
    """
    import keras
    import tensorflow as tf

    from emotion_keras.models.augment import without_spec_augment

    description = read_ensemble(ensemble_dir)
    folder = RunDir(ensemble_dir)
    out_dir = Path(out_dir) if out_dir else folder.default_export
    for source in [ensemble_dir, *description["members"]]:
        check_export_target(out_dir, source, overwrite)
    tags = folder.read_tags() if folder.tags_file.is_file() else None
    runs = [load_run(member) for member in description["members"]]
    for run in runs:
        if tags is not None and run.tags != tags:
            raise ModelError(
                f"{run.run_dir}: its tags changed since ensemble {folder} was built; build the "
                f"ensemble again",
                arguments=("run_dir",),
            )
    n_bands = int(description["n_bands"])
    # Training-only layers (SpecAugment) are left out, as in single-model exports.
    models = [without_spec_augment(run.model) for run in runs]
    member_fns, members = [], []
    for run, model in zip(runs, models):
        crops = n_crops or run.config.test_crops
        eval_mode = "crops" if n_crops else run.config.eval_mode
        hop_frames = None if n_crops else run.config.eval_hop_frames
        member_fns.append(
            crop_average_fn(
                model,
                n_bands=n_bands,
                crop_frames=run.config.crop_frames,
                n_crops=crops,
                tags=run.tags,
                pad_value=MTG_JAMENDO.pad_value,
                hop_frames=hop_frames,
                whole_track=eval_mode == "track",
            )
        )
        members.append(
            {
                "source": str(run.checkpoint),
                "model": run.config.model,
                "crop_frames": run.config.crop_frames,
                "n_crops": crops if eval_mode == "crops" else None,
                "eval_mode": eval_mode,
                "hop_frames": hop_frames,
            }
        )
    tags = runs[0].tags
    thresholds = read_thresholds(folder, len(tags))
    outputs = {"probabilities": f"float32 [{len(tags)}]", "tags": "string"}
    if thresholds is not None:
        outputs["decisions"] = f"bool [{len(tags)}], probabilities >= thresholds"
    log.info("Exporting the ensemble of %d runs %s to %s ...", len(runs), folder, out_dir)
    with atomic_directory(out_dir) as tmp:
        archive = keras.export.ExportArchive()
        for model in models:
            archive.track(model)
        archive.add_endpoint(
            SERVE_ENDPOINT,
            ensemble_average_fn(member_fns, n_bands=n_bands, tags=tags, thresholds=thresholds),
        )
        archive.write_out(str(tmp / "saved_model"), verbose=False)
        (tmp / "tags.txt").write_text("\n".join(tags) + "\n", encoding="utf-8")
        (tmp / EXPORT_MARKER).write_text(
            json.dumps(
                {
                    "endpoint": SERVE_ENDPOINT,
                    "input": f"float32 [{n_bands}, frames], unbatched",
                    "outputs": outputs,
                    "tags": list(tags),
                    "thresholds": None if thresholds is None else [float(t) for t in thresholds],
                    "n_bands": n_bands,
                    "pad_value": MTG_JAMENDO.pad_value,
                    "ensemble": str(folder.path.resolve()),
                    "members": members,
                    "tensorflow": tf.__version__,
                    "keras": keras.__version__,
                },
                indent=2,
            )
            + "\n"
        )
    return out_dir

"""Ensembles of evaluated runs: their averaged predictions, scored and kept as a folder.

Every top MediaEval 2019/2021 mood/theme result averaged several networks' probabilities
(CP-JKU 2019: 0.1546 PR-AUC-macro against 0.1480 for its best single model). `build_ensemble`
does the same with runs that `emotion-keras evaluate` has scored: it averages the members'
test predictions (`predictions.npy`) and validation predictions (`val_predictions.npy`) in split
order, chooses the per-tag thresholds on the averaged validation predictions, and writes into
an ensemble folder, atomically (the whole folder appears at once):

    ENSEMBLE/ensemble.json   what marks the folder: members (absolute paths), split, tags, models
    ENSEMBLE/tags.txt        the tag names, in column order
    ENSEMBLE/members.csv     the Table 2 rows of every member and of the ensemble
    ENSEMBLE/predictions.npy, decisions.npy, thresholds.npy, val_predictions.npy,
    ENSEMBLE/metrics.json, per_tag.csv
                             as `evaluate.write_evaluation` writes them for a run

Members may differ in architecture, crop length and training recipe; they must agree on the
split, the order of its test and validation tracks, the tags and the number of bands, or the
average would mix unrelated rows or columns. Each disagreement is one error naming the run.

This module reads run directories and NumPy files only; it loads no model (the ensemble's
SavedModel is `emotion_keras.serving.ensemble_export`).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from emotion_keras.config import Config
from emotion_keras.data import metadata
from emotion_keras.errors import ConfigError, DataFileError
from emotion_keras.evaluation.evaluate import mean_predictions, write_evaluation
from emotion_keras.evaluation.metrics import as_predictions, load_array
from emotion_keras.evaluation.tables import table2, table2_csv
from emotion_keras.fileio import atomic_directory
from emotion_keras.progress import log
from emotion_keras.rundir import RunDir

ENSEMBLE_FORMAT = 1


@dataclasses.dataclass(frozen=True)
class Member:
    """One evaluated run of an ensemble: its configuration, tags and saved predictions."""

    run_dir: RunDir
    config: Config
    tags: tuple[str, ...]
    test_predictions: np.ndarray
    val_predictions: np.ndarray


@dataclasses.dataclass(frozen=True)
class Ensemble:
    """What `build_ensemble` wrote: the folder, its official figures and its members' rows."""

    path: Path
    metrics: dict[str, float]
    members: tuple[Member, ...]


def _refuse(message: str, *arguments: str):
    raise ConfigError(message, arguments=arguments or ("run_dirs",))


def read_member(run_dir: str | Path) -> Member:
    """An evaluated run's configuration, tags and test and validation predictions.

    Raises:
        ConfigError: not a run directory, or an ensemble (give its members).
        DataFileError: never evaluated, or evaluated before validation predictions were kept.
    """
    run = RunDir(run_dir)
    if run.is_ensemble():
        _refuse(f"{run}: is an ensemble, not a run; give its member runs instead")
    if not run.is_run():
        _refuse(f"{run}: not a run directory (no config.json); give folders `train` wrote")
    config = run.read_config()
    evaluate_again = f"`emotion-keras evaluate {run}`"
    if not run.metrics_file.is_file():
        raise DataFileError(
            f"{run}: never evaluated (no {run.metrics_file.name}); run {evaluate_again} first",
            arguments=("run_dirs",),
        )
    if not run.val_predictions_file.is_file():
        raise DataFileError(
            f"{run}: no validation predictions ({run.val_predictions_file.name}; it was "
            f"evaluated before they were kept); run {evaluate_again} again",
            arguments=("run_dirs",),
        )
    test = as_predictions(load_array(run.predictions_file), f"{run.predictions_file}")
    val = as_predictions(load_array(run.val_predictions_file), f"{run.val_predictions_file}")
    return Member(run, config, run.read_tags(config), test, val)


def check_members(members: list[Member]) -> tuple[metadata.Subset, metadata.Subset]:
    """Checks that the members can be averaged; returns the shared (test, validation) subsets.

    They must share the split, the number of bands, the tags (same names, same order), and the
    track order of the split's test and validation subsets (read from each member's metadata
    folder); each member's predictions must have one row per track and one column per tag.

    Raises:
        ConfigError: the first disagreement, naming the member and the first member.
    """
    first = members[0]
    subsets: dict[tuple[str, str], tuple[metadata.Subset, metadata.Subset]] = {}
    reference = None
    for member in members:
        run, config = member.run_dir, member.config
        against = f"{first.run_dir} has"
        if config.split != first.config.split:
            _refuse(
                f"{run}: split {config.split}, but {against} split {first.config.split}; "
                f"ensemble members must be trained and evaluated on the same split"
            )
        if config.n_bands != first.config.n_bands:
            _refuse(
                f"{run}: {config.n_bands} bands, but {against} {first.config.n_bands}; "
                f"ensemble members must read the same features"
            )
        if member.tags != first.tags:
            differ = next(
                (j for j, (a, b) in enumerate(zip(member.tags, first.tags)) if a != b),
                min(len(member.tags), len(first.tags)),
            )
            _refuse(
                f"{run}: different tags than {first.run_dir} ({len(member.tags)} against "
                f"{len(first.tags)}, first difference at column {differ}); ensemble members "
                f"must predict the same tags in the same order"
            )
        if config.meta_dir is None:
            _refuse(f"{run}: its config.json names no meta_dir, so its split cannot be read")
        key = (str(Path(config.meta_dir).resolve()), str(config.split))
        if key not in subsets:
            subsets[key] = tuple(
                metadata.read_subset(config.meta_dir, config.split, name, tags=first.tags)
                for name in ("test", "validation")
            )
        test_set, val_set = subsets[key]
        if reference is None:
            reference = (test_set, val_set)
        for subset, shared in zip((test_set, val_set), reference):
            if not np.array_equal(subset.track_ids, shared.track_ids):
                _refuse(
                    f"{run}: the {subset.name} tracks under its meta_dir "
                    f" {config.meta_dir} differ from {first.run_dir}'s (other tracks "
                    f"or another order); ensemble members must share the subsets' track order"
                )
        for predictions, subset, file in (
            (member.test_predictions, test_set, run.predictions_file),
            (member.val_predictions, val_set, run.val_predictions_file),
        ):
            if predictions.shape != (len(subset), len(first.tags)):
                raise DataFileError(
                    f"{run}: {file.name} has shape {predictions.shape}, expected "
                    f"({len(subset)}, {len(first.tags)}) for the {subset.name} tracks; run "
                    f"`emotion-keras evaluate {run}` again",
                    arguments=("run_dirs",),
                )
    return reference


def check_ensemble_target(out_dir: str | Path, run_dirs, overwrite: bool = False) -> None:
    """Refuses an ensemble folder whose replacement would destroy something.

    The folder is replaced whole, so it must be new, empty, or an earlier ensemble with
    `overwrite`; never a run directory, a member or a folder above one.

    Raises:
        ConfigError: naming `out_dir` and what it holds.
    """
    out_dir = Path(out_dir)
    target = out_dir.resolve()

    def refuse(reason: str):
        _refuse(f"out_dir {out_dir}: {reason}", "out_dir", "overwrite")

    for run_dir in run_dirs:
        member = Path(run_dir).resolve()
        if target == member or target in member.parents:
            refuse(f"is the member {run_dir} or a folder above it; give a new folder")
    if out_dir.exists() and not out_dir.is_dir():
        refuse("is a file, expected a folder for the ensemble")
    if not out_dir.is_dir() or not any(out_dir.iterdir()):
        return
    out = RunDir(out_dir)
    if out.is_run():
        refuse("is a run directory; an ensemble never replaces one (give a new folder)")
    if not out.is_ensemble():
        refuse(
            f"exists and is not an ensemble (no {out.ensemble_file.name}); give a new or "
            f"empty folder"
        )
    if not overwrite:
        refuse("holds an earlier ensemble; give overwrite to replace it, or a new folder")


def build_ensemble(run_dirs, out_dir: str | Path, overwrite: bool = False) -> Ensemble:
    """Averages evaluated runs into an ensemble folder and scores it (see the module docstring).

    Args:
        run_dirs: two or more evaluated run directories (each once).
        out_dir: the ensemble folder: new, empty, or an earlier ensemble with `overwrite`.

    Returns:
        The folder, the ensemble's official figures and the members.

    Raises:
        ConfigError: fewer than two runs, a run given twice, members that disagree, or an
            `out_dir` that may not be replaced.
        DataFileError: a member that was never evaluated or lacks validation predictions.
    """
    run_dirs = [Path(run_dir) for run_dir in run_dirs]
    if len(run_dirs) < 2:
        _refuse("run_dirs: give at least two evaluated runs to average")
    seen: dict[Path, Path] = {}
    for run_dir in run_dirs:
        if run_dir.resolve() in seen:
            _refuse(f"{run_dir}: given twice (also as {seen[run_dir.resolve()]})")
        seen[run_dir.resolve()] = run_dir
    check_ensemble_target(out_dir, run_dirs, overwrite)
    members = [read_member(run_dir) for run_dir in run_dirs]
    test_set, val_set = check_members(members)
    first = members[0]
    out_dir = Path(out_dir)
    log.info("Averaging %d runs into %s ...", len(members), out_dir)
    with atomic_directory(out_dir) as tmp:
        folder = RunDir(tmp)
        folder.tags_file.write_text("\n".join(first.tags) + "\n", encoding="utf-8")
        folder.ensemble_file.write_text(
            json.dumps(_description(members, test_set, val_set), indent=2) + "\n",
            encoding="utf-8",
        )
        metrics = write_evaluation(
            folder,
            test_set.labels,
            mean_predictions([m.test_predictions for m in members]),
            val_set.labels,
            mean_predictions([m.val_predictions for m in members]),
            first.tags,
        )
        rows = table2([m.run_dir.path for m in members] + [folder.path], names={tmp: out_dir.name})
        folder.members_file.write_text(table2_csv(rows), encoding="utf-8")
    return Ensemble(out_dir, metrics, tuple(members))


def _description(members, test_set, val_set) -> dict:
    first = members[0]
    return {
        "format": ENSEMBLE_FORMAT,
        "kind": "ensemble",
        "averaging": "mean of the members' crop-averaged probabilities; thresholds chosen on "
        "the mean validation probabilities",
        "members": [str(m.run_dir.path.resolve()) for m in members],
        "models": [m.config.model for m in members],
        "crop_frames": [m.config.crop_frames for m in members],
        "split": first.config.split,
        "meta_dir": str(Path(first.config.meta_dir).resolve()),
        "n_bands": first.config.n_bands,
        "n_tags": len(first.tags),
        "test_tracks": len(test_set),
        "validation_tracks": len(val_set),
    }


def read_ensemble(ensemble_dir: str | Path) -> dict:
    """The description (`ensemble.json`) of an ensemble folder.

    Raises:
        ConfigError: not an ensemble folder, or an unreadable description.
    """
    folder = RunDir(ensemble_dir)
    if not folder.is_ensemble():
        _refuse(f"{folder}: not an ensemble (no {folder.ensemble_file.name})", "ensemble_dir")
    try:
        description = json.loads(folder.ensemble_file.read_text(encoding="utf-8"))
        members = description["members"]
        models = description["models"]
        int(description["split"])
        int(description["n_bands"])
    except (ValueError, KeyError, TypeError) as error:
        _refuse(
            f"{folder.ensemble_file}: not an ensemble description ({type(error).__name__}: "
            f"{error}); build the ensemble again",
            "ensemble_dir",
        )
    if not (isinstance(members, list) and isinstance(models, list) and members):
        _refuse(
            f"{folder.ensemble_file}: no members listed; build the ensemble again", "ensemble_dir"
        )
    return description

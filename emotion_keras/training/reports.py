"""TensorBoard reviews of a training run, written with TensorBoard's own summary APIs.

Keras's `TensorBoard` callback writes the loss and every `logs` figure per epoch (into
`RUN/logs/train` and `RUN/logs/validation`, where `val_pr_auc_macro` becomes
`epoch_pr_auc_macro`). `RunReports` adds what a reviewer of a tagger needs, into
`RUN/logs/reports` unless said otherwise:

- per-tag validation ROC-AUC and PR-AUC scalars, in four alphabetical groups of 14 tags so that
  56 curves stay readable (`tag_roc_auc_action-dark/happy` ...);
- precision-recall curves per tag (PR-curve plugin) and a Markdown table of per-tag AUCs (text
  plugin), rewritten at each epoch that improves the monitored metric, so the latest step shown
  is the best epoch;
- a few example input mel-spectrograms as images;
- an HParams entry in `RUN/logs` (model, learning rate, batch size, crop length, schedule, seed)
  with the validation macro AUCs per epoch (from Keras's scalars) and the best values, so runs of
  different architectures compare at a glance in the HParams tab when TensorBoard is served on
  `runs/`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorboard.plugins.hparams import api as hp
from tensorboard.plugins.pr_curve import summary as pr_summary

from emotion_keras.data.metadata import short_tag_name

TAG_GROUPS = 4
PR_THRESHOLDS = 101
EXAMPLE_IMAGES = 3
HPARAMS = ("model", "learning_rate", "batch_size", "crop_frames", "schedule", "seed", "split")
#: The recipe fields beyond the paper that tell runs apart in the HParams dashboard.
RECIPE_HPARAMS = ("loss", "optimizer", "mixup_alpha", "weight_averaging")
#: Metrics of the HParams table: (tag, run sub-folder relative to RUN/logs, display name).
HPARAM_METRICS = (
    ("epoch_pr_auc_macro", "validation", "val PR-AUC-macro"),
    ("epoch_roc_auc_macro", "validation", "val ROC-AUC-macro"),
    ("best_val_pr_auc_macro", "reports", "best val PR-AUC-macro"),
    ("best_val_roc_auc_macro", "reports", "best val ROC-AUC-macro"),
    ("epoch_loss", "train", "train loss"),
)


def tag_groups(tags) -> dict[str, str]:
    """Maps each tag to its scalar group: alphabetical runs of `len(tags) / TAG_GROUPS` tags."""
    names = sorted(short_tag_name(t) for t in tags)
    size = math.ceil(len(names) / TAG_GROUPS)
    groups = {}
    for start in range(0, len(names), size):
        chunk = names[start : start + size]
        for name in chunk:
            groups[name] = f"{chunk[0]}-{chunk[-1]}"
    return groups


def pr_curve_counts(truth: np.ndarray, scores: np.ndarray, num_thresholds: int = PR_THRESHOLDS):
    """TP/FP/TN/FN counts, precision and recall at `num_thresholds` thresholds in [0, 1]."""
    thresholds = np.linspace(0.0, 1.0, num_thresholds)
    predicted = scores[None, :] >= thresholds[:, None]
    positive = truth.astype(bool)[None, :]
    tp = (predicted & positive).sum(axis=1).astype(float)
    fp = (predicted & ~positive).sum(axis=1).astype(float)
    fn = (~predicted & positive).sum(axis=1).astype(float)
    tn = (~predicted & ~positive).sum(axis=1).astype(float)
    precision = np.divide(tp, tp + fp, out=np.ones_like(tp), where=(tp + fp) > 0)
    recall = np.divide(tp, tp + fn, out=np.zeros_like(tp), where=(tp + fn) > 0)
    return tp, fp, tn, fn, precision, recall


def write_tag_aucs(writer, step: int, tags, roc_auc, pr_auc) -> None:
    """Per-tag AUC scalars, grouped; tags without both classes (NaN) are skipped."""
    groups = tag_groups(tags)
    with writer.as_default(step=step):
        for tag, roc, pr in zip(tags, roc_auc, pr_auc):
            name = short_tag_name(tag)
            if not math.isnan(roc):
                tf.summary.scalar(f"tag_roc_auc_{groups[name]}/{name}", roc)
            if not math.isnan(pr):
                tf.summary.scalar(f"tag_pr_auc_{groups[name]}/{name}", pr)


def write_pr_curves(writer, step: int, truth, predictions, tags) -> None:
    """One precision-recall curve per tag (TensorBoard's PR-curve plugin)."""
    with writer.as_default(step=step):
        for j, tag in enumerate(tags):
            tp, fp, tn, fn, precision, recall = pr_curve_counts(truth[:, j], predictions[:, j])
            name = short_tag_name(tag)
            proto = pr_summary.raw_data_pb(
                name=f"pr_curve/{name}",
                true_positive_counts=tp,
                false_positive_counts=fp,
                true_negative_counts=tn,
                false_negative_counts=fn,
                precision=precision,
                recall=recall,
                num_thresholds=len(tp),
                display_name=name,
            )
            tf.summary.experimental.write_raw_pb(proto.SerializeToString(), step=step)


def auc_table_markdown(tags, roc_auc, pr_auc) -> str:
    """Per-tag AUCs as a Markdown table ranked by PR-AUC (NaN last)."""
    order = sorted(
        range(len(tags)), key=lambda j: (math.isnan(pr_auc[j]), -np.nan_to_num(pr_auc[j], nan=0.0))
    )
    lines = ["| rank | tag | PR-AUC | ROC-AUC |", "| ---: | --- | ---: | ---: |"]
    for rank, j in enumerate(order, start=1):
        lines.append(f"| {rank} | {short_tag_name(tags[j])} | {pr_auc[j]:.4f} | {roc_auc[j]:.4f} |")
    return "\n".join(lines)


def write_auc_table(writer, step: int, tags, roc_auc, pr_auc) -> None:
    with writer.as_default(step=step):
        tf.summary.text("per_tag_auc", auc_table_markdown(tags, roc_auc, pr_auc))


def melspec_images(melspecs: np.ndarray, frame_step: int = 4) -> np.ndarray:
    """`[n, bands, frames]` dB arrays -> `[n, bands, frames / step, 1]` images in [0, 1].

    Each image is min-max scaled on its own, low frequencies at the bottom.
    """
    images = np.asarray(melspecs, dtype=np.float32)[:, ::-1, ::frame_step]
    low = images.min(axis=(1, 2), keepdims=True)
    high = images.max(axis=(1, 2), keepdims=True)
    return ((images - low) / np.maximum(high - low, 1e-6))[..., None]


def write_melspec_images(writer, step: int, melspecs, name: str = "inputs/melspec") -> None:
    with writer.as_default(step=step):
        tf.summary.image(name, melspec_images(melspecs), max_outputs=len(melspecs))


def write_hparams(logdir: str | Path, hparams: dict, trial_id: str) -> None:
    """The HParams plugin's experiment config and this run's session entry, into `logdir`."""
    writer = tf.summary.create_file_writer(str(logdir))
    with writer.as_default():
        hp.hparams_config(
            hparams=[hp.HParam(name) for name in hparams],
            metrics=[
                hp.Metric(tag, group=group, display_name=display)
                for tag, group, display in HPARAM_METRICS
            ],
        )
        hp.hparams(hparams, trial_id=trial_id)
    writer.close()


class RunReports:
    """The review summaries of one run (see the module docstring).

    Args:
        logdir: the run's TensorBoard folder (`RUN/logs`).
        config: the run's `Config`.
        tags: tag names in column order.
        val_truth: validation labels, for the PR curves.
        monitor: the `logs` key that defines the best epoch.
    """

    def __init__(self, logdir, config, tags, val_truth, monitor: str = "val_pr_auc_macro"):
        self.logdir = Path(logdir)
        self.tags = tuple(tags)
        self.val_truth = np.asarray(val_truth, dtype=bool)
        self.monitor = monitor.removeprefix("val_")
        self.best = None
        self.writer = tf.summary.create_file_writer(str(self.logdir / "reports"))
        hparams = {name: getattr(config, name) for name in HPARAMS + RECIPE_HPARAMS}
        write_hparams(self.logdir, hparams, trial_id=self.logdir.parent.name)

    def write_examples(self, dataset, n: int = EXAMPLE_IMAGES) -> None:
        """A few input crops of the first training batch, as images."""
        for x, _ in dataset.take(1):
            write_melspec_images(self.writer, 0, x.numpy()[:n, :, :, 0])
        self.writer.flush()

    def on_validation(self, epoch: int, scores: dict, per_tag, predictions) -> None:
        step = epoch + 1
        roc, pr = per_tag["roc_auc"].to_numpy(), per_tag["pr_auc"].to_numpy()
        write_tag_aucs(self.writer, step, self.tags, roc, pr)
        value = scores.get(self.monitor)
        if value is not None and not math.isnan(value) and (self.best is None or value > self.best):
            self.best = value
            write_pr_curves(self.writer, step, self.val_truth, predictions, self.tags)
            write_auc_table(self.writer, step, self.tags, roc, pr)
            with self.writer.as_default(step=step):
                tf.summary.scalar("best_val_pr_auc_macro", scores["pr_auc_macro"])
                tf.summary.scalar("best_val_roc_auc_macro", scores["roc_auc_macro"])
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def read_summaries(logdir: str | Path) -> dict[str, dict]:
    """Every summary under `logdir` (recursively).

    Returns:
        `{run/tag: {"plugin", "steps", "values", "contents"}}` where `run` is the event file's
        folder relative to `logdir`, `values` holds floats for scalars and the decoded tensor
        for other plugins, and `contents` the plugin's own metadata bytes (HParams keeps its
        data there).
    """
    logdir = Path(logdir)
    found: dict[str, dict] = {}
    for event_file in sorted(logdir.rglob("events.out.tfevents.*")):
        run = event_file.parent.relative_to(logdir).as_posix()
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            for value in event.summary.value:
                plugin = value.metadata.plugin_data.plugin_name or "scalars"
                key = f"{run}/{value.tag}"
                entry = found.setdefault(
                    key, {"plugin": plugin, "steps": [], "values": [], "contents": []}
                )
                decoded = (
                    tf.make_ndarray(value.tensor)
                    if value.HasField("tensor")
                    else value.simple_value
                )
                if plugin == "scalars":
                    decoded = float(np.asarray(decoded))
                entry["steps"].append(int(event.step))
                entry["values"].append(decoded)
                entry["contents"].append(value.metadata.plugin_data.content)
    return found

"""The model card written into every export folder (`MODEL_CARD.md`).

Everything on the card is read from the run directory being exported (configuration, training
state, `metrics.json`, `per_tag.csv`, thresholds), so the card says what the exported weights are
and how they were scored, and nothing that was not measured. It must not compute scores itself:
a run that was not evaluated gets a card that says so.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from emotion_keras.data.demo import MARKER as DEMO_MARKER
from emotion_keras.rundir import TrainedRun

PAPER = (
    'Yi, Wang & Yamasaki, "Emotion and Theme Recognition of Music Using Convolutional Neural '
    'Networks", MediaEval 2019 (team YL-UTokyo)'
)

INTENDED_USE = """\
- Ranking and tagging music by the 56 mood/theme tags of MTG-Jamendo's `autotagging_moodtheme`
  subset (MediaEval 2019 "Emotion and Theme Recognition in Music"): search, playlists, research.
- Input: the dataset's own 96-band log-mel spectrogram (`emotion-keras melspec`, or
  `emotion_keras.data.audio.melspec_file`); other features give meaningless scores.

Limits:
- Trained on Creative Commons music from Jamendo; tags are crowd/uploader annotations, sparse and
  noisy, so a missing tag is weak evidence that it does not apply.
- Mood/theme tags are subjective; per-tag quality varies a lot (see the per-tag table above).
- Decisions use thresholds chosen per tag on the validation split to maximise F-score; they
  trade precision for recall differently per tag and do not transfer to other data unchecked.
- The probabilities are crop-averaged over the whole track: short events are averaged away
  (use `emotion-keras predict --timeline` for per-window scores).
- Not for decisions about people (e.g. inferring a listener's emotional state).
"""


def model_card(run: TrainedRun, thresholds: np.ndarray | None, averaging: str) -> str:
    """The Markdown card of `run` exported with `thresholds` (None: not evaluated); `averaging`
    says how the export averages a track (e.g. "averages 20 regular crops over the whole
    track")."""
    config = run.config
    sections = [
        f"# Model card: {config.model} mood/theme tagger\n",
        f"Exported from `{run.checkpoint}` by emotion-keras. Method: {PAPER}.\n",
        "## Architecture\n",
        f"- `{config.model}` (see `emotion-keras models`), "
        f"{run.model.count_params():,} parameters.",
        f"- Input: crops of {config.n_bands} mel bands x {config.crop_frames} frames; the export "
        f"{averaging}.",
        f"- Output: {len(run.tags)} sigmoid probabilities (tag order: `export.json`).\n",
        "## Data and split\n",
        _data_lines(config),
        "## Recipe\n",
        "The run's configuration (`config.json`):\n",
        "```json\n" + json.dumps(config.to_dict(), indent=2) + "\n```\n",
        "## Scores\n",
        _score_lines(run),
        "## Thresholds\n",
        _threshold_lines(run, thresholds),
        "## Intended use and limits\n",
        INTENDED_USE,
    ]
    return "\n".join(sections)


def _data_lines(config) -> str:
    data_dir = Path(config.data_dir) if config.data_dir else None
    synthetic = data_dir is not None and (data_dir.parent / DEMO_MARKER).is_file()
    lines = [
        f"- Melspecs: `{config.data_dir}`" + (" (the SYNTHETIC demo dataset)" if synthetic else ""),
        f"- Metadata: `{config.meta_dir}`, official split {config.split} (train / validation / "
        f"test as MTG-Jamendo defines them).",
    ]
    if config.train_tracks or config.val_tracks:
        lines.append(
            f"- Subsampled: train_tracks={config.train_tracks}, val_tracks={config.val_tracks}."
        )
    if synthetic:
        lines.append("- **Trained on synthetic data: its scores say nothing about real music.**")
    return "\n".join(lines) + "\n"


def _score_lines(run: TrainedRun) -> str:
    state = run.run_dir.read_state()
    lines = []
    if state.get("best") is not None:
        lines.append(
            f"- Validation ({state.get('monitor')}, best epoch {state.get('best_epoch')} of "
            f"{state.get('epoch')}): {state['best']:.4f}"
        )
    if run.run_dir.metrics_file.is_file():
        metrics = json.loads(run.run_dir.metrics_file.read_text(encoding="utf-8"))
        lines.append("- Test (`emotion-keras evaluate`, official MediaEval figures):\n")
        lines.append("| metric | value |\n| --- | --- |")
        lines.extend(
            f"| {name} | {value:.4f} |"
            for name, value in metrics.items()
            if isinstance(value, (int, float))
        )
    else:
        lines.append("- Test: not evaluated (run `emotion-keras evaluate` and export again).")
    return "\n".join(lines) + "\n"


def _threshold_lines(run: TrainedRun, thresholds: np.ndarray | None) -> str:
    if thresholds is None:
        return "None: the run was not evaluated, so the export gives probabilities only.\n"
    table = pd.DataFrame({"tag": run.tags, "threshold": np.asarray(thresholds, float)})
    if run.run_dir.per_tag_file.is_file():
        per_tag = pd.read_csv(run.run_dir.per_tag_file)[["tag", "roc_auc", "pr_auc"]]
        table = table.merge(per_tag, on="tag", how="left")
    rows = ["| " + " | ".join(table.columns) + " |", "|" + " --- |" * len(table.columns)]
    rows += [
        "| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row) + " |"
        for row in table.itertuples(index=False)
    ]
    return (
        "Per tag, chosen on the validation split (maximum F-score); test AUCs beside them.\n\n"
        + "\n".join(rows)
        + "\n"
    )

"""The paper's Tables 2 and 3 for evaluated runs, as Markdown and CSV.

Table 2 compares architectures (model, conv layers, residual, PR-AUC-macro, ROC-AUC-macro) with
the paper's published split-0 figures beside ours; Table 3 ranks the tags of one run by PR-AUC.
Everything a table shows is read from run directories (`emotion_keras.rundir`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from emotion_keras.data.metadata import short_tag_name
from emotion_keras.evaluation.evaluate import read_metrics
from emotion_keras.rundir import RunDir

#: The paper's Table 2 (Yi et al. 2019, `../shared/docs/paper-yi-wang-yamasaki-2019.md`): model
#: -> (conv layers, residual, PR-AUC-macro, ROC-AUC-macro) on the split-0 test set. `baseline5`
#: is the team's own re-run of the organisers' model (the organisers' submission scores
#: 0.107734 / 0.725821).
PAPER_TABLE2 = {
    "baseline5": (5, False, 0.1161, 0.7475),
    "vgg6": (6, False, 0.1256, 0.7532),
    "res16": (16, True, 0.1125, 0.7393),
    "res18": (18, True, 0.1135, 0.7460),
    "vgg25": (25, False, 0.1009, 0.7319),
}
TABLE2_COLUMNS = (
    "run",
    "model",
    "split",
    "conv layers",
    "residual",
    "PR-AUC-macro",
    "ROC-AUC-macro",
    "paper PR-AUC-macro",
    "paper ROC-AUC-macro",
)


def table3_markdown(per_tag: pd.DataFrame, n: int = 5) -> str:
    """The top-`n` and bottom-`n` tags of a `per_tag_table` as Markdown (all, if few)."""
    ranked = per_tag[per_tag["rank"] > 0]
    rows = _table3_rows(ranked.head(n))
    if len(ranked) > 2 * n:
        rows.append(["…", "…", "", ""])
        rows += _table3_rows(ranked.tail(n))
    elif len(ranked) > n:
        rows += _table3_rows(ranked.iloc[n:])
    return markdown_table(["rank", "tag", "PR-AUC", "ROC-AUC"], rows)


def _table3_rows(frame: pd.DataFrame) -> list[list[str]]:
    return [
        [str(row.rank), short_tag_name(row.tag), _fmt(row.pr_auc), _fmt(row.roc_auc)]
        for row in frame.itertuples()
    ]


def table2(run_dirs, names: dict | None = None) -> pd.DataFrame:
    """The paper's Table 2 for evaluated run directories, with the published figures beside ours.

    Each run directory holds `config.json` (its `model` names the architecture) and `metrics.json`
    (from `evaluate.write_evaluation`). Published figures are for the split-0 test set; they are
    left empty for runs of other splits and for models the paper does not have. An ensemble
    folder (`emotion_keras.evaluation.ensemble`) is a row too, its model column listing its
    members' models, its architecture and published columns empty.

    Args:
        run_dirs: evaluated run directories and ensemble folders.
        names: optional folder -> name shown in the `run` column (default: the folder's name).

    Returns:
        One row per run, columns `TABLE2_COLUMNS`.
    """
    rows = []
    names = {Path(path): name for path, name in (names or {}).items()}
    for run in map(RunDir, run_dirs):
        metrics = read_metrics(run)
        if run.is_ensemble():
            model, split = _ensemble_model_and_split(run)
            conv_layers = residual = paper_pr = paper_roc = None
        else:
            config = run.read_config()
            model, split = config.model, config.split
            conv_layers, residual, paper_pr, paper_roc = PAPER_TABLE2.get(
                model, (None, None, None, None)
            )
        if split != 0:
            paper_pr = paper_roc = None
        rows.append(
            {
                "run": names.get(run.path, run.path.name),
                "model": model,
                "split": split,
                "conv layers": conv_layers,
                "residual": residual,
                "PR-AUC-macro": float(metrics["PR-AUC-macro"]),
                "ROC-AUC-macro": float(metrics["ROC-AUC-macro"]),
                "paper PR-AUC-macro": paper_pr,
                "paper ROC-AUC-macro": paper_roc,
            }
        )
    frame = pd.DataFrame(rows, columns=list(TABLE2_COLUMNS))
    frame["conv layers"] = frame["conv layers"].astype("Int64")
    frame["residual"] = frame["residual"].astype("boolean")
    for column in ("paper PR-AUC-macro", "paper ROC-AUC-macro"):
        frame[column] = frame[column].astype(float)
    return frame


def _ensemble_model_and_split(run: RunDir) -> tuple[str, int]:
    from emotion_keras.evaluation.ensemble import read_ensemble

    description = read_ensemble(run.path)
    return f"ensemble ({' + '.join(description['models'])})", int(description["split"])


def table2_markdown(frame: pd.DataFrame) -> str:
    """A `table2` frame as Markdown: figures to 4 decimals, unknown cells empty."""
    rows = []
    for row in frame.itertuples(index=False):
        run, model, split, conv, residual, pr, roc, paper_pr, paper_roc = row
        rows.append(
            [
                run,
                model,
                str(split),
                "" if pd.isna(conv) else str(conv),
                "" if pd.isna(residual) else ("yes" if residual else "no"),
                _fmt(pr),
                _fmt(roc),
                _fmt(paper_pr),
                _fmt(paper_roc),
            ]
        )
    return markdown_table(list(TABLE2_COLUMNS), rows)


def table2_csv(frame: pd.DataFrame) -> str:
    """A `table2` frame as CSV text (full precision, unknown cells empty)."""
    return frame.to_csv(index=False)


def markdown_table(header, rows) -> str:
    """A GitHub-flavoured Markdown table of already formatted cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines)


def _fmt(value, digits: int = 4) -> str:
    return "" if value is None or pd.isna(value) else f"{value:.{digits}f}"

"""Scoring as MediaEval 2019 did, thresholds, per-tag and Table-2 tables, and their commands."""

import json
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from emotion_keras import cli
from emotion_keras.config import Config
from emotion_keras.data import metadata
from emotion_keras.errors import ConfigError, DataFileError
from emotion_keras.evaluation import evaluate, metrics, tables
from emotion_keras.evaluation import thresholds as decision_thresholds

# The official figures of the two real submissions (../shared/data/README.md).
OFFICIAL = {
    "YL-UTokyo-run1": {
        "PR-AUC-macro": 0.125564,
        "ROC-AUC-macro": 0.753199,
        "PR-AUC-micro": 0.145698,
        "ROC-AUC-micro": 0.797587,
        "F-score-macro": 0.185618,
        "F-score-micro": 0.177358,
        "precision-macro": 0.160227,
        "recall-macro": 0.345181,
    },
    "baseline-vggish": {
        "PR-AUC-macro": 0.107734,
        "ROC-AUC-macro": 0.725821,
        "PR-AUC-micro": 0.140913,
        "ROC-AUC-micro": 0.775029,
        "F-score-macro": 0.165694,
        "F-score-micro": 0.177133,
    },
}
ALL_NAMES = metrics.AUC_NAMES + metrics.DECISION_NAMES


@pytest.fixture(scope="module")
def mediaeval(shared_data):
    return shared_data / "mediaeval2019"


@pytest.fixture(scope="module")
def split0_test_truth(jamendo_meta):
    return metadata.read_subset(jamendo_meta, 0, "test").labels


def random_scores(n_tracks=60, n_tags=5, seed=0):
    rng = np.random.default_rng(seed)
    truth = rng.random((n_tracks, n_tags)) < 0.3
    truth[0], truth[1] = True, False  # every tag gets both classes
    scores = np.clip(truth * 0.3 + rng.random((n_tracks, n_tags)) * 0.7, 0, 1)
    return truth, scores


def run_cli(capsys, *argv):
    status = cli.main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return status, out, err


# --- Acceptance: the official figures of the real submissions ----------------------------------


def test_split0_tsvs_give_the_official_groundtruth(mediaeval, split0_test_truth):
    assert np.array_equal(np.load(mediaeval / "groundtruth.npy"), split0_test_truth)


@pytest.mark.parametrize("truth_source", ["groundtruth.npy", "split-0 TSVs"])
@pytest.mark.parametrize("run", sorted(OFFICIAL))
def test_library_reproduces_every_official_figure(mediaeval, split0_test_truth, run, truth_source):
    truth = (
        np.load(mediaeval / "groundtruth.npy")
        if truth_source == "groundtruth.npy"
        else split0_test_truth
    )
    scores = metrics.official_scores(
        truth,
        np.load(mediaeval / run / "predictions.npy"),
        np.load(mediaeval / run / "decisions.npy"),
    )
    assert tuple(scores) == ALL_NAMES
    for name, official in OFFICIAL[run].items():
        assert scores[name] == pytest.approx(official, abs=1e-6), name


@pytest.mark.parametrize("truth_source", ["groundtruth.npy", "split-0 TSVs"])
@pytest.mark.parametrize("run", sorted(OFFICIAL))
def test_score_command_reproduces_every_official_figure(
    capsys, mediaeval, jamendo_meta, run, truth_source
):
    truth_flags = (
        ["--groundtruth", mediaeval / "groundtruth.npy"]
        if truth_source == "groundtruth.npy"
        else ["--meta-dir", jamendo_meta, "--split", 0, "--subset", "test"]
    )
    files = [
        "--predictions",
        mediaeval / run / "predictions.npy",
        "--decisions",
        mediaeval / run / "decisions.npy",
    ]

    status, out, _ = run_cli(capsys, "score", *files, *truth_flags, "--json")
    assert status == 0
    scores = json.loads(out)
    assert tuple(scores) == ALL_NAMES
    for name, official in OFFICIAL[run].items():
        assert scores[name] == pytest.approx(official, abs=1e-6), name

    # The text form prints six decimals, which are the official table's digits exactly.
    status, out, _ = run_cli(capsys, "score", *files, *truth_flags)
    printed = dict(line.split() for line in out.splitlines())
    assert status == 0 and tuple(printed) == ALL_NAMES
    for name, official in OFFICIAL[run].items():
        assert printed[name] == f"{official:.6f}", name


def test_score_without_decisions_gives_the_auc_figures_only(capsys, mediaeval):
    status, out, _ = run_cli(
        capsys,
        "score",
        "--predictions",
        mediaeval / "YL-UTokyo-run1" / "predictions.npy",
        "--groundtruth",
        mediaeval / "groundtruth.npy",
        "--json",
    )
    assert status == 0 and tuple(json.loads(out)) == metrics.AUC_NAMES


# --- auc_scores: the callback's scorer -----------------------------------------------------------


def test_auc_scores_equal_scikit_learn():
    truth, scores = random_scores()
    figures, per_tag = metrics.auc_scores(truth, scores, list("abcde"))
    assert figures == {
        "pr_auc_macro": average_precision_score(truth, scores, average="macro"),
        "roc_auc_macro": roc_auc_score(truth, scores, average="macro"),
        "pr_auc_micro": average_precision_score(truth, scores, average="micro"),
        "roc_auc_micro": roc_auc_score(truth, scores, average="micro"),
    }
    assert list(per_tag["tag"]) == list("abcde")
    np.testing.assert_array_equal(per_tag["roc_auc"], roc_auc_score(truth, scores, average=None))
    np.testing.assert_array_equal(
        per_tag["pr_auc"], average_precision_score(truth, scores, average=None)
    )
    assert list(per_tag["positives"]) == list(truth.sum(axis=0))
    assert not per_tag["excluded"].any()


def test_auc_scores_match_official_scores_when_every_tag_has_both_classes():
    truth, scores = random_scores(seed=3)
    figures, _ = metrics.auc_scores(truth, scores)
    official = metrics.official_scores(truth, scores)
    assert figures["pr_auc_macro"] == official["PR-AUC-macro"]
    assert figures["roc_auc_micro"] == official["ROC-AUC-micro"]


def test_single_class_tags_are_left_out_of_the_macro_averages_and_counted():
    truth, scores = random_scores(n_tags=6)
    truth[:, 1] = False  # no positive track
    truth[:, 4] = True  # no negative track
    kept = [0, 2, 3, 5]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no scikit-learn "only one class" warnings either
        figures, per_tag = metrics.auc_scores(truth, scores)
    assert figures["roc_auc_macro"] == roc_auc_score(truth[:, kept], scores[:, kept])
    assert figures["pr_auc_macro"] == average_precision_score(truth[:, kept], scores[:, kept])
    assert figures["roc_auc_micro"] == roc_auc_score(truth, scores, average="micro")
    assert per_tag["excluded"].sum() == 2
    assert list(per_tag.index[per_tag["excluded"]]) == [1, 4]
    assert per_tag.loc[[1, 4], ["pr_auc", "roc_auc"]].isna().all().all()
    assert per_tag.loc[kept, ["pr_auc", "roc_auc"]].notna().all().all()


def test_no_tag_with_both_classes_gives_nan_macro_figures():
    truth = np.zeros((4, 2), dtype=bool)
    figures, per_tag = metrics.auc_scores(truth, np.random.default_rng(0).random((4, 2)))
    assert all(np.isnan(value) for value in figures.values())
    assert per_tag["excluded"].all()


def test_official_scores_refuse_single_class_tags():
    truth, scores = random_scores()
    truth[:, 2] = False
    with pytest.raises(
        DataFileError,
        match=r"groundtruth: 1 tag column\(s\) have a single "
        r"class \(first: column 2\)",
    ):
        metrics.official_scores(truth, scores)


# --- Thresholds -------------------------------------------------------------------------------


def test_threshold_maximises_the_tags_f_score_on_a_hand_checked_example():
    truth = np.array([[1], [0], [1], [1], [0], [0]], dtype=bool)
    scores = np.array([[0.9], [0.8], [0.7], [0.4], [0.3], [0.1]])
    # Deciding ">= t": t=0.1 F=0.667, 0.3 F=0.75, 0.4 F=0.857 (P 3/4, R 1), 0.7 F=0.667,
    # 0.8 F=0.4, 0.9 F=0.5.
    thresholds = decision_thresholds.choose_thresholds(truth, scores)
    assert thresholds.tolist() == [0.4]
    decisions = decision_thresholds.apply_thresholds(scores, thresholds)
    assert decisions[:, 0].tolist() == [True, True, True, True, False, False]
    assert f1_score(truth[:, 0], decisions[:, 0]) == pytest.approx(6 / 7)


def test_threshold_ties_go_to_the_lowest_threshold():
    truth = np.array([[1], [0], [0], [1]], dtype=bool)
    scores = np.array([[0.9], [0.8], [0.7], [0.1]])
    # t=0.1: P 1/2, R 1 -> F 2/3; t=0.9: P 1, R 1/2 -> F 2/3; the others are lower.
    assert decision_thresholds.choose_thresholds(truth, scores).tolist() == [0.1]


def test_tag_without_positives_is_never_decided_and_all_positive_tag_always():
    truth = np.array([[0, 1], [0, 1], [0, 1]], dtype=bool)
    scores = np.array([[0.2, 0.5], [0.9, 0.3], [0.4, 0.7]])
    thresholds = decision_thresholds.choose_thresholds(truth, scores)
    assert thresholds.tolist() == [np.inf, 0.3]
    decisions = decision_thresholds.apply_thresholds(scores, thresholds)
    assert not decisions[:, 0].any() and decisions[:, 1].all()


def test_chosen_thresholds_beat_every_other_candidate():
    truth, scores = random_scores(n_tracks=80, n_tags=6, seed=7)
    thresholds = decision_thresholds.choose_thresholds(truth, scores)
    for j in range(truth.shape[1]):
        best = f1_score(truth[:, j], scores[:, j] >= thresholds[j])
        others = [f1_score(truth[:, j], scores[:, j] >= t) for t in np.unique(scores[:, j])]
        assert best == max(others)


# --- Per-tag table ------------------------------------------------------------------------------


def test_per_tag_table_is_ranked_by_pr_auc_with_excluded_tags_last():
    truth, scores = random_scores(n_tags=6, seed=1)
    truth[:, 0] = False
    table = metrics.per_tag_table(truth, scores, [f"mood/theme---t{j}" for j in range(6)])
    ranked = table[table["rank"] > 0]
    assert list(ranked["rank"]) == [1, 2, 3, 4, 5]
    assert ranked["pr_auc"].is_monotonic_decreasing
    assert table.iloc[-1]["tag"] == "mood/theme---t0" and table.iloc[-1]["rank"] == 0


def test_table3_markdown_shows_top_and_bottom_five():
    truth, scores = random_scores(n_tracks=100, n_tags=12, seed=2)
    tags = [f"mood/theme---t{j}" for j in range(12)]
    table = metrics.per_tag_table(truth, scores, tags)
    lines = tables.table3_markdown(table).splitlines()
    assert lines[0] == "| rank | tag | PR-AUC | ROC-AUC |"
    body = lines[2:]
    assert len(body) == 11 and body[5].startswith("| …")
    assert [line.split(" | ")[0] for line in body[:5]] == [f"| {r}" for r in range(1, 6)]
    assert [line.split(" | ")[0] for line in body[6:]] == [f"| {r}" for r in range(8, 13)]
    best = table.iloc[0]
    assert body[0] == (
        f"| 1 | {best.tag.split('---')[1]} | {best.pr_auc:.4f} | {best.roc_auc:.4f} |"
    )


# --- Writing a run's evaluation -----------------------------------------------------------------


def test_write_evaluation_writes_consistent_files(tmp_path, capsys):
    truth, scores = random_scores(n_tracks=50, n_tags=4, seed=4)
    val_truth, val_scores = random_scores(n_tracks=40, n_tags=4, seed=5)
    tags = [f"mood/theme---t{j}" for j in range(4)]
    written = evaluate.write_evaluation(tmp_path, truth, scores, val_truth, val_scores, tags)

    predictions = np.load(tmp_path / "predictions.npy")
    decisions = np.load(tmp_path / "decisions.npy")
    thresholds = np.load(tmp_path / "thresholds.npy")
    assert predictions.dtype == np.float32 and predictions.shape == (50, 4)
    np.testing.assert_array_equal(predictions, scores.astype(np.float32))
    assert decisions.dtype == bool
    np.testing.assert_array_equal(
        thresholds, decision_thresholds.choose_thresholds(val_truth, val_scores.astype(np.float32))
    )
    np.testing.assert_array_equal(decisions, predictions >= thresholds)
    assert json.loads((tmp_path / "metrics.json").read_text()) == written
    assert tuple(written) == ALL_NAMES
    assert written == metrics.official_scores(truth, predictions, decisions)
    per_tag = pd.read_csv(tmp_path / "per_tag.csv")
    assert list(per_tag["rank"]) == [1, 2, 3, 4] and set(per_tag["tag"]) == set(tags)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "decisions.npy",
        "metrics.json",
        "per_tag.csv",
        "predictions.npy",
        "thresholds.npy",
        "val_predictions.npy",
    ]
    np.testing.assert_array_equal(
        np.load(tmp_path / "val_predictions.npy"), val_scores.astype(np.float32)
    )

    # Scoring the saved files again gives exactly metrics.json.
    np.save(tmp_path / "truth.npy", truth)
    status, out, _ = run_cli(
        capsys,
        "score",
        "--predictions",
        tmp_path / "predictions.npy",
        "--decisions",
        tmp_path / "decisions.npy",
        "--groundtruth",
        tmp_path / "truth.npy",
        "--json",
    )
    assert status == 0 and json.loads(out) == written


def test_write_evaluation_rejects_mismatched_inputs_before_writing(tmp_path):
    truth, scores = random_scores(n_tags=4)
    with pytest.raises(DataFileError, match=r"tags: 3 tag names for 4 label columns"):
        evaluate.write_evaluation(tmp_path, truth, scores, truth, scores, ["a", "b", "c"])
    with pytest.raises(DataFileError, match=r"validation predictions: shape \(60, 3\)"):
        evaluate.write_evaluation(tmp_path, truth, scores, truth, scores[:, :3], list("abcd"))
    assert not list(tmp_path.iterdir())


# --- Table 2 ---------------------------------------------------------------------------------


def fake_run(root, name, model, pr, roc, split=0):
    run = root / name
    Config(model=model, split=split).to_json(run / "config.json")
    (run / "metrics.json").write_text(
        json.dumps(
            {"PR-AUC-macro": pr, "ROC-AUC-macro": roc, "PR-AUC-micro": 0.1, "ROC-AUC-micro": 0.7}
        )
    )
    return run


def test_table2_puts_our_figures_beside_the_papers(tmp_path):
    runs = [
        fake_run(tmp_path, "a", "vgg6", 0.12, 0.75),
        fake_run(tmp_path, "b", "res16", 0.11, 0.74, split=2),
        fake_run(tmp_path, "c", "baseline5", 0.105, 0.72, split=1),
    ]
    frame = tables.table2(runs)
    assert list(frame.columns) == list(tables.TABLE2_COLUMNS)
    assert list(frame["conv layers"]) == [6, 16, 5]
    assert list(frame["residual"]) == [False, True, False]
    assert list(frame["PR-AUC-macro"]) == [0.12, 0.11, 0.105]
    assert frame.loc[0, "paper PR-AUC-macro"] == 0.1256
    assert frame.loc[0, "paper ROC-AUC-macro"] == 0.7532
    assert frame.loc[[1, 2], ["paper PR-AUC-macro", "paper ROC-AUC-macro"]].isna().all().all()

    lines = tables.table2_markdown(frame).splitlines()
    assert lines[0] == (
        "| run | model | split | conv layers | residual | PR-AUC-macro | "
        "ROC-AUC-macro | paper PR-AUC-macro | paper ROC-AUC-macro |"
    )
    assert lines[2] == "| a | vgg6 | 0 | 6 | no | 0.1200 | 0.7500 | 0.1256 | 0.7532 |"
    assert lines[3] == "| b | res16 | 2 | 16 | yes | 0.1100 | 0.7400 |  |  |"


def test_table2_shows_the_papers_figures_for_all_five_models(tmp_path):
    published = {
        "baseline5": (0.1161, 0.7475),
        "vgg6": (0.1256, 0.7532),
        "res16": (0.1125, 0.7393),
        "res18": (0.1135, 0.7460),
        "vgg25": (0.1009, 0.7319),
    }  # ../shared/docs/LEADERBOARD.md, the paper's Table 2
    frame = tables.table2([fake_run(tmp_path, name, name, 0.1, 0.7) for name in published])
    assert [
        tuple(row)
        for row in frame[["paper PR-AUC-macro", "paper ROC-AUC-macro"]].itertuples(index=False)
    ] == list(published.values())


def test_table2_of_a_model_the_paper_lacks_leaves_its_columns_empty(tmp_path):
    frame = tables.table2([fake_run(tmp_path, "x", "tinynet", 0.2, 0.8)])
    assert frame.loc[0, ["conv layers", "residual", "paper PR-AUC-macro"]].isna().all()


def test_table_command_prints_markdown_and_writes_csv(tmp_path, capsys):
    runs = [
        fake_run(tmp_path, "a", "vgg6", 0.12, 0.75),
        fake_run(tmp_path, "b", "baseline5", 0.11, 0.74),
    ]
    status, out, _ = run_cli(capsys, "table", *runs, "--csv", tmp_path / "table2.csv")
    assert status == 0
    assert "| b | baseline5 | 0 | 5 | no | 0.1100 | 0.7400 | 0.1161 | 0.7475 |" in out
    csv = pd.read_csv(tmp_path / "table2.csv")
    assert list(csv["model"]) == ["vgg6", "baseline5"]
    assert list(csv["paper PR-AUC-macro"]) == [0.1256, 0.1161]


def test_table_command_prints_each_runs_per_tag_table(tmp_path, capsys):
    truth, scores = random_scores(n_tracks=80, n_tags=12, seed=6)
    run = tmp_path / "run"
    Config(model="vgg6").to_json(run / "config.json")
    evaluate.write_evaluation(
        run, truth, scores, truth, scores, [f"mood/theme---t{j}" for j in range(12)]
    )
    status, out, _ = run_cli(capsys, "table", run, "--per-tag", "--csv", "-")
    assert status == 0
    assert "| rank | tag | PR-AUC | ROC-AUC |" in out and "| … | … |  |  |" in out
    assert "run,model,split,conv layers,residual,PR-AUC-macro" in out

    (run / "per_tag.csv").unlink()
    status, out, err = run_cli(capsys, "table", run, "--per-tag")
    assert status == 2 and out == "" and "per_tag.csv: not found; evaluate the run first" in err


def test_run_without_metrics_says_to_evaluate_it(tmp_path, capsys):
    run = tmp_path / "run"
    Config().to_json(run / "config.json")
    with pytest.raises(
        DataFileError,
        match=r"metrics.json: not found; evaluate the run first "
        r"with `emotion-keras evaluate .*run`",
    ):
        tables.table2([run])
    status, _, err = run_cli(capsys, "table", run)
    assert status == 2 and "emotion-keras evaluate" in err and len(err.splitlines()) == 1


# --- Bad inputs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda t, p, d: (t, p[:, :3], d),
            r"predictions: shape \(60, 3\) does not match "
            r"groundtruth shape \(60, 4\)",
        ),
        (lambda t, p, d: (t, p, d[:59]), r"decisions: shape \(59, 4\) does not match"),
        (lambda t, p, d: (t, p[:, 0], d), r"predictions: expected a non-empty 2-D array"),
        (lambda t, p, d: (t[:0], p[:0], d[:0]), r"groundtruth: expected a non-empty 2-D array"),
        (
            lambda t, p, d: (t, d.astype(int), d),
            r"predictions: expected float scores, got dtype int",
        ),
        (lambda t, p, d: (t, p, p), r"decisions: expected bool or 0/1 values, found"),
        (
            lambda t, p, d: (t, p, d.astype(str)),
            r"decisions: expected bool or 0/1 values, got "
            r"dtype <U",
        ),
        (lambda t, p, d: (t * 2, p, d), r"groundtruth: expected bool or 0/1 values, found 2"),
        (lambda t, p, d: (np.where(t, np.nan, 0.0), p, d), r"groundtruth: contains NaN or inf"),
        (lambda t, p, d: (t, np.where(t, np.nan, p), d), r"predictions: \d+ values are NaN or inf"),
        (lambda t, p, d: (t, np.where(t, np.inf, p), d), r"predictions: \d+ values are NaN or inf"),
    ],
)
def test_bad_arrays_are_clear_errors(change, message):
    truth, scores = random_scores(n_tags=4)
    decisions = scores > 0.5
    truth, scores, decisions = change(truth, scores, decisions)
    with pytest.raises(DataFileError, match=message):
        metrics.official_scores(truth, scores, decisions)


def test_zero_one_numbers_are_accepted_as_truth_and_decisions():
    truth, scores = random_scores(n_tags=4)
    decisions = scores > 0.5
    assert metrics.official_scores(
        truth.astype(np.int64), scores, decisions.astype(float)
    ) == metrics.official_scores(truth, scores, decisions)


@pytest.mark.parametrize(
    "function", [metrics.auc_scores, decision_thresholds.choose_thresholds, metrics.per_tag_table]
)
def test_every_scorer_validates_its_inputs(function):
    truth, scores = random_scores(n_tags=4)
    args = (truth, scores[:, :3]) + (("a",) * 4,) * (function is metrics.per_tag_table)
    with pytest.raises(DataFileError, match=r"predictions: shape \(60, 3\) does not match"):
        function(*args)


def test_bad_thresholds_are_clear_errors():
    _, scores = random_scores(n_tags=4)
    with pytest.raises(DataFileError, match=r"thresholds: shape \(3,\), expected \(4,\)"):
        decision_thresholds.apply_thresholds(scores, [0.5] * 3)
    with pytest.raises(DataFileError, match=r"thresholds: contain NaN"):
        decision_thresholds.apply_thresholds(scores, [0.5, np.nan, 0.5, 0.5])


@pytest.fixture
def score_files(tmp_path):
    truth, scores = random_scores(n_tags=4)
    np.save(tmp_path / "truth.npy", truth)
    np.save(tmp_path / "predictions.npy", scores)
    np.save(tmp_path / "decisions.npy", scores > 0.5)
    return tmp_path


@pytest.mark.parametrize(
    "write, message",
    [
        (None, r"--predictions .*bad.npy: file not found"),
        (
            lambda p: p.write_text("not an array"),
            r"--predictions .*bad.npy: not a readable .npy array",
        ),
        (lambda p: p.write_bytes(b""), r"--predictions .*bad.npy: not a readable .npy array"),
        (
            lambda p: np.save(p, np.array([{"a": 1}], dtype=object)),
            r"--predictions .*bad.npy: not a readable .npy array \(Object arrays cannot be loaded",
        ),
        (
            lambda p: p.write_bytes(np.lib.format.magic(1, 0) + b"\x10\x00{'descr': '<f8',  }\n"),
            r"--predictions .*bad.npy: not a readable .npy array",
        ),
        (lambda p: p.mkdir(), r"--predictions .*bad.npy: is a directory"),
        (
            lambda p: np.save(p, np.zeros((60, 3))),
            r"--predictions .*bad.npy: shape \(60, 3\) does not match --groundtruth "
            r".*truth.npy shape \(60, 4\)",
        ),
        (
            lambda p: np.save(p, np.zeros((60, 4), dtype=bool)),
            r"--predictions .*bad.npy: expected float scores, got dtype bool",
        ),
    ],
)
def test_score_command_reports_bad_files_in_one_line(capsys, score_files, write, message):
    bad = score_files / "bad.npy"
    if write is not None:
        write(bad)
    status, out, err = run_cli(
        capsys, "score", "--predictions", bad, "--groundtruth", score_files / "truth.npy"
    )
    assert status == 2 and out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith("emotion-keras score: error: ")
    assert re.search(message, err), err


def test_score_command_names_a_bad_decisions_file(capsys, score_files):
    np.save(score_files / "decisions.npy", np.full((60, 4), 0.7))
    status, _, err = run_cli(
        capsys,
        "score",
        "--predictions",
        score_files / "predictions.npy",
        "--decisions",
        score_files / "decisions.npy",
        "--groundtruth",
        score_files / "truth.npy",
    )
    assert status == 2 and "--decisions" in err and "found 0.7" in err


def test_split_flags_need_meta_dir(capsys, score_files):
    status, _, err = run_cli(
        capsys,
        "score",
        "--predictions",
        score_files / "predictions.npy",
        "--groundtruth",
        score_files / "truth.npy",
        "--split",
        1,
    )
    assert status == 2 and "--split and --subset choose the ground truth from --meta-dir" in err
    with pytest.raises(ConfigError, match="give either groundtruth_path or meta_dir"):
        evaluate.score_files(score_files / "predictions.npy")


def test_meta_dir_rows_must_match_the_predictions(capsys, score_files, jamendo_meta):
    status, _, err = run_cli(
        capsys,
        "score",
        "--predictions",
        score_files / "predictions.npy",
        "--meta-dir",
        jamendo_meta,
        "--split",
        0,
    )
    assert status == 2
    assert "shape (60, 4) does not match split-0/test of --meta-dir" in err
    assert "shape (4231, 56)" in err


def test_per_tag_table_of_the_real_submission_averages_to_the_official_macro(mediaeval):
    truth = np.load(mediaeval / "groundtruth.npy")
    predictions = np.load(mediaeval / "YL-UTokyo-run1" / "predictions.npy")
    table = metrics.per_tag_table(truth, predictions, metadata.MOODTHEME_TAGS)
    assert len(table) == 56 and list(table["rank"]) == list(range(1, 57))
    assert table["pr_auc"].mean() == pytest.approx(
        OFFICIAL["YL-UTokyo-run1"]["PR-AUC-macro"], abs=1e-6
    )
    assert table["roc_auc"].mean() == pytest.approx(
        OFFICIAL["YL-UTokyo-run1"]["ROC-AUC-macro"], abs=1e-6
    )
    assert table["positives"].min() >= 25

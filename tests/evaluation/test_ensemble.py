"""Ensembles of evaluated runs (`ensemble`), scoring several prediction files (`score`).

The runs here are run directories with saved evaluations of synthetic predictions (no model is
trained); the end-to-end check with trained demo runs and the exported graph is in
`tests/serving/test_ensemble_export.py`.
"""

import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from emotion_keras import cli
from emotion_keras.config import Config
from emotion_keras.data.metadata import HEADER
from emotion_keras.errors import ConfigError
from emotion_keras.evaluation import ensemble, evaluate, metrics, tables
from emotion_keras.evaluation import thresholds as decision_thresholds

TAGS = tuple(f"mood/theme---t{j}" for j in range(4))
N_TEST, N_VAL = 40, 30


def run_cli(capsys, *argv):
    status = cli.main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return status, out, err


def write_meta(meta_dir, rng, order=None):
    """Split-0 test and validation TSVs with random labels over TAGS (both classes per tag)."""
    truths = {}
    for subset, n in (("test", N_TEST), ("validation", N_VAL)):
        truth = rng.random((n, len(TAGS))) < 0.3
        truth[0], truth[1] = True, False
        ids = [f"track_{subset}_{i}" for i in range(n)]
        rows = list(range(n)) if order is None or subset != "test" else order
        lines = ["\t".join(HEADER)]
        for i in rows:
            tags = [t for t, positive in zip(TAGS, truth[i]) if positive] or [TAGS[0]]
            truth[i, 0] |= tags == [TAGS[0]]
            lines.append("\t".join([ids[i], "a", "b", f"{i % 100:02d}/{i}.mp3", "30.0", *tags]))
        path = meta_dir / "splits" / "split-0" / f"autotagging_moodtheme-{subset}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
        truths[subset] = truth[rows]
    return truths


@pytest.fixture
def meta(tmp_path):
    """(meta_dir, {"test": truth, "validation": truth}) of a small synthetic split 0."""
    meta_dir = tmp_path / "meta"
    return meta_dir, write_meta(meta_dir, np.random.default_rng(0))


def evaluated_run(path, meta, seed, model="vgg6", crop_frames=1280, tags=TAGS, **config):
    """A run directory whose evaluation holds noisy predictions of the truth of `meta`."""
    meta_dir, truths = meta
    rng = np.random.default_rng(seed)
    noisy = {s: t * 0.25 + rng.random(t.shape) * 0.75 for s, t in truths.items()}
    Config(
        model=model,
        data_dir=str(meta_dir),
        meta_dir=str(meta_dir),
        crop_frames=crop_frames,
        **config,
    ).to_json(path / "config.json")
    (path / "tags.txt").write_text("\n".join(tags) + "\n")
    evaluate.write_evaluation(
        path, truths["test"], noisy["test"], truths["validation"], noisy["validation"], tags
    )
    return path


@pytest.fixture
def runs(tmp_path, meta):
    """Three evaluated runs of different architectures and crop lengths on the same split."""
    return [
        evaluated_run(tmp_path / "a", meta, 1),
        evaluated_run(tmp_path / "b", meta, 2, model="res18", crop_frames=1536),
        evaluated_run(tmp_path / "c", meta, 3, model="baseline5", crop_frames=1408, epochs=3),
    ]


# --- Averaging --------------------------------------------------------------------------------


def test_ensemble_averages_the_members_and_is_scored_as_evaluate_scores_a_run(tmp_path, meta, runs):
    _, truths = meta
    out = tmp_path / "ens"
    built = ensemble.build_ensemble(runs, out)

    test_mean = np.mean([np.load(r / "predictions.npy").astype(np.float64) for r in runs], axis=0)
    val_mean = np.mean([np.load(r / "val_predictions.npy").astype(np.float64) for r in runs], 0)
    predictions = np.load(out / "predictions.npy")
    np.testing.assert_array_equal(predictions, test_mean.astype(np.float32))
    np.testing.assert_array_equal(np.load(out / "val_predictions.npy"), val_mean.astype(np.float32))
    thresholds = decision_thresholds.choose_thresholds(
        truths["validation"], val_mean.astype(np.float32)
    )
    np.testing.assert_array_equal(np.load(out / "thresholds.npy"), thresholds)
    decisions = np.load(out / "decisions.npy")
    np.testing.assert_array_equal(decisions, predictions >= thresholds)
    expected = metrics.official_scores(truths["test"], predictions, decisions)
    assert built.metrics == expected
    assert json.loads((out / "metrics.json").read_text()) == expected

    assert sorted(p.name for p in out.iterdir()) == [
        "decisions.npy",
        "ensemble.json",
        "members.csv",
        "metrics.json",
        "per_tag.csv",
        "predictions.npy",
        "tags.txt",
        "thresholds.npy",
        "val_predictions.npy",
    ]
    description = json.loads((out / "ensemble.json").read_text())
    assert description["kind"] == "ensemble"
    assert description["members"] == [str(r.resolve()) for r in runs]
    assert description["models"] == ["vgg6", "res18", "baseline5"]
    assert description["crop_frames"] == [1280, 1536, 1408]
    assert (description["split"], description["test_tracks"]) == (0, N_TEST)
    assert tuple((out / "tags.txt").read_text().split()) == TAGS
    members = pd.read_csv(out / "members.csv")
    assert list(members["run"]) == ["a", "b", "c", "ens"]
    assert list(members["model"])[-1] == "ensemble (vgg6 + res18 + baseline5)"
    assert members["PR-AUC-macro"].iloc[-1] == expected["PR-AUC-macro"]
    assert (
        members["PR-AUC-macro"].iloc[0]
        == json.loads((runs[0] / "metrics.json").read_text())["PR-AUC-macro"]
    )


def test_averaging_noisy_members_beats_their_mean(tmp_path, runs):
    built = ensemble.build_ensemble(runs, tmp_path / "ens")
    member_pr = [evaluate.read_metrics(r)["PR-AUC-macro"] for r in runs]
    member_roc = [evaluate.read_metrics(r)["ROC-AUC-macro"] for r in runs]
    # Independent noise averages out: the ensemble beats even its best member here.
    assert built.metrics["PR-AUC-macro"] > max(member_pr)
    assert built.metrics["ROC-AUC-macro"] > max(member_roc)


def test_ensemble_command_prints_table2_of_the_members_and_the_ensemble(tmp_path, runs, capsys):
    out = tmp_path / "ens"
    status, printed, err = run_cli(capsys, "ensemble", *runs, "--out", out)
    assert status == 0, err
    lines = printed.splitlines()
    assert lines[0].startswith("| run | model | split |")
    assert [line.split(" | ")[0] for line in lines[2:6]] == ["| a", "| b", "| c", "| ens"]
    assert "| ens | ensemble (vgg6 + res18 + baseline5) | 0 |  |  |" in lines[5]
    score = json.loads((out / "metrics.json").read_text())["PR-AUC-macro"]
    assert f"PR-AUC-macro     {score:.6f}" in printed

    # `table` shows the ensemble as a row beside its members (and with them in a CSV).
    status, printed, _ = run_cli(capsys, "table", *runs, out, "--csv", "-")
    assert status == 0
    assert f"| ens | ensemble (vgg6 + res18 + baseline5) | 0 |  |  | {score:.4f} |" in printed
    frame = tables.table2([*runs, out])
    assert list(frame["run"]) == ["a", "b", "c", "ens"]
    assert frame["conv layers"].isna().iloc[-1] and frame["paper PR-AUC-macro"].isna().iloc[-1]


def test_ensemble_folder_is_replaced_only_with_overwrite(tmp_path, runs, capsys):
    out = tmp_path / "ens"
    assert run_cli(capsys, "ensemble", *runs[:2], "--out", out)[0] == 0
    status, _, err = run_cli(capsys, "ensemble", *runs, "--out", out)
    assert status == 2 and "--out" in err and "--overwrite" in err
    assert json.loads((out / "ensemble.json").read_text())["models"] == ["vgg6", "res18"]
    assert run_cli(capsys, "ensemble", *runs, "--out", out, "--overwrite")[0] == 0
    assert len(json.loads((out / "ensemble.json").read_text())["members"]) == 3


@pytest.mark.parametrize(
    "target, message",
    [
        ("a", "is the member"),
        (".", "is the member .*a or a folder above it"),
        ("other", "exists and is not an ensemble"),
        ("file", "is a file"),
    ],
)
def test_ensemble_never_replaces_a_member_or_a_foreign_folder(
    tmp_path, runs, capsys, monkeypatch, target, message
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    (tmp_path / "file").write_text("mine")
    before = sorted(p.name for p in (tmp_path / "a").iterdir())
    status, out, err = run_cli(capsys, "ensemble", "a", "b", "--out", target, "--overwrite")
    assert status == 2 and out == "" and len(err.splitlines()) == 1
    assert re.search(f"--out {re.escape(target)}: {message}", err), err
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == before
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


# --- Members that cannot be averaged ----------------------------------------------------------


def _other_split(run, meta, tmp_path):
    config = json.loads((run / "config.json").read_text())
    config["split"] = 1
    (run / "config.json").write_text(json.dumps(config))


def _other_tags(run, meta, tmp_path):
    (run / "tags.txt").write_text("\n".join(reversed(TAGS)) + "\n")


def _never_evaluated(run, meta, tmp_path):
    (run / "metrics.json").unlink()


def _no_validation_predictions(run, meta, tmp_path):
    (run / "val_predictions.npy").unlink()


def _other_track_order(run, meta, tmp_path):
    other_meta = tmp_path / "meta-shuffled"
    write_meta(other_meta, np.random.default_rng(0), order=list(reversed(range(N_TEST))))
    config = json.loads((run / "config.json").read_text())
    config["meta_dir"] = config["data_dir"] = str(other_meta)
    (run / "config.json").write_text(json.dumps(config))


def _fewer_rows(run, meta, tmp_path):
    np.save(run / "predictions.npy", np.load(run / "predictions.npy")[:-1])


def _an_ensemble(run, meta, tmp_path):
    shutil.rmtree(run)
    ensemble.build_ensemble([tmp_path / "a", tmp_path / "b"], run)


def _not_a_run(run, meta, tmp_path):
    (run / "config.json").unlink()


@pytest.mark.parametrize(
    "change, message",
    [
        (_other_split, r"c: split 1, but .*a has split 0"),
        (_other_tags, r"c: different tags than .*a \(4 against 4, first difference at column 0\)"),
        (_never_evaluated, r"c: never evaluated \(no metrics.json\); run `emotion-keras evaluate"),
        (_no_validation_predictions, r"c: no validation predictions \(val_predictions.npy"),
        (
            _other_track_order,
            r"c: the split-0/test tracks under its meta_dir .*shuffled differ from .*a's",
        ),
        (_fewer_rows, r"c: predictions.npy has shape \(39, 4\), expected \(40, 4\)"),
        (_an_ensemble, r"c: is an ensemble, not a run; give its member runs"),
        (_not_a_run, r"c: not a run directory \(no config.json\)"),
    ],
)
def test_members_that_cannot_be_averaged_are_one_line_errors_naming_the_run(
    tmp_path, meta, runs, capsys, change, message
):
    change(runs[2], meta, tmp_path)
    status, out, err = run_cli(capsys, "ensemble", *runs, "--out", tmp_path / "ens")
    assert status == 2 and out == "" and len(err.splitlines()) == 1
    assert err.startswith("emotion-keras ensemble: error: ")
    assert re.search(message, err), err
    assert not (tmp_path / "ens").exists()


def test_a_run_given_twice_or_alone_is_refused(tmp_path, runs):
    with pytest.raises(ConfigError, match=r"a: given twice"):
        ensemble.build_ensemble([runs[0], runs[1], tmp_path / "." / "a"], tmp_path / "ens")
    with pytest.raises(ConfigError, match=r"at least two evaluated runs"):
        ensemble.build_ensemble(runs[:1], tmp_path / "ens")


# --- score with several prediction files ------------------------------------------------------


def test_score_of_several_files_is_the_score_of_their_mean(tmp_path, meta, runs, capsys):
    _, truths = meta
    np.save(tmp_path / "truth.npy", truths["test"])
    files = [r / "predictions.npy" for r in runs]
    mean = np.mean([np.load(f).astype(np.float64) for f in files], axis=0)
    expected = metrics.official_scores(truths["test"], mean)
    for flags in (
        ["--predictions", *files],
        ["--predictions", files[0], "--predictions", files[1], "--predictions", files[2]],
    ):
        status, out, err = run_cli(
            capsys, "score", *flags, "--groundtruth", tmp_path / "truth.npy", "--json"
        )
        assert status == 0, err
        assert json.loads(out) == expected

    np.save(tmp_path / "short.npy", np.load(files[0])[:-1])
    status, out, err = run_cli(
        capsys,
        "score",
        "--predictions",
        files[0],
        tmp_path / "short.npy",
        "--groundtruth",
        tmp_path / "truth.npy",
    )
    assert status == 2 and out == "" and len(err.splitlines()) == 1
    assert "--predictions " + str(tmp_path / "short.npy") + ": shape (39, 4)" in err


def test_score_of_the_two_real_submissions_is_the_official_formula_on_their_mean(
    shared_data, capsys
):
    mediaeval = shared_data / "mediaeval2019"
    truth = np.load(mediaeval / "groundtruth.npy")
    files = [mediaeval / run / "predictions.npy" for run in ("YL-UTokyo-run1", "baseline-vggish")]
    mean = (np.load(files[0]).astype(np.float64) + np.load(files[1]).astype(np.float64)) / 2
    official = {
        "PR-AUC-macro": average_precision_score(truth, mean, average="macro"),
        "ROC-AUC-macro": roc_auc_score(truth, mean, average="macro"),
        "PR-AUC-micro": average_precision_score(truth, mean, average="micro"),
        "ROC-AUC-micro": roc_auc_score(truth, mean, average="micro"),
    }
    status, out, err = run_cli(
        capsys,
        "score",
        "--predictions",
        *files,
        "--groundtruth",
        mediaeval / "groundtruth.npy",
        "--json",
    )
    assert status == 0, err
    scores = json.loads(out)
    assert tuple(scores) == metrics.AUC_NAMES
    for name, value in official.items():
        assert scores[name] == pytest.approx(value, abs=1e-6), name
    # The mean is a different ranking from either submission's: it is really scored.
    assert scores["PR-AUC-macro"] != pytest.approx(0.125564, abs=1e-4)
    assert scores["PR-AUC-macro"] != pytest.approx(0.107734, abs=1e-4)


def test_predict_on_an_ensemble_folder_says_to_export_it_first(tmp_path, runs, capsys):
    ensemble.build_ensemble(runs, tmp_path / "ens")
    track = tmp_path / "track.npy"
    np.save(track, np.zeros((96, 1500), np.float32))
    status, _, error = run_cli(capsys, "predict", tmp_path / "ens", track)
    assert status == 2
    error = error.strip()
    assert error.count("\n") == 0 and "an ensemble folder without its export" in error
    assert f"emotion-keras export {tmp_path / 'ens'}" in error


def test_building_an_ensemble_loads_no_model(tmp_path, runs):
    import subprocess
    import sys

    argv = ["ensemble", *map(str, runs), "--out", str(tmp_path / "ens")]
    code = (
        f"import sys\nfrom emotion_keras.cli import main\nstatus = main({argv!r})\n"
        "print(status, 'tensorflow' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "0 False"
    assert (tmp_path / "ens" / "metrics.json").is_file()

"""Distributed training: epoch sharding, MirroredStrategy over two logical CPUs, two workers.

The strategy tests run in subprocesses: logical devices and multi-worker collectives must be set
up before TensorFlow's runtime starts, which in the test process it already has.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emotion_keras.config import Config
from emotion_keras.data.pipeline import epoch_order
from emotion_keras.errors import ConfigError, TrainingError
from emotion_keras.rundir import RunDir
from emotion_keras.training import distribute
from tests.training.distributed.processes import finish, python, two_workers


def tracks_of(dataset) -> list[int]:
    return [int(track) for track, _ in dataset]


def test_worker_shards_of_an_epoch_are_disjoint_equal_and_cover_full_global_batches():
    n, global_batch, workers = 37, 8, 2  # 37 - 37 % 8 = 32 tracks per epoch, 16 per worker
    left_out = []
    for epoch_index in range(3):
        epoch = [
            tracks_of(
                epoch_order(
                    n, seed=4, epoch=epoch_index, shard=(workers, i), global_batch=global_batch
                )
            )
            for i in range(workers)
        ]
        assert [len(tracks) for tracks in epoch] == [16, 16]
        seen = set(epoch[0]) | set(epoch[1])
        assert len(seen) == 32 and not set(epoch[0]) & set(epoch[1])
        left_out.append(frozenset(range(n)) - seen)
    assert len(set(left_out)) > 1, "the same tracks were left out of every epoch"


def test_shards_pair_each_track_with_the_crop_one_device_gives_it():
    one = dict(epoch_order(40, seed=2, global_batch=8).as_numpy_iterator())
    for index in range(2):
        shard = dict(epoch_order(40, seed=2, shard=(2, index), global_batch=8).as_numpy_iterator())
        assert all(one[track] == draw for track, draw in shard.items())


def test_bad_shard_and_a_global_batch_larger_than_the_subset_are_refused():
    with pytest.raises(ConfigError, match=r"shard=\(2, 2\)"):
        epoch_order(10, shard=(2, 2))
    with pytest.raises(ConfigError, match="10 tracks, fewer than one global batch of 16"):
        epoch_order(10, global_batch=16)


def test_batch_must_split_evenly_over_replicas():
    assert distribute.per_replica_batch(64, distribute.Workers(replicas=4)) == 16
    with pytest.raises(ConfigError, match="^batch_size 64: does not split evenly over 3"):
        distribute.per_replica_batch(64, distribute.Workers(replicas=3))


def test_contiguous_shares_cover_every_track_once():
    for n in (0, 1, 7, 16):
        shares = [
            distribute.contiguous_share(n, distribute.Workers(count=3, index=i)) for i in range(3)
        ]
        assert [i for share in shares for i in share] == list(range(n))


@pytest.mark.parametrize(
    "tf_config, message",
    [
        (None, "TF_CONFIG environment variable is not set"),
        ("{not json", "TF_CONFIG: not a JSON object"),
        (
            '{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}',
            "task worker 1 is not in the cluster",
        ),
        (
            '{"cluster": {"worker": ["a:1"]}, "task": {"type": "ps", "index": 0}}',
            "task type 'ps': expected chief or worker",
        ),
    ],
)
def test_multiworker_needs_a_valid_tf_config(monkeypatch, tf_config, message):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(ConfigError, match=message):
        distribute.check_tf_config()


def test_a_slurm_job_step_resolves_to_the_cluster_and_this_task(monkeypatch):
    for name, value in {
        "SLURM_PROCID": "2",
        "SLURM_STEP_NUM_TASKS": "3",
        "SLURM_STEP_NODELIST": "node[07-08]",
        "SLURM_STEP_TASKS_PER_NODE": "2,1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.setenv("EMOTION_KERAS_PORT_BASE", "20000")
    cluster_visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    assert distribute.in_slurm_step()
    resolver = distribute.slurm_cluster()
    assert resolver.cluster_spec().as_dict() == {
        "worker": ["node07:20000", "node07:20001", "node08:20000"]
    }
    assert (resolver.task_type, resolver.task_id) == ("worker", 2)
    assert os.environ.get("CUDA_VISIBLE_DEVICES") == cluster_visible  # Slurm's GPUs stay
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "4")  # more tasks than the nodes hold
    with pytest.raises(ConfigError, match="Slurm environment does not describe a job step"):
        distribute.slurm_cluster()


def test_a_lost_worker_becomes_a_one_line_error_saying_how_to_resume():
    import tensorflow as tf

    lost = tf.errors.UnavailableError(
        None,
        None,
        "Collective ops is aborted by: ...\n/job:worker/replica:0/task:1\nRestart your program.",
    )
    with pytest.raises(
        TrainingError,
        match=r"^worker 0 of 2 lost the others \(/job:worker/"
        r"replica:0/task:1\); the run directory keeps epoch 4: start every "
        r"worker again with the same command to resume$",
    ):
        with distribute.lost_workers(distribute.Workers(count=2, replicas=2), lambda: 4):
            raise lost
    with pytest.raises(tf.errors.UnavailableError):  # one process: not a lost worker
        with distribute.lost_workers(distribute.Workers(), lambda: 4):
            raise lost


def load_weights(path: Path) -> list[np.ndarray]:
    with np.load(path) as saved:
        return [saved[f"arr_{i}"] for i in range(len(saved.files))]


@pytest.mark.slow
def test_mirrored_over_two_cpus_makes_the_one_device_update(small_demo):
    data_dir, meta_dir = small_demo
    [(code, out, err)] = finish(
        [python("tests.training.distributed.mirrored_check", data_dir, meta_dir)]
    )
    assert code == 0, err[-3000:]
    result = json.loads(out.strip().splitlines()[-1])
    assert result["replicas"] == 2
    assert result["steps"] == [2, 2]  # 32 tracks in global batches of 16
    # Synchronised BatchNormalization: the same update within float32 rounding; without it
    # each replica normalises its own 8 crops and the update differs visibly.
    assert result["synchronized"] < 1e-4
    assert result["unsynchronized"] > 100 * result["synchronized"]


@pytest.mark.slow
def test_train_mirrored_on_two_cpus(small_demo, tmp_path):
    data_dir, meta_dir = small_demo
    run = tmp_path / "run"
    [(code, _, err)] = finish(
        [
            python(
                "tests.training.distributed.worker",
                tmp_path,
                "--data-dir",
                data_dir,
                "--meta-dir",
                meta_dir,
                "--run-dir",
                run,
                "--strategy",
                "mirrored",
                "--cpu-devices",
                2,
            )
        ]
    )
    assert code == 0, err[-3000:]
    assert "2 replicas in sync; global batch 8, 4 per replica" in err
    assert "ran out of data" not in err
    assert RunDir(run).read_state()["epoch"] == 1
    # Checkpoints hold plain BatchNormalization (synchronisation is how the run trained).
    saved = json.loads(
        zipfile.ZipFile(run / "checkpoints" / "epoch-0001.keras").read("config.json")
    )
    flags = [
        layer["config"]["synchronized"]
        for layer in saved["config"]["layers"]
        if layer["class_name"] == "BatchNormalization"
    ]
    assert flags and not any(flags)


def run_two_workers(small_demo, out: Path, run: Path, epochs: int, launcher="tf_config"):
    results = two_workers(*small_demo, out, run, "--epochs", epochs, launcher=launcher)
    for code, _, err in results:
        assert code == 0, err[-3000:]
    return results


@pytest.mark.slow
def test_two_workers_train_alike_the_chief_writes_and_both_resume(small_demo, tmp_path):
    run = tmp_path / "run"
    results = run_two_workers(small_demo, tmp_path, run, epochs=1)
    assert "worker 0 of 2 (chief), 2 replicas in sync" in results[0][2]
    assert "worker 1 of 2, 2 replicas in sync" in results[1][2]
    assert "this worker writes nothing" in results[1][2]

    chief, other = (load_weights(tmp_path / f"worker-{i}.npz") for i in range(2))
    assert all(np.array_equal(a, b) for a, b in zip(chief, other))
    from emotion_keras.models import load_model

    saved = load_model(run / "checkpoints" / "epoch-0001.keras").get_weights()
    assert all(np.allclose(a, b, rtol=0, atol=1e-6) for a, b in zip(chief, saved))
    logs = [json.loads((tmp_path / f"logs-{i}.json").read_text()) for i in range(2)]
    # Both validated every track (gathered shares) and so saw the same AUCs.
    assert logs[0]["epochs"] == logs[1]["epochs"]
    assert "val_pr_auc_macro" in logs[0]["epochs"][0]
    # Only the chief wrote: one history row per epoch, one set of per-tag rows.
    assert list(pd.read_csv(run / "history.csv")["epoch"]) == [0]
    assert len(pd.read_csv(run / "val_per_tag.csv")) == 56

    results = run_two_workers(small_demo, tmp_path, run, epochs=2)
    assert all("Resuming after epoch 1" in err for _, _, err in results)
    assert RunDir(run).read_state()["epoch"] == 2
    assert list(pd.read_csv(run / "history.csv")["epoch"]) == [0, 1]
    assert Config.from_json(run / "config.json").strategy == "multiworker"


@pytest.mark.slow
def test_a_worker_killed_mid_epoch_is_restarted_and_no_epoch_is_lost_or_repeated(
    small_demo, tmp_path
):
    """Keras's BackupAndRestore semantics, with workers started as Slurm starts them: worker 1
    dies in epoch 2, the chief stops with an error saying how to go on, and both started
    again finish the 3 epochs from the last commit, each epoch recorded once."""
    run = tmp_path / "run"
    (chief_code, _, chief_err), (killed_code, _, _) = two_workers(
        *small_demo, tmp_path, run, "--epochs", 3, "--die-in-epoch", 2, launcher="slurm"
    )
    assert killed_code == -9
    assert chief_code != 0
    assert "worker 0 of 2 lost the others" in chief_err
    assert "keeps epoch 1: start every worker again" in chief_err
    assert RunDir(run).read_state()["epoch"] == 1

    results = run_two_workers(small_demo, tmp_path, run, epochs=3, launcher="slurm")
    assert all("Resuming after epoch 1" in err for _, _, err in results)
    assert RunDir(run).read_state()["epoch"] == 3
    assert list(pd.read_csv(run / "history.csv")["epoch"]) == [0, 1, 2]
    per_tag = pd.read_csv(run / "val_per_tag.csv")
    assert per_tag.groupby("epoch").size().to_dict() == {1: 56, 2: 56, 3: 56}
    for index in range(2):  # each restarted worker trained epochs 2 and 3 only
        logs = json.loads((tmp_path / f"logs-{index}.json").read_text())
        assert len(logs["epochs"]) == 2 and logs["summary"]["epochs"] == 3

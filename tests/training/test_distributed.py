"""Distributed training: epoch sharding, MirroredStrategy over two logical CPUs, two workers.

The strategy tests run in subprocesses: logical devices and multi-worker collectives must be set
up before TensorFlow's runtime starts, which in the test process it already has.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emotion_keras.config import Config
from emotion_keras.data.pipeline import epoch_order
from emotion_keras.errors import ConfigError
from emotion_keras.rundir import RunDir
from emotion_keras.training import distribute
from tests.training.distributed.processes import finish, python, two_workers


def tracks_of(dataset) -> list[int]:
    return [int(track) for track, _ in dataset]


def test_worker_shards_of_an_epoch_are_disjoint_equal_and_cover_full_global_batches():
    n, global_batch, workers = 37, 8, 2  # 37 - 37 % 8 = 32 tracks per epoch, 16 per worker
    shards = [
        epoch_order(n, seed=4, shard=(workers, i), global_batch=global_batch)
        for i in range(workers)
    ]
    left_out = []
    for _ in range(3):  # each pass is an epoch
        epoch = [tracks_of(shard) for shard in shards]
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


def run_two_workers(small_demo, out: Path, run: Path, epochs: int):
    results = two_workers(*small_demo, out, run, "--epochs", epochs)
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

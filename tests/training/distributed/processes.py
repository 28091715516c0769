"""Starting and collecting the worker processes of the distribution tests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
TIMEOUT_S = 300


def python(module: str, *args, env=None, **kwargs):
    environment = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        **(env or {}),
    }
    return subprocess.Popen(
        [sys.executable, "-m", module, *map(str, args)],
        env=environment,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        **kwargs,
    )


def finish(processes) -> list[tuple[int, str, str]]:
    """Waits for every process (bounded), kills any left, returns (code, stdout, stderr)."""
    results = []
    try:
        for process in processes:
            out, err = process.communicate(timeout=TIMEOUT_S)
            results.append((process.returncode, out, err))
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, 9)
                process.wait(timeout=30)
    return results


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def consecutive_free_ports(n: int) -> int:
    """The first of `n` consecutive free ports (Slurm's workers on one node count up from it)."""
    for _ in range(50):
        first = free_ports(1)[0]
        probes = [socket.socket() for _ in range(n)]
        try:
            for offset, probe in enumerate(probes):
                probe.bind(("127.0.0.1", first + offset))
            return first
        except OSError:
            continue
        finally:
            for probe in probes:
                probe.close()
    raise RuntimeError(f"no {n} consecutive free ports")


def launch_environments(launcher: str, n: int = 2) -> list[dict]:
    """Each worker's environment on 127.0.0.1: a `TF_CONFIG`, or what `srun` sets per task."""
    if launcher == "tf_config":
        cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(n)]}
        return [
            {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})}
            for i in range(n)
        ]
    port_base = consecutive_free_ports(n)
    return [
        {
            "TF_CONFIG": "",
            "SLURM_PROCID": str(i),
            "SLURM_STEP_NUM_TASKS": str(n),
            "SLURM_STEP_NODELIST": "localhost",
            "SLURM_STEP_TASKS_PER_NODE": str(n),
            "EMOTION_KERAS_PORT_BASE": str(port_base),
        }
        for i in range(n)
    ]


def start_two_workers(data_dir, meta_dir, out: Path, run: Path, *options, launcher="tf_config"):
    """Starts two `worker` processes on 127.0.0.1 (MultiWorkerMirroredStrategy), configured by
    `TF_CONFIG` or (`launcher="slurm"`) by a Slurm job step's environment."""
    processes = []
    environments = launch_environments(launcher)
    try:
        for index in range(2):
            processes.append(
                python(
                    "tests.training.distributed.worker",
                    out,
                    "--data-dir",
                    data_dir,
                    "--meta-dir",
                    meta_dir,
                    "--run-dir",
                    run,
                    "--strategy",
                    "multiworker",
                    "--index",
                    index,
                    *options,
                    env=environments[index],
                )  # fmt: skip
            )
    except BaseException:
        finish(processes)
        raise
    return processes


def two_workers(data_dir, meta_dir, out: Path, run: Path, *options, launcher="tf_config"):
    """Trains with two `worker` processes (`start_two_workers`) to the end.

    `options` are more flags of `tests.training.distributed.worker`. Returns each worker's
    (exit code, stdout, stderr), worker 0 (the chief) first.
    """
    return finish(start_two_workers(data_dir, meta_dir, out, run, *options, launcher=launcher))

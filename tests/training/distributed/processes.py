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


def two_workers(data_dir, meta_dir, out: Path, run: Path, *options) -> list[tuple[int, str, str]]:
    """Trains with two `worker` processes on 127.0.0.1 (MultiWorkerMirroredStrategy).

    `options` are more flags of `tests.training.distributed.worker`. Returns each worker's
    (exit code, stdout, stderr), worker 0 (the chief) first.
    """
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    processes = []
    try:
        for index in range(2):
            tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
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
                    env={"TF_CONFIG": tf_config},
                )  # fmt: skip
            )
    finally:
        results = finish(processes)
    return results

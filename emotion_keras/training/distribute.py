"""Training on several devices and machines with TensorFlow's own `tf.distribute`.

`Config.strategy` picks the strategy (`make_strategy`):

- `default`: one device (TensorFlow's default strategy).
- `mirrored`: `tf.distribute.MirroredStrategy` over every GPU of this machine (over its logical
  CPU devices when it has no GPU).
- `multiworker`: `tf.distribute.MultiWorkerMirroredStrategy`, configured by the standard
  `TF_CONFIG` environment variable of each worker process (cluster addresses and the process's
  own task), or, without `TF_CONFIG`, by the environment Slurm gives each task of a job step
  (`srun`: `SLURM_PROCID`, `SLURM_STEP_NUM_TASKS`, `SLURM_STEP_NODELIST`,
  `SLURM_STEP_TASKS_PER_NODE`), read by TensorFlow's `SlurmClusterResolver` (`slurm_cluster`):
  every task is a worker, task 0 the chief, listening on port `SLURM_PORT_BASE` (+ its rank on
  its node; `EMOTION_KERAS_PORT_BASE` overrides it). It must be created before any other
  TensorFlow operation, so `train` creates it first thing.
- `auto`: `mirrored` when more than one GPU is visible, else `default`.

What changes with several replicas (the rest of training is unchanged):

- The batch size stays the *global* batch (64 by default); each replica gets
  `batch_size / replicas` crops per step, so the batch size must divide evenly.
- Each worker reads its own share of every epoch (`pipeline.train_dataset(shard=...)`): no track
  is read twice per epoch. Every step is a full global batch: each epoch leaves out the
  `n % batch_size` tracks that come last in its shuffle (different ones every epoch).
- BatchNormalization is synchronised across replicas during training
  (`models.synchronized_batch_norm`), so it normalises over the global batch as on one device;
  with the losses Keras scales by the replica count, a step then computes the same update as
  on one device.
- Validation predicts each track exactly once: on one machine through `model.predict`, which
  splits every batch across replicas and concatenates the outputs in order; across machines each
  worker predicts a contiguous share of the tracks on its own and the shares are all-gathered
  (`gather_rows`), so every worker computes the same AUCs and takes the same decisions (best
  epoch, early stopping).
- Only the chief (task `chief`, else worker 0) writes: configuration, checkpoints, history,
  TensorBoard logs. Other workers train and validate and write nothing. The run directory must
  be on a file system every worker sees, for resuming: all workers read the chief's checkpoints,
  and `agree` stops a run whose workers would resume from different epochs.

Keras 3's `fit` needs two work-arounds under a multi-replica strategy; they live in
`emotion_keras.training.keras_workarounds`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os

import numpy as np

from emotion_keras.errors import ConfigError, TrainingError

#: The first port of the workers of a Slurm job on each node (TensorFlow's default).
SLURM_PORT_BASE = 8888

#: What `srun` sets in every task's environment, and `slurm_cluster` reads.
SLURM_VARIABLES = (
    "SLURM_PROCID",
    "SLURM_STEP_NUM_TASKS",
    "SLURM_STEP_NODELIST",
    "SLURM_STEP_TASKS_PER_NODE",
)


@dataclasses.dataclass(frozen=True)
class Workers:
    """Where this process stands in a distributed run.

    Attributes:
        count: worker processes in the cluster (1 without multi-worker training).
        index: this worker's index, 0 to count - 1 (the chief is 0).
        is_chief: whether this worker writes the run directory.
        replicas: replicas in sync over all workers (devices that each run a copy of the model).
    """

    count: int = 1
    index: int = 0
    is_chief: bool = True
    replicas: int = 1

    @property
    def distributed(self) -> bool:
        return self.replicas > 1 or self.count > 1

    def describe(self) -> str:
        if not self.distributed:
            return "one device"
        where = f"worker {self.index} of {self.count}{' (chief)' if self.is_chief else ''}, "
        return (where if self.count > 1 else "") + f"{self.replicas} replicas in sync"


def check_tf_config() -> dict:
    """The parsed `TF_CONFIG` of a multi-worker run, or a one-line error saying what is wrong."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise ConfigError(
            "strategy multiworker: the TF_CONFIG environment variable is not set (nor is "
            "this a Slurm job step started by srun); each worker needs it, e.g. "
            '{"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": '
            '"worker", "index": 0}}',
            arguments=("strategy",),
        )
    try:
        tf_config = json.loads(raw)
        cluster, task = tf_config["cluster"], tf_config["task"]
        jobs = {job: list(addresses) for job, addresses in cluster.items()}
        task_type, task_index = task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ConfigError(
            f'TF_CONFIG: not a JSON object with "cluster" and "task" '
            f"({error.__class__.__name__}: {error})"
        ) from None
    if task_type not in ("chief", "worker"):
        raise ConfigError(f"TF_CONFIG: task type {task_type!r}: expected chief or worker")
    if not 0 <= task_index < len(jobs.get(task_type, [])):
        raise ConfigError(
            f"TF_CONFIG: task {task_type} {task_index} is not in the cluster "
            f"({', '.join(f'{k}: {len(v)}' for k, v in jobs.items())})"
        )
    return tf_config


def in_slurm_step() -> bool:
    """Whether this process is a task of a Slurm job step (started by `srun`)."""
    return all(name in os.environ for name in SLURM_VARIABLES)


def slurm_cluster():
    """The cluster of this Slurm job step, as TensorFlow's `SlurmClusterResolver` reads it.

    Every task is a worker; task (rank) 0 is the chief. GPUs are left as Slurm assigned them
    (`--gpus-per-task`): this process uses the GPUs it sees.

    Returns:
        A `tf.distribute.cluster_resolver.SimpleClusterResolver` with the cluster, this task and
        its GPU count.

    Raises:
        ConfigError: the Slurm variables are inconsistent (more tasks than the nodes hold).
    """
    import tensorflow as tf

    resolvers = tf.distribute.cluster_resolver
    port_base = int(os.environ.get("EMOTION_KERAS_PORT_BASE", SLURM_PORT_BASE))
    try:
        # One pretend GPU per task only to satisfy the resolver's GPU bookkeeping (it cannot
        # place zero GPUs per task); auto_set_gpu=False: CUDA_VISIBLE_DEVICES stays Slurm's.
        slurm = resolvers.SlurmClusterResolver(
            port_base=port_base, gpus_per_node=1024, gpus_per_task=1, auto_set_gpu=False
        )
        cluster = slurm.cluster_spec()
    except (RuntimeError, ValueError) as error:
        variables = ", ".join(f"{name}={os.environ.get(name)!r}" for name in SLURM_VARIABLES)
        raise ConfigError(
            f"strategy multiworker: the Slurm environment does not describe a job step "
            f"({error}; {variables})",
            arguments=("strategy",),
        ) from None
    return resolvers.SimpleClusterResolver(
        cluster,
        task_type=slurm.task_type,
        task_id=slurm.task_id,
        num_accelerators={"GPU": len(tf.config.list_physical_devices("GPU"))},
        rpc_layer="grpc",
    )


def make_strategy(name: str):
    """The `tf.distribute` strategy that `Config.strategy` names (see the module docstring)."""
    import tensorflow as tf

    if name == "multiworker":
        if not os.environ.get("TF_CONFIG") and in_slurm_step():
            return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=slurm_cluster())
        check_tf_config()
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        devices = gpus or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    if name not in ("auto", "default"):
        raise ConfigError(
            f"strategy {name!r}: expected auto, default, mirrored or multiworker",
            arguments=("strategy",),
        )
    return tf.distribute.get_strategy()


def workers_of(strategy) -> Workers:
    """This process's place in `strategy`'s cluster."""
    replicas = int(strategy.num_replicas_in_sync)
    resolver = getattr(strategy, "cluster_resolver", None)
    spec = resolver.cluster_spec().as_dict() if resolver is not None else {}
    if not spec:
        return Workers(replicas=replicas)
    chiefs = len(spec.get("chief", []))
    count = chiefs + len(spec.get("worker", []))
    task_type, task_id = resolver.task_type, int(resolver.task_id)
    index = task_id if task_type == "chief" else chiefs + task_id
    return Workers(count=count, index=index, is_chief=index == 0, replicas=replicas)


@contextlib.contextmanager
def lost_workers(workers: Workers, completed_epochs):
    """Turns the collective error a worker meets when another one dies into a one-line
    `TrainingError` that says how to go on.

    TensorFlow cannot replace a worker within a running job: when one stops (killed,
    preempted), the others' collectives abort (within seconds: the workers exchange
    heartbeats) and every worker must be started again, as Keras's `BackupAndRestore` expects.
    The run directory then resumes all of them after the last committed epoch.

    Args:
        workers: this process's place in the cluster (nothing is caught with one worker).
        completed_epochs: `() -> int`, the epochs committed so far (read when it happens).
    """
    import tensorflow as tf

    try:
        yield
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError) as error:
        if workers.count == 1:
            raise
        reason = next((line for line in str(error.message).splitlines() if "task" in line), "")
        raise TrainingError(
            f"worker {workers.index} of {workers.count} lost the others "
            f"({reason.strip() or type(error).__name__}); the run directory keeps epoch "
            f"{completed_epochs()}: start every worker again with the same command to resume"
        ) from None


def per_replica_batch(batch_size: int, workers: Workers) -> int:
    """The crops each replica gets per step, or an error when the batch does not split evenly."""
    if batch_size % workers.replicas:
        raise ConfigError(
            f"batch_size {batch_size}: does not split evenly over "
            f"{workers.replicas} replicas; use a multiple of {workers.replicas}",
            arguments=("batch_size",),
        )
    return batch_size // workers.replicas


def distributed_dataset(strategy, make_dataset):
    """The training input of a multi-replica run: one pipeline per worker, feeding its replicas.

    Args:
        strategy: the run's strategy.
        make_dataset: `shard -> tf.data.Dataset` of per-replica batches; `shard` is
            `(workers, index)` for `pipeline.train_dataset`, or None on a single worker.

    Returns:
        A distributed dataset for `model.fit`: each step, every replica takes the next batch of
        its worker's pipeline.
    """

    def worker_dataset(context):
        shard = None
        if context.num_input_pipelines > 1:
            shard = (context.num_input_pipelines, context.input_pipeline_id)
        # An unknown length: Keras then keeps one iterator for the pass, epoch after epoch, and
        # `steps_per_epoch` tells where each ends (this pipeline's batch count, the batches of
        # all its replicas, is not a count of global steps).
        return make_dataset(shard).filter(lambda *_: True)

    return strategy.distribute_datasets_from_function(worker_dataset)


def _per_replica(strategy, value, filler=None):
    """Distributed values: `value` on this worker's first replica, `filler` on its others."""
    calls = []

    def on_replica(context):
        calls.append(context.replica_id_in_sync_group)
        return value if len(calls) == 1 or filler is None else filler

    return strategy.experimental_distribute_values_from_function(on_replica)


def agree(strategy, value: int) -> tuple[int, int]:
    """The smallest and largest `value` over all workers (a collective: every worker calls it)."""
    values = gather_rows(strategy, np.array([[value]]), np.array([0]), n_rows=None)
    return int(values.min()), int(values.max())


def barrier(strategy) -> None:
    """Returns once every worker has reached it (a collective all-reduce of one number)."""
    import tensorflow as tf

    strategy.reduce(
        tf.distribute.ReduceOp.SUM,
        _per_replica(strategy, tf.constant(1.0), tf.constant(0.0)),
        axis=None,
    )


def gather_rows(strategy, rows: np.ndarray, ids: np.ndarray, n_rows: int | None) -> np.ndarray:
    """All-gathers every worker's `rows` (a collective: every worker calls it).

    Args:
        strategy: the run's strategy.
        rows: float `[k, columns]` computed by this worker.
        ids: int `[k]`: the row index of each of them in the result.
        n_rows: rows of the result; every index must come from exactly one worker. None: just
            stack all workers' rows, in worker order (ids ignored).

    Returns:
        float64 `[n_rows, columns]` (or `[sum of k, columns]` when n_rows is None), the same on
        every worker.
    """
    import tensorflow as tf

    rows = np.asarray(rows, dtype=np.float64)
    # One tensor per worker, [id, values...] per row (float64 keeps ids exact); the worker's
    # other replicas, if any, contribute no rows. Shares may differ in length.
    share = np.concatenate([np.asarray(ids, dtype=np.float64)[:, None], rows], axis=1)
    width = share.shape[1]
    filler = tf.zeros((0, width), tf.float64)
    gathered = strategy.gather(_per_replica(strategy, tf.constant(share), filler), axis=0)
    gathered = np.asarray(gathered, dtype=np.float64)
    if n_rows is None:
        return gathered[:, 1:]
    row_ids = gathered[:, 0].astype(np.int64)
    counts = np.bincount(row_ids[row_ids >= 0], minlength=n_rows)
    if len(counts) != n_rows or not (counts == 1).all():
        missing = np.flatnonzero(counts[:n_rows] != 1)[:5].tolist()
        raise RuntimeError(
            f"gathered predictions cover rows unevenly (first rows not seen "
            f"exactly once: {missing}); workers disagree on the split"
        )
    result = np.empty((n_rows, width - 1), dtype=np.float64)
    keep = row_ids >= 0
    result[row_ids[keep]] = gathered[keep, 1:]
    return result


def contiguous_share(n: int, workers: Workers) -> range:
    """The indices `[start, stop)` of `n` items that worker `workers.index` handles."""
    size = math.ceil(n / workers.count) if n else 0
    return range(min(n, workers.index * size), min(n, (workers.index + 1) * size))


class LocalPredictor:
    """`model.predict` on this worker's own devices, outside the strategy (no collectives).

    Used for this worker's share of the validation tracks in multi-worker training, where
    `model.predict` under the strategy would split the work by its own rules.
    """

    def __init__(self, model):
        import tensorflow as tf

        # reduce_retracing: whole tracks (eval_mode "track") come in many lengths.
        self._predict = tf.function(lambda x: model(x, training=False), reduce_retracing=True)

    def predict(self, dataset, verbose: int = 0, callbacks=()) -> np.ndarray:
        outputs = [np.asarray(self._predict(x)) for x in dataset]
        return np.concatenate(outputs) if outputs else np.zeros((0, 0), dtype=np.float32)

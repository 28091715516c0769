"""The training benchmark: is training fed fast enough, and how fast is the training step?

`python -m benchmarks train` (and `make bench`, after the pipeline benchmark) trains one
registered model (default vgg6, batch 64) for a few steps twice in the same process, with the
same compiled model:

- streaming: `model.fit` fed by the real input pipeline over the cached stand-in corpus of
  `benchmarks/corpus.py` (warm page cache). On the TensorFlow backend that is
  `pipeline.train_dataset` (tf.data), with `drop_remainder=True` so that every step has the same
  static shape (a smaller last batch would be compiled again inside the timed window) and
  `.repeat()` so that any number of steps fits. On another backend (JAX, where TensorFlow may be
  absent) it is a `keras.utils.PyDataset` over the same NumPy crop reader (`crops.CropReader`) read
  by a thread per core: the same reads, not the tf.data pipeline, and the report says so;
- in memory: one batch of the same shapes already in memory, repeated
  (`tf.data.Dataset.from_tensors(batch).repeat()` on TensorFlow, a `PyDataset` that returns the same
  NumPy arrays elsewhere), so the step never waits for input;
- `input_bound_ratio` = streaming / in-memory samples per second: near 1 the input keeps up with the
  model; the issue's target is >= 0.95;
- achieved GFLOP/s of the training step: in-memory samples/s x training FLOPs per sample, where
  training FLOPs are 3 x the forward FLOPs counted analytically by `model_flops` (the standard
  approximation: the backward pass costs about twice the forward, one product for the gradient with
  respect to the inputs and one for the weights). The streaming figure's GFLOP/s is reported too.

How steps are timed: each source gets one `model.fit` of warm-up + timed steps. A callback waits
for the loss of the last warm-up step and of the last timed step (which makes asynchronous
backends finish those steps) and reads the clock at both; the samples/s is timed steps x batch
size over the time between. Compilation, the pipeline's start-up and the warm-up steps are
therefore outside the window; the input's waits during the timed steps are inside it.

Precision and XLA: `mixed_precision` trains under Keras's `mixed_float16` policy on a GPU and
`mixed_bfloat16` on a CPU, and the model is compiled, by the product's own code
(`emotion_keras.training.optimization`), as training compiles it; `jit_compile` is Keras's compile
flag. On TensorFlow it switches XLA on or off (default off, as the training `Config`). On JAX the
training step is always compiled by XLA with `jax.jit`; `jit_compile=False` there is Keras's
op-by-op debugging path, not a way to train, so the default is on and the `sweep` compares float32
with mixed precision only. The sweep on TensorFlow measures float32, mixed, float32 + XLA and mixed
+ XLA.

This module only measures and reports; it must not change what it measures (the model and the
pipeline are used as training uses them). It must not import TensorFlow at module level: the JAX
path runs where TensorFlow is not installed.
"""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.corpus import (
    DEFAULT_CACHE_DIR,
    N_BANDS,
    SHARED_META,
    corpus_subset,
    ensure_corpus,
    ensure_packed,
    machine_description,
    warm_file,
    warm_page_cache,
)
from emotion_keras.errors import ConfigError
from emotion_keras.training.optimization import precision_policy

#: The issue's target for streaming / in-memory samples per second.
TARGET_INPUT_BOUND_RATIO = 0.95
#: Training FLOPs per forward FLOP: forward, then the gradients for inputs and for weights.
TRAINING_FLOPS_PER_FORWARD = 3
CROP_FRAMES = 1280  # the paper's T
NUM_TAGS = 56

# ---------------------------------------------------------------------------------------------
# Counting FLOPs
#
# Forward FLOPs per sample, a multiply and an add each counting as one FLOP (so a
# multiply-accumulate is 2), for the layers the registered models use:
# - Conv2D: 2 x (kernel height x width x input channels) per output element, whatever the
#   stride or padding (the output size accounts for both; zero padding is counted as if real),
#   plus 1 per output element for the bias and 1 for a non-linear activation;
# - Dense: 2 x inputs per output, plus bias and activation as for Conv2D;
# - BatchNormalization: 2 per element (the scale and shift it reduces to once the per-channel
#   factors are computed; the per-channel work and training's batch statistics are left out);
# - MaxPooling2D / AveragePooling2D: pool height x width per output element (comparisons or
#   additions);
# - ELU and Activation: 1 per element; Add: (inputs - 1) per element;
# - Input, ZeroPadding2D, Flatten, Reshape, Dropout: nothing (Dropout's training-time mask is
#   left out).
# Any other layer type raises, so that a new layer cannot silently count as free.

_FREE_LAYERS = ("InputLayer", "ZeroPadding2D", "Flatten", "Reshape", "Dropout")


def _elements(shape) -> int:
    return math.prod(int(n) for n in shape[1:])  # per sample: without the batch axis


def _activation_flops(layer, outputs: int) -> int:
    activation = getattr(layer, "activation", None)
    name = getattr(activation, "__name__", "linear")
    return 0 if name == "linear" else outputs


def layer_flops(layer) -> dict[str, int]:
    """One layer's forward FLOPs per sample, by kind (see the rules above).

    Returns:
        `{kind: FLOPs}` with kinds among `conv`, `dense` (the multiply-accumulates), `bias`,
        `batch_norm`, `pooling`, `activation`, `add`; empty for a layer that computes nothing.

    Raises:
        ValueError: a layer type these rules do not cover.
    """
    kind = type(layer).__name__
    if kind in _FREE_LAYERS:
        return {}
    outputs = _elements(layer.output.shape)
    if kind == "Conv2D":
        kernel_height, kernel_width, in_channels, _ = layer.kernel.shape
        flops = {"conv": 2 * kernel_height * kernel_width * in_channels * outputs}
    elif kind == "Dense":
        flops = {"dense": 2 * int(layer.kernel.shape[0]) * outputs}
    elif kind == "BatchNormalization":
        return {"batch_norm": 2 * outputs}
    elif kind in ("MaxPooling2D", "AveragePooling2D"):
        return {"pooling": math.prod(layer.pool_size) * outputs}
    elif kind in ("ELU", "Activation"):
        return {"activation": outputs}
    elif kind == "Add":
        return {"add": (len(layer.input) - 1) * outputs}
    else:
        raise ValueError(f"model_flops: no FLOP rule for layer {layer.name!r} of type {kind}")
    if layer.use_bias:
        flops["bias"] = outputs
    if _activation_flops(layer, outputs):
        flops["activation"] = outputs
    return flops


def flop_breakdown(model) -> dict[str, int]:
    """Forward FLOPs per sample of a built Keras model, summed by kind (see `layer_flops`)."""
    totals: dict[str, int] = {}
    for layer in model.layers:
        for kind, flops in layer_flops(layer).items():
            totals[kind] = totals.get(kind, 0) + int(flops)
    return totals


def model_flops(model) -> int:
    """Forward FLOPs per sample of a built Keras model (multiply and add are 1 FLOP each).

    vgg6 on a 96 x 1280 crop: about 2.6 GFLOP, nearly all of it in the convolutions. The
    training step is taken as `TRAINING_FLOPS_PER_FORWARD` (3) times this.
    """
    return sum(flop_breakdown(model).values())


# ---------------------------------------------------------------------------------------------
# The backend: precision, device, input sources


def _backend() -> str:
    import keras

    return keras.backend.backend()


def _gpu_name() -> str | None:
    """The first GPU's name as the backend sees it, or None on a CPU-only backend."""
    backend = _backend()
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            return tf.config.experimental.get_device_details(gpus[0]).get(
                "device_name", gpus[0].name
            )
    elif backend == "jax":
        import jax

        devices = [d for d in jax.devices() if d.platform == "gpu"]
        if devices:
            return devices[0].device_kind
    elif backend == "torch":
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    return None


def _backend_version() -> str:
    backend = _backend()
    try:
        module = __import__(backend)
        return f"{backend} {module.__version__}"
    except (ImportError, AttributeError):
        return backend


def _streaming_source(data_dir: Path, subset, n_frames, *, batch_size: int, steps: int, seed: int):
    """The streaming input and its label: tf.data on TensorFlow, else a PyDataset of crops."""
    if _backend() == "tensorflow":
        from emotion_keras.data import pipeline

        dataset = pipeline.train_dataset(
            data_dir,
            subset,
            n_frames,
            crop_frames=CROP_FRAMES,
            batch_size=batch_size,
            n_bands=N_BANDS,
            seed=seed,
            drop_remainder=True,
        ).repeat()
        return dataset, "tf.data pipeline (pipeline.train_dataset)"
    return (
        _numpy_reader_dataset(
            data_dir, subset, n_frames, batch_size=batch_size, steps=steps, seed=seed
        ),
        f"keras.utils.PyDataset over the NumPy reader (crops.CropReader, "
        f"{os.cpu_count()} threads), not the tf.data pipeline",
    )


def _numpy_reader_dataset(
    data_dir: Path, subset, n_frames, *, batch_size: int, steps: int, seed: int
):
    import keras

    from emotion_keras.data.crops import bands_major, open_reader

    # A packed float16 corpus's crops stay float16: the model casts them on its device.
    reader = open_reader(data_dir, subset, n_frames, crop_frames=CROP_FRAMES, n_bands=N_BANDS)
    labels = subset.labels.astype(np.float32)
    batches_per_epoch = len(subset) // batch_size

    class RandomCrops(keras.utils.PyDataset):
        """Random crops of shuffled tracks, epoch after epoch, as `train_dataset` reads them."""

        def __len__(self):
            return steps

        def __getitem__(self, index):
            epoch, k = divmod(index, batches_per_epoch)
            order = np.random.default_rng([seed, epoch]).permutation(len(subset))
            tracks = order[k * batch_size : (k + 1) * batch_size]
            draws = np.random.default_rng([seed, epoch, k]).integers(0, 2**62, batch_size)
            crops = reader.read_random(tracks, draws)
            if reader.frames_major:  # a packed corpus's crops: transposed here, in NumPy
                crops = bands_major(crops)
            return crops[..., None], labels[tracks]

    return RandomCrops(workers=os.cpu_count() or 1, use_multiprocessing=False)


def _in_memory_source(batch_x: np.ndarray, batch_y: np.ndarray, steps: int):
    if _backend() == "tensorflow":
        import tensorflow as tf

        return (
            tf.data.Dataset.from_tensors((batch_x, batch_y)).repeat(),
            "one batch repeated (tf.data.Dataset.from_tensors(batch).repeat())",
        )
    import keras

    class SameBatch(keras.utils.PyDataset):
        def __len__(self):
            return steps

        def __getitem__(self, index):
            return batch_x, batch_y

    return SameBatch(), "one NumPy batch repeated (keras.utils.PyDataset)"


# ---------------------------------------------------------------------------------------------
# Timing


def time_fit(model, data, *, warmup_steps: int, steps: int, label: str, progress: bool) -> dict:
    """Fits `warmup_steps + steps` steps of `data`; seconds of the last `steps` (module docstring).

    Returns:
        `{"seconds": timed seconds, "warmup_seconds": from the fit's start to the end of the
        warm-up (compilation included), "step_seconds": each timed step's}`. Step times come
        from the clock at every step's end; only the two ends of the window wait for the step,
        so on an asynchronous backend single steps are approximate, their sum is not.
    """
    import keras

    last_warmup, last = warmup_steps - 1, warmup_steps + steps - 1

    class StepClock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.marks: dict[int, float] = {}
            self.stamps: list[float] = []
            self.started = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            if batch in (last_warmup, last):
                # Reading the loss waits for the step: asynchronous backends (JAX, GPUs) would
                # otherwise return before it has run.
                float(keras.ops.convert_to_numpy(logs["loss"]))
                self.marks[batch] = time.perf_counter()
            self.stamps.append(time.perf_counter())
            if progress:
                phase = "warm-up" if batch <= last_warmup else "timed"
                print(
                    f"  {label}: step {batch + 1}/{last + 1} ({phase}), "
                    f"{time.perf_counter() - self.started:.1f} s",
                    file=sys.stderr,
                )

    clock = StepClock()
    model.fit(
        data,
        epochs=1,
        steps_per_epoch=warmup_steps + steps,
        callbacks=[clock],
        verbose=0,
        shuffle=False,
    )
    if set(clock.marks) != {last_warmup, last}:
        raise RuntimeError(f"{label}: the fit stopped before step {last + 1} (input ran out?)")
    timed = clock.stamps[last_warmup:]
    return {
        "seconds": clock.marks[last] - clock.marks[last_warmup],
        "warmup_seconds": clock.marks[last_warmup] - clock.started,
        "step_seconds": [b - a for a, b in zip(timed, timed[1:])],
    }


def measure_variant(
    model_name: str,
    *,
    streaming_data,
    in_memory_data,
    batch_size: int,
    steps: int,
    warmup_steps: int,
    policy: str,
    jit_compile: bool,
    seed: int,
    progress: bool,
) -> dict:
    """Builds and compiles the model under `policy`, then times both input sources with it."""
    import keras

    from emotion_keras.config import Config
    from emotion_keras.models import build_model
    from emotion_keras.training.optimization import compile_model, schedule_phases

    label = f"{model_name} {policy}{' + XLA' if jit_compile else ''}"
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(policy)
    try:
        keras.utils.set_random_seed(seed)
        model = build_model(model_name, input_shape=(N_BANDS, CROP_FRAMES, 1), num_tags=NUM_TAGS)
        # The first phase of the paper's schedule, compiled as training compiles it.
        config = Config(model=model_name, batch_size=batch_size, epochs=1)
        compile_model(model, schedule_phases(config)[0], jit_compile)
        forward_flops = model_flops(model)
        timings = {}
        for source, data in (("streaming", streaming_data), ("in_memory", in_memory_data)):
            timings[source] = _fit_with_data_errors(
                model,
                data,
                warmup_steps=warmup_steps,
                steps=steps,
                label=f"{label}, {source.replace('_', '-')}",
                progress=progress,
            )
    finally:
        keras.mixed_precision.set_global_policy(previous)
        keras.backend.clear_session()
    streaming = steps * batch_size / timings["streaming"]["seconds"]
    in_memory = steps * batch_size / timings["in_memory"]["seconds"]
    train_gflop = TRAINING_FLOPS_PER_FORWARD * forward_flops / 1e9
    ratio = streaming / in_memory
    return {
        "precision": policy,
        "jit_compile": bool(jit_compile),
        "streaming_samples_per_s": streaming,
        "in_memory_samples_per_s": in_memory,
        "input_bound_ratio": ratio,
        "input_bound_target_met": ratio >= TARGET_INPUT_BOUND_RATIO,
        "forward_gflop_per_sample": forward_flops / 1e9,
        "train_gflop_per_sample": train_gflop,
        "achieved_gflop_per_s": in_memory * train_gflop,
        "streaming_gflop_per_s": streaming * train_gflop,
        "streaming_seconds": timings["streaming"]["seconds"],
        "in_memory_seconds": timings["in_memory"]["seconds"],
        "warmup_seconds": {k: v["warmup_seconds"] for k, v in timings.items()},
        "step_seconds": {k: v["step_seconds"] for k, v in timings.items()},
        # Medians shrug off a step slowed by another job on a shared machine; the headline
        # ratio above is the honest throughput over the whole window.
        "input_bound_ratio_median_step": (
            float(np.median(timings["in_memory"]["step_seconds"]))
            / float(np.median(timings["streaming"]["step_seconds"]))
        ),
    }


def _fit_with_data_errors(model, data, **kwargs) -> dict:
    if _backend() != "tensorflow":
        return time_fit(model, data, **kwargs)
    from emotion_keras.data.pipeline import data_errors

    with data_errors():
        return time_fit(model, data, **kwargs)


# ---------------------------------------------------------------------------------------------
# The benchmark


def _variants(
    backend: str, mixed_precision: bool, jit_compile: bool | None, sweep: bool
) -> list[tuple[bool, bool]]:
    """(mixed precision, jit_compile) pairs to measure, float32 first when sweeping."""
    if sweep:
        if mixed_precision or jit_compile is not None:
            raise ConfigError(
                "--sweep measures every precision and XLA setting itself; drop "
                "--mixed-precision and --jit-compile/--no-jit-compile"
            )
        if backend == "jax":  # always XLA (see the module docstring)
            return [(False, True), (True, True)]
        return [(False, False), (True, False), (False, True), (True, True)]
    if jit_compile is None:
        jit_compile = backend == "jax"
    return [(mixed_precision, jit_compile)]


def run_train_benchmark(
    model: str = "vgg6",
    batch_size: int = 64,
    *,
    steps: int = 5,
    warmup_steps: int = 1,
    mixed_precision: bool = False,
    jit_compile: bool | None = None,
    sweep: bool = False,
    tracks: int = 1000,
    corpus_dir: str | Path | None = None,
    seed: int = 0,
    meta_dir: Path | None = SHARED_META,
    progress: bool = True,
    packed: bool = False,
) -> dict:
    """Runs the training benchmark and returns its figures (see the module docstring).

    Args:
        model: a registered model name (`emotion_keras.models.MODELS`).
        batch_size: samples per training step.
        steps: timed training steps per input source.
        warmup_steps: untimed steps before them (the first one compiles); at least 1.
        mixed_precision: train under a mixed-precision policy.
        jit_compile: Keras's XLA flag; None: the backend's usual (off on TensorFlow, on on JAX).
        sweep: measure float32, mixed precision and (TensorFlow) XLA in one run.
        tracks: tracks in the stand-in corpus (1,000 shares the pipeline benchmark's corpus).
        corpus_dir: where the corpus is cached (default `.cache/bench/corpus-N`).
        seed: fixes the corpus, the crops and the model's initial weights.
        meta_dir: where the real durations are (None: use the fallback).
        progress: print progress to stderr.
        packed: stream from the corpus's packed float16 copy (`melspecs pack`, written on first
            use) instead of its `.npy` files.

    Returns:
        The figures of the first variant (float32 when sweeping) at the top level, every
        variant's under `variants`, and the machine, corpus and settings.

    Raises:
        ConfigError: an unknown model or an out-of-range value, naming the flag.
    """
    for flag, value, least in (
        ("--batch-size", batch_size, 1),
        ("--steps", steps, 1),
        ("--warmup-steps", warmup_steps, 1),
    ):
        if value < least:
            raise ConfigError(
                f"{flag} {value}: must be at least {least}"
                + (" (the first step compiles the model)" if flag == "--warmup-steps" else "")
            )
    if tracks < batch_size:
        raise ConfigError(
            f"--tracks {tracks}: must be at least the batch size ({batch_size}), "
            f"for one full batch per epoch"
        )

    import keras

    from emotion_keras.data.melspec_files import scan_melspecs
    from emotion_keras.models import MODELS

    if model not in MODELS:
        raise ConfigError(f"--model {model!r}: unknown model; valid models: {', '.join(MODELS)}")
    backend = keras.backend.backend()
    variants = _variants(backend, mixed_precision, jit_compile, sweep)

    def say(message):
        if progress:
            print(message, file=sys.stderr)

    corpus_dir = Path(corpus_dir) if corpus_dir else DEFAULT_CACHE_DIR / f"corpus-{tracks}"
    info, generated = ensure_corpus(
        corpus_dir, tracks, seed=seed, meta_dir=meta_dir, progress=progress
    )
    subset = corpus_subset(corpus_dir, info)
    data_dir = corpus_dir / "melspecs"
    if packed:
        data_dir = ensure_packed(corpus_dir, info, progress)
    load_before = os.getloadavg()[0]
    say(f"Warming the page cache: {tracks} tracks ({info['bytes'] / 1e9:.2f} GB) ...")
    if packed:
        warm_file(data_dir)
    else:
        warm_page_cache(data_dir, subset)
    n_frames = scan_melspecs(data_dir, subset, n_bands=N_BANDS)

    gpu = _gpu_name()
    total_steps = warmup_steps + steps
    streaming_data, streaming_source = _streaming_source(
        data_dir, subset, n_frames, batch_size=batch_size, steps=total_steps, seed=seed
    )
    # Content does not change the arithmetic: dB-like values as in the corpus, real labels.
    rng = np.random.default_rng(seed)
    batch_x = rng.normal(-40.0, 15.0, (batch_size, N_BANDS, CROP_FRAMES, 1)).astype(np.float32)
    batch_y = subset.labels[:batch_size].astype(np.float32)
    in_memory_data, in_memory_source = _in_memory_source(batch_x, batch_y, total_steps)

    results = []
    for mixed, jit in variants:
        policy = precision_policy(mixed, gpu is not None)
        say(
            f"Training {model} (batch {batch_size}, {policy}, jit_compile={jit}): "
            f"{warmup_steps} warm-up + {steps} timed steps per input source ..."
        )
        results.append(
            measure_variant(
                model,
                streaming_data=streaming_data,
                in_memory_data=in_memory_data,
                batch_size=batch_size,
                steps=steps,
                warmup_steps=warmup_steps,
                policy=policy,
                jit_compile=jit,
                seed=seed,
                progress=progress,
            )
        )

    result = {
        "model": model,
        "batch_size": batch_size,
        **results[0],
        "steps": steps,
        "warmup_steps": warmup_steps,
        "backend": backend,
        "backend_version": _backend_version(),
        "keras_version": keras.__version__,
        "device": gpu or machine_description()["cpu_model"],
        "streaming_source": streaming_source,
        "streaming_format": "packed float16" if packed else "npy float32",
        "in_memory_source": in_memory_source,
        "input_bound_target": TARGET_INPUT_BOUND_RATIO,
        "training_flops": f"{TRAINING_FLOPS_PER_FORWARD} x forward (analytic count, "
        f"benchmarks/train.py model_flops)",
        "variants": results,
        "tracks": tracks,
        "corpus_dir": str(corpus_dir),
        "corpus_generated_now": generated,
        "lengths_source": info["lengths_source"],
        "settings": {
            "crop_frames": CROP_FRAMES,
            "n_bands": N_BANDS,
            "seed": seed,
            "optimizer": "adam",
            "loss": "binary_crossentropy",
        },
        "machine": machine_description(),
        "load_avg_1min": {"before": load_before, "after": os.getloadavg()[0]},
    }
    return result


def format_report(result: dict) -> str:
    """The benchmark's figures as a short human-readable report."""
    machine = result["machine"]
    lines = [
        f"Training benchmark: {result['model']}, batch {result['batch_size']}, on "
        f"{result['device']} ({machine['nproc']} x {machine['cpu_model']}, "
        f"{machine['ram_gb']} GB RAM; {result['backend_version']}, Keras "
        f"{result['keras_version']}; load average {result['load_avg_1min']['before']:.2f} "
        f"before, {result['load_avg_1min']['after']:.2f} after)",
        f"corpus: {result['tracks']} tracks in {result['corpus_dir']}; lengths: "
        f"{result['lengths_source']}",
        f"streaming: {result['streaming_source']}",
        f"in memory: {result['in_memory_source']}",
        f"{result['warmup_steps']} warm-up + {result['steps']} timed steps per source; training "
        f"FLOPs per sample {result['train_gflop_per_sample']:.2f} GFLOP "
        f"({result['training_flops']})",
        f"  {'precision':<16} {'XLA':<4} {'streaming/s':>12} {'in-memory/s':>12} "
        f"{'ratio':>6} {'GFLOP/s':>9}",
    ]
    for v in result["variants"]:
        lines.append(
            f"  {v['precision']:<16} {'yes' if v['jit_compile'] else 'no':<4} "
            f"{v['streaming_samples_per_s']:12.2f} {v['in_memory_samples_per_s']:12.2f} "
            f"{v['input_bound_ratio']:6.3f} {v['achieved_gflop_per_s']:9.1f}"
        )
        steps = v["step_seconds"]
        lines.append(
            f"  {'':<16} median step: streaming {np.median(steps['streaming']):.3f} s,"
            f" in memory {np.median(steps['in_memory']):.3f} s (ratio "
            f"{v['input_bound_ratio_median_step']:.3f})"
        )
    met = "yes" if result["input_bound_target_met"] else "NO"
    lines.append(
        f"target input_bound_ratio >= {result['input_bound_target']} "
        f"({result['precision']}, XLA {'on' if result['jit_compile'] else 'off'}): "
        f"{met}"
    )
    return "\n".join(lines)

"""The model registry: name -> builder, parameter summaries, safe loading.

`build_model("vgg6")` builds an uncompiled `keras.Model` from `melspec` `[batch, 96, 1280, 1]`
(bands, frames, channel) to `tags` `[batch, 56]` probabilities. Every model pools its input down
to a 1x1 map, so each accepts a range of input sizes; any other size is refused before a layer
is built, with the sizes that work.
"""

from __future__ import annotations

import math
from pathlib import Path

from emotion_keras.errors import ModelError
from emotion_keras.models import architectures as arch

MODELS = {
    "baseline5": arch.build_baseline5,
    "vgg6": arch.build_vgg6,
    "res16": arch.build_res16,
    "res18": arch.build_res18,
    "vgg25": arch.build_vgg25,
}

#: For each model: its number of convolutions (projection shortcuts excluded) and whether it is
#: residual, as the paper's Table 2 lists them.
CONV_LAYERS = {"baseline5": 5, "vgg6": 6, "res16": 16, "res18": 18, "vgg25": 25}
RESIDUAL = {"baseline5": False, "vgg6": False, "res16": True, "res18": True, "vgg25": False}

DEFAULT_INPUT_SHAPE = (96, 1280, 1)


def _downsampling(name: str) -> list[tuple[str, int, int]]:
    """The model's spatial reductions in order: ("pool", h, w) floors, ("stride", h, w) ceils."""
    steps = []

    def stage(s: arch.Stage):
        if s.pool is not None:
            steps.append(("pool", *s.pool))

    if name in ("res16", "res18"):
        if name == "res16":
            stage(arch.RES16_STEM)
        for step in arch.RES16 if name == "res16" else arch.RES18:
            if isinstance(step, arch.Block) and step.stride != 1:
                steps.append(("stride", step.stride, step.stride))
            elif isinstance(step, arch.Pool):
                steps.append(("pool", *step.size))
    else:
        for s in {"baseline5": arch.BASELINE5, "vgg6": arch.VGG6, "vgg25": arch.VGG25}[name]:
            stage(s)
    return steps


def _final_size(size: int, steps, axis: int) -> int:
    for kind, *factors in steps:
        factor = factors[axis]
        size = size // factor if kind == "pool" else math.ceil(size / factor)
    return size


def _working_range(steps, axis: int, limit: int = 1 << 18) -> tuple[int, int]:
    sizes = [n for n in range(1, limit) if _final_size(n, steps, axis) == 1]
    return sizes[0], sizes[-1]


def check_input_shape(name: str, input_shape) -> None:
    """Raises ModelError unless `input_shape` pools down to a 1x1 map in model `name`."""
    if len(input_shape) != 3:
        raise ModelError(f"model {name}: input shape {tuple(input_shape)} must be "
                         f"(bands, frames, channels)")
    steps = _downsampling(name)
    bands, frames = input_shape[0], input_shape[1]
    if _final_size(bands, steps, 0) != 1 or _final_size(frames, steps, 1) != 1:
        (b0, b1), (f0, f1) = _working_range(steps, 0), _working_range(steps, 1)
        raise ModelError(f"model {name}: input of {bands} bands x {frames} frames does not pool "
                         f"down to 1x1; it works for {b0}-{b1} bands and {f0}-{f1} frames "
                         f"(e.g. 96 x 1280)")


def build_model(name: str, input_shape=DEFAULT_INPUT_SHAPE, num_tags: int = 56):
    """Builds registered model `name` (uncompiled).

    Args:
        name: one of `MODELS`.
        input_shape: `(bands, frames, channels)` of a crop.
        num_tags: output size.

    Raises:
        ModelError: unknown name, or an input shape the model cannot pool to 1x1.
    """
    if name not in MODELS:
        raise ModelError(f"unknown model {name!r}; valid models: {', '.join(MODELS)}")
    check_input_shape(name, input_shape)
    return MODELS[name](input_shape=tuple(input_shape), num_tags=num_tags)


def model_summary(name: str, input_shape=DEFAULT_INPUT_SHAPE, num_tags: int = 56) -> dict:
    """Input shape, total and trainable parameter counts, conv layers and residual-ness."""
    import numpy as np

    model = build_model(name, input_shape, num_tags)
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    return {"input_shape": list(input_shape), "total_params": int(model.count_params()),
            "trainable_params": trainable, "conv_layers": CONV_LAYERS[name],
            "residual": RESIDUAL[name]}


def load_model(path: str | Path):
    """Loads a `.keras` model in safe mode, with a one-line error for a missing or bad file."""
    import keras

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: model file not found")
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as error:  # zip, JSON or weight errors all mean "not a usable model"
        raise ModelError(f"{path}: not a loadable .keras model "
                         f"({type(error).__name__}: {str(error).splitlines()[0][:200]})") from None

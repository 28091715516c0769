"""The model registry: name -> builder, input sizes, parameter summaries, safe loading.

`build_model("vgg6")` builds an uncompiled `keras.Model` from `melspec` `[batch, 96, 1280, 1]`
(bands, frames, channel) to `tags` `[batch, 56]` float32 probabilities. Every paper model pools
its input down to a 1x1 map, so each accepts a range of input sizes (`input_sizes`; any number of
frames with a global `time_pooling`); any other size is refused before a layer is built, with the
sizes that work.

The paper's five architectures are tables in `architectures` (`ARCHITECTURES`); `convs`, the 2021
winner's frequency-collapse VGG, is in `convs` (it averages over time windows, so it takes crops
of any length from 32 frames). This module only looks them up. It must not compile, train or save
models: that is `emotion_keras.training`'s job. Importing it imports Keras, so command-line code
imports it inside the command function.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import keras

from emotion_keras.errors import ConfigError, ModelError
from emotion_keras.models import architectures as arch
from emotion_keras.models.architectures import (
    ARCHITECTURES,
    DEFAULT_DROPOUT,
    DEFAULT_INPUT_SHAPE,
    DEFAULT_NUM_TAGS,
    Architecture,
)
from emotion_keras.models.augment import SpecAugment  # noqa: F401 (registered for loading)
from emotion_keras.models.convs import CONVS_ARCHITECTURE

#: The registry: name -> `Architecture`, the paper's Table 2 in its order, then `convs`.
MODELS: dict[str, Architecture] = {
    architecture.name: architecture for architecture in (*ARCHITECTURES, CONVS_ARCHITECTURE)
}


def get_architecture(name: str) -> Architecture:
    """The registered architecture `name`, or a ModelError listing the valid names."""
    if name not in MODELS:
        raise ModelError(
            f"model {name!r}: unknown; valid models: {', '.join(MODELS)}", arguments=("model",)
        )
    return MODELS[name]


def build_model(
    name: str,
    input_shape=DEFAULT_INPUT_SHAPE,
    num_tags: int = DEFAULT_NUM_TAGS,
    dropout: float = DEFAULT_DROPOUT,
    time_pooling: str = "model",
) -> keras.Model:
    """Builds registered model `name`, uncompiled.

    Args:
        name: one of `MODELS`.
        input_shape: `(bands, frames, 1)` of a crop.
        num_tags: number of outputs.
        dropout: rate of the Dropout before the output layer (paper: 0.5; 0 leaves it out).
        time_pooling: "model" (its own pooling), or "mean"/"max" over the time axis after the
            table so that a paper model takes crops of any length (`build_from_table`).

    Returns:
        The model, input layer `melspec`, output layer `tags` (float32 sigmoid).

    Raises:
        ModelError: an unknown name (listing the valid ones), an input shape the model cannot
            pool down to 1x1 (naming the sizes it can), or a dropout rate outside [0, 1).
    """
    return get_architecture(name).build(input_shape, num_tags, dropout, time_pooling)


@contextlib.contextmanager
def synchronized_batch_norm(model: keras.Model, enabled: bool = True):
    """Within the block, `model`'s BatchNormalization layers are synchronised (or not).

    Under a tf.distribute strategy with several replicas each replica sees only its share of the
    global batch; synchronised BatchNormalization all-reduces the batch mean and variance so that
    training normalises over the whole global batch, as on one device (Keras's
    `synchronized=True`, TensorFlow backend only). It is a property of how a model is trained,
    not of the model: training turns it on around `fit`, and checkpoints are saved inside
    `synchronized_batch_norm(model, False)`, so that they load on any backend. The flag is read
    when a step function is traced, so switching it between steps changes no compiled step.

    Args:
        model: a built model.
        enabled: the setting inside the block; the previous one is restored on leaving it.
    """
    layers = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    before = [layer.synchronized for layer in layers]
    for layer in layers:
        layer.synchronized = enabled
    try:
        yield model
    finally:
        for layer, flag in zip(layers, before):
            layer.synchronized = flag


def input_sizes(name: str, time_pooling: str = "model") -> dict[str, tuple[int, int | None]]:
    """The inclusive ranges of bands and frames that model `name` takes (high None: no limit).

    For example `input_sizes("vgg6") == {"bands": (96, 191), "frames": (1280, 2559)}`; pooling
    rounds down, so sizes above the smallest leave their last rows or frames unused. With
    `time_pooling` "mean" or "max" a paper model takes any number of frames.
    """
    return get_architecture(name).input_sizes(time_pooling)


def whole_track_model(model: keras.Model) -> keras.Model:
    """`model`'s layers, and so its weights, applied to inputs of any number of frames.

    For a model whose architecture takes whole tracks (`Architecture.whole_tracks`: `convs`):
    its layers form one chain, and none of them fixes the time axis, so the chain is applied
    again to an input `[batch, bands, None, 1]`. At the training crop length the result equals
    `model`'s; on a whole track `convs` averages the sigmoids of all its time windows, as the
    original's test pass does. The variables are `model`'s own (nothing is copied).

    Raises:
        ModelError: a model whose architecture does not take whole tracks.
    """
    architecture = MODELS.get(model.name)
    if architecture is None or not architecture.whole_tracks:
        takes = [name for name, a in MODELS.items() if a.whole_tracks]
        raise ModelError(
            f"model {model.name}: cannot take a whole track in one pass (models that can: "
            f"{', '.join(takes)})",
            arguments=("model",),
        )
    inputs = keras.Input((model.input.shape[1], None, 1), name="melspec")
    x = inputs
    for layer in model.layers[1:]:
        x = layer(x)
    return keras.Model(inputs, x, name=f"{model.name}_whole_track")


def check_crop(
    name: str,
    n_bands: int,
    crop_frames: int,
    time_pooling: str = "model",
    eval_mode: str = "crops",
) -> None:
    """Refuses a crop (or an evaluation) model `name` cannot take, naming the configuration
    fields to change.

    Raises:
        ConfigError: one line naming `crop_frames`, `n_bands`, `time_pooling` or `eval_mode`.
    """
    if eval_mode == "track" and not get_architecture(name).whole_tracks:
        takes = [model for model, a in MODELS.items() if a.whole_tracks]
        raise ConfigError(
            f"eval_mode track: model {name} cannot take a whole track in one pass (models "
            f"that can: {', '.join(takes)}); use eval_mode windows",
            arguments=("eval_mode", "model"),
        )
    if time_pooling not in arch.TIME_POOLINGS:
        raise ConfigError(
            f"time_pooling {time_pooling!r}: expected one of {', '.join(arch.TIME_POOLINGS)}",
            arguments=("time_pooling",),
        )
    try:
        sizes = input_sizes(name, time_pooling)
    except ModelError as error:
        raise ConfigError(str(error), arguments=("model",)) from None
    if name == "convs" and time_pooling != "model":
        raise ConfigError(
            f"time_pooling {time_pooling!r}: model convs averages over time windows of its "
            f"own; leave time_pooling at model",
            arguments=("time_pooling",),
        )

    def outside(value: int, low: int, high: int | None) -> bool:
        return value < low or (high is not None and value > high)

    def spelled(low: int, high: int | None) -> str:
        return f"{low}-{high}" if high is not None else f"{low} or more"

    if outside(n_bands, *sizes["bands"]):
        raise ConfigError(
            f"n_bands {n_bands}: model {name} takes {spelled(*sizes['bands'])} bands",
            arguments=("n_bands", "model"),
        )
    if outside(crop_frames, *sizes["frames"]):
        hint = (
            "; set time_pooling to mean or max for shorter or longer crops"
            if time_pooling == "model" and name != "convs"
            else ""
        )
        raise ConfigError(
            f"crop_frames {crop_frames}: model {name} takes {spelled(*sizes['frames'])} "
            f"frames with time_pooling {time_pooling}{hint}",
            arguments=("crop_frames", "time_pooling"),
        )


def count_conv_layers(model: keras.Model) -> int:
    """Convolutions on the main path: the depth the paper's model names count.

    Projection shortcuts (`*_proj_conv`) are not counted, as in the paper (res16 has 16
    convolutions plus two projections).
    """
    return sum(
        isinstance(layer, keras.layers.Conv2D) and not layer.name.endswith("_proj_conv")
        for layer in model.layers
    )


def model_summary(
    name: str, input_shape=DEFAULT_INPUT_SHAPE, num_tags: int = DEFAULT_NUM_TAGS
) -> dict:
    """The figures the `models` command and the evaluation table show, read off a built model.

    Returns:
        `{"input_shape": [bands, frames, 1], "total_params": int, "trainable_params": int,
        "conv_layers": int, "residual": bool}`; `residual` is whether the model adds shortcuts.
    """
    model = build_model(name, input_shape, num_tags)
    return {
        "input_shape": list(model.input.shape[1:]),
        "total_params": int(model.count_params()),
        "trainable_params": sum(math.prod(w.shape) for w in model.trainable_weights),
        "conv_layers": count_conv_layers(model),
        "residual": any(isinstance(layer, keras.layers.Add) for layer in model.layers),
    }


def load_model(path: str | Path, compile: bool = False) -> keras.Model:
    """Loads a `.keras` model in safe mode.

    The models use built-in Keras layers only, plus, in runs trained with SpecAugment, the
    registered `augment.SpecAugment`, so safe mode (which refuses to deserialise Python code such
    as `Lambda` layers) needs no custom objects passed in.

    Args:
        path: a `.keras` file written by `model.save`.
        compile: also restore the optimizer, loss and metrics (off: inference needs none).

    Raises:
        ModelError: a missing file, another format, or a file Keras cannot load (one line).
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise ModelError(f"{path}: expected a .keras model file (written by model.save)")
    if not path.is_file():
        raise ModelError(f"{path}: model file not found")
    try:
        return keras.saving.load_model(path, compile=compile, safe_mode=True)
    except Exception as error:  # zip, JSON, config or weight errors all mean "not usable"
        detail = (str(error).strip().splitlines() or [""])[0][:200]
        raise ModelError(
            f"{path}: not a loadable .keras model ({type(error).__name__}: {detail})"
        ) from None

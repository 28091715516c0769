"""The paper's five architectures (Yi et al. 2019, Table 2) as tables fed to one builder.

An architecture is a tuple of steps, read top to bottom like the paper's Table 1:
- `Conv(filters, kernel, pool, repeat)`: `repeat` x (convolution + BatchNormalization + ELU),
  then an optional max-pool (or average-pool);
- `Bottleneck(filters, stride, pool)`: the residual block of Fig. 2, then an optional max-pool.

`build_from_table` puts a BatchNormalization over the input in front and the head (Flatten,
Dropout(0.5), Dense(num_tags, sigmoid)) behind, after the last pooling has reduced the map to 1x1.
Details the paper leaves out follow the original PyTorch implementation: the input
BatchNormalization, "same" padding, pooling that rounds down, and bias in every convolution; the
parameter counts that confirm the match are pinned in `tests/test_models.py`.

The same table also says which input sizes a model accepts (`input_size_range`), so an input that
would not pool down to 1x1 is refused before any layer is built. Adding an architecture means
adding a table and one `Architecture` entry to `ARCHITECTURES` (the registry).
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable

import keras
from keras import layers

from emotion_keras.config import TIME_POOLINGS
from emotion_keras.errors import ModelError
from emotion_keras.models.blocks import (
    apply_bottleneck_block,
    apply_conv_bn_elu,
    apply_head,
    batch_norm,
)

DEFAULT_INPUT_SHAPE = (96, 1280, 1)
DEFAULT_NUM_TAGS = 56
#: The Dropout rate before the output layer (paper and original: 0.5).
DEFAULT_DROPOUT = 0.5


@dataclasses.dataclass(frozen=True)
class Conv:
    """`repeat` plain convolutions of `filters` x `kernel` (each + BN + ELU), then `pool`.

    `padding` None keeps the size ("same"); an integer p pads p zeros on every side and the
    convolution then keeps only full windows, changing each side by `2 p - (kernel - 1)`.
    """

    filters: int
    kernel: int = 3
    pool: tuple[int, int] | None = None
    repeat: int = 1
    average: bool = False  # average- instead of max-pooling
    padding: int | None = None


@dataclasses.dataclass(frozen=True)
class Bottleneck:
    """One residual bottleneck block of `filters` output channels, then `pool`."""

    filters: int
    stride: int = 1
    pool: tuple[int, int] | None = None


# The organisers' 5-convolution baseline (MediaEval 2019 task repository).
BASELINE5 = (
    Conv(64, 3, pool=(2, 4)),
    Conv(128, 3, pool=(2, 4)),
    Conv(128, 3, pool=(2, 4)),
    Conv(128, 3, pool=(3, 5)),
    Conv(64, 3, pool=(4, 4)),
)

# The paper's best single model; the comments are the output shapes of its Table 1.
VGG6 = (
    Conv(32, 3, pool=(2, 2)),  # 48 x 640 x 32
    Conv(64, 3, pool=(2, 4)),  # 24 x 160 x 64
    Conv(128, 3, pool=(2, 2)),  # 12 x 80 x 128
    Conv(256, 3, pool=(2, 4)),  # 6 x 20 x 256
    Conv(512, 3, pool=(3, 5)),  # 2 x 4 x 512
    Conv(256, 3, pool=(2, 4)),  # 1 x 1 x 256
)

# 16 convolutions: a 5x5 stem and five bottleneck blocks, two of them downsampling. The original's
# stem (model.py, class AudioNet) is `Conv2d(1, 64, 5, padding=3)`: padded by 3, not "same"'s 2,
# so it outputs (bands + 2) x (frames + 2), 98 x 1282 for a crop, and the (3, 5) max-pool after
# it sees the windows the original sees.
RES16 = (
    Conv(64, 5, pool=(3, 5), padding=3),
    Bottleneck(64),
    Bottleneck(128, stride=2, pool=(2, 4)),
    Bottleneck(128),
    Bottleneck(256, stride=2, pool=(2, 4)),
    Bottleneck(256, pool=(2, 4)),
)

# 18 convolutions: six bottleneck blocks straight on the input, no stem, no strides.
RES18 = (
    Bottleneck(64, pool=(2, 2)),
    Bottleneck(64, pool=(2, 4)),
    Bottleneck(128, pool=(2, 2)),
    Bottleneck(128, pool=(2, 4)),
    Bottleneck(256, pool=(3, 5)),
    Bottleneck(256, pool=(2, 4)),
)

# 25 plain convolutions, no residual connections: a 7x7 stem, then four groups of six 3x3.
VGG25 = (
    Conv(64, 7, pool=(2, 4)),
    Conv(64, 3, repeat=6, pool=(2, 4)),
    Conv(128, 3, repeat=6, pool=(2, 4)),
    Conv(256, 3, repeat=6, pool=(3, 5)),
    Conv(512, 3, repeat=6, pool=(4, 4), average=True),
)


def _size_changes(table):
    """The table's changes of the spatial size in order: `("add", n)` for a padded valid
    convolution, `("divide", factors, rounds_up)` per stride or pool."""
    for step in table:
        if isinstance(step, Conv) and step.padding is not None:
            for _ in range(step.repeat):
                yield "add", 2 * step.padding - (step.kernel - 1)
        if isinstance(step, Bottleneck) and step.stride != 1:
            # A strided convolution rounds up (PyTorch and Keras).
            yield "divide", (step.stride, step.stride), True
        if step.pool is not None:
            yield "divide", step.pool, False  # pooling rounds down (PyTorch, Keras "valid")


def _final_size(table, size: int, axis: int) -> int:
    for change in _size_changes(table):
        if change[0] == "add":
            size += change[1]
        else:
            _, factors, rounds_up = change
            size = -(-size // factors[axis]) if rounds_up else size // factors[axis]
    return size


def input_size_range(table, axis: int) -> tuple[int, int]:
    """The smallest and largest input size along `axis` (0 bands, 1 frames) that ends at 1.

    Each reduction maps consecutive sizes to equal or consecutive sizes, so the final size grows
    in steps of at most 1 and the sizes that end at exactly 1 form one interval.
    """
    low = 1
    while _final_size(table, low, axis) < 1:
        low += 1
    high = low
    while _final_size(table, high + 1, axis) == 1:
        high += 1
    return low, high


def parse_input(name: str, input_shape, num_tags) -> tuple[tuple[int, int, int], int]:
    """`input_shape` and `num_tags` as Python ints, checked for form only.

    Raises:
        ModelError: a shape that is not `(bands, frames, 1)` of positive integers, or a tag
            count below 1.
    """
    default = "x".join(map(str, DEFAULT_INPUT_SHAPE))
    try:
        shape = tuple(operator.index(n) for n in input_shape)
    except TypeError:
        raise ModelError(
            f"model {name}: input shape {input_shape!r} must be three integers "
            f"(bands, frames, 1), e.g. {default}"
        ) from None
    if len(shape) != 3 or min(shape) < 1 or shape[2] != 1:
        raise ModelError(
            f"model {name}: input shape {shape} must be (bands, frames, 1): a "
            f"one-channel mel-spectrogram, e.g. {default}"
        )
    try:
        tags = operator.index(num_tags)
    except TypeError:
        tags = 0
    if tags < 1:
        raise ModelError(f"model {name}: num_tags {num_tags!r} must be a positive integer")
    return shape, tags


def check_dropout(name: str, dropout) -> None:
    if not 0 <= dropout < 1:
        raise ModelError(f"model {name}: dropout {dropout!r} must be in [0, 1)")


def table_input_sizes(table, time_pooling: str = "model") -> dict:
    """The inclusive `(low, high)` bands and frames a table model takes; high None: no limit.

    With `time_pooling` "mean" or "max" any number of frames works (see `build_from_table`).
    """
    frames = input_size_range(table, 1) if time_pooling == "model" else (1, None)
    return {"bands": input_size_range(table, 0), "frames": frames}


def check_arguments(
    name: str, table, input_shape, num_tags, time_pooling: str = "model"
) -> tuple[tuple[int, int, int], int]:
    """Validates a builder's arguments before any layer exists.

    Returns:
        `input_shape` and `num_tags` as Python ints.

    Raises:
        ModelError: a shape that is not `(bands, frames, 1)`, one that does not pool down to 1x1
            (naming the bands and frames that do), an unknown `time_pooling`, or a tag count
            below 1.
    """
    if time_pooling not in TIME_POOLINGS:
        raise ModelError(
            f"model {name}: time_pooling {time_pooling!r}: expected one of "
            f"{', '.join(TIME_POOLINGS)}"
        )
    shape, tags = parse_input(name, input_shape, num_tags)
    final = (_final_size(table, shape[0], 0), _final_size(table, shape[1], 1))
    if time_pooling != "model":
        final = (final[0], 1)  # the global pooling ends the time axis at 1 whatever its size
    if final != (1, 1):
        default = "x".join(map(str, DEFAULT_INPUT_SHAPE))
        sizes = table_input_sizes(table, time_pooling)
        (b0, b1), (f0, f1) = sizes["bands"], sizes["frames"]
        frames = f"{f0}-{f1} frames" if f1 is not None else f"any number of frames from {f0}"
        raise ModelError(
            f"model {name}: input of {shape[0]} bands x {shape[1]} frames pools "
            f"down to {final[0]}x{final[1]}, not 1x1; it takes {b0}-{b1} bands and "
            f"{frames} (e.g. {default})"
        )
    return shape, tags


def _apply_step(x, step, name: str, clamp_time: bool = False):
    if isinstance(step, Bottleneck):
        x = apply_bottleneck_block(x, step.filters, step.stride, name)
    else:
        for i in range(1, step.repeat + 1):
            x = apply_conv_bn_elu(
                x,
                step.filters,
                step.kernel,
                f"{name}_{i}" if step.repeat > 1 else name,
                padding=step.padding,
            )
    if step.pool is not None:
        average = isinstance(step, Conv) and step.average
        pool = layers.AveragePooling2D if average else layers.MaxPooling2D
        size = step.pool
        if clamp_time:  # a short crop: never pool the time axis below one step
            size = (size[0], min(size[1], x.shape[2]))
        x = pool(size, name=f"{name}_pool")(x)
    return x


def build_from_table(
    name: str,
    table,
    input_shape=DEFAULT_INPUT_SHAPE,
    num_tags: int = DEFAULT_NUM_TAGS,
    dropout: float = DEFAULT_DROPOUT,
    time_pooling: str = "model",
) -> keras.Model:
    """Builds an architecture table into an uncompiled model.

    Step i of the table names its layers `block{i}_...` (e.g. `block1_conv`, `block1_pool`,
    `block3_proj_conv`, `block2_4_conv` for the fourth convolution of a repeated step).

    With `time_pooling` "mean" or "max" the model takes crops of any length: a time pooling
    window larger than what is left of the time axis shrinks to it (so a 128-frame crop is not
    pooled to nothing), and after the last step a `time_pool` layer takes the mean or maximum
    over the remaining time steps. Neither adds a parameter; at sizes the table pools down to
    one step by itself (1,280 frames for vgg6) no window shrinks, `time_pool` spans one step,
    and the model computes exactly what the "model" variant computes.

    Args:
        name: the model's name (used in error messages and as `model.name`).
        table: a tuple of `Conv` and `Bottleneck` steps.
        input_shape: `(bands, frames, 1)` of a crop.
        num_tags: number of outputs.
        dropout: rate of the Dropout before the output layer (the paper's 0.5; 0 removes it).
        time_pooling: "model" (the table's pooling only), "mean" or "max".

    Returns:
        A `keras.Model` from input `melspec` `[batch, bands, frames, 1]` to output `tags`
        `[batch, num_tags]` (float32 sigmoid probabilities).

    Raises:
        ModelError: see `check_arguments`.
    """
    input_shape, num_tags = check_arguments(name, table, input_shape, num_tags, time_pooling)
    check_dropout(name, dropout)
    inputs = keras.Input(shape=input_shape, name="melspec")
    # The original normalises the raw log-mel input with a BatchNormalization of its own.
    x = batch_norm("input_bn")(inputs)
    global_pooling = time_pooling != "model"
    for i, step in enumerate(table, start=1):
        x = _apply_step(x, step, f"block{i}", clamp_time=global_pooling)
    if global_pooling:
        pool = layers.AveragePooling2D if time_pooling == "mean" else layers.MaxPooling2D
        x = pool((1, x.shape[2]), name="time_pool")(x)
    return keras.Model(inputs, apply_head(x, num_tags, dropout=dropout), name=name)


@dataclasses.dataclass(frozen=True)
class Architecture:
    """A registered model: its table and the facts that identify it.

    Attributes:
        name: the registry name (`--model`).
        table: the steps its builder builds.
        summary: one line for listings.
        trainable_params: trainable parameters at the default input and 56 tags, equal to the
            original PyTorch implementation's count (pinned by the tests).
        builder: `(name, table, input_shape, num_tags, dropout, time_pooling) -> keras.Model`;
            `build_from_table` for the paper's models.
        sizes: `(table, time_pooling) -> {"bands": (low, high), "frames": (low, high)}`, the
            inclusive input sizes the builder accepts (high None: no limit).
        whole_tracks: its layers, applied in order, take any number of frames, so a whole
            track can go through them in one pass (`models.whole_track_model`).
    """

    name: str
    table: tuple
    summary: str
    trainable_params: int
    builder: Callable = build_from_table
    sizes: Callable = table_input_sizes
    whole_tracks: bool = False

    def build(
        self,
        input_shape=DEFAULT_INPUT_SHAPE,
        num_tags: int = DEFAULT_NUM_TAGS,
        dropout: float = DEFAULT_DROPOUT,
        time_pooling: str = "model",
    ) -> keras.Model:
        """The model, uncompiled (see `build_from_table`)."""
        return self.builder(self.name, self.table, input_shape, num_tags, dropout, time_pooling)

    def input_sizes(self, time_pooling: str = "model") -> dict:
        """The bands and frames the model takes (see `sizes`)."""
        return self.sizes(self.table, time_pooling)


#: Every registered architecture, in the order of the paper's Table 2.
ARCHITECTURES = (
    Architecture("baseline5", BASELINE5, "the organisers' 5-convolution baseline", 448_122),
    Architecture(
        "vgg6",
        VGG6,
        "6-convolution VGG-like network with ELU (the paper's best, Table 1)",
        2_764_794,
    ),
    Architecture(
        "res16",
        RES16,
        "residual, 16 convolutions: a 5x5 stem and five bottleneck blocks",
        1_872_122,
    ),
    Architecture("res18", RES18, "residual, 18 convolutions: six bottleneck blocks", 1_912_186),
    Architecture("vgg25", VGG25, "25 plain convolutions, average-pooled at the end", 17_301_690),
)

"""Exception types for user mistakes.

Every error a user can cause (a bad file, argument or shape) is one of these, with a one-line
message that names the file or argument and says what was expected. Messages name arguments by
their Python names (`data_dir`, `batch_size`), as a caller of the library passes them, and list
those names in `arguments`; the command line (`emotion_keras.cli`) renders them as its flags
(`--data-dir`) and prints the message alone, without a traceback. Deep code trusts its inputs
and does not raise these.
"""

from __future__ import annotations

import contextlib


class EmotionKerasError(Exception):
    """Base class: a user-facing error whose message is the whole story.

    Args:
        message: one line naming the file or argument and what was expected.
        arguments: the argument names (Python names, e.g. `data_dir`) the message mentions, so
            that a front end can show them in its own terms.
    """

    def __init__(self, message: str, *, arguments: tuple[str, ...] | list[str] = ()):
        super().__init__(message)
        self.arguments = tuple(arguments)


class MetadataError(EmotionKerasError):
    """A split TSV or tag file is missing or malformed (names file and line)."""


class DataFileError(EmotionKerasError):
    """A mel-spectrogram or audio file is missing, truncated or of the wrong shape/dtype."""


class ConfigError(EmotionKerasError):
    """A configuration field or argument has an invalid value."""


class ModelError(EmotionKerasError):
    """A model name, input shape or saved model is unusable."""


class TrainingError(EmotionKerasError):
    """Training cannot go on (the loss diverged to NaN or infinity, a worker was lost)."""


@contextlib.contextmanager
def naming_arguments(*names: str):
    """Adds `names` to the `arguments` of any EmotionKerasError raised in the block.

    For errors raised deep down whose messages name an argument of the caller (a file given as
    `predictions_path`, say) without knowing it is one.
    """
    try:
        yield
    except EmotionKerasError as error:
        error.arguments = tuple(dict.fromkeys(error.arguments + names))
        raise

"""Exception types for user mistakes.

Every error a user can cause (a bad file, flag or shape) is one of these, with a one-line message
that names the file or argument and says what was expected. The CLI prints the message alone,
without a traceback, and exits with status 2. Deep code trusts its inputs and does not raise these.
"""


class EmotionKerasError(Exception):
    """Base class: a user-facing error whose message is the whole story."""


class MetadataError(EmotionKerasError):
    """A split TSV or tag file is missing or malformed (names file and line)."""


class DataFileError(EmotionKerasError):
    """A mel-spectrogram or audio file is missing, truncated or of the wrong shape/dtype."""


class ConfigError(EmotionKerasError):
    """A configuration field or command-line flag has an invalid value."""


class ModelError(EmotionKerasError):
    """A model name, input shape or saved model is unusable."""


class TrainingError(EmotionKerasError):
    """Training cannot go on (the loss diverged to NaN or infinity)."""

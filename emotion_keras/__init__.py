"""Mood and theme recognition of music from mel-spectrograms with Keras.

Implements Yi, Wang & Yamasaki, "Emotion and Theme Recognition of Music Using Convolutional
Neural Networks" (MediaEval 2019, team YL-UTokyo) on the MTG-Jamendo `autotagging_moodtheme`
subset. Importing the package is cheap: TensorFlow is imported only by the modules that need it.

`from emotion_keras import Tagger` is the Python API for tagging your own music
(`emotion_keras.serving.tagger`); it is imported on first use.
"""

__version__ = "0.1.0"

__all__ = ["Tagger", "__version__"]


def __getattr__(name: str):
    if name == "Tagger":
        from emotion_keras.serving.tagger import Tagger

        return Tagger
    raise AttributeError(f"module 'emotion_keras' has no attribute {name!r}")

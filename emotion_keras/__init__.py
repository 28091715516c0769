"""Mood and theme recognition of music from mel-spectrograms with Keras.

Implements Yi, Wang & Yamasaki, "Emotion and Theme Recognition of Music Using Convolutional
Neural Networks" (MediaEval 2019, team YL-UTokyo) on the MTG-Jamendo `autotagging_moodtheme`
subset. Importing the package is cheap: TensorFlow is imported only by the modules that need it.
"""

__version__ = "0.1.0"

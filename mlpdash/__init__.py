"""mlpdash: train, watch and probe a TensorFlow multilayer perceptron on MNIST."""

import os

# TensorFlow's C++ start-up chatter (CUDA probing, CPU feature notes) buries our own messages;
# a user who wants it back sets TF_CPP_MIN_LOG_LEVEL themselves.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

"""mnist_sweep: hyperparameter sweeps for Keras models on MNIST."""

__version__ = "0.1.0"

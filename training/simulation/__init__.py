"""The embedded simulator, split by concern; the public API is :mod:`training.simulator`."""

"""Models and synthetic data of the shared-LSTM question. Submodules import TensorFlow only
where they build or train models (`variants`, `training`)."""

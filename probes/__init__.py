"""mtl-probe: measure how information flows through Keras multi-task models."""

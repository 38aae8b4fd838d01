"""Figures and PDF pages from saved probe results (never imports TensorFlow)."""

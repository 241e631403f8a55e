"""Offline stand-ins for networks a user would download: aisfx (general audio), the musicnn taggers
(read from their TF checkpoints without TensorFlow), and the mel-grid adapter they need."""

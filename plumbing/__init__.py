"""Plumbing: crash-safe files and checkpoints, audio reading, the torchrun/DDP rules, and the listening page."""

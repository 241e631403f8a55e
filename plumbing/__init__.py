"""Plumbing: crash-safe files and checkpoints, audio reading, and the torchrun/DDP rules."""

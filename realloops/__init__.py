"""Real loop files: where their bars are (tempo, tags, tail, beats) and the resumable journal of
preprocess.py. The machinery that cuts one-bar loops out of a loop library, not the paper's method."""

"""The paper's Section 5 metrics (IS, FAD, density & coverage, KID, loopability), the embedding
networks they run on, and the rows of the result tables. `python evaluate.py` is the command."""

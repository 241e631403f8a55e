"""pjloop's loop studio: a local web page that makes loops by genre, seed, truncation and tempo, plays them on
repeat, and makes variations and morphs of them (`python -m studio RUN`; docs/studio.md).

    app.py          the endpoints and the single generation worker (sample.py's functions behind them)
    __main__.py     the command: which model, which vocoder, where files go, the server
    static/         the page: index.html, studio.js, studio.css (no fonts, CDNs or analytics)

Not in the paper.
"""

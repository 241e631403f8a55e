"""The embedded demo loops: a General-MIDI renderer of drum patterns (drums) and synth styles (synths),
so pjloop trains offline with no data download. `python -m demo.loops --loops drum` renders a set."""

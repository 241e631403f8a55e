"""Spec of realloops/tags.py, realloops/tail.py and realloops/tempo.py: the tempo a loop file states (its name, its
tags), where its sound dies away, and the evidence chain that turns a file's length into bars. Everything
here runs without madmom: where the chain needs madmom's activations, a stand-in LoopEvidence with known
beats is used."""
from __future__ import annotations

import struct

import numpy as np
import pytest
import soundfile as sf

from realloops import tempo as lt
from plumbing.audio_io import SkipFile
from experiments.bench_preprocess import acid_chunk, append_riff_chunk
from realloops.tags import LoopTags, ogg_packets, read_tags, tempo_from_name
from realloops.tail import TailTest, tail_start

SR = 22_050


def clicks(bpm: float, bars: int, sr: int = SR, lead_s: float = 0.0) -> np.ndarray:
    """Decaying noise bursts on every beat (louder on the downbeat), float32 (N,): a minimal loop."""
    beat = 60.0 / bpm
    n = int(round(bars * 4 * beat * sr))
    y = np.zeros(n)
    t = np.arange(int(0.1 * sr))
    burst = np.random.default_rng(0).standard_normal(len(t)) * np.exp(-t / (0.02 * sr))
    for b in range(bars * 4):
        i = int(round(b * beat * sr))
        y[i:i + len(t)] += (1.0 if b % 4 == 0 else 0.5) * burst[:n - i]
    return np.concatenate([np.zeros(int(round(lead_s * sr))), 0.8 * y / np.abs(y).max()]).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Rule 1: the name.
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, bpm", [
    ("Trap Drums 140bpm.wav", 140.0), ("house_124_BPM_Am.flac", 124.0), ("kick-loop-120-Am.wav", 120.0),
    ("Lofi Keys 85 BPM.wav", 85.0), ("bpm92_groove.wav", 92.0), ("breaks_174.wav", 174.0),
    ("packs/Hip Hop 90 BPM/loop_03.wav", 90.0), ("92.5 BPM shuffle.wav", 92.5)])
def test_a_tempo_is_read_from_the_usual_spellings_in_a_file_name(name, bpm):
    assert tempo_from_name(name, 60, 200)[0] == bpm


@pytest.mark.parametrize("name", ["loop_999bpm.wav", "808_groove.wav", "take_2024.wav", "beat_45bpm.wav",
                                  "looperman-l-1234567-0123456-drums.wav", "2019/beat_02.wav", "groove.wav"])
def test_implausible_or_absent_tempi_in_a_name_are_no_evidence(name):
    assert tempo_from_name(name, 60, 200) == []


def test_an_explicit_bpm_outranks_a_bare_number():
    assert tempo_from_name("kit 100 - groove 128bpm.wav", 60, 200) == [128.0, 100.0]


# ---------------------------------------------------------------------------------------------
# Rule 2: the metadata.
# ---------------------------------------------------------------------------------------------
def test_a_wav_acid_chunk_gives_tempo_and_beats_and_a_smpl_chunk_the_loop_region(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, clicks(100, 2), SR)
    append_riff_chunk(path, acid_chunk(100.0, 8))
    smpl = struct.pack("<9I", 0, 0, 0, 60, 0, 0, 0, 1, 0) + struct.pack("<6I", 0, 0, 0, 52_919, 0, 0)
    append_riff_chunk(path, b"smpl" + struct.pack("<I", len(smpl)) + smpl)
    tags = read_tags(path)
    assert (tags.bpm, tags.beats, tags.loop, tags.tag) == (100.0, 8, (0, 52_920), "acid")
    assert sf.info(path).frames == len(clicks(100, 2))           # the file still decodes


def _id3(frames: bytes, major: int = 3) -> bytes:
    size = len(frames)
    return b"ID3" + bytes([major, 0, 0]) + bytes([(size >> s) & 0x7F for s in (21, 14, 7, 0)]) + frames


def test_an_id3_tbpm_frame_is_read_from_mp3_style_and_wav_id3_chunks(tmp_path):
    text = b"\x00" + b"126"                                       # latin-1 text frame
    tag = _id3(b"TIT2" + struct.pack(">I", 4) + b"\x00\x00" + b"\x00abc" + b"TBPM" + struct.pack(">I", len(text))
               + b"\x00\x00" + text)
    (tmp_path / "a.mp3").write_bytes(tag + b"\xff\xfb" + bytes(100))
    assert read_tags(tmp_path / "a.mp3") == LoopTags(bpm=126.0, tag="id3 TBPM")
    sf.write(tmp_path / "b.wav", clicks(126, 1), SR)
    append_riff_chunk(tmp_path / "b.wav", b"id3 " + struct.pack("<I", len(tag)) + tag)
    assert read_tags(tmp_path / "b.wav").bpm == 126.0


def _vorbis_comment(**fields) -> bytes:
    vendor = b"pjloop"
    body = struct.pack("<I", len(vendor)) + vendor + struct.pack("<I", len(fields))
    for key, value in fields.items():
        item = f"{key}={value}".encode()
        body += struct.pack("<I", len(item)) + item
    return body


def test_a_flac_bpm_comment_is_read_and_the_file_still_decodes(tmp_path):
    path = tmp_path / "a.flac"
    sf.write(path, clicks(95, 1), SR)
    data = path.read_bytes()
    streaminfo_len = int.from_bytes(data[5:8], "big")
    comment = _vorbis_comment(TITLE="x", BPM="95")
    block = bytes([4]) + len(comment).to_bytes(3, "big") + comment   # not the last block
    data = data[:4] + bytes([data[4] & 0x7F]) + data[5:8 + streaminfo_len] + \
        (bytes([0x84]) + block[1:] if data[4] & 0x80 else block) + data[8 + streaminfo_len:]
    path.write_bytes(data)
    assert read_tags(path) == LoopTags(bpm=95.0, tag="vorbis BPM")
    assert sf.info(path).frames == len(clicks(95, 1))


def _ogg_page(packet: bytes, seq: int) -> bytes:
    lacing = [255] * (len(packet) // 255) + [len(packet) % 255]
    return (b"OggS" + bytes([0, 0]) + bytes(8) + b"\x01\x00\x00\x00" + struct.pack("<I", seq) + bytes(4)
            + bytes([len(lacing)]) + bytes(lacing) + packet)


def test_an_ogg_vorbis_tempo_comment_is_read_even_across_long_packets(tmp_path):
    comment = b"\x03vorbis" + _vorbis_comment(COMMENT="x" * 600, TEMPO="140")   # > 255 bytes: laced
    (tmp_path / "a.ogg").write_bytes(_ogg_page(b"\x01vorbis" + bytes(23), 0) + _ogg_page(comment, 1))
    assert ogg_packets((tmp_path / "a.ogg").read_bytes(), 2)[1] == comment
    assert read_tags(tmp_path / "a.ogg").bpm == 140.0


def test_files_without_tags_or_with_broken_ones_give_no_evidence(tmp_path):
    sf.write(tmp_path / "plain.wav", clicks(120, 1), SR)
    (tmp_path / "junk.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEacid\xff\xff")
    (tmp_path / "missing.wav").unlink(missing_ok=True)
    for name in ("plain.wav", "junk.wav", "missing.wav"):
        assert read_tags(tmp_path / name) == LoopTags()


# ---------------------------------------------------------------------------------------------
# Spans, tails and stated tempi.
# ---------------------------------------------------------------------------------------------
def test_spans_are_the_whole_file_then_the_file_after_its_leading_digital_silence():
    x = np.concatenate([np.zeros(SR // 4), clicks(120, 1), np.zeros(SR // 10)]).astype(np.float32)
    spans = lt.candidate_spans(x, SR)
    assert spans == [(0.0, pytest.approx(2.35, abs=1e-3)), (pytest.approx(0.25, abs=1e-3), pytest.approx(2.1, abs=1e-3))]
    test = TailTest(x, SR)                                 # the trailing silence is a tail after the bar
    assert tail_start(test, 0.25, 2.35) <= 2.25 and test(0.25, 2.25, 2.35)


def test_a_reverb_tail_is_a_tail_and_more_music_is_not():
    loop = clicks(120, 1)
    t = np.arange(int(1.2 * SR)) / SR
    tail = 0.01 * np.random.default_rng(1).standard_normal(len(t)) * np.exp(-6.9 * t / 1.2)
    x = np.concatenate([loop, tail]).astype(np.float32)
    test = TailTest(x, SR)
    assert test(0.0, 2.0, len(x) / SR)                    # after the bar: a quiet decay
    assert not test(0.0, 1.0, len(x) / SR)                # from mid-bar: beats 3 and 4 are no tail
    assert not TailTest(np.tile(loop, 2), SR)(0.0, 2.0, 3.0)   # the next bar is no tail


def test_a_stated_tempo_is_used_only_when_the_file_is_a_whole_number_of_bars():
    x = clicks(100, 2, lead_s=0.3)                       # 0.3 s of digital silence, then 2 bars
    spans, test = lt.candidate_spans(x, SR), lt.TailTest(x, SR)
    plan = lt.plan_at_stated_tempo(100.0, spans, test, lt.RULE_NAME)
    assert plan.rule == lt.RULE_NAME and plan.bpm == pytest.approx(100.0, abs=0.05)
    assert [round(s, 2) for s, _ in plan.bars] == [0.3, 2.7]               # bars start after the silence
    assert lt.plan_at_stated_tempo(50.0 * 2, spans, test, lt.RULE_NAME, beats=8) is not None   # ACID: 2 bars
    assert lt.plan_at_stated_tempo(100.0, spans, test, lt.RULE_NAME, beats=16) is None        # not 4 bars
    assert lt.plan_at_stated_tempo(128.0, spans, test, lt.RULE_NAME) is None   # 2.56 bars: a wrong name
    assert lt.plan_at_stated_tempo(150.0, spans, test, lt.RULE_NAME) is None   # 3 bars: likelier wrong too


# ---------------------------------------------------------------------------------------------
# Rule 3 with stand-in evidence, and the chain's order.
# ---------------------------------------------------------------------------------------------
class KnownBeats(lt.LoopEvidence):
    """LoopEvidence whose madmom activations are given: beat peaks at `beats` (s), downbeats at `downs`."""

    def __init__(self, duration: float, beats, downs, tatum: float | None = None):
        frames = int(duration * lt.DBN_FPS) + 1
        act = np.zeros((frames, 2))
        for t in beats:
            act[int(round(t * lt.DBN_FPS)), 1 if any(abs(t - d) < 1e-6 for d in downs) else 0] = 0.9
        self.duration, self.looped, self.offset = duration, True, 0.0
        self.activations, self.beat, self.down = act, act.sum(axis=1), act[:, 1]
        self.tatum, self.strong, self.evidence = tatum, True, "beats"
        self.peak_times, self.peak_heights = np.asarray(beats, float), np.ones(len(beats))


def test_length_and_tempo_choose_the_bar_count_whose_grid_and_downbeats_fit():
    # 4.0 s: 1 bar at 60, 2 bars at 120 or 3 at 90. Beats every 0.5 s with downbeats at 0 and 2 s:
    # 2 bars at 120 BPM, not 1 bar at 60 (whose bar line at 2 s would be a mid-bar beat).
    beats = np.arange(8) * 0.5
    ev = KnownBeats(4.0, beats, downs=[0.0, 2.0], tatum=0.125)
    x = np.ones(int(4.0 * SR), np.float32)
    plan = lt.plan_from_length_and_tempo(ev, [(0.0, 4.0)], lt.TailTest(x, SR))
    assert plan.rule == lt.RULE_LENGTH and len(plan.bars) == 2 and plan.bpm == pytest.approx(120.0)
    assert 0.5 < plan.confidence <= 1.0
    # The same beats with a downbeat only at 0: one bar at 60 BPM, 8th notes heard as beats.
    plan = lt.plan_from_length_and_tempo(KnownBeats(4.0, beats, downs=[0.0], tatum=0.25), [(0.0, 4.0)],
                                         lt.TailTest(x, SR))
    assert len(plan.bars) == 1 and plan.bpm == pytest.approx(60.0)


def test_downbeats_half_a_bar_after_the_bar_lines_tell_a_bar_twice_too_long_or_half_too_short():
    # 3.0 s: 2 bars at 160 BPM (drum & bass), or 1 bar at 80. Beats every 0.375 s, downbeats at 0 and 1.5 s.
    beats = np.arange(8) * 0.375
    ev = KnownBeats(3.0, beats, downs=[0.0, 1.5], tatum=0.1875)
    right, slow, fast = (ev.hypothesis(0.0, 3.0, n) for n in (2, 1, 4))
    assert right.mid == pytest.approx(0.9)    # a downbeat on each bar line, none mid-bar
    assert slow.mid == pytest.approx(0.0)     # 1 bar at 80: a downbeat mid-bar as strong as on its bar line
    assert fast.mid == pytest.approx(0.45)    # 4 bars at 320: every other bar line has no downbeat
    plan = lt.plan_from_length_and_tempo(ev, [(0.0, 3.0)], lt.TailTest(np.ones(3 * SR, np.float32), SR))
    assert len(plan.bars) == 2 and plan.bpm == pytest.approx(160.0)


def test_beats_off_every_grid_make_rule_3_give_up_for_the_downbeat_tracker():
    beats = 0.31 + np.arange(10) * 0.437                 # a recording that starts mid-beat, 137 BPM
    ev = KnownBeats(4.6, beats, downs=beats[::4])
    x = np.ones(int(4.6 * SR), np.float32)
    assert lt.plan_from_length_and_tempo(ev, [(0.0, 4.6)], lt.TailTest(x, SR)) is None


def test_the_bpm_option_overrides_everything_and_a_short_file_is_skipped_with_its_reason(tmp_path):
    x = clicks(100, 2)
    plan = lt.find_bars(x, SR, "house_140bpm.wav", bpm=100)
    assert (plan.rule, len(plan.bars), plan.confidence) == (lt.RULE_OPTION, 2, 1.0)
    with pytest.raises(SkipFile, match="^shorter than a bar: 0.50 s"):
        lt.find_bars(x[:SR // 2], SR, "short.wav")


def test_a_name_decides_before_any_audio_evidence_is_computed(monkeypatch):
    def no_madmom(*a, **k):
        raise AssertionError("the name should have decided")
    monkeypatch.setattr(lt, "LoopEvidence", no_madmom)
    plan = lt.find_bars(clicks(120, 2), SR, "groove 60 BPM.wav")       # 4.0 s: 1 bar at 60 BPM
    assert (plan.rule, len(plan.bars), round(plan.bpm, 3)) == (lt.RULE_NAME, 1, 60.0)


def test_metadata_decides_when_the_name_says_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(lt, "LoopEvidence", lambda *a, **k: pytest.fail("the tags should have decided"))
    path = tmp_path / "groove.wav"
    sf.write(path, clicks(90, 4), SR)
    append_riff_chunk(path, acid_chunk(90.0, 16))
    plan = lt.find_bars(clicks(90, 4), SR, "groove.wav", path)
    assert (plan.rule, len(plan.bars), round(plan.bpm, 2)) == (lt.RULE_METADATA, 4, 90.0)


def test_a_file_without_any_onset_is_bars_only_when_its_length_allows_one_reading():
    quiet = KnownBeats(1.846, beats=[], downs=[])
    quiet.evidence, quiet.strong = "none", False
    x = np.ones(int(1.846 * SR), np.float32)                # a held chord: one bar at 130 BPM, nothing else fits
    plan = lt.plan_from_length_and_tempo(quiet, [(0.0, 1.846)], lt.TailTest(x, SR))
    assert len(plan.bars) == 1 and plan.bpm == pytest.approx(130.0, abs=0.1) and plan.confidence == lt.FALLBACK_CONFIDENCE
    x = np.ones(3 * SR, np.float32)                         # 3 s: 1 bar at 80 or 2 at 160 - no evidence to choose
    drone = KnownBeats(3.0, beats=[], downs=[])
    drone.evidence, drone.strong = "none", False
    assert lt.plan_from_length_and_tempo(drone, [(0.0, 3.0)], lt.TailTest(x, SR)) is None

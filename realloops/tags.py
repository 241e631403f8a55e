"""What a loop file says about its own tempo before any audio is heard: its name and its metadata.
Rules 1 and 2 of the evidence chain in realloops/tempo.py (paper Section 4 "Pipeline"; docs/design.md §1).

    tempo_from_name("Trap Drums 140bpm.wav", 60, 200)  -> [140.0]
    tempo_from_name("kick_loop_120_Am.wav", 60, 200)    -> [120.0]   a bare number between separators
    read_tags(path) -> LoopTags(bpm, beats, loop, tag)  WAV acid/smpl/id3 chunks, AIFF and MP3 ID3 TBPM,
                                                        FLAC/Ogg/Opus BPM comments

Pure byte and string parsing: a malformed or missing tag is no evidence, never an error.
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

MAX_TAG_BYTES = 1 << 20        # read at most 1 MiB of one chunk/tag: tempo tags are tiny, cover art is not
OGG_SCAN_BYTES = 1 << 18       # the comment packet sits in the first pages of an Ogg stream
TEMPO_COMMENT_KEYS = ("BPM", "TEMPO", "TBPM")   # Vorbis comment names a tempo is stored under, by custom
ACID_ONE_SHOT = 0x01           # ACID flag bit: the file is a one-shot, not a loop (its beat count means nothing)

# A tempo written next to "bpm" (either side), or a bare 2-3 digit number between separators.
_EXPLICIT_BPM = re.compile(r"(?<![\d.])(\d{2,3}(?:[.,]\d{1,2})?)\s*[-_ ]?\s*bpm|bpm\s*[-_ :=]?\s*(\d{2,3}(?:[.,]\d{1,2})?)(?!\d)",
                           re.IGNORECASE)
_BARE_NUMBER = re.compile(r"(?:^|[-_ .()\[\]#])(\d{2,3})(?=$|[-_ .()\[\]#])")


@dataclass(frozen=True)
class LoopTags:
    """Tempo evidence from a file's metadata; None where the file says nothing."""
    bpm: float | None = None                  # a tempo the file states
    beats: int | None = None                  # how many beats the loop holds (ACID)
    loop: tuple[int, int] | None = None       # (first sample, end sample exclusive) of the loop region (smpl)
    tag: str = ""                             # where the tempo came from: "acid", "id3 TBPM", "vorbis BPM", ...


# ---------------------------------------------------------------------------------------------
# Rule 1: the name.
# ---------------------------------------------------------------------------------------------
def _number(text: str) -> float:
    return float(text.replace(",", "."))


def tempo_from_name(source: str, lo: float, hi: float) -> list[float]:
    """Plausible tempi written in a file's name, best evidence first -> [] when there is none.

    An explicit tempo ("120bpm", "120 BPM", "bpm_120") beats a bare number between separators
    ("_120_", "-120-", "loop 120.wav"). Only tempi in [lo, hi] count: "808", "909", a year or a
    take number outside the range are not tempi. The parent folders count too, explicit form only
    ("Trap 140 BPM/kick.wav"): a folder named "2019" says nothing."""
    path = PurePosixPath(source)
    explicit = [_number(a or b) for a, b in _EXPLICIT_BPM.findall(path.stem)]
    bare = [_number(m) for m in _BARE_NUMBER.findall(_EXPLICIT_BPM.sub(" ", path.stem))]
    folders = [_number(a or b) for part in reversed(path.parts[:-1]) for a, b in _EXPLICIT_BPM.findall(part)]
    found = []
    for bpm in explicit + bare + folders:
        if lo <= bpm <= hi and bpm not in found:
            found.append(bpm)
    return found


# ---------------------------------------------------------------------------------------------
# Rule 2: the metadata.
# ---------------------------------------------------------------------------------------------
def _tempo_text(text: str) -> float | None:
    """'120', '120.5', ' 92,5 BPM' -> the number; anything else -> None."""
    m = re.search(r"\d+(?:[.,]\d+)?", text)
    return _number(m.group(0)) if m else None


def _syncsafe(b: bytes) -> int:
    """ID3v2's 28-bit integers: 7 bits per byte, the top bit always clear."""
    return (b[0] << 21) | (b[1] << 14) | (b[2] << 7) | b[3]


def _id3_text(payload: bytes) -> str:
    """An ID3 text frame's value: the first byte names the encoding."""
    enc, body = payload[:1], payload[1:]
    codec = {b"\x00": "latin-1", b"\x01": "utf-16", b"\x02": "utf-16-be", b"\x03": "utf-8"}.get(enc, "latin-1")
    return body.decode(codec, errors="replace").strip("\x00 ")


def parse_id3(data: bytes) -> float | None:
    """The TBPM frame (TBP in ID3v2.2) of an ID3v2 tag that starts `data` -> tempo, or None."""
    if len(data) < 10 or data[:3] != b"ID3":
        return None
    major, flags, size = data[3], data[5], _syncsafe(data[6:10])
    body = data[10:10 + size]
    if flags & 0x80 and major < 4:
        body = body.replace(b"\xff\x00", b"\xff")               # undo whole-tag unsynchronisation
    pos = 0
    if flags & 0x40 and len(body) >= 4:                          # skip the extended header
        pos = _syncsafe(body[:4]) if major >= 4 else 4 + struct.unpack(">I", body[:4])[0]
    id_len, head = (3, 6) if major == 2 else (4, 10)
    while pos + head <= len(body):
        frame_id = body[pos:pos + id_len]
        if frame_id[:1] in (b"\x00", b""):                      # padding: no more frames
            break
        if major == 2:
            n = int.from_bytes(body[pos + 3:pos + 6], "big")
        elif major >= 4:
            n = _syncsafe(body[pos + 4:pos + 8])
        else:
            n = struct.unpack(">I", body[pos + 4:pos + 8])[0]
        if frame_id in (b"TBPM", b"TBP"):
            return _tempo_text(_id3_text(body[pos + head:pos + head + n]))
        pos += head + n
    return None


def parse_vorbis_comment(data: bytes) -> float | None:
    """A Vorbis comment block (FLAC, Ogg Vorbis, Opus: little-endian lengths, "KEY=value" UTF-8)."""
    try:
        pos = 4 + struct.unpack_from("<I", data, 0)[0]           # skip the vendor string
        count = struct.unpack_from("<I", data, pos)[0]
        pos += 4
        for _ in range(count):
            n = struct.unpack_from("<I", data, pos)[0]
            key, _, value = data[pos + 4:pos + 4 + n].decode("utf-8", errors="replace").partition("=")
            pos += 4 + n
            if key.strip().upper() in TEMPO_COMMENT_KEYS:
                return _tempo_text(value)
    except struct.error:                                         # a truncated block: no evidence
        pass
    return None


def _riff_tags(f) -> LoopTags:
    """Walk a RIFF/WAVE file's chunks (seeking past the audio) for acid, smpl and id3."""
    bpm = beats = loop = None
    tag = ""
    while True:
        head = f.read(8)
        if len(head) < 8:
            break
        chunk_id, size = head[:4], struct.unpack("<I", head[4:])[0]
        if chunk_id == b"data" and size == 0xFFFFFFFF:          # RF64: the real size is elsewhere; stop
            break
        if chunk_id in (b"acid", b"smpl", b"id3 ", b"ID3 "):
            payload = f.read(min(size, MAX_TAG_BYTES))
            f.seek(size - len(payload) + (size & 1), 1)
        else:
            f.seek(size + (size & 1), 1)                         # chunks are padded to even sizes
            continue
        if chunk_id == b"acid" and len(payload) >= 24:
            flags, n_beats = struct.unpack_from("<I", payload, 0)[0], struct.unpack_from("<I", payload, 12)[0]
            tempo = struct.unpack_from("<f", payload, 20)[0]
            if tempo > 0:
                bpm, tag = float(tempo), "acid"
            if n_beats > 0 and not flags & ACID_ONE_SHOT:
                beats = int(n_beats)
        elif chunk_id == b"smpl" and len(payload) >= 36:
            n_loops = struct.unpack_from("<I", payload, 28)[0]
            for i in range(min(n_loops, (len(payload) - 36) // 24)):
                start, end = struct.unpack_from("<II", payload, 36 + 24 * i + 8)
                if end > start:
                    loop = (int(start), int(end) + 1)            # smpl's end is the loop's last sample
                    break
        elif bpm is None:
            id3_bpm = parse_id3(payload)
            if id3_bpm is not None:
                bpm, tag = id3_bpm, "id3 TBPM"
    return LoopTags(bpm, beats, loop, tag)


def _aiff_tags(f) -> LoopTags:
    """Walk an AIFF/AIFC file's (big-endian) chunks for an ID3 chunk."""
    while True:
        head = f.read(8)
        if len(head) < 8:
            return LoopTags()
        chunk_id, size = head[:4], struct.unpack(">I", head[4:])[0]
        if chunk_id in (b"ID3 ", b"id3 "):
            bpm = parse_id3(f.read(min(size, MAX_TAG_BYTES)))
            return LoopTags(bpm=bpm, tag="id3 TBPM") if bpm is not None else LoopTags()
        f.seek(size + (size & 1), 1)


def _flac_tags(f) -> LoopTags:
    """FLAC metadata blocks: type 4 is the Vorbis comment."""
    while True:
        head = f.read(4)
        if len(head) < 4:
            return LoopTags()
        last, kind, size = head[0] & 0x80, head[0] & 0x7F, int.from_bytes(head[1:], "big")
        if kind == 4:
            bpm = parse_vorbis_comment(f.read(min(size, MAX_TAG_BYTES)))
            return LoopTags(bpm=bpm, tag="vorbis BPM") if bpm is not None else LoopTags()
        if last:
            return LoopTags()
        f.seek(size, 1)


def ogg_packets(data: bytes, n: int) -> list[bytes]:
    """The first n packets of the first logical stream of an Ogg byte string (CRCs are not checked)."""
    packets, current, pos, serial = [], b"", 0, None
    while pos + 27 <= len(data) and len(packets) < n and data[pos:pos + 4] == b"OggS":
        page_serial, n_seg = data[pos + 14:pos + 18], data[pos + 26]
        table = data[pos + 27:pos + 27 + n_seg]
        pos += 27 + n_seg
        for lacing in table:
            if serial in (None, page_serial):
                current += data[pos:pos + lacing]
            pos += lacing
            if lacing < 255 and serial in (None, page_serial):   # a segment under 255 bytes ends a packet
                packets.append(current)
                current = b""
        serial = page_serial if serial is None else serial
    return packets[:n]


def _ogg_tags(f) -> LoopTags:
    """Ogg Vorbis ('\\x03vorbis' packet) or Opus ('OpusTags' packet) comments."""
    for packet in ogg_packets(f.read(OGG_SCAN_BYTES), 3)[1:]:
        for magic in (b"\x03vorbis", b"OpusTags"):
            if packet.startswith(magic):
                bpm = parse_vorbis_comment(packet[len(magic):])
                return LoopTags(bpm=bpm, tag="vorbis BPM") if bpm is not None else LoopTags()
    return LoopTags()


def read_tags(path: str | Path) -> LoopTags:
    """Tempo evidence from the metadata of any audio file pjloop reads; LoopTags() when there is none
    (or the file cannot be read: decoding it will report that properly)."""
    try:
        with open(path, "rb") as f:
            magic = f.read(12)
            if magic[:4] == b"RIFF" and magic[8:12] == b"WAVE":
                return _riff_tags(f)
            if magic[:4] == b"FORM" and magic[8:12] in (b"AIFF", b"AIFC"):
                return _aiff_tags(f)
            if magic[:4] == b"OggS":
                f.seek(0)
                return _ogg_tags(f)
            if magic[:3] == b"ID3":                              # MP3 (or an ID3-prefixed FLAC)
                f.seek(0)
                head = f.read(10)
                bpm = parse_id3(head + f.read(min(_syncsafe(head[6:10]), MAX_TAG_BYTES)))
                if bpm is not None:
                    return LoopTags(bpm=bpm, tag="id3 TBPM")
                f.seek(10 + _syncsafe(head[6:10]))
                if f.read(4) == b"fLaC":
                    return _flac_tags(f)
                return LoopTags()
            if magic[:4] == b"fLaC":
                f.seek(4)
                return _flac_tags(f)
    except (OSError, struct.error, ValueError):
        pass
    return LoopTags()

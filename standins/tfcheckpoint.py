"""Read a TensorFlow checkpoint in plain numpy: no TensorFlow needed (docs/design.md §2, §7).

The musicnn wheel ships its networks as TF-1 checkpoints: P.index (a LevelDB SSTable: tensor name ->
BundleEntryProto) and P.data-00000-of-00001 (the tensors' raw little-endian bytes). Every tensor we load is
checked against its masked CRC32C (and every index block against its own), so a truncated or corrupted
file fails with `TFCheckpointError` naming the tensor, never a silent wrong weight. `is_model_variable`
keeps the network's variables and drops the optimiser's slots and the step counter.
The byte layout, field by field: docs/modules.md, "standins/tfcheckpoint.py".
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

TABLE_MAGIC = 0xDB4775248B80FB57   # LevelDB's table magic number, the footer's last 8 bytes
FOOTER_BYTES = 48                  # two block handles (<= 2 x 20 bytes of varints) padded to 40, + magic
TRAILER_BYTES = 5                  # compression type (1 byte) + masked CRC32C (4 bytes) after every block
CRC_MASK_DELTA = 0xA282EAD8        # LevelDB's checksum masking constant
CRC32C_POLY = 0x82F63B78           # Castagnoli polynomial, bit-reflected
MIN_LANE_BYTES = 64                # below this, a plain byte loop is as fast as the lanes
# TF DataType enum -> numpy dtype (types.proto); a checkpoint's other types (strings, resources) are refused.
TF_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16, 6: np.int8,
             9: np.int64, 10: np.bool_, 19: np.float16}
OPTIMISER_NAMES = ("beta1_power", "beta2_power", "global_step")
OPTIMISER_SLOTS = ("/Adam", "/Adam_1")


class TFCheckpointError(ValueError):
    """A TF checkpoint that is missing, truncated, corrupted (checksum mismatch) or in an unknown layout."""


@dataclass(frozen=True)
class TensorEntry:
    """Where one tensor lives in the data file(s), and its checksum (a decoded BundleEntryProto)."""
    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    shard: int
    offset: int
    size: int
    masked_crc: int | None     # None: the index stores no checksum for it


# ---------------------------------------------------------------------------------------------
# CRC32C, vectorised over lanes (pure Python byte loops are ~1 s per checkpoint).
# ---------------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _crc_table() -> np.ndarray:
    """The 256-entry byte table of the reflected CRC32C register update, uint32."""
    t = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        t = np.where(t & 1, (t >> 1) ^ np.uint32(CRC32C_POLY), t >> 1).astype(np.uint32)
    return t


@lru_cache(maxsize=32)
def _shift_tables(n_bytes: int) -> np.ndarray:
    """(4, 256) uint32 tables of the linear map 'advance the raw register through n zero bytes', one
    table per byte of the register: shift(c) = T0[c & 255] ^ T1[c >> 8 & 255] ^ T2[..] ^ T3[c >> 24]."""
    table = _crc_table()
    basis = np.uint32(1) << np.arange(32, dtype=np.uint32)          # (32,) one register bit each
    for _ in range(n_bytes):
        basis = table[basis & 0xFF] ^ (basis >> 8)
    byte = np.arange(256)
    out = np.zeros((4, 256), dtype=np.uint32)
    for j in range(4):
        for bit in range(8):
            out[j, (byte >> bit) & 1 == 1] ^= basis[8 * j + bit]
    return out


def crc32c(data: bytes | np.ndarray) -> int:
    """CRC-32C (Castagnoli; init and final xor 0xFFFFFFFF) of `data`; crc32c(b"123456789") == 0xE3069283.

    The bytes are split into K lanes of L bytes, all lanes advanced together (one numpy step per byte
    position), then joined: crc(A || B) = shift_|B|(crc(A)) ^ crc(B) for the raw (init 0) register. The
    init value is folded into the message (XOR into its first 4 bytes), so zero bytes may be prepended
    to fill the first lane without changing the result.
    """
    buf = np.frombuffer(bytes(data), dtype=np.uint8).copy()
    table = _crc_table()
    if buf.size < MIN_LANE_BYTES:                                    # short: the plain byte loop
        reg = 0xFFFFFFFF
        for b in buf.tolist():
            reg = int(table[(reg ^ b) & 0xFF]) ^ (reg >> 8)
        return reg ^ 0xFFFFFFFF
    buf[:4] ^= 0xFF                                                  # init 0xFFFFFFFF as a message XOR
    lane = 1 << max(6, int(np.ceil(np.log2(np.sqrt(buf.size)))))    # L ~ sqrt(n), a power of two, >= 64
    lanes = -(-buf.size // lane)
    padded = np.zeros(lanes * lane, dtype=np.uint8)
    padded[padded.size - buf.size:] = buf                           # leading zeros: no effect on init 0
    block = padded.reshape(lanes, lane)                             # (K, L)
    reg = np.zeros(lanes, dtype=np.uint32)
    for i in range(lane):
        reg = table[(reg ^ block[:, i]) & 0xFF] ^ (reg >> 8)
    shift, acc = _shift_tables(lane), 0
    for r in reg.tolist():
        acc = int(shift[0, acc & 0xFF] ^ shift[1, acc >> 8 & 0xFF] ^ shift[2, acc >> 16 & 0xFF]
                  ^ shift[3, acc >> 24]) ^ r
    return acc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes | np.ndarray) -> int:
    """LevelDB's stored form of a CRC: rotated right by 15 bits plus a constant (so that a CRC of data
    that itself contains CRCs is not degenerate)."""
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + CRC_MASK_DELTA) & 0xFFFFFFFF


# ---------------------------------------------------------------------------------------------
# Protobuf and SSTable primitives.
# ---------------------------------------------------------------------------------------------
def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """(value, next position) of the base-128 varint at buf[pos]."""
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise TFCheckpointError("truncated varint")
        b = buf[pos]
        value |= (b & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not b & 0x80:
            return value, pos


def proto_fields(buf: bytes) -> dict[int, list]:
    """A protobuf message -> {field number: [values]}: varints as int, fixed32/64 as int, length-
    delimited fields as bytes (the caller knows which are sub-messages)."""
    fields: dict[int, list] = {}
    pos = 0
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = read_varint(buf, pos)
        elif wire == 1:
            value, pos = int.from_bytes(buf[pos:pos + 8], "little"), pos + 8
        elif wire == 2:
            n, pos = read_varint(buf, pos)
            value, pos = bytes(buf[pos:pos + n]), pos + n
        elif wire == 5:
            value, pos = int.from_bytes(buf[pos:pos + 4], "little"), pos + 4
        else:
            raise TFCheckpointError(f"unsupported protobuf wire type {wire}")
        fields.setdefault(number, []).append(value)
    if pos != len(buf):
        raise TFCheckpointError("truncated protobuf message")
    return fields


def read_block(table: bytes, offset: int, size: int, what: str) -> list[tuple[bytes, bytes]]:
    """The (key, value) entries of the SSTable block at `offset`, after checking its trailer's CRC."""
    end = offset + size
    if end + TRAILER_BYTES > len(table):
        raise TFCheckpointError(f"{what}: block runs past the end of the file (truncated?)")
    block, kind = table[offset:end], table[end]
    stored = int.from_bytes(table[end + 1:end + TRAILER_BYTES], "little")
    if masked_crc32c(table[offset:end + 1]) != stored:
        raise TFCheckpointError(f"{what}: block checksum mismatch (corrupted file)")
    if kind != 0:
        raise TFCheckpointError(f"{what}: compressed blocks (type {kind}) are not supported")
    n_restarts = int.from_bytes(block[-4:], "little")
    limit = len(block) - 4 - 4 * n_restarts                          # entries end where restarts begin
    entries, pos, key = [], 0, b""
    while pos < limit:
        shared, pos = read_varint(block, pos)
        unshared, pos = read_varint(block, pos)
        n_value, pos = read_varint(block, pos)
        key = key[:shared] + block[pos:pos + unshared]               # prefix-compressed keys
        pos += unshared
        entries.append((key, block[pos:pos + n_value]))
        pos += n_value
    return entries


def read_table(path: Path) -> list[tuple[bytes, bytes]]:
    """Every (key, value) of an SSTable file, in key order."""
    table = path.read_bytes()
    if len(table) < FOOTER_BYTES or int.from_bytes(table[-8:], "little") != TABLE_MAGIC:
        raise TFCheckpointError(f"{path} is not a TF checkpoint index (no SSTable footer)")
    footer = table[-FOOTER_BYTES:]
    _, pos = read_varint(footer, 0)                                  # metaindex offset (unused)
    _, pos = read_varint(footer, pos)                                # metaindex size (unused)
    index_offset, pos = read_varint(footer, pos)
    index_size, _ = read_varint(footer, pos)
    entries = []
    for _, handle in read_block(table, index_offset, index_size, f"{path.name} index"):
        offset, pos = read_varint(handle, 0)
        size, _ = read_varint(handle, pos)
        entries += read_block(table, offset, size, f"{path.name} data block at {offset}")
    return entries


# ---------------------------------------------------------------------------------------------
# The checkpoint.
# ---------------------------------------------------------------------------------------------
def decode_entry(name: str, value: bytes) -> TensorEntry:
    """A BundleEntryProto -> TensorEntry (dtype, shape, where, checksum)."""
    f = proto_fields(value)
    dtype = f.get(1, [0])[0]
    if dtype not in TF_DTYPES:
        raise TFCheckpointError(f"tensor {name!r}: unsupported TF dtype {dtype}")
    if 7 in f:
        raise TFCheckpointError(f"tensor {name!r} is stored in slices (partitioned); not supported")
    shape_fields = proto_fields(f[2][0]) if 2 in f else {}
    dims = tuple(proto_fields(d).get(1, [0])[0] for d in shape_fields.get(2, []))   # a scalar has none
    return TensorEntry(name, np.dtype(TF_DTYPES[dtype]).newbyteorder("<"), dims, f.get(3, [0])[0],
                       f.get(4, [0])[0], f.get(5, [0])[0], f.get(6, [None])[0])


def read_index(prefix: str | Path) -> tuple[int, dict[str, TensorEntry]]:
    """(number of data shards, {tensor name: TensorEntry}) from `<prefix>.index`."""
    path = Path(f"{prefix}.index")
    if not path.is_file():
        raise TFCheckpointError(f"no TF checkpoint index at {path}")
    shards, entries = 1, {}
    for key, value in read_table(path):
        if key == b"":
            header = proto_fields(value)
            shards = header.get(1, [1])[0]
            if header.get(2, [0])[0] != 0:
                raise TFCheckpointError(f"{path}: big-endian checkpoints are not supported")
            continue
        name = key.decode("utf-8")
        entries[name] = decode_entry(name, value)
    return shards, entries


def is_model_variable(name: str) -> bool:
    """True for the network's own variables; False for the optimiser's state and the step counter."""
    return name not in OPTIMISER_NAMES and not name.endswith(OPTIMISER_SLOTS)


def read_tf_checkpoint(prefix: str | Path, keep=is_model_variable) -> dict[str, np.ndarray]:
    """{name: array} of the checkpoint's tensors for which keep(name) holds, each checked against its
    stored CRC32C. `prefix` is what TF's Saver was given (musicnn's: '<dir>/', so files '<dir>/.index')."""
    shards, entries = read_index(prefix)
    data: dict[int, bytes] = {}
    out = {}
    for name, e in entries.items():
        if not keep(name):
            continue
        if e.shard not in data:
            path = Path(f"{prefix}.data-{e.shard:05d}-of-{shards:05d}")
            if not path.is_file():
                raise TFCheckpointError(f"missing checkpoint data file {path}")
            data[e.shard] = path.read_bytes()
        raw = data[e.shard][e.offset:e.offset + e.size]
        expected = e.dtype.itemsize * int(np.prod(e.shape, dtype=np.int64))
        if len(raw) != e.size or e.size != expected:
            raise TFCheckpointError(f"tensor {name!r}: {len(raw)} bytes stored, {expected} expected "
                                    f"for {e.dtype} {e.shape} (truncated file?)")
        if e.masked_crc is not None and masked_crc32c(raw) != e.masked_crc:
            raise TFCheckpointError(f"tensor {name!r}: checksum mismatch (CRC32C of its {e.size} bytes "
                                    f"differs from the index's): the checkpoint is corrupted")
        out[name] = np.frombuffer(raw, dtype=e.dtype).reshape(e.shape).astype(e.dtype.newbyteorder("="))
    return out

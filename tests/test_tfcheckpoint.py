"""standins/tfcheckpoint.py as a spec: a TF checkpoint read in plain numpy, every tensor checked against its CRC32C.

The tiny checkpoints here are written by this file's own writer, from the format description (SSTable
.index of BundleEntryProtos + raw .data), with its own bit-by-bit CRC: an independent implementation.
"""
import importlib.util
import struct

import numpy as np
import pytest

from standins import musicnn_port
from standins import tfcheckpoint as T


# ---------------------------------------------------------------------------------------------
# An independent writer of the format.
# ---------------------------------------------------------------------------------------------
def bitwise_crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked(data: bytes) -> int:
    c = bitwise_crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def field(number: int, wire: int, payload: bytes) -> bytes:
    return varint(number << 3 | wire) + payload


def bundle_entry(dtype: int, shape, offset: int, data: bytes) -> bytes:
    dims = b"".join(field(2, 2, varint(len(d)) + d) for d in (field(1, 0, varint(s)) for s in shape))
    return (field(1, 0, varint(dtype)) + field(2, 2, varint(len(dims)) + dims) + field(4, 0, varint(offset))
            + field(5, 0, varint(len(data))) + field(6, 5, struct.pack("<I", masked(data))))


def block(entries: list[tuple[bytes, bytes]]) -> bytes:
    """An SSTable block, no prefix compression (every key whole), one restart point, + its trailer."""
    body = b"".join(varint(0) + varint(len(k)) + varint(len(v)) + k + v for k, v in entries)
    body += struct.pack("<II", 0, 1)
    return body + b"\x00" + struct.pack("<I", masked(body + b"\x00"))


def write_checkpoint(prefix, tensors: dict[str, np.ndarray]) -> None:
    dtypes = {np.dtype(np.float32): 1, np.dtype(np.int64): 9}
    data, entries = b"", [(b"", field(1, 0, varint(1)) + field(3, 2, b"\x02\x08\x01"))]   # header: 1 shard, version
    for name in sorted(tensors):
        raw = np.ascontiguousarray(tensors[name]).astype(tensors[name].dtype.newbyteorder("<")).tobytes()
        entries.append((name.encode(), bundle_entry(dtypes[tensors[name].dtype], tensors[name].shape, len(data), raw)))
        data += raw
    data_block = block(entries)
    meta_block = block([])
    index_block = block([(entries[-1][0], varint(0) + varint(len(data_block) - 5))])
    meta_at, index_at = len(data_block), len(data_block) + len(meta_block)
    handles = varint(meta_at) + varint(len(meta_block) - 5) + varint(index_at) + varint(len(index_block) - 5)
    footer = handles.ljust(40, b"\x00") + struct.pack("<Q", T.TABLE_MAGIC)
    (prefix.parent / f"{prefix.name}.index").write_bytes(data_block + meta_block + index_block + footer)
    (prefix.parent / f"{prefix.name}.data-00000-of-00001").write_bytes(data)


@pytest.fixture
def tiny(tmp_path):
    rng = np.random.default_rng(0)
    tensors = {
        "conv2d/kernel": rng.standard_normal((7, 38, 1, 4)).astype(np.float32),
        "conv2d/bias": rng.standard_normal(4).astype(np.float32),
        "dense/kernel": rng.standard_normal((300, 50)).astype(np.float32),   # > one CRC lane
        "conv2d/kernel/Adam": np.ones((7, 38, 1, 4), np.float32),            # optimiser slots: skipped
        "conv2d/kernel/Adam_1": np.ones((7, 38, 1, 4), np.float32),
        "beta1_power": np.array(0.9, np.float32),
        "global_step": np.array(1234, np.int64),
    }
    prefix = tmp_path / "model"
    write_checkpoint(prefix, tensors)
    return prefix, tensors


# ---------------------------------------------------------------------------------------------
# The spec.
# ---------------------------------------------------------------------------------------------
def test_crc32c_matches_the_standard_check_value_and_a_bitwise_crc_at_every_length():
    assert T.crc32c(b"123456789") == 0xE3069283
    rng = np.random.default_rng(1)
    for n in (0, 1, 3, 4, 5, 63, 64, 65, 1000, 4097, 20_000):
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert T.crc32c(data) == bitwise_crc32c(data), n


def test_a_checkpoint_written_in_the_format_round_trips_its_model_variables(tiny):
    prefix, tensors = tiny
    out = T.read_tf_checkpoint(prefix)
    assert set(out) == {"conv2d/kernel", "conv2d/bias", "dense/kernel"}    # no Adam slots, no counters
    for name, value in out.items():
        assert value.dtype == tensors[name].dtype and value.shape == tensors[name].shape
        np.testing.assert_array_equal(value, tensors[name])


def test_every_tensor_is_readable_when_asked_for(tiny):
    prefix, tensors = tiny
    out = T.read_tf_checkpoint(prefix, keep=lambda name: True)
    assert set(out) == set(tensors)
    assert out["global_step"].shape == () and int(out["global_step"]) == 1234


def test_a_corrupted_byte_in_a_tensor_fails_its_checksum_with_the_tensor_named(tiny):
    prefix, tensors = tiny
    data = prefix.parent / f"{prefix.name}.data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    raw[100] ^= 0x01                                                      # inside conv2d/kernel (sorted 2nd)
    data.write_bytes(bytes(raw))
    with pytest.raises(T.TFCheckpointError, match=r"conv2d/kernel.*checksum mismatch.*corrupted"):
        T.read_tf_checkpoint(prefix)


def test_a_corrupted_index_fails_its_block_checksum(tiny):
    prefix, _ = tiny
    index = prefix.parent / f"{prefix.name}.index"
    raw = bytearray(index.read_bytes())
    raw[20] ^= 0x40                                                       # inside the data block
    index.write_bytes(bytes(raw))
    with pytest.raises(T.TFCheckpointError, match="block checksum mismatch"):
        T.read_tf_checkpoint(prefix)


def test_a_truncated_data_file_and_a_missing_index_are_clear_errors(tiny, tmp_path):
    prefix, _ = tiny
    data = prefix.parent / f"{prefix.name}.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:-10])
    with pytest.raises(T.TFCheckpointError, match="truncated"):
        T.read_tf_checkpoint(prefix)
    with pytest.raises(T.TFCheckpointError, match="no TF checkpoint index"):
        T.read_tf_checkpoint(tmp_path / "absent")


def test_optimiser_state_is_not_a_model_variable():
    assert T.is_model_variable("batch_normalization_3/moving_mean")
    assert not T.is_model_variable("dense/kernel/Adam")
    assert not T.is_model_variable("dense/kernel/Adam_1")
    assert not T.is_model_variable("beta2_power")


@pytest.mark.skipif(importlib.util.find_spec("musicnn") is None, reason="musicnn wheel not installed")
def test_the_musicnn_wheel_checkpoints_read_with_every_checksum_verified():
    for model, n_vars in (("MTT_vgg", 36), ("MSD_musicnn", 64)):
        tensors = T.read_tf_checkpoint(musicnn_port.checkpoint_prefix(model))
        assert len(tensors) == n_vars and not any("Adam" in k for k in tensors)
        assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in tensors.values())

"""Writes PyTorch checkpoint fixtures for tulu's .bin reader tests (tests/llama/torch_checkpoint_test.cc).

    /usr/bin/python3 torch_fixtures.py OUT_DIR

Valid files are real torch.save output; next to each, OUT_DIR/<stem>.expected/ holds one
<name>.raw file per tensor (the tensor's values, contiguous, in its dtype, little-endian) and
manifest.json {name: {"dtype": "F32"|"F16"|"BF16", "shape": [...]}}: the reference the
C++ test compares with, bit for bit.

Bad files are crafted to exercise every refusal: forbidden globals (os.system, builtins.eval),
an opcode outside the allowed set, compressed entries, a corrupt central directory, missing
or short storages, a non-dict top object, non-tensor values, unsupported storage types, and
the pre-1.6 (non-zip) format.
"""

import collections
import io
import json
import os
import pickle
import struct
import sys
import zipfile
import zlib

import torch

NAMES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}
RAW = {torch.float32: torch.int32, torch.float16: torch.int16, torch.bfloat16: torch.int16}


def write_expected(out, stem, tensors):
    d = os.path.join(out, stem + ".expected")
    os.makedirs(d, exist_ok=True)
    manifest = {}
    for name, t in tensors.items():
        t = t.detach().contiguous()
        manifest[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape)}
        with open(os.path.join(d, name + ".raw"), "wb") as f:
            f.write(t.view(RAW[t.dtype]).numpy().tobytes() if t.numel() else b"")
    with open(os.path.join(d, "manifest.json"), "w") as f:
        json.dump(manifest, f)


def save_valid(out, stem, obj, expected=None, **kwargs):
    torch.save(obj, os.path.join(out, stem + ".bin"), **kwargs)
    write_expected(out, stem, expected if expected is not None else obj)


def archive_with(path, entries, compression=zipfile.ZIP_STORED):
    """A zip laid out like torch.save's: <stem>/data.pkl, <stem>/data/<key>, <stem>/version."""
    stem = os.path.splitext(os.path.basename(path))[0]
    with zipfile.ZipFile(path, "w", compression=compression) as z:
        for name, data in entries.items():
            z.writestr(f"{stem}/{name}", data)


def entries_of(path):
    with zipfile.ZipFile(path) as z:
        return {n.split("/", 1)[1]: z.read(n) for n in z.namelist()}


def write_zip64(path, entries):
    """A stored zip whose central directory uses ZIP64 for every size and offset (as a > 4 GiB
    shard's does), entries 64-byte aligned like torch's writer; Python's zipfile must read it."""
    out = bytearray()
    central = bytearray()
    for name, data in entries.items():
        name_b = name.encode()
        # Pad the local header's extra field so the data starts 64-aligned.
        pad = (64 - (len(out) + 30 + len(name_b) + 4) % 64) % 64
        extra = struct.pack("<HH", 0x4654, pad) + b"Z" * pad
        offset = len(out)
        crc = zlib.crc32(data)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0, crc, len(data), len(data), len(name_b),
                           len(extra)) + name_b + extra + data
        z64 = struct.pack("<HHQQQ", 0x0001, 24, len(data), len(data), offset)
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0, crc, 0xFFFFFFFF, 0xFFFFFFFF,
                               len(name_b), len(z64), 0, 0, 0, 0, 0xFFFFFFFF) + name_b + z64
    cd_offset = len(out)
    out += central
    z64_end = len(out)
    out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, len(entries), len(entries), len(central),
                       cd_offset)
    out += struct.pack("<IIQI", 0x07064B50, 0, z64_end, 1)
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    with open(path, "wb") as f:
        f.write(out)
    with zipfile.ZipFile(path) as z:  # the crafted file is a valid zip for an independent reader
        assert z.testzip() is None and {n: z.read(n) for n in z.namelist()} == entries


class Evil:
    def __init__(self, fn, arg):
        self.fn, self.arg = fn, arg

    def __reduce__(self):
        return (self.fn, (self.arg,))


def main(out):
    os.makedirs(out, exist_ok=True)
    g = torch.Generator().manual_seed(7)

    # --- valid --------------------------------------------------------------------------
    mixed = collections.OrderedDict([
        ("a.weight", torch.randn(3, 4, generator=g)),
        ("b.half", torch.randn(5, generator=g).half()),
        ("c.bf16", torch.randn(2, 3, 4, generator=g).bfloat16()),
        ("scalar", torch.tensor(1.5)),
        ("empty", torch.zeros(0, 4)),
    ])
    save_valid(out, "mixed", mixed)
    x = torch.randn(4, 6, generator=g)
    # Views sharing one storage at different offsets (as tied weights are saved).
    save_valid(out, "shared", {"row0": x[0], "row2": x[2], "whole": x})
    y = torch.randn(6, 8, generator=g)
    save_valid(out, "strided", {"transposed": y.t(), "columns": y[:, 2:5], "every_other": y[::2]})
    lin = torch.nn.Linear(4, 3)
    save_valid(out, "state_dict", lin.state_dict())  # OrderedDict with _metadata (BUILD)
    save_valid(out, "parameter", {"p": torch.nn.Parameter(torch.randn(3, generator=g))})
    save_valid(out, "protocol4", {"w": torch.randn(2, 2, generator=g), "h": torch.randn(3, generator=g).half()},
               pickle_protocol=4)
    big_names = {f"layer.{i}.weight": torch.randn(2, generator=g) for i in range(300)}  # LONG_BINPUT
    save_valid(out, "many", big_names)

    with zipfile.ZipFile(os.path.join(out, "mixed.bin")) as z:
        write_zip64(os.path.join(out, "zip64.bin"), {n: z.read(n) for n in z.namelist()})
    write_expected(out, "zip64", mixed)

    # --- bad ----------------------------------------------------------------------------
    good = entries_of(os.path.join(out, "mixed.bin"))
    import builtins
    archive_with(os.path.join(out, "evil_os_system.bin"),
                 {"data.pkl": pickle.dumps(Evil(os.system, "true"), protocol=2), "version": b"3\n"})
    archive_with(os.path.join(out, "evil_eval.bin"),
                 {"data.pkl": pickle.dumps({"a": Evil(builtins.eval, "1+1")}, protocol=2), "version": b"3\n"})
    archive_with(os.path.join(out, "evil_opcode.bin"),
                 {"data.pkl": pickle.dumps({"a": {1, 2}}, protocol=4), "version": b"3\n"})  # EMPTY_SET
    archive_with(os.path.join(out, "compressed.bin"), good, compression=zipfile.ZIP_DEFLATED)
    archive_with(os.path.join(out, "missing_storage.bin"),
                 {k: v for k, v in good.items() if k != "data/0"})
    short = dict(good)
    short["data/0"] = short["data/0"][:8]
    archive_with(os.path.join(out, "short_storage.bin"), short)
    torch.save([torch.zeros(2)], os.path.join(out, "not_dict.bin"))
    torch.save({"a": torch.zeros(2), "step": 3}, os.path.join(out, "non_tensor.bin"))
    torch.save({"a": torch.zeros(3, dtype=torch.float64)}, os.path.join(out, "double.bin"))
    torch.save({"a": torch.zeros(3)}, os.path.join(out, "legacy.bin"), _use_new_zipfile_serialization=False)
    raw = bytearray(open(os.path.join(out, "mixed.bin"), "rb").read())
    cd = raw.rfind(b"PK\x01\x02")
    raw[cd:cd + 4] = b"XX\x01\x02"  # corrupt the last central directory header's signature
    open(os.path.join(out, "bad_central_directory.bin"), "wb").write(bytes(raw))


if __name__ == "__main__":
    main(sys.argv[1])

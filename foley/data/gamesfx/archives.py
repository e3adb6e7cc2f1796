"""Game archives whose members are audio files: zip (0 A.D.'s public.zip, Warzone 2100's .wz, UFO:AI's .pk3),
OpenTTD's sound catalogue (.cat), Qt resource bundles (.rcc, GCompris) and X-Moto's XBI3 pack (xmoto.bin).

Hand-written readers for the last three: no Python package reads them, and each is a few lines of
`struct` (layouts in the docstrings). ``open_archive`` returns None for a file that is none of these, so a
``.bin`` or ``.cat`` that only shares the extension is ignored.
"""

from __future__ import annotations

import re
import struct
import zipfile
import zlib
from pathlib import Path

ARCHIVE_EXTENSIONS = (".zip", ".pk3", ".wz", ".cat", ".rcc", ".bin")


class Archive:
    """Members (paths inside the archive) and their bytes; ``notes`` holds what the archive says of a member."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        self.notes: dict[str, str] = {}

    def members(self) -> list[str]:
        raise NotImplementedError

    def read(self, member: str) -> bytes:
        raise NotImplementedError

    def close(self) -> None:
        pass


class ZipArchive(Archive):
    def __init__(self, path: str | Path):
        super().__init__(path)
        self._zf = zipfile.ZipFile(path)

    def members(self) -> list[str]:
        return self._zf.namelist()

    def read(self, member: str) -> bytes:
        return self._zf.read(member)

    def close(self) -> None:
        self._zf.close()


class _TableArchive(Archive):
    """An archive read whole into memory: member -> (offset, size, zlib-compressed)."""

    def __init__(self, path: str | Path, data: bytes):
        super().__init__(path)
        self._data = data
        self._table: dict[str, tuple[int, int, bool]] = {}

    def members(self) -> list[str]:
        return list(self._table)

    def read(self, member: str) -> bytes:
        off, size, compressed = self._table[member]
        raw = self._data[off:off + size]
        return zlib.decompress(raw[4:]) if compressed else raw


class OpenTTDCatalogue(_TableArchive):
    """OpenTTD sound catalogue (catcodec's "new format", OpenSFX).

    A table of (offset | 0x80000000, size) uint32 LE pairs, as many as the first offset / 8; at each
    offset: a length-prefixed, NUL-terminated description ('"Factory Whistle". By Janis Lukss. License:
    ...'), the RIFF WAVE of ``size`` bytes, then the length-prefixed source file name
    ("src/wav/osfx_03.wav", after a padding byte), which is the member's name. The description goes to ``notes``.
    """

    def __init__(self, path: str | Path, data: bytes):
        super().__init__(path, data)
        (first,) = struct.unpack_from("<I", data, 0)
        if not first & 0x80000000:
            raise ValueError("not a new-format OpenTTD catalogue")
        entries = [struct.unpack_from("<II", data, 8 * i) for i in range((first & 0x7FFFFFFF) // 8)]
        starts = sorted(off & 0x7FFFFFFF for off, _ in entries) + [len(data)]
        for i, (off, size) in enumerate(entries):
            off &= 0x7FFFFFFF
            desc = _pascal(data, off)
            wav = off + 1 + data[off]
            if data[wav:wav + 4] != b"RIFF":
                raise ValueError(f"entry {i}: no RIFF data")
            # the file name sits between this sample's RIFF and the next entry (after a padding byte)
            tail = data[wav + size:next(s for s in starts if s > off)]
            found = re.findall(rb"[\x20-\x7e]+\.wav", tail)
            name = found[-1].decode() if found else f"sample_{i:02d}.wav"
            self._table[name] = (wav, size, False)
            self.notes[name] = desc


class QtResource(_TableArchive):
    """Qt resource bundle (rcc binary, versions 1-3).

    Header: b"qres", version, tree, data and names offsets (uint32 BE). Tree nodes (14 bytes, 22 from
    version 2): name offset (uint32), flags (uint16; 1 zlib, 2 directory, 4 zstd), then for a directory
    child count and first child index, else country, language (uint16 each) and data offset (uint32).
    Names: length (uint16), hash (uint32), UTF-16 BE. Data: size (uint32) then the bytes; zlib members
    start with their uncompressed size (uint32). zstd members are skipped (none in GCompris 3).
    """

    def __init__(self, path: str | Path, data: bytes):
        super().__init__(path, data)
        version, tree, self._blobs, self._names = struct.unpack_from(">IIII", data, 4)
        self._tree, self._node = tree, 14 if version == 1 else 22
        self._walk(0, "")

    def _name(self, off: int) -> str:
        (n,) = struct.unpack_from(">H", self._data, self._names + off)
        start = self._names + off + 6
        return self._data[start:start + 2 * n].decode("utf-16-be")

    def _walk(self, index: int, prefix: str) -> None:
        at = self._tree + index * self._node
        name_off, flags = struct.unpack_from(">IH", self._data, at)
        name = self._name(name_off) if index else ""
        path = f"{prefix}/{name}" if index else ""
        if flags & 2:
            count, first = struct.unpack_from(">II", self._data, at + 6)
            for child in range(first, first + count):
                self._walk(child, path)
        elif not flags & 4:
            (off,) = struct.unpack_from(">I", self._data, at + 10)
            (size,) = struct.unpack_from(">I", self._data, self._blobs + off)
            self._table[path.lstrip("/")] = (self._blobs + off + 4, size, bool(flags & 1))


class XMotoPack(_TableArchive):
    """X-Moto's xmoto.bin ("XBI3"): after the magic a length-prefixed checksum, then per file a
    length-prefixed (uint8) name, a length-prefixed checksum and a uint32 LE size before the bytes."""

    def __init__(self, path: str | Path, data: bytes):
        super().__init__(path, data)
        pos = 4
        pos += 1 + data[pos]
        while pos < len(data):
            name = data[pos + 1:pos + 1 + data[pos]].decode("utf-8", "replace")
            pos += 1 + data[pos]
            pos += 1 + data[pos]
            (size,) = struct.unpack_from("<I", data, pos)
            self._table[name] = (pos + 4, size, False)
            pos += 4 + size


def _pascal(data: bytes, at: int) -> str:
    """A uint8-length-prefixed string (NUL-terminated inside the length) at ``at``."""
    return data[at + 1:at + 1 + data[at]].split(b"\0", 1)[0].decode("utf-8", "replace")


def open_archive(path: str | Path) -> Archive | None:
    """The archive at ``path``, or None when it is not one of the formats above."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".zip", ".pk3", ".wz"):
        return ZipArchive(path) if zipfile.is_zipfile(path) else None
    with open(path, "rb") as f:
        magic = f.read(4)
    try:
        if suffix == ".rcc" and magic == b"qres":
            return QtResource(path, path.read_bytes())
        if suffix == ".bin" and magic == b"XBI3":
            return XMotoPack(path, path.read_bytes())
        if suffix == ".cat" and len(magic) == 4 and struct.unpack("<I", magic)[0] & 0x80000000:
            return OpenTTDCatalogue(path, path.read_bytes())
    except (struct.error, ValueError, IndexError, UnicodeDecodeError):
        return None
    return None

"""A multipart/form-data body read part by part while it arrives, from a blocking reader.

python-multipart's parser is pushed bytes and calls back; here it is pulled instead: each
read of a file part feeds it the next chunk of the body, so a file can go on (into the
artifact store) while it arrives, and no more than a chunk of it is ever in memory. Parts
are handed out in body order. Limits and decoding are Starlette's (what FastAPI's forms do).
"""

from __future__ import annotations

import codecs
import io
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header

from ledger.artifacts.chunk_reader import ChunkReader
from ledger.artifacts.files import CHUNK_SIZE
from ledger.errors import InvalidInputError

MAX_FIELD_BYTES = 1024 * 1024  # a text field's value
MAX_FIELDS = 1000
MAX_FILES = 1000
_PART, _DATA, _END, _DONE = "part", "data", "end", "done"


@dataclass
class FormPart:
    """One part: a text field (``filename`` None, ``value`` its text) or a file, whose
    ``content`` must be read (or left) before the next part is asked for."""

    name: str
    filename: str | None
    value: str = ""
    content: BinaryIO | None = None


def form_boundary(content_type: str) -> tuple[bytes, str] | None:
    """(boundary, charset) of a multipart/form-data content type; None for another type.
    InvalidInputError when the boundary is missing."""
    media_type, options = parse_options_header(content_type)
    if media_type != b"multipart/form-data":
        return None
    boundary = options.get(b"boundary")
    if not boundary:
        raise InvalidInputError("invalid multipart body: its Content-Type names no boundary")
    charset = options.get(b"charset", b"utf-8").decode("latin-1")
    try:
        return boundary, codecs.lookup(charset).name
    except LookupError:
        return boundary, "latin-1"


def _decode(data: bytes, charset: str) -> str:
    try:
        return data.decode(charset)
    except (UnicodeDecodeError, LookupError):
        return data.decode("latin-1")


class FormParts:
    """The parts of the body ``reader`` holds (iterate once, in a worker thread)."""

    def __init__(self, reader: BinaryIO, boundary: bytes, charset: str) -> None:
        self._reader = reader
        self._charset = charset
        self._events: deque[tuple[str, bytes]] = deque()
        self._header_name = self._header_value = b""
        self._disposition = b""
        self._ended = False
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._on_part_begin,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": lambda: self._events.append((_PART, self._disposition)),
                "on_part_data": lambda data, start, end: self._events.append(
                    (_DATA, data[start:end])
                ),
                "on_part_end": lambda: self._events.append((_END, b"")),
                "on_end": lambda: self._events.append((_DONE, b"")),
            },
        )

    # -- the parser's callbacks ------------------------------------------------------

    def _on_part_begin(self) -> None:
        self._disposition = b""

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = self._header_value = b""

    # -- pulling -----------------------------------------------------------------------

    def _next_event(self) -> tuple[str, bytes]:
        """The parser's next event, fed from the body as needed."""
        while not self._events:
            if self._ended:
                raise InvalidInputError("invalid multipart body: it ends before its last part")
            chunk = self._reader.read(CHUNK_SIZE)
            try:
                if chunk:
                    self._parser.write(chunk)
                else:
                    self._ended = True
                    self._parser.finalize()
            except FormParserError as error:
                raise InvalidInputError(f"invalid multipart body: {error}") from None
        return self._events.popleft()

    def part_data(self) -> bytes | None:
        """The next bytes of the current part; None at its end."""
        kind, data = self._next_event()
        if kind == _DATA:
            return data
        if kind == _END:
            return None
        raise InvalidInputError(f"invalid multipart body: {kind} inside a part")

    def __iter__(self) -> Iterator[FormPart]:
        fields = files = 0
        while (event := self._next_event())[0] != _DONE:
            kind, disposition = event
            if kind != _PART:
                raise InvalidInputError(f"invalid multipart body: {kind} outside a part")
            part = self._part(disposition)
            if part.filename is None:
                fields += 1
                if fields > MAX_FIELDS:
                    raise InvalidInputError(f"too many form fields (at most {MAX_FIELDS})")
                part.value = _decode(self._field_value(part.name), self._charset)
                yield part
                continue
            files += 1
            if files > MAX_FILES:
                raise InvalidInputError(f"too many files (at most {MAX_FILES})")
            content = _PartContent(self)
            part.content = io.BufferedReader(content, buffer_size=CHUNK_SIZE)
            yield part
            content.skip_rest()  # what the consumer left unread

    def _part(self, disposition: bytes) -> FormPart:
        _, options = parse_options_header(disposition)
        if b"name" not in options:
            raise InvalidInputError(
                "invalid multipart body: a part's Content-Disposition names no field"
            )
        filename = options.get(b"filename")
        return FormPart(
            _decode(options[b"name"], self._charset),
            None if filename is None else _decode(filename, self._charset),
        )

    def _field_value(self, name: str) -> bytes:
        value = bytearray()
        while (data := self.part_data()) is not None:
            value += data
            if len(value) > MAX_FIELD_BYTES:
                raise InvalidInputError(
                    f"form field {name[:80]!r} is over {MAX_FIELD_BYTES // 1024} KiB"
                )
        return bytes(value)


class _PartContent(ChunkReader):
    """A file part's bytes as a raw file, pulled from the body as they are read."""

    def __init__(self, parts: FormParts) -> None:
        super().__init__()
        self._parts = parts

    def next_chunk(self) -> bytes | None:
        return self._parts.part_data()

    def skip_rest(self) -> None:
        """Read past what is left of the part (what its reader did not read)."""
        self._pending = memoryview(b"")
        while not self._ended:
            self._ended = self._parts.part_data() is None

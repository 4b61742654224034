"""Model version uploads read as they arrive (issue 23): the multipart body parsed part by
part, each file stored while it is read; with the form's ``sha256`` field, straight to its
blob (one copy) and refused when it differs. On every artifact store (local, S3, Azure).
The 2 GiB memory check over a real server is tests/api/test_upload_memory.py."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from typing import Any

import httpx
import pytest

from ledger.api.form_stream import MAX_FIELD_BYTES, FormParts, form_boundary
from ledger.artifacts.store import ArtifactStore, blob_key
from ledger.errors import InvalidInputError
from tests.conftest import Api, StoreFactory, running_api
from tests.mlflow.support import ARTIFACTS, download

BOUNDARY = "b0undary"
URL = "/models/m/versions"


def form_body(parts: list[tuple[str, str | None, bytes]], boundary: str = BOUNDARY) -> bytes:
    """A multipart/form-data body of (field name, filename or None, content) parts."""
    body = b""
    for name, filename, content in parts:
        file = f'; filename="{filename}"' if filename is not None else ""
        body += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"{file}\r\n'.encode()
        body += b"Content-Type: application/octet-stream\r\n" if filename is not None else b""
        body += b"\r\n" + content + b"\r\n"
    return body + f"--{boundary}--\r\n".encode()


class Trickle(io.BytesIO):
    """A reader handing out at most ``step`` bytes a read (parts split anywhere)."""

    def __init__(self, data: bytes, step: int) -> None:
        super().__init__(data)
        self.step = step

    def read(self, size: int | None = -1) -> bytes:
        return super().read(self.step)


def read_parts(body: bytes, step: int) -> list[tuple[str, str | None, bytes]]:
    got = []
    parts = FormParts(Trickle(body, step), BOUNDARY.encode(), "utf-8")
    for part in parts:
        content = part.content.read() if part.content else part.value.encode()
        got.append((part.name, part.filename, content))
    return got


PARTS = [
    ("flavor", None, b"onnx"),
    ("files", "model/w.bin", bytes(range(256)) * 300 + b"\r\n--b0undar"),  # a near-boundary
    ("files", "empty", b""),
    ("tags", None, '{"é": "ü"}'.encode()),
    ("files", "z.txt", b"last"),
]


@pytest.mark.parametrize("step", [1, 7, 4096, 1 << 20])
def test_form_parts_come_out_whole_however_the_body_is_cut(step: int) -> None:
    assert read_parts(form_body(PARTS), step) == PARTS


def test_a_file_part_left_unread_is_skipped() -> None:
    parts = FormParts(io.BytesIO(form_body(PARTS)), BOUNDARY.encode(), "utf-8")
    names = [(part.name, part.filename) for part in parts]  # no content read
    assert names == [(name, filename) for name, filename, _ in PARTS]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (form_body(PARTS)[:-40], "ends before its last part"),
        (b"not a form at all", "invalid multipart body"),
        (form_body([("x", None, b"y")]).replace(b'name="x"', b'nom="x"'), "names no field"),
        (form_body([("big", None, b"x" * (MAX_FIELD_BYTES + 1))]), "'big' is over 1024 KiB"),
    ],
    ids=["truncated", "garbage", "no-name", "field-too-big"],
)
def test_broken_forms_are_invalid_input(body: bytes, fragment: str) -> None:
    with pytest.raises(InvalidInputError, match=fragment):
        read_parts(body, 1000)


def test_only_multipart_forms_have_a_boundary() -> None:
    assert form_boundary("multipart/form-data; boundary=xy") == (b"xy", "utf-8")
    assert form_boundary('multipart/form-data; boundary="xy"; charset=latin-1')[1] == "iso8859-1"
    assert form_boundary("application/x-www-form-urlencoded") is None
    with pytest.raises(InvalidInputError, match="no boundary"):
        form_boundary("multipart/form-data")


# -- over HTTP, on every artifact store ---------------------------------------------------


def _stored(api: Api) -> list[str]:
    """Every key of the artifact store, blobs and temporary ones."""
    blobs = ArtifactStore(api.settings.artifacts_location).blobs
    return sorted(o.key for prefix in ("sha256/", "tmp/") for o in blobs.listing(prefix))


def _post(api: Api, parts: list[tuple[str, str | None, bytes]], **headers: str) -> Any:
    return api.client.post(
        URL,
        content=form_body(parts),
        headers={
            **api.auth("contributor"),
            "content-type": f"multipart/form-data; boundary={BOUNDARY}",
            **headers,
        },
    )


def _sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def test_uploads_stream_into_the_store_with_or_without_digests(
    store: StoreFactory, artifact_location: str
) -> None:
    with running_api(store.settings(artifacts=artifact_location)) as api:
        # Fields after the files are taken too; the version is answered as registered.
        first, second = b"weights " * 50_000, b"vocab"
        plain = [("files", "w.bin", first), ("files", "sub/v.txt", second)]
        created = _post(api, [*plain, ("tags", None, b'{"stage": "dev"}')])
        assert created.status_code == 201, created.text
        version = created.json()
        assert version["tags"] == {"stage": "dev"}
        assert {f["path"]: f["sha256"] for f in version["files"]} == {
            "sub/v.txt": _sha(second),
            "w.bin": _sha(first),
        }
        assert _stored(api) == sorted(blob_key(_sha(c)) for c in (first, second))
        # With digests first, straight to the blob: a new content, and one stored already.
        third = b"third file"
        digests = {"new.bin": _sha(third), "w.bin": _sha(first)}
        direct = [("sha256", None, json.dumps(digests).encode()),
                  ("files", "new.bin", third), ("files", "w.bin", first)]  # fmt: skip
        created = _post(api, direct)
        assert created.status_code == 201, created.text
        assert created.json()["version"] == 2
        assert _stored(api) == sorted(blob_key(_sha(c)) for c in (first, second, third))
        reader = api.auth("reader")
        got = api.client.get(f"{URL}/2/files/new.bin", headers=reader)
        assert got.status_code == 200 and got.content == third


def _refused(api: Api, parts: list[tuple[str, str | None, bytes]], fragment: str) -> None:
    head, stored = api.head(), _stored(api)
    refused = _post(api, parts)
    assert refused.status_code == 400, refused.text
    assert fragment in refused.json()["detail"], refused.json()
    assert api.head() == head, "a refused upload registered something"
    assert _stored(api) == stored, "a refused upload kept a file"


def test_refused_uploads_keep_nothing(store: StoreFactory, artifact_location: str) -> None:
    with running_api(store.settings(artifacts=artifact_location)) as api:
        content = b"model bytes"
        wrong = ("sha256", None, json.dumps({"m.bin": _sha(b"something else")}).encode())
        file = ("files", "m.bin", content)
        # The digest given first: the write to the blob is abandoned, nothing stored.
        _refused(api, [wrong, file], "does not match its sha256 field")
        # The digest given after the file: it was staged, then dropped.
        _refused(api, [file, wrong], "does not match its sha256 field")
        # A field found bad once the files are in, a clash, a file the digests do not list.
        _refused(api, [file, ("metrics", None, b"[1]")], "JSON object")
        _refused(api, [("files", "a", b"1"), ("files", "a/b", b"2")], "both a file and")
        listed = json.dumps({"m.bin": _sha(content)}).encode()
        _refused(api, [("sha256", None, listed), ("files", "x.bin", b"x")], "lists no digest")
        _refused(api, [("sha256", None, b'{"m.bin": "abc"}'), file], "not a sha256 hex digest")
        # A field found bad before the files: the files are not even read.
        _refused(api, [("flavor", None, b"keras"), file], "unknown flavor")


def test_form_shapes_fastapi_refused_are_refused_alike(api: Api) -> None:
    head = api.head()
    cases = [
        ({"data": {"flavor": "onnx"}}, 422, "files"),  # a urlencoded form: no files
        ({"json": {"files": []}}, 422, "files"),
        ({"content": form_body([("flavor", None, b"onnx")]),
          "headers": {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}}, 422,
         "body.files: Field required"),
        ({"content": form_body([("files", None, b"text")]),
          "headers": {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}}, 422,
         "a part with a filename"),
        ({"files": [("files", ("a", b"1"))], "data": {"reason": "r" * 2001}}, 422, "reason"),
        ({"content": b"--x\r\nbroken", "headers": {"content-type": "multipart/form-data; "
          "boundary=x"}}, 400, "invalid multipart body"),
    ]  # fmt: skip
    for kwargs, status, fragment in cases:
        headers = {**api.auth("contributor"), **kwargs.pop("headers", {})}
        answer = api.client.post(URL, headers=headers, **kwargs)
        assert answer.status_code == status, (kwargs, answer.text)
        assert fragment in answer.json()["detail"], answer.json()
    assert api.head() == head
    # Parts under other names are left alone, as FastAPI's forms leave them.
    created = _post(api, [("other", "o.bin", b"ignored"), ("files", "f", b"kept")])
    assert created.status_code == 201, created.text
    assert [f["path"] for f in created.json()["files"]] == ["f"]


def test_mlflow_uploads_with_a_digest_header_go_straight_to_their_blob(
    store: StoreFactory, artifact_location: str
) -> None:
    with running_api(store.settings(artifacts=artifact_location)) as api:
        path, content = "0/run1/artifacts/model.bin", b"mlflow weights"
        digest = hashlib.sha256(content).digest()
        header = {"Content-Digest": f"sha-256=:{_b64(digest)}:"}
        put = _put(api, path, content, header)
        assert put.status_code == 200, put.text
        assert download(api, path).content == content
        assert _stored(api) == [blob_key(digest.hex())]
        head = api.head()
        wrong = _put(api, path, b"other bytes", header)
        assert wrong.status_code == 400, wrong.text
        assert wrong.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert "does not match its digest header" in wrong.json()["message"]
        bad = _put(api, path, content, {"Repr-Digest": "sha-256=:bm90IDMyIGJ5dGVz:"})
        assert bad.status_code == 400 and "32 bytes" in bad.json()["message"], bad.text
        assert api.head() == head and _stored(api) == [blob_key(digest.hex())]
        assert download(api, path).content == content


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _put(api: Api, path: str, content: bytes, headers: dict[str, str]) -> httpx.Response:
    return api.client.put(
        f"{ARTIFACTS}/{path}", content=content, headers={**api.auth("contributor"), **headers}
    )

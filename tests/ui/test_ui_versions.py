"""The model version page: details, files and downloads, history, actions by role, and
the lineage graph (SVG) with its links; every user string escaped."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import pytest

from ledger import __version__
from ledger.api.ui.graphics.lineage import lineage_picture
from ledger.artifacts.store import ArtifactStore
from ledger.ledger import Ledger
from projections.lineage import LineageGraph
from tests.conftest import Api
from tests.ui.lineage_support import (
    SCRIPT,
    model_files,
    register_with_lineage,
)
from tests.ui.ui_support import browser, views_caught_up

PAGE = "/ui/models/iris/versions/1"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def job_id(api: Api, tmp_path: Path) -> str:
    with Ledger(api.settings) as ledger:
        job_id = register_with_lineage(ledger, tmp_path).job_id
    views_caught_up(api)
    return job_id


def lineage_svg(page: str) -> ElementTree.Element:
    found = re.search(r'<svg id="lineage-graph".*?</svg>', page, re.S)
    assert found, "no lineage graph on the page"
    return ElementTree.fromstring(found.group(0))


def table(page: str, table_id: str) -> str:
    found = re.search(rf'<table id="{table_id}".*?</table>', page, re.S)
    assert found, f"no table#{table_id}"
    return found.group(0)


def test_the_page_shows_the_version(api: Api, job_id: str) -> None:
    with browser(api, "reader") as person:
        response = person.get(PAGE)
    assert response.status_code == 200, response.text
    page = response.text
    assert "<h1>iris version 1</h1>" in page
    assert f"<footer>Lifecycle Ledger {__version__}</footer>" in page
    assert 'class="version-status status-ready">ready<' in page
    assert "<dd>sklearn</dd>" in page and "Iris classifier\nsecond line" in page
    assert "<td>accuracy</td><td>0.97</td>" in page
    assert "<td>team</td><td>vision</td>" in page
    assert "by tester" in page  # who registered it
    inputs = table(page, "signature-inputs")
    assert "<td>petal_length</td><td>double</td><td></td>" in inputs
    assert "<td>X</td><td>float32</td><td>[-1, 4]</td>" in inputs
    assert "<td></td><td>int64</td><td>[-1]</td>" in table(page, "signature-outputs")
    assert '<a class="pair" href="/ui/endpoints/shop">shop/blue</a>' in page
    assert f'<a href="/ui/jobs/{job_id}"><code>{job_id}</code></a>' in page
    assert '<a href="/ui/audit?entity=data:train"><code>train:1</code></a>' in page
    history = table(page, "history")
    assert "<td>Registered</td><td>tester</td><td>first model</td>" in history
    assert "<td>DeploymentAttached</td><td>tester</td><td>go live</td>" in history


def test_files_with_sizes_digests_and_downloads(api: Api, job_id: str, tmp_path: Path) -> None:
    source = tmp_path / "model"
    expected = {
        p.relative_to(source).as_posix(): p.read_bytes() for p in source.rglob("*") if p.is_file()
    }
    answer = api.client.get("/models/iris/versions/1", headers=api.auth("reader"))
    assert answer.status_code == 200, answer.text
    version = answer.json()
    with browser(api, "reader") as person:
        files = table(person.get(PAGE).text, "files")
        for entry in version["files"]:
            assert entry["sha256"] in files and f"({entry['size']} bytes)" in files
            href = f"{PAGE}/files/{entry['path']}"
            assert f'href="{href}"' in files
            download = person.get(href)
            assert download.status_code == 200
            assert download.content == expected[entry["path"]]
            assert download.headers["etag"] == f'"{entry["sha256"]}"'
        assert "10.0 KiB" in files and "(10240 bytes)" in files
        archive = person.get(f"{PAGE}/download")
        assert archive.status_code == 200
        assert 'filename="iris-1.zip"' in archive.headers["content-disposition"]
        with zipfile.ZipFile(io.BytesIO(archive.content)) as unzipped:
            assert {n: unzipped.read(n) for n in unzipped.namelist()} == expected
        missing = person.get(f"{PAGE}/files/nope.bin")
        assert missing.status_code == 404
        assert "error: model version iris:1 has no file &#39;nope.bin&#39;" in missing.text


def test_a_deleted_version_shows_so_and_its_files_are_gone(api: Api, tmp_path: Path) -> None:
    with Ledger(api.settings) as ledger:
        ledger.models.register_version("iris", model_files(tmp_path / "m"))
        ledger.models.delete_version("iris:1", reason="leaked")
    views_caught_up(api)
    with browser(api, "contributor") as person:
        page = person.get(PAGE)
        assert page.status_code == 200
        assert 'id="deleted-notice"' in page.text and "status-deleted" in page.text
        assert "/files/" not in page.text and "/download" not in page.text
        assert 'action="/ui/models/iris/versions/1/' not in page.text  # no actions left
        assert "<td>Deleted</td><td>tester</td><td>leaked</td>" in page.text
        for url in (f"{PAGE}/files/weights.bin", f"{PAGE}/download"):
            gone = person.get(url)
            assert gone.status_code == 404
            assert "error: model version iris:1 is deleted" in gone.text


def test_downloads_need_a_session(api: Api, job_id: str) -> None:
    with browser(api) as stranger:
        response = stranger.get(f"{PAGE}/files/config.json")
        assert response.status_code == 303
        assert response.headers["location"].startswith("/ui/login?next=")


def test_an_unknown_version_is_a_404_page(api: Api, job_id: str) -> None:
    with browser(api, "reader") as person:
        for url in ("/ui/models/iris/versions/9", "/ui/models/ghost/versions/1"):
            response = person.get(url)
            assert response.status_code == 404
            assert "error: model" in response.text and "does not exist" in response.text


def test_the_lineage_graph_links_every_node_to_its_page(api: Api, job_id: str) -> None:
    with browser(api, "reader") as person:
        page = person.get(PAGE).text
    svg = lineage_svg(page)
    # a group, not an img: its links stay reachable (an img's children are presentational)
    assert svg.get("role") == "group" and "iris:1" in (svg.get("aria-label") or "")
    links = {
        a.find(f"{SVG}g").get("data-node"): a.get("href")  # type: ignore[union-attr]
        for a in svg.iter(f"{SVG}a")
    }
    assert links == {
        "data:train:1": "/ui/audit?entity=data:train",
        "environment:cpu:1": "/ui/audit?entity=environment:cpu",
        "pipeline:fit:1": "/ui/audit?entity=pipeline:fit",
        f"job:{job_id}": f"/ui/jobs/{job_id}",
        "model:iris:1": PAGE,
        "deployment:shop/blue": "/ui/endpoints/shop",
        "endpoint:shop": "/ui/endpoints/shop",
    }
    current = [g for g in svg.iter(f"{SVG}g") if "current" in (g.get("class") or "")]
    assert [g.get("data-node") for g in current] == ["model:iris:1"]
    edges = {(g.get("data-from"), g.get("data-relation"), g.get("data-to"))
             for g in svg.iter(f"{SVG}g") if g.get("class") == "edge"}  # fmt: skip
    assert {
        ("data:train:1", "input", f"job:{job_id}"),
        (f"job:{job_id}", "produced", "model:iris:1"),
        ("data:train:1", "trained_on", "model:iris:1"),
        ("model:iris:1", "deployed_as", "deployment:shop/blue"),
        ("deployment:shop/blue", "serves", "endpoint:shop"),
    } <= edges
    x = {g.get("data-node"): float(g.find(f"{SVG}rect").get("x"))  # type: ignore[union-attr,arg-type]
         for g in svg.iter(f"{SVG}g") if g.get("data-node")}  # fmt: skip
    order = ["data:train:1", f"job:{job_id}", "model:iris:1", "deployment:shop/blue",
             "endpoint:shop"]  # fmt: skip
    assert [x[n] for n in order] == sorted(x[n] for n in order)  # left to right
    assert len({x[n] for n in order}) == len(order)
    # the same graph as plain tables
    nodes = table(page, "lineage-nodes")
    assert f'<tr data-node="job:{job_id}"><td><a href="/ui/jobs/{job_id}">' in nodes
    assert "<td>data:train:1</td><td>input</td><td>job:" in table(page, "lineage-edges")


def test_user_strings_are_escaped(api: Api, job_id: str) -> None:
    with browser(api, "reader") as person:
        page = person.get(PAGE).text
    assert SCRIPT not in page
    assert "<td>stage</td><td>&lt;script&gt;alert(1)&lt;/script&gt;</td>" in page


def test_node_names_are_escaped_in_the_svg() -> None:
    """Names are checked when registered; the drawing escapes them all the same."""
    evil = 'x"><script>alert(1)</script>'
    up = LineageGraph(
        "model:m:1", "upstream", {"model:m:1": 0, f"data:{evil}:1": 1},
        [(f"data:{evil}:1", "model:m:1", f"<b>{evil}")],
    )  # fmt: skip
    down = LineageGraph("model:m:1", "downstream", {"model:m:1": 0}, [])
    svg = str(lineage_picture(up, down).svg)
    assert "<script" not in svg and "<b>" not in svg
    parsed = ElementTree.fromstring(svg)
    nodes = [g.get("data-node") for g in parsed.iter(f"{SVG}g") if g.get("data-node")]
    assert f"data:{evil}:1" in nodes
    hrefs = [a.get("href") for a in parsed.iter(f"{SVG}a")]
    assert "/ui/audit?entity=data:x%22%3E%3Cscript%3Ealert%281%29%3C%2Fscript%3E" in hrefs


def test_a_reader_gets_no_forms(api: Api, job_id: str) -> None:
    with browser(api, "reader") as person:
        page = person.get(PAGE).text
    assert "<form" not in page.replace('action="/ui/logout"', "").split("<main", 1)[1]


def test_a_contributor_gets_the_version_actions(api: Api, job_id: str) -> None:
    with browser(api, "contributor") as person:
        page = person.get(PAGE).text
    for action in ("tags", "tags/delete", "archive", "delete"):
        assert f'action="{PAGE}/{action}"' in page
    assert f'action="{PAGE}/restore"' not in page
    assert page.count(f'<input type="hidden" name="back" value="{PAGE}">') == 4
    assert page.count('name="reason" required') == 4
    assert '<option value="stage">stage</option>' in page


def test_an_archived_version_offers_restore(api: Api, tmp_path: Path) -> None:
    with Ledger(api.settings) as ledger:
        ledger.models.register_version("iris", model_files(tmp_path / "m"))
        ledger.models.archive_version("iris:1", reason="old")
    views_caught_up(api)
    with browser(api, "contributor") as person:
        page = person.get(PAGE).text
    assert f'action="{PAGE}/restore"' in page and f'action="{PAGE}/archive"' not in page
    assert "No lineage recorded" not in page  # a version's own node at least


def test_a_damaged_file_is_an_error_page_never_its_bytes(api: Api, job_id: str) -> None:
    weights = next(
        f["sha256"]
        for f in api.client.get("/models/iris/versions/1", headers=api.auth("reader")).json()[
            "files"
        ]
        if f["path"] == "weights.bin"
    )
    blob = ArtifactStore(api.settings.artifacts_dir).blob_path(weights)
    blob.chmod(0o644)
    blob.write_bytes(blob.read_bytes()[:100])
    with browser(api, "reader") as person:
        for url in (f"{PAGE}/files/weights.bin", f"{PAGE}/download"):
            damaged = person.get(url)
            assert damaged.status_code == 500
            assert damaged.headers["content-type"].startswith("text/html")
            assert "error: model version iris:1, file &#39;weights.bin&#39;" in damaged.text
        assert person.get(f"{PAGE}/files/config.json").status_code == 200


def test_every_edge_points_right_and_long_ones_pass_between_nodes() -> None:
    """clf:1 -> clf-onnx:1 (derived) -> deployment -> endpoint, with data used by both the
    job and the version: a column per step, an edge crossing a column gets a waypoint."""
    up = LineageGraph(
        "model:onnx:1", "upstream",
        {"model:onnx:1": 0, "model:clf:1": 1, "job:j": 2, "data:d:1": 2},
        [("model:clf:1", "model:onnx:1", "derived"), ("job:j", "model:clf:1", "produced"),
         ("data:d:1", "model:clf:1", "trained_on"), ("data:d:1", "job:j", "input")],
    )  # fmt: skip
    down = LineageGraph(
        "model:onnx:1", "downstream",
        {"model:onnx:1": 0, "deployment:api/live": 1, "endpoint:api": 2},
        [("model:onnx:1", "deployment:api/live", "deployed_as"),
         ("deployment:api/live", "endpoint:api", "serves")],
    )  # fmt: skip
    picture = lineage_picture(up, down)
    assert [n.node for n in picture.nodes] == [
        "data:d:1", "job:j", "model:clf:1", "model:onnx:1", "deployment:api/live", "endpoint:api"
    ]  # fmt: skip
    assert [n.where for n in picture.nodes][2:4] == ["upstream, 1 step", "this version"]
    svg = ElementTree.fromstring(str(picture.svg))
    x = {g.get("data-node"): float(g.find(f"{SVG}rect").get("x"))  # type: ignore[union-attr,arg-type]
         for g in svg.iter(f"{SVG}g") if g.get("data-node")}  # fmt: skip
    assert len(set(x.values())) == 6  # one column each
    paths = {g.get("data-relation"): g.find(f"{SVG}path").get("d")  # type: ignore[union-attr]
             for g in svg.iter(f"{SVG}g") if g.get("class") == "edge"}  # fmt: skip
    assert " L" in paths["trained_on"] and " L" not in paths["input"]  # through job's column


def test_a_cycle_is_still_drawn() -> None:
    """Provenance never loops, but a damaged view must not hang the page."""
    up = LineageGraph(
        "model:a:1", "upstream", {"model:a:1": 0, "model:b:1": 1},
        [("model:b:1", "model:a:1", "derived"), ("model:a:1", "model:b:1", "derived")],
    )  # fmt: skip
    down = LineageGraph("model:a:1", "downstream", {"model:a:1": 0}, [])
    picture = lineage_picture(up, down)
    assert {n.node for n in picture.nodes} == {"model:a:1", "model:b:1"}
    assert str(picture.svg).count('class="edge"') == 2

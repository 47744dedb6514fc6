"""The canvas bundle shipped in the package is built from the sources in this checkout."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

from graphkit.editor import bundle, canvas

ROOT = Path(__file__).resolve().parent.parent


def test_committed_bundle_was_built_from_these_sources() -> None:
    info = bundle.build_info()
    assert info, "no canvas bundle: run `make frontend`"
    assert info["files"] == bundle.source_files(), "the build read other files than these"
    assert info["sources"] == bundle.source_hash(), (
        "the canvas bundle is older than its sources: run `make frontend` and commit "
        "graphkit/editor/frontend/dist")


def test_bundle_has_one_script_and_one_stylesheet() -> None:
    dist = bundle.FRONTEND / "dist"
    scripts, styles = sorted(dist.glob("canvas-*.js")), sorted(dist.glob("canvas-*.css"))
    assert len(scripts) == 1 and len(styles) == 1, (scripts, styles)
    assert sorted(p.name for p in scripts + styles) == bundle.build_info()["built"]
    assert "export{" in scripts[0].read_text(encoding="utf-8")[-400:]  # an ES module


def test_a_changed_source_changes_the_hash(tmp_path: Path) -> None:
    copy = tmp_path / "frontend"
    for name in bundle.source_files():
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(bundle.FRONTEND / name, copy / name)
    assert bundle.source_hash(copy) == bundle.source_hash()
    crlf = copy / "src" / "types.ts"
    crlf.write_bytes(crlf.read_bytes().replace(b"\n", b"\r\n"))
    assert bundle.source_hash(copy) == bundle.source_hash()  # a Windows checkout reads alike
    (copy / "src" / "Canvas.tsx").write_text("// edited\n", encoding="utf-8")
    assert bundle.source_hash(copy) != bundle.source_hash()
    (copy / "src" / "extra.ts").write_text("export {};\n", encoding="utf-8")
    assert "src/extra.ts" in bundle.source_files(copy)


def test_streamlit_finds_the_bundle_in_the_package() -> None:
    manifest = tomllib.loads((ROOT / "graphkit" / "pyproject.toml").read_text())
    (entry,) = manifest["tool"]["streamlit"]["component"]["components"]
    assert f"{manifest['project']['name']}.{entry['name']}" == canvas.COMPONENT_NAME
    assert (ROOT / "graphkit" / entry["asset_dir"]).resolve() == (bundle.FRONTEND / "dist")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    shipped = project["tool"]["setuptools"]["package-data"]["graphkit"]
    assert "pyproject.toml" in shipped and "editor/frontend/dist/*" in shipped
    assert not any("agraph" in dep for dep in project["project"]["optional-dependencies"]["editor"])

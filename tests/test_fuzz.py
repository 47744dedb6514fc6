"""Property-based fuzzing of graph loading, validation and the CLI with hostile documents.

Every document, however malformed, must end in ``GraphError`` (or a valid graph) from the
API, and in exit 2 (or 0) with one ``error:`` line per problem from the CLI: never another
exception, a hang or a traceback.

``GRAPHKIT_FUZZ_EXAMPLES`` sets the total number of generated documents across the fuzz
tests (default 10,000), split between them by the weights in ``SHARES``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphkit import cli
from graphkit.api import Graph
from graphkit.errors import GraphError, Problem
from graphkit.graph import doc_from_raw, load_doc, parse_json
from graphkit.limits import Limits, set_limits
from graphkit.pngmeta import GRAPH_KEY, INFO_KEY
from graphkit.registry import NodeSpec, registry
from graphkit.types import can_connect
from graphkit.validate import check

ROOT = Path(__file__).resolve().parent.parent
TOTAL = int(os.environ.get("GRAPHKIT_FUZZ_EXAMPLES", "10000"))
SHARES = {"raw": 0.3, "structured": 0.3, "cli": 0.2, "overrides": 0.08, "png": 0.1,
          "sizes": 0.02}
COUNTS: dict[str, int] = dict.fromkeys(SHARES, 0)
REG = registry()
SPECS: list[NodeSpec] = [REG.specs[k] for k in sorted(REG.specs)]
EXAMPLE_TEXTS = [p.read_text() for p in sorted((ROOT / "graphs").glob("*.json"))]


def fuzz_settings(share: str) -> settings:
    """Deterministic, no example database, no deadline; ``share`` of the total examples."""
    return settings(
        max_examples=max(1, round(TOTAL * SHARES[share])),
        derandomize=True,
        database=None,
        deadline=None,
        print_blob=False,
        suppress_health_check=list(HealthCheck),
    )


# --- building blocks -----------------------------------------------------------------------
# Hypothesis picks the kind of document and a seed; a seeded Random fills in the body, which
# keeps each example cheap (thousands of tiny draws per document would dominate the time).

NASTY_TEXT = [
    "", " ", "..", "../../etc/passwd", "/dev/zero", "~", "C:\\x", "https://example.com/a.png",
    "a.b.c", "node.", ".port", "\u0000", "\n", "\u202e", "\U0001f600", "e\u0301", "\ufeff",
    "x" * 70, "y" * 5000, "z" * 20_000, "NaN", "Infinity", "-0", "1e999", "null", "\\", "%s",
    # a trailing newline and non-ASCII digits must not pass an anchored or \d pattern
    "a\n", "image\r\n", "1.0.0\n", "\u0661.0.0", "n\u0663", "\uff11\uff12", "x.image\n",
]
HOSTILE_NUMBERS = [10**30, -(10**30), 2**63, 2**64 + 1, 1e308, -1e308, 5e-324, -0.0,
                   float("nan"), float("inf"), float("-inf"), True, False]
BAD_IDS = ["1bad", "a.b", "", "x" * 65, "\u00e9t\u00e9", "a b", "a\nb", "-x", "\u0000",
           "a\n", "gen\r\n", "n\u0663", "\u0661a", "x\u200b"]
ODD_VERSIONS = ["1.0.0", "2.0.0", "0.9.1", "1.0", "v1", "1.0.0-rc1", "9" * 40 + ".0.0", "",
                "1.0.0\n", "\u0661.0.0", "1.0.\uff10", " 1.0.0"]
ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"


def deep(depth: int, kind: str) -> Any:
    """A value nested ``depth`` levels (lists or objects)."""
    value: Any = 1
    for _ in range(depth):
        value = [value] if kind == "list" else {"k": value}
    return value


class Gen:
    """Hostile and near-valid graph documents from one seeded Random."""

    def __init__(self, rnd: random.Random) -> None:
        self.r = rnd

    def text(self, size: int = 12) -> str:
        r = self.r
        if r.random() < 0.3:
            return r.choice(NASTY_TEXT)
        alphabet = r.choice(["abc.xyz_-", "ab\u00e9\u4e2d\U0001f600\u200b\n\t\"\\/ ",
                             "".join(chr(r.randrange(1, 0xD7FF)) for _ in range(8))])
        return "".join(r.choice(alphabet) for _ in range(r.randrange(size + 1)))

    def scalar(self) -> Any:
        r = self.r
        return r.choice([
            lambda: None, lambda: r.random() < 0.5, lambda: r.randrange(-(2**70), 2**70),
            lambda: r.randrange(-3, 600), lambda: r.uniform(-1e6, 1e6),
            lambda: r.choice(HOSTILE_NUMBERS), self.text,
        ])()

    def value(self, depth: int = 0) -> Any:
        r = self.r
        roll = r.random()
        if depth > 3 or roll < 0.55:
            return self.scalar()
        if roll < 0.75:
            return [self.value(depth + 1) for _ in range(r.randrange(4))]
        if roll < 0.97:
            return {self.text(6): self.value(depth + 1) for _ in range(r.randrange(4))}
        return deep(r.randrange(1, 90), r.choice(["list", "dict"]))

    def node_id(self) -> str:
        r = self.r
        if r.random() < 0.1:
            return r.choice(BAD_IDS)
        return r.choice("abcxyz_") + "".join(r.choice(ID_CHARS) for _ in range(r.randrange(8)))

    def param(self, schema: dict[str, Any]) -> Any:
        """Usually plausible for the param's schema, sometimes hostile."""
        r = self.r
        if r.random() < 0.2:
            return self.value()
        if "enum" in schema:
            return r.choice(schema["enum"])
        low, high = schema.get("minimum"), schema.get("maximum")
        kind = schema.get("type")
        if kind == "integer":
            if r.random() < 0.1:
                return 0  # zero sides: "keep the aspect ratio" or refused
            lo = int(low) - 2 if low is not None else -(2**40)
            return r.randint(lo, int(high) + 2 if high is not None else 2**40)
        if kind == "number":
            return r.uniform((low or 0) - 1, (high if high is not None else 1e6) + 1)
        if kind == "string":
            return self.text(20)
        if kind == "array":
            return [r.randrange(-5, 600) if r.random() < 0.7 else
                    [r.randrange(-5, 600) for _ in range(r.randrange(4))]
                    for _ in range(r.randrange(7))]
        return self.scalar()

    def good_param(self, schema: dict[str, Any], default: Any) -> Any:
        """A value the param accepts (the default when unsure)."""
        r = self.r
        if "enum" in schema:
            return r.choice(schema["enum"])
        low, high = schema.get("minimum"), schema.get("maximum")
        if schema.get("type") == "integer" and low is not None and high is not None:
            step = int(schema.get("multipleOf", 1))
            first = -(-int(low) // step) * step
            return r.randrange(first, min(int(high), first + 64 * step) + 1, step)
        if schema.get("type") == "number" and low is not None and high is not None:
            return r.uniform(low, high)
        if schema.get("type") == "string" and "pattern" not in schema:
            return r.choice(["a cat", "", "été 😀", "x" * 300])
        return default if default is not None else "img.png"

    def valid(self) -> dict[str, Any]:
        """A graph that passes every check: typed links to earlier nodes, ending in a save."""
        r = self.r
        made: list[tuple[str, str, Any]] = []  # (node, port, type)
        nodes: dict[str, Any] = {}
        for i in range(r.randrange(1, 6)):
            spec = r.choice(SPECS)
            links = {}
            for name, inp in spec.inputs.items():
                fits = [(n, port) for n, port, t in made if can_connect(t, inp.type)]
                if fits and (not inp.optional or r.random() < 0.5):
                    links[name] = "{}.{}".format(*r.choice(fits))
                elif not inp.optional:
                    spec = REG.specs["mask.region"]
                    links = {}
                    break
            nid = f"n{i}_{r.choice(ID_CHARS)}"
            params = {n: self.good_param(p.schema, p.default) for n, p in spec.params.items()
                      if p.required or r.random() < 0.5}
            nodes[nid] = {"type": spec.type_id, "params": params, "inputs": links}
            made += [(nid, port, t) for port, t in spec.outputs.items()]
        images = [(n, port) for n, port, t in made if t.name == "Image"]
        if not images:
            nodes["as_image"] = {"type": "mask.to_image", "inputs": {"mask": "mk.mask"}}
            nodes["mk"] = {"type": "mask.region", "params": {"width": 8, "height": 8}}
            images = [("as_image", "image")]
        nodes["save"] = {"type": "image.save", "inputs": {"image": "{}.{}".format(
            *r.choice(images))}}
        return {"format": "graphkit/1", "name": self.text(10), "nodes": nodes}

    def near_valid(self) -> tuple[dict[str, Any], list[tuple[tuple[str, ...], str]]]:
        """Real node types and params linked to each other, then mutated; plus the keys to
        write twice when the document becomes text."""
        r = self.r
        ids = list(dict.fromkeys(self.node_id() for _ in range(r.randrange(1, 7))))
        specs = {nid: r.choice(SPECS) for nid in ids}
        outputs = [(nid, port) for nid, spec in specs.items() for port in spec.outputs]
        nodes: dict[str, Any] = {}
        for nid, spec in specs.items():
            params = {n: self.param(p.schema) for n, p in spec.params.items()
                      if r.random() < 0.35}
            inputs: dict[str, Any] = {}
            for name in spec.inputs:
                roll = r.random()
                if roll < 0.75:
                    src, port = r.choice(outputs)
                    inputs[name] = f"{src}.{port}"
                elif roll < 0.85:
                    inputs[name] = r.choice([f"{nid}.image", "ghost.image", f"{ids[0]}.nope",
                                             "nodot", f"{nid}.{name}", ".", "a.b.c"])
            entry: dict[str, Any] = {"type": spec.type_id}
            if params or r.random() < 0.5:
                entry["params"] = params
            if inputs:
                entry["inputs"] = inputs
            nodes[nid] = entry
        doc: dict[str, Any] = {"format": "graphkit/1", "nodes": nodes}
        if r.random() < 0.3:
            doc["ui"] = {"positions": {nid: [r.randrange(-9, 9), 0] for nid in ids}}
        for _ in range(r.choice([0, 0, 1, 1, 2, 3])):
            self.mutate(doc, ids)
        dups: list[tuple[tuple[str, ...], str]] = []
        if r.random() < 0.15:
            dups.append((("nodes",), r.choice(ids)))
        if r.random() < 0.1:
            dups.append((("nodes", r.choice(ids)), r.choice(["type", "params", "inputs"])))
        return doc, dups

    def mutate(self, doc: dict[str, Any], ids: list[str]) -> None:
        """One hostile change to a document, in place."""
        r = self.r
        nid = r.choice(ids)
        nodes = doc.get("nodes")
        entry = nodes.get(nid) if isinstance(nodes, dict) else None
        what = r.randrange(18)
        if what == 0:
            doc[r.choice(["format", "nodes", "name", "ui", "extra"])] = self.value()
        elif what == 1:
            doc.pop(r.choice(["format", "nodes", "name", "ui"]), None)
        elif what == 2 and isinstance(entry, dict):
            key = r.choice(["type", "params", "inputs", "version", "pack", "bogus"])
            entry[key] = self.value()
        elif what == 3 and isinstance(entry, dict):
            entry.pop(r.choice(["type", "params", "inputs"]), None)
        elif what == 4 and isinstance(entry, dict):
            entry["type"] = r.choice(["no.such", "sdxl.text2imag", "", "x" * 300, "image.save ",
                                      "IMAGE.SAVE", "nodes.evil"])
            entry["pack"] = r.choice(["nodes", "graphkit-extra", "", "x" * 300])
        elif what == 5 and isinstance(entry, dict):
            entry["version"] = r.choice(ODD_VERSIONS)
        elif what == 6 and isinstance(entry, dict) and isinstance(entry.get("params"), dict):
            entry["params"][r.choice(["width", "steps", "text", "zzz", "model", "path"])] = (
                self.value())
        elif what == 7 and isinstance(entry, dict):
            entry["inputs"] = {self.text(6): f"{nid}.{self.text(6)}"}
        elif what == 8:
            doc["format"] = r.choice(["graphkit/0", "graphkit/2", "", 1, None, ["x"]])
        elif what == 9:
            doc["format"] = "graphkit/0"
            doc["nodes"] = r.choice([[], [{"id": "a"}], [{"id": ["x"]}], "nodes", 7,
                                     [{"id": "a", "type": "mask.invert", "inputs": {"m": 5}}],
                                     [{"id": "a", "type": "x", "inputs": {"m": ["b", "c"]}}]])
        elif what == 10 and isinstance(entry, dict):
            entry["params"] = {"p": deep(r.randrange(30, 200), r.choice(["list", "dict"]))}
        elif what == 11 and isinstance(nodes, dict):  # a cycle through every node
            order = [n for n in ids if isinstance(nodes.get(n), dict)]
            for a, b in zip(order, order[1:] + order[:1], strict=True):
                nodes[a]["inputs"] = {"image": f"{b}.image", "mask": f"{b}.mask"}
        elif what == 12 and isinstance(nodes, dict):
            nodes[self.node_id()] = self.value()
        elif what == 13:
            doc["name"] = r.choice(NASTY_TEXT)
        elif what == 14 and isinstance(entry, dict):
            entry["params"] = self.value()
        elif what == 15 and isinstance(entry, dict) and isinstance(entry.get("inputs"), dict):
            for port, ref in list(entry["inputs"].items()):  # a newline after a good link
                if isinstance(ref, str):
                    entry["inputs"][port] = ref + r.choice(["\n", "\r\n", "\u0663", " "])
        elif what == 16 and isinstance(entry, dict):
            params = entry.setdefault("params", {})
            if isinstance(params, dict):  # zero sides
                params[r.choice(["width", "height"])] = 0
                if r.random() < 0.3:
                    params["width" if "height" in params else "height"] = 0
        elif what == 17 and isinstance(nodes, dict):  # two output nodes writing one name
            nodes[self.node_id()] = {"type": "image.save", "params": {"name": "same"},
                                     "inputs": {"image": f"{nid}.image"}}
            nodes[self.node_id()] = {"type": "image.save", "params": {"name": "SAME"},
                                     "inputs": {"image": f"{nid}.image"}}

    def raw(self, kind: int) -> str:
        """JSON-ish text: garbage, random JSON, edited example files, deep or huge literals."""
        r = self.r
        if kind == 0:
            return self.text(200)
        if kind == 1:
            return json.dumps(self.value())
        if kind == 2:
            return json.dumps({"nodes": self.value(), "format": self.scalar()})
        if kind in (3, 4):  # an example graph with a slice cut out or random text put in
            text = r.choice(EXAMPLE_TEXTS)
            i = r.randrange(len(text) + 1)
            j = min(len(text), i + r.randrange(40))
            return text[:i] + self.text(8) + text[j:]
        if kind == 5:
            depth = r.choice([50, 65, 100, 999, 5000, 100_000])
            opener, closer = r.choice([("[", "]"), ('{"a":', "}"), ('{"nodes":', "}")])
            return opener * depth + "1" + closer * r.choice([depth, 0, depth // 2])
        if kind == 6:
            literal = r.choice(["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "9" * 5000,
                                "1" * 4300, "0." + "0" * 5000 + "1", '"\\ud800"', '"\\u0000"',
                                '"\\udc00x"', "1E400", "-0.0", "true", "[]"])
            return ('{"nodes": {"p": {"type": "text.prompt", "params": {"text": "a"}}, '
                    '"r": {"type": "mask.region", "params": {"width": ' + literal + '}}, '
                    '"s": {"type": "image.save", "inputs": {"image": "r.mask"}}}}')
        node = '{"type": "text.prompt", "params": {"text": "x"}}'
        return '{"nodes": {"a": ' + node + ', "a": ' + node + '}, "nodes": {}}'


def render(value: Any, dups: list[tuple[tuple[str, ...], str]],
           path: tuple[str, ...] = ()) -> str:
    """JSON text of ``value`` with the listed keys written twice in their objects."""
    if isinstance(value, dict):
        items = list(value.items())
        items += [(key, value[key]) for where, key in dups if where == path and key in value]
        return "{" + ", ".join(f"{json.dumps(k)}: {render(v, dups, (*path, k))}"
                               for k, v in items) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(render(v, dups, (*path, str(i)))
                               for i, v in enumerate(value)) + "]"
    return json.dumps(value)


SEEDS = st.randoms(use_true_random=True)


@st.composite
def structured_text(draw: st.DrawFn) -> str:
    """A valid or near-valid document (see ``Gen.valid``, ``Gen.near_valid``) as JSON text."""
    gen = Gen(draw(SEEDS))
    if draw(st.integers(0, 3)) == 0:
        return json.dumps(gen.valid())
    doc, dups = gen.near_valid()
    return render(doc, dups)


@st.composite
def raw_text(draw: st.DrawFn) -> str:
    """Raw JSON-ish text of one of the kinds in ``Gen.raw``."""
    return Gen(draw(SEEDS)).raw(draw(st.integers(0, 7)))


DOCUMENTS = raw_text() | structured_text()


# --- checking outcomes ---------------------------------------------------------------------

def assert_clean_error(exc: GraphError) -> None:
    """A GraphError names at least one problem, each a printable one-line Problem."""
    assert exc.problems and all(isinstance(p, Problem) for p in exc.problems)
    for line in exc.lines():
        assert "\n" not in line and "Traceback" not in line


def load_validate(text: str) -> None:
    """Load and check ``text``; valid graphs also round-trip through save."""
    try:
        doc = doc_from_raw(parse_json(text))
    except GraphError as exc:
        assert_clean_error(exc)
        return
    checked = check(doc, REG, Limits())
    for p in checked.problems:
        assert isinstance(p, Problem) and "\n" not in str(p)
    if checked.ok:
        saved = Graph(doc, ROOT, REG).dumps()
        assert doc_from_raw(parse_json(saved)).nodes.keys() == doc.nodes.keys()


@pytest.fixture(scope="module")
def fuzz_dir() -> Iterator[Path]:
    """A scratch folder (module scope, so hypothesis reuses it) with the hub offline."""
    saved = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "HF_HOME", "HF_HUB_CACHE")}
    with tempfile.TemporaryDirectory(prefix="graphkit-fuzz-") as tmp:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["HF_HOME"] = str(Path(tmp) / "hf")
        os.environ.pop("HF_HUB_CACHE", None)
        try:
            yield Path(tmp)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def run_cli(args: list[str]) -> tuple[int, str, str]:
    """``graphkit ARGS`` in this process: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(args)
    return code, out.getvalue(), err.getvalue()


# --- the fuzz tests ------------------------------------------------------------------------

@fuzz_settings("raw")
@given(text=raw_text())
def test_raw_text_loads_or_fails_cleanly(text: str) -> None:
    COUNTS["raw"] += 1
    load_validate(text)


@fuzz_settings("structured")
@given(text=structured_text())
def test_near_valid_documents_load_or_fail_cleanly(text: str) -> None:
    COUNTS["structured"] += 1
    load_validate(text)


@fuzz_settings("cli")
@given(text=DOCUMENTS, command=st.sampled_from(["validate", "validate-json", "run", "check"]))
def test_cli_exits_0_or_2_without_traceback(fuzz_dir: Path, text: str, command: str) -> None:
    COUNTS["cli"] += 1
    file = fuzz_dir / "g.json"
    file.write_text(text, encoding="utf-8", errors="surrogatepass")
    args = {"validate": ["validate", str(file)],
            "validate-json": ["validate", "--json", str(file)],
            "check": ["check", str(file)],
            "run": ["run", str(file), "--out", str(fuzz_dir / "out")]}[command]
    if command == "run":
        code, _out, _err = run_cli(["validate", str(file)])
        if code == 0:  # running valid graphs is not this test's business
            args = ["validate", str(file)]
    code, out, err = run_cli(args)
    assert code in (0, 2), err
    assert "Traceback" not in err and "Traceback" not in out
    assert all(line.startswith("error: ") for line in err.splitlines()), err
    if code == 2 and command != "check":
        assert err.startswith("error: ")
    if command == "validate-json":
        assert json.loads(out)["ok"] is (code == 0)
    assert not (fuzz_dir / "out").exists()


@fuzz_settings("overrides")
@given(example=st.sampled_from(sorted((ROOT / "graphs").glob("*.json"))),
       rnd=SEEDS, count=st.integers(0, 3))
def test_overrides_fail_cleanly(example: Path, rnd: random.Random, count: int) -> None:
    COUNTS["overrides"] += 1
    graph = Graph.load(example, REG)
    gen = Gen(rnd)
    items = []
    for _ in range(count):
        node = rnd.choice([*graph.doc.nodes, "nope", "", "a.b"])
        param = rnd.choice(["steps", "width", "text", "name", "model", "path", "zz", ""])
        value = json.dumps(gen.value()) if rnd.random() < 0.7 else gen.text(20)
        items.append(f"{node}.{param}{rnd.choice(['=', '', '=='])}{value}")
    try:
        graph.apply_overrides(items)
    except GraphError as exc:
        assert_clean_error(exc)
        return
    for p in graph.validate():
        assert isinstance(p, Problem)
    if graph.checked().ok:
        parse_json(graph.dumps())


# --- PNGs: text chunks read without decoding, whatever the header claims ------------------

HEADER_SIDES = [0, 1, 7, 64, 8192, 8193, 13_000, 100_000, 2**31 - 1, 2**32 - 1]
INFLATES_TO_20MB = zlib.compress(b" " * 20_000_000, 9)  # about 20 kB


def png_chunk(kind: bytes, data: bytes, crc: int | None = None) -> bytes:
    body = kind + data
    return (struct.pack(">I", len(data)) + body
            + struct.pack(">I", zlib.crc32(body) if crc is None else crc))


class PngGen:
    """Hostile PNG files: huge or zero headers, text chunks of every kind, corruption."""

    def __init__(self, rnd: random.Random) -> None:
        self.r = rnd
        self.gen = Gen(rnd)

    def text(self) -> str:
        r = self.r
        roll = r.random()
        if roll < 0.4:
            return json.dumps(self.gen.valid())
        if roll < 0.7:
            doc, dups = self.gen.near_valid()
            return render(doc, dups)
        return self.gen.raw(r.randrange(8))

    def text_chunk(self, key: str, text: str) -> bytes:
        r = self.r
        data = text.encode("utf-8", "surrogatepass")
        kind = r.choice([b"tEXt", b"zTXt", b"iTXt", b"iTXt"])
        head = key.encode("latin-1", "replace") + b"\x00"
        if r.random() < 0.03:  # inflates beyond the graph limit from a few kB
            return png_chunk(b"iTXt", head + b"\x01\x00\x00\x00" + INFLATES_TO_20MB)
        if kind == b"tEXt":
            return png_chunk(kind, head + data)
        if kind == b"zTXt":
            return png_chunk(kind, head + bytes([r.choice([0, 0, 0, 8])]) + zlib.compress(data))
        compressed = r.random() < 0.8
        body = zlib.compress(data) if compressed else data
        return png_chunk(kind, head + bytes([int(compressed), r.choice([0, 0, 0, 3])])
                         + b"en\x00\x00" + body)

    def file(self) -> bytes:
        r = self.r
        width, height = r.choice(HEADER_SIDES), r.choice(HEADER_SIDES)
        header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        texts = [self.text_chunk(r.choice([GRAPH_KEY, GRAPH_KEY, INFO_KEY, "Comment", "x"]),
                                 self.text()) for _ in range(r.randrange(4))]
        split = r.randrange(len(texts) + 1)
        data = (b"\x89PNG\r\n\x1a\n" + header + b"".join(texts[:split])
                + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + b"".join(texts[split:])
                + png_chunk(b"IEND", b""))
        roll = r.random()
        if roll < 0.1:  # truncated anywhere
            data = data[: r.randrange(len(data))]
        elif roll < 0.2:  # one byte flipped anywhere
            i = r.randrange(len(data))
            data = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:]
        elif roll < 0.25:  # the chunk after the header claims 2 GB
            data = data[:33] + b"\x7f\xff\xff\xf0" + data[37:]
        return data


@fuzz_settings("png")
@given(rnd=SEEDS, command=st.sampled_from(["show", "show-info", "validate", "check"]))
def test_png_files_fail_cleanly_without_decoding(fuzz_dir: Path, rnd: random.Random,
                                                  command: str) -> None:
    from PIL import Image as PILImage
    from PIL import ImageFile

    COUNTS["png"] += 1
    file = fuzz_dir / "g.png"
    file.write_bytes(PngGen(rnd).file())
    args = {"show": ["show", str(file)], "show-info": ["show", "--info", str(file)],
            "validate": ["validate", str(file)], "check": ["check", str(file)]}[command]

    def trap(*a: Any, **k: Any) -> None:
        raise AssertionError("a PNG was opened or decoded by Pillow")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(PILImage, "open", trap)
        mp.setattr(ImageFile.ImageFile, "load", trap)
        code, out, err = run_cli(args)
    assert code in (0, 2), err
    assert "Traceback" not in err + out and "AssertionError" not in err
    assert all(line.startswith("error: ") for line in err.splitlines()), err
    if command.startswith("show"):
        assert all(c.isprintable() or c == "\n" for c in out)
        if code == 0:
            json.loads(out)


# --- sizes a node computes: zero sides, upscales and crops within small limits ----------

SMALL = Limits(max_side=256, max_pixels=20_000, max_upscaled_pixels=30_000)


@fuzz_settings("sizes")
@given(rnd=SEEDS)
def test_computed_sizes_stay_within_the_limits(fuzz_dir: Path, rnd: random.Random) -> None:
    from PIL import Image as PILImage

    COUNTS["sizes"] += 1
    r = rnd
    width, height = r.randrange(1, 200), r.randrange(1, 100)
    nodes: dict[str, Any] = {
        "region": {"type": "mask.region", "params": {"width": width, "height": height}},
        "img": {"type": "mask.to_image", "inputs": {"mask": "region.mask"}},
        "fit": {"type": "image.resize", "inputs": {"image": "img.image"}, "params": {
            "width": r.choice([0, 0, 1, r.randrange(1, 300), r.randrange(1, 5000)]),
            "height": r.choice([0, 0, 1, r.randrange(1, 300), r.randrange(1, 5000)]),
            "method": r.choice(["nearest", "bilinear"])}},
    }
    last = "fit"
    if r.random() < 0.5:
        nodes["up"] = {"type": "image.upscale", "inputs": {"image": "fit.image"},
                       "params": {"method": "lanczos", "scale": r.choice([2, 4])}}
        last = "up"
    if r.random() < 0.3:
        nodes["cut"] = {"type": "image.crop", "inputs": {"image": f"{last}.image"}, "params": {
            "x": r.randrange(0, 40), "y": r.randrange(0, 40), "width": r.randrange(1, 300),
            "height": r.randrange(1, 300)}}
        last = "cut"
    nodes["save"] = {"type": "image.save", "inputs": {"image": f"{last}.image"}}
    file = fuzz_dir / "sizes.json"
    file.write_text(json.dumps({"format": "graphkit/1", "nodes": nodes}))
    out = fuzz_dir / "sized"
    set_limits(SMALL)
    try:
        code, _out, err = run_cli(["run", str(file), "--out", str(out), "--device", "cpu"])
    finally:
        set_limits(None)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code in (0, 2) and "Traceback" not in err, err
    if code == 2:
        expected = ("GRAPHKIT_LIMIT_", "cannot both be 0", "exceeds the image")
        assert errors and all(any(e in line for e in expected) for line in errors), errors
    else:
        with PILImage.open(out / "image.png") as img:
            w, h = img.size
        assert w <= SMALL.max_side and h <= SMALL.max_side
        assert w * h <= max(SMALL.max_pixels, SMALL.max_upscaled_pixels)
    shutil.rmtree(out, ignore_errors=True)


def test_fuzz_example_count() -> None:
    """When every fuzz test ran in this session, together they saw the configured total."""
    if not all(COUNTS.values()):
        pytest.skip("not every fuzz test ran")
    assert sum(COUNTS.values()) >= TOTAL * 0.99


# --- a few real processes: no traceback reaches the terminal -------------------------------

HOSTILE = {
    "deep.json": "[" * 200_000 + "\x00\ufffd\U0001f600",
    "nan.json": '{"nodes": {"a": {"type": "mask.threshold", "params": {"value": NaN}}}}',
    "dup.json": '{"nodes": {"a": {"type": "text.prompt"}, "a": {"type": "text.prompt"}}}',
    "cycle.json": json.dumps({"nodes": {
        "a": {"type": "mask.invert", "inputs": {"mask": "b.mask"}},
        "b": {"type": "mask.invert", "inputs": {"mask": "a.mask"}},
        "s": {"type": "image.save", "inputs": {"image": "self.image"}},
        "self": {"type": "image.resize", "inputs": {"image": "self.image"}}}}),
}


def test_cli_subprocesses_print_no_traceback(tmp_path: Path) -> None:
    """Run ``graphkit validate`` and ``graphkit run`` as real processes on hostile files."""
    procs = []
    for name, text in HOSTILE.items():
        file = tmp_path / name
        file.write_text(text, encoding="utf-8")
        command = "run" if len(procs) % 2 else "validate"
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "graphkit", command, str(file),
             *(["--out", str(tmp_path / "out")] if command == "run" else [])],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path))
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 2, err
        assert "Traceback" not in err + out
        assert err.startswith("error: ") and all(
            line.startswith("error: ") for line in err.splitlines())
    assert not (tmp_path / "out").exists()


def test_oversized_graph_file_is_refused_before_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    big.write_text('{"nodes": {}, "name": "' + "x" * 2000 + '"}')
    with pytest.raises(GraphError) as err:
        load_doc(big, max_bytes=1000)
    assert err.value.problems[0].code == "limit"

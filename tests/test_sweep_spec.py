"""Sweep specs are hostile input: every bad one exits 2 with one line, before anything runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import graphkit
from graphkit.cli import main
from graphkit.limits import Limits
from graphkit.sweep.spec import build_sweep, spec_values, split_list

ROOT = Path(__file__).resolve().parent.parent
GRAPH = ROOT / "graphs" / "sdxl_turbo.json"
SCHEMA_INT = {"type": "integer"}
SCHEMA_TEXT = {"type": "string"}


def _run(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["run", str(GRAPH), "--models", "tiny", "--device", "cpu",
                 "--out", str(tmp_path / "out"), *args])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("args, expected", [
    (["--sweep", "gen.seed="], "node 'gen' 'seed': the sweep has no values"),
    (["--sweep", "gen.seed=@"], "node 'gen' 'seed': @ must be followed by a file name"),
    (["--sweep", "ghost.seed=1,2"], "node 'ghost' 'seed': no such node in the graph"),
    (["--sweep", "gen.sed=1,2"], "node 'gen' 'sed': unknown param (known: steps"),
    (["--sweep", "gen.seed=1,-1"], "node 'gen' 'seed': sweep value -1: Input should be "
                                   "greater than or equal to 0"),
    (["--sweep", "gen.steps=0..3"], "node 'gen' 'steps': sweep value 0: Input should be "
                                    "greater than or equal to 1"),
    (["--sweep", "gen.width=64,100"], "node 'gen' 'width': sweep value 100: Input should be "
                                      "a multiple of 8"),
    (["--sweep", "gen.seed=1,,2"], "node 'gen' 'seed': value 2 of the comma list is empty"),
    (["--sweep", "gen.seed=1,two"], "node 'gen' 'seed': sweep value \"two\": Input should be "
                                    "a valid integer"),
    (["--sweep", "gen.guidance=1,NaN"], "node 'gen' 'guidance': value nan is not a plain "
                                        "JSON value"),
    (["--sweep", "gen.seed=0..1000000000000"], "node 'gen' 'seed': range 0..1000000000000 has "
                                               "1000000000001 values; the limit is 100000 "
                                               "(GRAPHKIT_LIMIT_MAX_SWEEP_VARIATIONS)"),
    (["--sweep", "gen.seed=9..0"], "range 9..0 is empty; write it as 0..9"),
    (["--sweep", "gen.seed=0..9999", "--sweep", "gen.steps=1..50"],
     "the sweep has 500000 variations; the limit is 100000"),
    (["--sweep", "prompt.text=[a,b"], "node 'prompt' 'text': unbalanced brackets or quotes"),
    (["--sweep", "gen.seed=1,2", "--sweep", "gen.seed=3"], "this param is swept twice"),
    (["--sweep", "gen.seed=1,2", "--sweep", "gen.steps=1,2,3", "--zip"],
     "--zip pairs values, so every sweep needs as many values (gen.seed has 2, gen.steps has 3)"),
    (["--sweep", "gen.seed=1,2", "--batch", "0"], "--batch must be 1 to 16"),
    (["--sweep", "gen.seed=1,2", "--batch", "17"], "--batch must be 1 to 16"),
    (["--zip"], "--zip needs --sweep NODE.PARAM=SPEC"),
    (["--batch", "2"], "--batch needs --sweep"),
    (["--sweep", "gen.seed=1", "--workers", "2"], "--workers and --ray-address need --on ray"),
    (["--sweep", "seed=1,2"], "override 'seed=1,2' must look like NODE.PARAM=VALUE"),
])
def test_bad_sweep_exits_2_with_one_line_and_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], expected: str
) -> None:
    code, err = _run(tmp_path, capsys, *args)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert expected in lines[0], err
    assert not (tmp_path / "out").exists()


def test_bad_spec_files(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9\n")
    (tmp_path / "nul.txt").write_bytes(b"a\x00b\n")
    (tmp_path / "blank.txt").write_text("\n  \n\n")
    (tmp_path / "big.txt").write_text("x\n" * 600)
    (tmp_path / "folder").mkdir()
    os.mkfifo(tmp_path / "fifo")
    monkeypatch.setenv("GRAPHKIT_LIMIT_MAX_SWEEP_FILE_BYTES", "1000")
    from graphkit.limits import set_limits

    set_limits(None)
    try:
        cases = {
            "@latin1.txt": "@latin1.txt is not UTF-8 text (bad byte at offset 3)",
            "@nul.txt": "@nul.txt contains a NUL character",
            "@blank.txt": "the sweep has no values",
            "@big.txt": "@big.txt is 1200 bytes; the limit is 1000 "
                        "(GRAPHKIT_LIMIT_MAX_SWEEP_FILE_BYTES)",
            "@folder": "@folder is not a regular file",
            "@fifo": "@fifo is not a regular file",
            "@missing.txt": "cannot read @missing.txt: No such file or directory",
        }
        for spec, expected in cases.items():
            code, err = _run(tmp_path, capsys, "--sweep", f"prompt.text={spec}")
            assert code == 2 and expected in err and len(err.strip().splitlines()) == 1, err
    finally:
        set_limits(None)
    assert not (tmp_path / "out").exists()


def test_a_long_prompt_line_is_refused_by_the_param_bound(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    spec = tmp_path / "prompts.txt"
    spec.write_text("short\n" + "x" * 5000 + "\n")
    code, err = _run(tmp_path, capsys, "--sweep", f"prompt.text=@{spec}")
    assert code == 2
    assert "node 'prompt' 'text': sweep value \"xxxx" in err
    assert "String should have at most 4000 characters" in err


def test_comma_lists_split_outside_json_and_quotes() -> None:
    assert split_list('1, 2 ,3') == ["1", "2", "3"]
    assert split_list('[1,2],[3,4]') == ["[1,2]", "[3,4]"]
    assert split_list('"a, b",c') == ['"a, b"', "c"]
    assert split_list('"say \\"hi, you\\"",x') == ['"say \\"hi, you\\""', "x"]
    assert split_list('{"a": [1, 2]}') == ['{"a": [1, 2]}']


def test_values_are_parsed_as_set_parses_them() -> None:
    lim = Limits()
    assert spec_values("1,2.5,true", {}, lim) == [1, 2.5, True]
    assert spec_values("123,hello,\"quoted\"", SCHEMA_TEXT, lim) == ["123", "hello", "quoted"]
    assert spec_values("-2..2", SCHEMA_INT, lim) == [-2, -1, 0, 1, 2]
    assert spec_values('"1..3"', SCHEMA_TEXT, lim) == ["1..3"]  # a JSON string is text


def test_api_values_are_checked_like_the_cli(tmp_path: Path) -> None:
    graph = graphkit.load(GRAPH)
    sweep = build_sweep(graph, {"gen.seed": range(3), "prompt.text": ["a", "b"]})
    assert len(sweep) == 6
    assert sweep.variations()[1].set == {"gen.seed": 0, "prompt.text": "b"}
    with pytest.raises(graphkit.GraphError, match="node 'gen' 'seed': sweep value \"3\""):
        graph.sweep({"gen.seed": ["3"]}, out=tmp_path)  # API values are not parsed
    with pytest.raises(graphkit.GraphError, match="sweeps run on local or ray"):
        graph.sweep({"gen.seed": [3]}, out=tmp_path, on="moon")
    assert not any(tmp_path.iterdir())


def test_out_must_be_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "out").write_text("not a folder")
    code, err = _run(tmp_path, capsys, "--sweep", "gen.seed=1,2")
    assert code == 2 and "not a folder" in err and err.count("\n") == 1
    assert (tmp_path / "out").read_text() == "not a folder"


def test_ray_missing_is_bad_input_before_the_folder_is_touched(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "ray" else real(name, *a))
    code, err = _run(tmp_path, capsys, "--sweep", "gen.seed=1,2", "--on", "ray")
    assert code == 2 and "--on ray needs Ray: pip install 'graphkit[ray]'" in err
    assert not (tmp_path / "out").exists()


def test_spec_files_can_be_held_inside_one_folder(tmp_path: Path) -> None:
    """With ``file_root`` (the editor's workspace), @FILE names a file inside that folder,
    relative to it, and nothing outside it: not by '..', an absolute path or a link."""
    graph = graphkit.load(GRAPH)
    ws = tmp_path / "ws"
    (ws / "lists").mkdir(parents=True)
    (ws / "lists" / "prompts.txt").write_text("a red fox\na blue bird\n")
    (tmp_path / "secret.txt").write_text("outside\n")
    (ws / "link.txt").symlink_to(tmp_path / "secret.txt")
    (ws / "lists" / "up").symlink_to(tmp_path)
    sweep = build_sweep(graph, {"prompt.text": "@lists/prompts.txt"}, file_root=ws)
    assert sweep.axes[0].values == ("a red fox", "a blue bird")
    outside = [f"@{tmp_path / 'secret.txt'}", "@../secret.txt", "@link.txt",
               "@lists/up/secret.txt", "@lists/../../secret.txt"]
    for spec in outside:
        with pytest.raises(graphkit.GraphError) as caught:
            build_sweep(graph, {"prompt.text": spec}, file_root=ws)
        line = str(caught.value)
        assert line == (f"node 'prompt' 'text': {spec} is not inside {ws.resolve()}; only "
                        "files in that folder can be read"), line
    with pytest.raises(graphkit.GraphError, match="cannot read @nothing.txt: No such file"):
        build_sweep(graph, {"prompt.text": "@nothing.txt"}, file_root=ws)
    # without a root, a path is as typed on the command line (the CLI, the API)
    assert build_sweep(graph, {"prompt.text": f"@{tmp_path / 'secret.txt'}"}).axes[0].values \
        == ("outside",)


def test_too_many_values_are_refused_before_each_is_parsed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A SPEC from a browser or a file may hold millions of values: counted first."""
    import graphkit.sweep.spec as spec_module

    parsed: list[str] = []
    real = spec_module.parse_value
    monkeypatch.setattr(spec_module, "parse_value",
                        lambda raw, *a, **k: parsed.append(raw) or real(raw, *a, **k))
    lim = Limits(max_sweep_variations=5)
    (tmp_path / "six.txt").write_text("a\nb\nc\nd\ne\nf\n")
    with pytest.raises(graphkit.GraphError, match=r"^node 'p' 'text': the comma list has 6 "
                       r"values; the limit is 5 \(GRAPHKIT_LIMIT_MAX_SWEEP_VARIATIONS\)$"):
        spec_values("a,b,c,d,e,f", SCHEMA_TEXT, lim, "p", "text")
    with pytest.raises(graphkit.GraphError, match=r"^node 'p' 'text': @six.txt has 6 values; "
                       r"the limit is 5 \(GRAPHKIT_LIMIT_MAX_SWEEP_VARIATIONS\)$"):
        spec_values("@six.txt", SCHEMA_TEXT, lim, "p", "text", tmp_path)
    assert parsed == []
    assert spec_values("a,b,c,d,e", SCHEMA_TEXT, lim) == ["a", "b", "c", "d", "e"]


@pytest.mark.parametrize("name", ["a\x00b", "\ud800.txt"])
def test_an_unusable_file_name_is_one_line(name: str, tmp_path: Path) -> None:
    """A NUL byte or a lone surrogate (from a browser or an API caller) in @FILE."""
    for root in (None, tmp_path):
        with pytest.raises(graphkit.GraphError) as caught:
            spec_values(f"@{name}", SCHEMA_TEXT, Limits(), "p", "text", root)
        assert str(caught.value).startswith("node 'p' 'text': cannot read @"), caught.value
        assert str(caught.value).endswith(": not a usable file name"), caught.value

"""Command line: graphkit run | validate | nodes | schema | show | check | models | edit."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from graphkit.errors import GraphError
from graphkit.fileio import folder_problem
from graphkit.sweep.cli import add_sweep_options, cmd_sweep, sweep_requested

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


class CliError(Exception):
    """A user mistake on the command line: one line, exit 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="graphkit", description="Typed node graphs for "
                                     "diffusion models: run, check and edit graph files.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--version", action="version", version=f"graphkit {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a graph file (or a graphkit PNG) headless")
    run.add_argument("file", type=Path)
    run.add_argument("--set", dest="overrides", action="append", default=[],
                     metavar="NODE.PARAM=VALUE", help="override a param (VALUE is JSON or text)")
    run.add_argument("--out", type=Path, default=Path("out"), help="output folder (default out)")
    _input_option(run)
    run.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto")
    run.add_argument("--models", choices=["hub", "tiny"], default=None,
                     help="'tiny' maps every default model to tiny offline test models")
    run.add_argument("--json", action="store_true", help="print a JSON report")
    run.add_argument("--progress", action="store_true", help="print step progress also "
                     "when stderr is not a terminal (one line per step)")
    _model_dir_option(run)
    run.add_argument("--allow-unsafe-weights", action="store_true",
                     help="also load pickle weights (.bin/.ckpt), which can run code: "
                     "only for models you trust")
    run.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                     help="show tracebacks")
    add_sweep_options(run)

    val = sub.add_parser("validate", help="check a graph file; exit 0 when valid, 2 if not")
    val.add_argument("file", type=Path)
    val.add_argument("--json", action="store_true")
    _input_option(val)
    val.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                     help="show tracebacks")

    nodes = sub.add_parser("nodes", help="list node types with their ports and params")
    nodes.add_argument("--json", action="store_true")

    sub.add_parser("schema", help="print the JSON Schema of graph files")

    chk = sub.add_parser("check", help="list the node packs and models a graph needs, and "
                         "which are missing here (loads nothing)")
    chk.add_argument("file", type=Path)
    chk.add_argument("--models", choices=["hub", "tiny"], default=None)
    chk.add_argument("--json", action="store_true")
    _input_option(chk)
    _model_dir_option(chk)
    chk.add_argument("--allow-unsafe-weights", action="store_true",
                     help="as for run: pickle-only model folders count as usable")

    models = sub.add_parser("models", help="model utilities")
    msub = models.add_subparsers(dest="models_command", required=True)
    tiny = msub.add_parser("tiny", help="write tiny random-weight versions of every default "
                           "model, in the real on-disk layout, for offline runs and tests")
    tiny.add_argument("dir", type=Path)
    tiny.add_argument("--force", action="store_true", help="rewrite existing folders")
    pull = msub.add_parser("pull", help="download the hub models a graph needs into the "
                           "Hugging Face cache (safetensors and configs only, at the "
                           "revisions the graph pins), so later runs work offline")
    pull.add_argument("file", type=Path, metavar="GRAPH", help="a graph file or graphkit PNG")
    pull.add_argument("--dry-run", action="store_true",
                      help="list the files and sizes without downloading")

    from graphkit.editor.launch import add_edit_parser

    add_edit_parser(sub)

    show = sub.add_parser("show", help="print the graph a graphkit PNG carries")
    show.add_argument("file", type=Path)
    show.add_argument("--info", action="store_true", help="also print versions and models")
    return parser


def _input_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", dest="inputs", action="append", default=[], type=Path,
                        metavar="DIR", help="another folder images may be loaded from")


def _check_input_folders(args: argparse.Namespace) -> None:
    for folder in args.inputs:
        if not folder.is_dir():
            raise CliError(f"--input '{folder}' is not a folder")


def _version() -> str:
    """The installed graphkit version (the package's own when it is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("graphkit")
    except PackageNotFoundError:
        from graphkit import __version__

        return __version__


def _model_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-dir", dest="model_dirs", action="append", default=[],
                        type=Path, metavar="DIR", help="a folder the graph may load local "
                        "models from (repeatable; also GRAPHKIT_MODEL_DIRS)")


def _set_model_access(args: argparse.Namespace) -> None:
    """Pass --model-dir and --allow-unsafe-weights to the model manager via its environment."""
    import os

    dirs = [str(d.expanduser().resolve()) for d in getattr(args, "model_dirs", [])]
    if dirs:
        known = os.environ.get("GRAPHKIT_MODEL_DIRS", "")
        os.environ["GRAPHKIT_MODEL_DIRS"] = os.pathsep.join([*dirs, known] if known else dirs)
    if getattr(args, "allow_unsafe_weights", False):
        os.environ["GRAPHKIT_ALLOW_UNSAFE_WEIGHTS"] = "1"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``graphkit`` command."""
    from graphkit.environment import refused

    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = COMMANDS[args.command]
    if refused():  # bad GRAPHKIT_* settings, before any work
        return EXIT_BAD_INPUT
    try:
        return handler(args)
    except GraphError as exc:
        if getattr(args, "json", False):
            print(json.dumps({"ok": False, "problems": [p.to_dict() for p in exc.problems]}))
        for line in exc.lines():
            print(f"error: {line}", file=sys.stderr)
        if args.debug:
            traceback.print_exc()
        return EXIT_BAD_INPUT
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # anything else is our bug: say so in one line
        print(f"error: {type(exc).__name__}: {exc} (run with --debug for the traceback)",
              file=sys.stderr)
        if args.debug:
            traceback.print_exc()
        return EXIT_FAILED


def cmd_run(args: argparse.Namespace) -> int:
    from graphkit.api import Graph
    from graphkit.context import RunControl
    from graphkit.progress import ProgressPrinter

    _set_model_access(args)
    if args.device != "auto":  # models run where the graph runs
        import os

        from graphkit.devices import pick_device

        try:
            pick_device(args.device)
        except ValueError as exc:
            raise CliError(f"--device: {exc}") from None
        os.environ["GRAPHKIT_DEVICE"] = args.device
    _check_input_folders(args)
    out_problem = folder_problem(args.out)
    if out_problem:
        raise CliError(f"--out {out_problem}")
    graph = Graph.load(args.file)
    _set_model_profile(args.models or _png_profile(args.file, graph))
    try:
        graph.apply_overrides(args.overrides)
    except GraphError as exc:
        exc.source = exc.source or str(args.file)
        raise
    problems = graph.validate(args.inputs)
    if problems:
        raise GraphError(problems, str(args.file))
    if sweep_requested(args):
        return cmd_sweep(args, graph)
    control = RunControl()
    printer = ProgressPrinter(sys.stderr, steps=True if args.progress else None)
    previous = signal.signal(signal.SIGINT, _cancel_on_first(control))
    try:
        result = graph.run(args.out, device=args.device, inputs=args.inputs,
                           listeners=[printer], control=control)
    finally:
        signal.signal(signal.SIGINT, previous)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        printer.summary(result, sys.stdout)
    if result.cancelled:
        print("cancelled: no partial files were written", file=sys.stderr)
        return EXIT_INTERRUPTED
    for node_id, message in result.failed.items():
        spec = graph.doc.nodes[node_id].type
        field, _msg = result.user_errors.get(node_id, (None, ""))
        where = f" '{field}'" if field else ""
        print(f"error: {args.file}: node '{node_id}' ({spec}){where}: {message}", file=sys.stderr)
        if args.debug and node_id in result.tracebacks:
            print(result.tracebacks[node_id], end="", file=sys.stderr)
    if result.failed:
        return EXIT_BAD_INPUT if set(result.failed) == set(result.user_errors) else EXIT_FAILED
    return EXIT_OK


def _cancel_on_first(control: Any) -> Callable[[int, Any], None]:
    def handler(signum: int, frame: Any) -> None:
        if control.cancelled:
            raise KeyboardInterrupt
        print("\ncancelling after the current step (Ctrl-C again to abort)", file=sys.stderr)
        control.cancel()

    return handler


_PROFILE_NOTES = {
    "tiny": "the tiny model profile; re-running with --models tiny (--models hub for the "
            "real weights)",
    "hub": "the real weights (hub profile); re-running with --models hub (--models tiny for "
           "the offline test models)",
}


def _png_profile(file: Path, graph: Any) -> str | None:
    """For a PNG whose graph loads models, the model profile it was made with (printing a
    one-line note); None for graph files, when GRAPHKIT_MODELS is set, or when unknown."""
    import os

    from graphkit.pngmeta import read_info, recorded_profile
    from graphkit.requirements import model_params

    if file.suffix.lower() != ".png" or os.environ.get("GRAPHKIT_MODELS"):
        return None
    if not model_params(graph.doc, graph.registry):
        return None
    try:
        info = read_info(file)
    except (GraphError, ValueError):
        return None
    profile = recorded_profile(info) if isinstance(info, dict) else None
    if profile is not None:
        print(f"note: {file} was made with {_PROFILE_NOTES[profile]}", file=sys.stderr)
    return profile


def _set_model_profile(profile: str | None) -> None:
    if profile:
        import os

        os.environ["GRAPHKIT_MODELS"] = profile


def cmd_validate(args: argparse.Namespace) -> int:
    from graphkit.api import Graph

    _check_input_folders(args)
    graph = Graph.load(args.file)
    problems = graph.validate(args.inputs)
    if problems:
        raise GraphError(problems, str(args.file))
    if args.json:
        print(json.dumps({"ok": True, "problems": []}))
    else:
        print(f"{args.file}: ok ({len(graph.doc.nodes)} nodes)")
    return EXIT_OK


def cmd_nodes(args: argparse.Namespace) -> int:
    from graphkit.registry import registry

    reg = registry()
    specs = [reg.specs[k] for k in sorted(reg.specs)]
    if args.json:
        print(json.dumps([s.describe() for s in specs], indent=2))
        return EXIT_OK
    for spec in specs:
        print(f"{spec.type_id}  {spec.version}  [{spec.category}]  {spec.title}")
        first = spec.doc.splitlines()[0] if spec.doc else ""
        if first:
            print(f"    {first}")
        for name, inp in spec.inputs.items():
            print(f"    in  {name}: {inp.type}{' (optional)' if inp.optional else ''}")
        for name, param in spec.params.items():
            described = _describe_param(param.schema, param.default, param.required)
            print(f"    param {name}: {described}")
        for name, out in spec.outputs.items():
            print(f"    out {name}: {out}")
    for pack, error in sorted(reg.failed_packs.items()):
        print(f"warning: node pack '{pack}' failed to load: {error}", file=sys.stderr)
    return EXIT_OK


def _describe_param(schema: dict[str, Any], default: Any, required: bool) -> str:
    kind = schema.get("type") or ("choice" if "enum" in schema else "value")
    bits = [kind]
    if "enum" in schema:
        bits.append("one of " + "|".join(map(str, schema["enum"])))
    for key, sym in (("minimum", ">="), ("maximum", "<=")):
        if key in schema:
            bits.append(f"{sym}{schema[key]}")
    bits.append("required" if required else f"default {json.dumps(default)}")
    return ", ".join(bits)


def cmd_schema(args: argparse.Namespace) -> int:
    from graphkit.graph import GraphDoc

    schema = GraphDoc.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "graphkit graph file"
    print(json.dumps(schema, indent=2, sort_keys=True))
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    from graphkit.graph import doc_from_raw, dumps_doc, parse_json
    from graphkit.pngmeta import read_graph_text, read_info

    try:  # only a graph is printed: other text in the chunk is refused, not echoed
        doc = doc_from_raw(parse_json(read_graph_text(args.file)))
    except GraphError as exc:
        exc.source = str(args.file)
        raise
    if not args.info:
        print(_terminal_safe(dumps_doc(doc)), end="")
        return EXIT_OK
    shown = {"graph": json.loads(dumps_doc(doc)), "info": read_info(args.file)}
    print(_terminal_safe(json.dumps(shown, indent=2, ensure_ascii=False)))
    return EXIT_OK


def _terminal_safe(json_text: str) -> str:
    """JSON text with every non-printable character inside its strings written as an escape,
    so text from a file cannot reach the terminal as control sequences."""
    if json_text.replace("\n", "").isprintable():
        return json_text
    out = []
    for char in json_text:
        if char.isprintable() or char == "\n":
            out.append(char)
        else:  # outside strings JSON has only ASCII structure and newlines
            units = char.encode("utf-16-be")
            out += [f"\\u{units[i]:02x}{units[i + 1]:02x}" for i in range(0, len(units), 2)]
    return "".join(out)


def cmd_check(args: argparse.Namespace) -> int:
    from graphkit.api import Graph
    from graphkit.context import Sandbox
    from graphkit.models import get_manager
    from graphkit.requirements import needs

    _set_model_profile(args.models)
    _set_model_access(args)
    _check_input_folders(args)
    graph = Graph.load(args.file)
    sandbox = Sandbox([graph.base_dir, *args.inputs])
    report = needs(graph.doc, graph.registry, get_manager(), sandbox)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, sort_keys=True))
    else:
        for pack, status in sorted(report.packs.items()):
            print(f"pack  {pack}: {status}")
        for model, where in sorted(report.models.items()):
            print(f"model {model}: {where}")
        for param, status in sorted(report.inputs.items()):
            print(f"input {param}: {status}")
        print("everything is here" if not report.missing else
              f"missing: {', '.join(report.missing)}")
    return EXIT_BAD_INPUT if report.missing else EXIT_OK


def cmd_models(args: argparse.Namespace) -> int:
    if args.models_command == "pull":
        return _models_pull(args)
    from graphkit.tinymodels import write_tiny_models

    problem_text = folder_problem(args.dir)
    if problem_text:
        raise CliError(f"models tiny: {problem_text}")
    try:
        written = write_tiny_models(args.dir, force=args.force)
    except OSError as exc:
        raise CliError(f"models tiny: cannot write into '{args.dir}': "
                       f"{exc.strerror or exc}") from None
    for model_id, path in written.items():
        print(f"{model_id}: {path}")
    print(tiny_models_hint(args.dir))
    return EXIT_OK


def _models_pull(args: argparse.Namespace) -> int:
    from graphkit.api import Graph
    from graphkit.model_pull import pull_graph

    graph = Graph.load(args.file)
    if not sys.stderr.isatty():  # download bars only where they redraw in place
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    errors = pull_graph(graph.doc, graph.registry, print, dry_run=args.dry_run)
    for err in errors:
        print(f"error: {args.file}: {err}", file=sys.stderr)
    if not errors:
        return EXIT_OK
    return EXIT_BAD_INPUT if all(err.missing for err in errors) else EXIT_FAILED


def tiny_models_hint(folder: Path) -> str:
    """How to run a graph on the tiny models in ``folder``: --models tiny alone when it is
    the folder the tiny profile reads (GRAPHKIT_TINY_DIR, else the default), otherwise with
    GRAPHKIT_TINY_DIR set to its absolute path."""
    import os
    import shlex

    from graphkit.model_sources import DEFAULT_TINY_DIR

    folder = Path(folder).expanduser().resolve()
    used = Path(os.environ.get("GRAPHKIT_TINY_DIR") or DEFAULT_TINY_DIR).expanduser().resolve()
    if folder == used:
        return "use them with: graphkit run GRAPH --models tiny"
    return (f"use them with: GRAPHKIT_TINY_DIR={shlex.quote(str(folder))} "
            "graphkit run GRAPH --models tiny")


def cmd_edit(args: argparse.Namespace) -> int:
    from graphkit.editor.launch import cmd_edit as run_editor

    return run_editor(args)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "edit": cmd_edit,
    "check": cmd_check,
    "models": cmd_models,
    "run": cmd_run,
    "validate": cmd_validate,
    "nodes": cmd_nodes,
    "schema": cmd_schema,
    "show": cmd_show,
}


if __name__ == "__main__":
    sys.exit(main())

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
from graphkit.sweep.cli import add_sweep_options, cmd_sweep, sweep_requested

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


class CliError(Exception):
    """A user mistake on the command line: one line, exit 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="graphkit", description="Typed node graphs for "
                                     "diffusion models: run, check and edit graph files.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a graph file (or a graphkit PNG) headless")
    run.add_argument("file", type=Path)
    run.add_argument("--set", dest="overrides", action="append", default=[],
                     metavar="NODE.PARAM=VALUE", help="override a param (VALUE is JSON or text)")
    run.add_argument("--out", type=Path, default=Path("out"), help="output folder (default out)")
    run.add_argument("--input", dest="inputs", action="append", default=[], type=Path,
                     metavar="DIR", help="another folder images may be loaded from")
    run.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto")
    run.add_argument("--models", choices=["hub", "tiny"], default=None,
                     help="'tiny' maps every default model to tiny offline test models")
    run.add_argument("--json", action="store_true", help="print a JSON report")
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
    _model_dir_option(chk)

    models = sub.add_parser("models", help="model utilities")
    msub = models.add_subparsers(dest="models_command", required=True)
    tiny = msub.add_parser("tiny", help="write tiny random-weight versions of every default "
                           "model, in the real on-disk layout, for offline runs and tests")
    tiny.add_argument("dir", type=Path)
    tiny.add_argument("--force", action="store_true", help="rewrite existing folders")

    from graphkit.editor.launch import add_edit_parser

    add_edit_parser(sub)

    show = sub.add_parser("show", help="print the graph a graphkit PNG carries")
    show.add_argument("file", type=Path)
    show.add_argument("--info", action="store_true", help="also print versions and models")
    return parser


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
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = COMMANDS[args.command]
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

    _set_model_profile(args.models)
    _set_model_access(args)
    if args.device != "auto":  # models run where the graph runs
        import os

        from graphkit.devices import pick_device

        try:
            pick_device(args.device)
        except ValueError as exc:
            raise CliError(f"--device: {exc}") from None
        os.environ["GRAPHKIT_DEVICE"] = args.device
    graph = Graph.load(args.file)
    graph.apply_overrides(args.overrides)
    problems = graph.validate()
    if problems:
        raise GraphError(problems, str(args.file))
    for folder in args.inputs:
        if not folder.is_dir():
            raise CliError(f"--input '{folder}' is not a folder")
    if sweep_requested(args):
        return cmd_sweep(args, graph)
    control = RunControl()
    printer = ProgressPrinter(sys.stderr, quiet=False)
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


def _set_model_profile(profile: str | None) -> None:
    if profile:
        import os

        os.environ["GRAPHKIT_MODELS"] = profile


def cmd_validate(args: argparse.Namespace) -> int:
    from graphkit.api import Graph

    graph = Graph.load(args.file)
    problems = graph.validate()
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
    from graphkit.pngmeta import read_graph_text, read_info

    print(read_graph_text(args.file), end="")
    if args.info:
        print(json.dumps(read_info(args.file), indent=2, sort_keys=True))
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    from graphkit.api import Graph
    from graphkit.models import get_manager
    from graphkit.requirements import needs

    _set_model_profile(args.models)
    _set_model_access(args)
    graph = Graph.load(args.file)
    report = needs(graph.doc, graph.registry, get_manager())
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, sort_keys=True))
    else:
        for pack, problem_text in sorted(report.packs.items()):
            print(f"pack  {pack}: {problem_text or 'installed'}")
        for model, where in sorted(report.models.items()):
            print(f"model {model}: {where}")
        print("everything is here" if not report.missing else
              f"missing: {', '.join(report.missing)}")
    return EXIT_BAD_INPUT if report.missing else EXIT_OK


def cmd_models(args: argparse.Namespace) -> int:
    from graphkit.tinymodels import write_tiny_models

    written = write_tiny_models(args.dir, force=args.force)
    for model_id, path in written.items():
        print(f"{model_id}: {path}")
    print(f"use them with: GRAPHKIT_MODELS=tiny GRAPHKIT_TINY_DIR={args.dir} "
          "(or graphkit run --models tiny)")
    return EXIT_OK


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

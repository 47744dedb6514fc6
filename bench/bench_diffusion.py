"""Diffusion nodes vs hand-written diffusers calls: overhead ratios, cache reuse, memory.

    .venv/bin/python bench/bench_diffusion.py              # tiny models, CPU or GPU
    .venv/bin/python bench/bench_diffusion.py --runs 9
    .venv/bin/python bench/bench_diffusion.py --real-shapes  # CUDA only: full-size SDXL

Prints ratios measured side by side in one process (runs interleaved, medians compared),
never absolute targets. Graph runs use a fresh output cache each time, so every node runs;
the direct script makes the same diffusers calls on the same weights and saves a PNG too.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = ROOT / "graphs"


def median_pair(a: Callable[[], object], b: Callable[[], object], runs: int
                ) -> tuple[float, float]:
    """Median seconds of ``a`` and ``b``, run alternately after one warm-up each."""
    a(), b()
    ta, tb = [], []
    for _ in range(runs):
        for fn, out in ((a, ta), (b, tb)):
            _sync()
            t0 = time.perf_counter()
            fn()
            _sync()
            out.append(time.perf_counter() - t0)
    return statistics.median(ta), statistics.median(tb)


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _save_png(pixels: torch.Tensor, path: Path) -> None:
    from graphkit.imaging import pixels_to_pil

    pixels_to_pil(pixels.clamp(0, 1))[0].save(path)


def _row(label: str, graph_s: float, direct_s: float) -> None:
    ratio = graph_s / direct_s
    flag = "ok" if ratio <= 1.05 else "over 1.05"
    print(f"  {label:<34} graph {graph_s * 1000:8.1f} ms  direct {direct_s * 1000:8.1f} ms  "
          f"ratio {ratio:5.3f}  ({flag})")


def bench_overhead(runs: int, out: Path) -> None:
    """Graph run vs the same diffusers calls written by hand."""
    import graphkit
    from graphkit.models import get_manager
    from graphkit.scheduler import Scheduler

    manager = get_manager()
    gen = torch.Generator

    # SDXL-Turbo text to image
    sdxl_graph = graphkit.load(GRAPHS / "sdxl_turbo.json")
    p = sdxl_graph.doc.nodes["gen"].params
    text = sdxl_graph.doc.nodes["prompt"].params["text"]
    pipe = manager.sdxl("stabilityai/sdxl-turbo", "text2image")

    def sdxl_direct() -> None:
        img = pipe(text, num_inference_steps=p["steps"], guidance_scale=p["guidance"],
                   width=p["width"], height=p["height"], generator=gen().manual_seed(p["seed"]),
                   output_type="pt").images
        _save_png(img, out / "direct_sdxl.png")

    def sdxl_run() -> None:
        sdxl_graph.run(out / "graph", scheduler=Scheduler())

    # Kandinsky 2.2 prior + decoder
    k_graph = graphkit.load(GRAPHS / "kandinsky_text2image.json")
    kp, kd = k_graph.doc.nodes["prior"].params, k_graph.doc.nodes["decode"].params
    kt = k_graph.doc.nodes["prompt"].params
    prior = manager.kandinsky_prior("kandinsky-community/kandinsky-2-2-prior")
    decoder = manager.kandinsky_decoder("kandinsky-community/kandinsky-2-2-decoder")

    def kandinsky_direct() -> None:
        emb = prior(kt["text"], negative_prompt=kt["negative"] or None,
                    num_inference_steps=kp["steps"], guidance_scale=kp["guidance"],
                    generator=gen().manual_seed(kp["seed"]))
        img = decoder(image_embeds=emb.image_embeds,
                      negative_image_embeds=emb.negative_image_embeds, width=kd["width"],
                      height=kd["height"], num_inference_steps=kd["steps"],
                      guidance_scale=kd["guidance"], generator=gen().manual_seed(kd["seed"]),
                      output_type="pt").images
        _save_png(img * 0.5 + 0.5, out / "direct_kandinsky.png")

    def kandinsky_run() -> None:
        k_graph.run(out / "graph", scheduler=Scheduler())

    print(f"graph vs direct diffusers calls (median of {runs}, interleaved; target <= 1.05)")
    _row("sdxl_turbo.json", *median_pair(sdxl_run, sdxl_direct, runs))
    _row("kandinsky_text2image.json", *median_pair(kandinsky_run, kandinsky_direct, runs))


def bench_rerun(out: Path) -> None:
    """Change the last diffusion node's seed: no model loads, upstream from the cache."""
    import graphkit
    from graphkit.models import get_manager
    from graphkit.scheduler import Scheduler

    manager = get_manager()
    for name, last in (("sdxl_to_kandinsky.json", "restyle"), ("sam_inpaint.json", "paint")):
        graph = graphkit.load(GRAPHS / name)
        sched = Scheduler()
        first = graph.run(out / "rerun", scheduler=sched)
        loads = manager.load_count
        graph.set_param(last, "seed", int(graph.doc.nodes[last].params.get("seed", 0)) + 1)
        t0 = time.perf_counter()
        second = graph.run(out / "rerun", scheduler=sched)
        seconds = time.perf_counter() - t0
        print(f"  {name:<24} first run {len(first.executed)} nodes; re-run with {last}.seed "
              f"changed: model loads {manager.load_count - loads}, cached upstream "
              f"{len(second.cached)}, executed {second.executed} ({seconds * 1000:.0f} ms)")


def bench_memory() -> None:
    """SDXL text2img + img2img + inpaint on one checkpoint hold one copy of the weights."""
    from graphkit.models import get_manager

    manager = get_manager()
    manager.sdxl("stabilityai/sdxl-turbo", "text2image")
    before = manager.param_bytes()
    manager.sdxl("stabilityai/sdxl-turbo", "image2image")
    manager.sdxl("stabilityai/sdxl-turbo", "inpaint")
    after = manager.param_bytes()
    print(f"  SDXL text2image only: {before / 1e6:.2f} MB params; + image2image + inpaint: "
          f"{after / 1e6:.2f} MB (ratio {after / before:.3f}; 1.000 = one shared copy)")


def run_tiny(runs: int) -> None:
    from graphkit.models import configure
    from graphkit.tinymodels import write_tiny_models

    tiny = Path(os.environ.get("GRAPHKIT_TINY_DIR") or Path(tempfile.gettempdir())
                / "graphkit-bench-tiny")
    os.environ["GRAPHKIT_MODELS"] = "tiny"
    os.environ["GRAPHKIT_TINY_DIR"] = str(tiny)
    write_tiny_models(tiny)
    manager = configure()
    print(f"tiny models in {tiny}; device {manager.device}, dtype {manager.dtype}, "
          f"torch threads {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        bench_overhead(runs, out)
        print("re-run after a change (same process, same output cache)")
        bench_rerun(out)
        print("memory")
        bench_memory()


# --- real shapes (CUDA) --------------------------------------------------------------


def _full_sdxl_pipeline(tokenizer_dir: Path):
    """SDXL base-sized components with random weights (no download), fp16 on CUDA."""
    from diffusers import (
        AutoencoderKL,
        EulerAncestralDiscreteScheduler,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import (
        CLIPTextConfig,
        CLIPTextModel,
        CLIPTextModelWithProjection,
        CLIPTokenizer,
    )

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=128, in_channels=4, out_channels=4, layers_per_block=2,
        block_out_channels=(320, 640, 1280),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20),
        cross_attention_dim=2048, use_linear_projection=True,
        addition_embed_type="text_time", addition_time_embed_dim=256,
        projection_class_embeddings_input_dim=2816,
    )
    vae = AutoencoderKL(
        block_out_channels=(128, 256, 512, 512), latent_channels=4, sample_size=1024,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=2, scaling_factor=0.13025, force_upcast=False,
    )
    te1 = CLIPTextModel(CLIPTextConfig(hidden_size=768, intermediate_size=3072,
                                       num_hidden_layers=12, num_attention_heads=12,
                                       projection_dim=768, hidden_act="quick_gelu"))
    te2 = CLIPTextModelWithProjection(CLIPTextConfig(
        hidden_size=1280, intermediate_size=5120, num_hidden_layers=32,
        num_attention_heads=20, projection_dim=1280, hidden_act="gelu"))
    scheduler = EulerAncestralDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        timestep_spacing="trailing", steps_offset=1)
    tok = CLIPTokenizer.from_pretrained(tokenizer_dir / "tokenizer", trust_remote_code=False)
    tok2 = CLIPTokenizer.from_pretrained(tokenizer_dir / "tokenizer_2", trust_remote_code=False)
    return StableDiffusionXLPipeline(vae=vae, text_encoder=te1, text_encoder_2=te2,
                                     tokenizer=tok, tokenizer_2=tok2, unet=unet,
                                     scheduler=scheduler)


def run_real_shapes(runs: int) -> int:
    if not torch.cuda.is_available():
        print("--real-shapes needs a CUDA GPU (full-size SDXL at 512x512 in fp16); none here.")
        return 2
    import graphkit
    from graphkit.models import configure
    from graphkit.scheduler import Scheduler
    from graphkit.tinymodels import SDXL_TURBO, write_tiny_models

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        tiny = write_tiny_models(tmp_path / "tiny")[SDXL_TURBO]
        folder = tmp_path / "sdxl-full-random"
        t0 = time.perf_counter()
        _full_sdxl_pipeline(tiny).to(torch.float16).save_pretrained(folder)
        print(f"full-size SDXL with random weights written in {time.perf_counter() - t0:.0f} s "
              f"(tokenizers from {tiny})")
        manager = configure(profile="hub", device="cuda", dtype=torch.float16)
        graph = graphkit.load(GRAPHS / "sdxl_turbo.json")
        for key, value in {"model": str(folder), "width": 512, "height": 512, "steps": 1}.items():
            graph.set_param("gen", key, value)
        p = graph.doc.nodes["gen"].params
        text = graph.doc.nodes["prompt"].params["text"]
        pipe = manager.sdxl(str(folder), "text2image")
        out = tmp_path / "out"
        out.mkdir()

        def direct() -> None:
            img = pipe(text, num_inference_steps=1, guidance_scale=0.0, width=512, height=512,
                       generator=torch.Generator().manual_seed(p["seed"]), output_type="pt").images
            _save_png(img.float(), out / "direct.png")

        def run() -> None:
            graph.run(out / "graph", device="cuda", scheduler=Scheduler())

        print(f"full-size SDXL, 512x512, 1 step, fp16 on {torch.cuda.get_device_name()} "
              f"(median of {runs}, interleaved)")
        _row("sdxl_turbo.json (real shapes)", *median_pair(run, direct, runs))
        print(f"  model params on device: {manager.param_bytes() / 1e9:.2f} GB")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11, help="timed runs of each side")
    parser.add_argument("--real-shapes", action="store_true",
                        help="full-size SDXL with random weights (CUDA only)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    sys.path.insert(0, str(ROOT))
    if args.real_shapes:
        return run_real_shapes(args.runs)
    run_tiny(args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())

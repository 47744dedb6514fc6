"""Diffusion nodes on the tiny models: every example graph, determinism, equality with direct
diffusers calls, caching without reloads, progress and cancellation, user errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image as PILImage

import graphkit
from graphkit import tinymodels as tm
from graphkit.api import Graph
from graphkit.context import RunControl
from graphkit.events import NodeProgress
from graphkit.imaging import pil_to_pixels
from graphkit.models import ModelManager
from graphkit.scheduler import Scheduler
from graphkit.types import Image, Mask

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = ROOT / "graphs"

# graph -> {node: expected output shape}
GRAPH_OUTPUTS = {
    "sdxl_turbo.json": {"gen": (1, 3, 512, 512)},
    "sdxl_to_kandinsky.json": {"gen": (1, 3, 256, 256), "restyle": (1, 3, 256, 256)},
    "kandinsky_text2image.json": {"decode": (1, 3, 256, 256)},
    "sam_inpaint.json": {"mask": (1, 1, 256, 256), "paint": (1, 3, 256, 256)},
    "kandinsky_inpaint.json": {"paint": (1, 3, 256, 256)},
    "upscale.json": {"up": (1, 3, 256, 256)},
}


@pytest.fixture(scope="module")
def manager(tiny_manager: ModelManager) -> ModelManager:
    """The process model manager on the tiny profile, for this module only."""
    return tiny_manager


def _pixels(value: Image | Mask) -> torch.Tensor:
    return value.pixels if isinstance(value, Image) else value.alpha


def _check_image(t: torch.Tensor, shape: tuple[int, ...]) -> None:
    assert tuple(t.shape) == shape
    assert torch.isfinite(t).all()
    assert t.min() >= 0 and t.max() <= 1


def _prompt_graph(node_type: str, params: dict, prompt: str = "a red apple") -> Graph:
    g = Graph(base_dir=GRAPHS)
    g.add_node("prompt", "text.prompt", {"text": prompt})
    g.add_node("gen", node_type, params, {"prompt": "prompt.prompt"})
    return _saving(g, "gen")


def _saving(g: Graph, node_id: str) -> Graph:
    """Graphs need an output node to be valid; tests then run chosen targets."""
    g.add_node(f"save_{node_id}", "image.save", {"name": node_id}, {"image": f"{node_id}.image"})
    return g


@pytest.mark.parametrize("name", sorted(GRAPH_OUTPUTS))
def test_example_graph_runs(name: str, manager, scheduler: Scheduler, tmp_path: Path) -> None:
    result = graphkit.load(GRAPHS / name).run(tmp_path, scheduler=scheduler)
    assert result.ok, result.failed
    for node_id, shape in GRAPH_OUTPUTS[name].items():
        _check_image(_pixels(result.value(node_id)), shape)
    assert result.files and all(p.exists() for p in result.files)
    if name == "sam_inpaint.json":  # a hard mask, inverted so the background is repainted
        mask = result.value("mask").alpha
        assert set(mask.unique().tolist()) <= {0.0, 1.0}
        assert torch.equal(result.value("background").alpha, 1 - mask)


def test_same_seed_same_pixels_other_seed_differs(manager, tmp_path: Path) -> None:
    g = _prompt_graph("sdxl.text2image", {"width": 64, "height": 64, "seed": 1})
    first = g.run(tmp_path, targets=["gen"], scheduler=Scheduler()).value("gen").pixels
    again = g.run(tmp_path, targets=["gen"], scheduler=Scheduler()).value("gen").pixels
    g.set_param("gen", "seed", 2)
    other = g.run(tmp_path, targets=["gen"], scheduler=Scheduler()).value("gen").pixels
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_sdxl_text2image_equals_direct_pipeline_call(manager, scheduler, tmp_path) -> None:
    from diffusers import AutoPipelineForText2Image

    params = {"width": 64, "height": 72, "steps": 2, "guidance": 0.0, "seed": 9}
    node_out = _prompt_graph("sdxl.text2image", params).run(
        tmp_path, targets=["gen"], scheduler=scheduler).value("gen").pixels
    pipe = AutoPipelineForText2Image.from_pretrained(tm.tiny_path(manager.tiny_root, tm.SDXL_TURBO))
    pipe.set_progress_bar_config(disable=True)
    direct = pipe("a red apple", num_inference_steps=2, guidance_scale=0.0, width=64, height=72,
                  generator=torch.Generator().manual_seed(9), output_type="pt").images
    assert torch.equal(node_out, direct)


def test_kandinsky_prior_and_decoder_equal_direct_calls(manager, scheduler, tmp_path) -> None:
    from diffusers import KandinskyV22Pipeline, KandinskyV22PriorPipeline

    g = graphkit.load(GRAPHS / "kandinsky_text2image.json")
    for key, value in {"steps": 3, "width": 64, "height": 128, "seed": 5}.items():
        g.set_param("decode", key, value)
    g.set_param("prior", "steps", 4)
    result = g.run(tmp_path, targets=["decode"], scheduler=scheduler)
    text = g.doc.nodes["prompt"].params
    prior = KandinskyV22PriorPipeline.from_pretrained(
        tm.tiny_path(manager.tiny_root, tm.KANDINSKY_PRIOR))
    decoder = KandinskyV22Pipeline.from_pretrained(
        tm.tiny_path(manager.tiny_root, tm.KANDINSKY_DECODER))
    for p in (prior, decoder):
        p.set_progress_bar_config(disable=True)
    emb = prior(text["text"], negative_prompt=text["negative"], num_inference_steps=4,
                guidance_scale=4.0, generator=torch.Generator().manual_seed(3))
    embeds = result.value("prior")
    assert torch.equal(embeds.positive, emb.image_embeds)
    assert torch.equal(embeds.negative, emb.negative_image_embeds)
    image = decoder(image_embeds=emb.image_embeds, negative_image_embeds=emb.negative_image_embeds,
                    width=64, height=128, num_inference_steps=3, guidance_scale=4.0,
                    generator=torch.Generator().manual_seed(5), output_type="pt").images
    assert torch.equal(result.value("decode").pixels, (image * 0.5 + 0.5).clamp(0, 1))


def test_kandinsky_prior_image_mix_matches_interpolate(manager, scheduler, tmp_path) -> None:
    from nodes.kandinsky import clip_pixels

    g = Graph(base_dir=GRAPHS)
    g.add_node("prompt", "text.prompt", {"text": "a castle"})
    g.add_node("photo", "image.load", {"path": "inputs/photo.png"})
    g.add_node("prior", "kandinsky.prior",
               {"steps": 3, "seed": 4, "text_weight": 3.0, "image_a_weight": 1.0},
               {"prompt": "prompt.prompt", "image_a": "photo.image"})
    _saving(g, "photo")
    result = g.run(tmp_path, targets=["prior"], scheduler=scheduler)
    embeds = result.value("prior")
    pipe = manager.kandinsky_prior(tm.KANDINSKY_PRIOR)
    photo = pil_to_pixels(PILImage.open(GRAPHS / "inputs/photo.png"))
    ref = pipe.interpolate(["a castle", clip_pixels(photo, pipe)], [0.75, 0.25],
                           num_inference_steps=3, generator=torch.Generator().manual_seed(4))
    assert torch.allclose(embeds.positive, ref.image_embeds, atol=1e-6)
    assert torch.allclose(embeds.negative, ref.negative_image_embeds, atol=1e-6)


def test_changed_last_param_reruns_one_node_and_loads_nothing(manager, tmp_path) -> None:
    g = graphkit.load(GRAPHS / "kandinsky_text2image.json")
    for key, value in {"width": 64, "height": 64, "steps": 4}.items():
        g.set_param("decode", key, value)
    g.set_param("prior", "steps", 4)
    sched = Scheduler()
    first = g.run(tmp_path, scheduler=sched)
    assert first.ok
    loads = manager.load_count
    g.set_param("decode", "seed", 99)
    second = g.run(tmp_path, scheduler=sched, targets=["decode"])
    assert second.executed == ["decode"]
    assert set(second.cached) == {"prompt", "prior"}
    assert manager.load_count == loads
    g.set_param("decode", "seed", 100)
    whole = g.run(tmp_path, scheduler=sched)
    assert whole.executed == ["decode", "save"]  # the save node follows the image it saves
    assert manager.load_count == loads


def test_sdxl_tasks_share_one_copy_of_weights(manager, tmp_path) -> None:
    manager.sdxl(tm.SDXL_TURBO, "text2image")
    before = manager.param_bytes()
    g = Graph(base_dir=GRAPHS)
    g.add_node("prompt", "text.prompt", {"text": "a boat"})
    g.add_node("gen", "sdxl.text2image", {"width": 64, "height": 64},
               {"prompt": "prompt.prompt"})
    g.add_node("redo", "sdxl.image2image", {}, {"image": "gen.image", "prompt": "prompt.prompt"})
    g.add_node("box", "mask.region", {"box": [8, 8, 40, 40]}, {"image": "gen.image"})
    g.add_node("fill", "sdxl.inpaint",
               {"model": tm.SDXL_TURBO, "steps": 2, "strength": 0.6, "guidance": 0.0},
               {"image": "redo.image", "mask": "box.mask", "prompt": "prompt.prompt"})
    _saving(g, "fill")
    result = g.run(tmp_path, targets=["fill"], scheduler=Scheduler())
    assert result.ok, result.failed
    _check_image(result.value("fill").pixels, (1, 3, 64, 64))
    assert manager.param_bytes() == before


def test_progress_per_step_and_cancel_between_steps(manager, tmp_path) -> None:
    g = _prompt_graph("sdxl.text2image", {"width": 64, "height": 64, "steps": 3})
    events: list[NodeProgress] = []
    g.run(tmp_path, targets=["gen"], scheduler=Scheduler(),
          listeners=[lambda e: events.append(e) if isinstance(e, NodeProgress) else None])
    assert [(e.step, e.total) for e in events] == [(1, 3), (2, 3), (3, 3)]

    control = RunControl()
    seen: list[int] = []

    def cancel_at_first_step(event) -> None:
        if isinstance(event, NodeProgress):
            seen.append(event.step)
            control.cancel()

    result = g.run(tmp_path, targets=["gen"], scheduler=Scheduler(), control=control,
                   listeners=[cancel_at_first_step])
    assert result.cancelled and seen == [1]


def test_kandinsky_inpaint_reads_the_mask_like_graphkit(manager) -> None:
    """diffusers' Kandinsky 2.2 inpaint keeps the latents where the mask is 0 (1 = repaint),
    the same convention as graphkit's Mask, so the node passes the mask through as is."""
    from diffusers import KandinskyV22PriorPipeline

    pipe = manager.kandinsky_decoder(tm.KANDINSKY_INPAINT, "inpaint")
    prior = manager.kandinsky_prior(tm.KANDINSKY_PRIOR)
    assert isinstance(prior, KandinskyV22PriorPipeline)
    emb = prior("a cat", num_inference_steps=2, generator=torch.Generator().manual_seed(0))
    image = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(1))
    mask = torch.zeros(1, 1, 128, 128)
    mask[..., :64] = 1  # repaint the left half
    latents = pipe(image_embeds=emb.image_embeds, negative_image_embeds=emb.negative_image_embeds,
                   image=image * 2 - 1, mask_image=mask.clone(), width=128, height=128,
                   num_inference_steps=2, generator=torch.Generator().manual_seed(2),
                   output_type="latent").images
    encoded = pipe.movq.encode(image * 2 - 1)["latents"]
    keep, repaint = (slice(None), slice(None), slice(None), slice(10, None)), \
        (..., slice(0, 6))
    assert torch.allclose(latents[keep], encoded[keep], atol=1e-5)
    assert not torch.allclose(latents[repaint], encoded[repaint], atol=1e-2)


def test_tiled_diffusion_upscale_matches_untiled_shape(manager, scheduler, tmp_path) -> None:
    g = Graph(base_dir=GRAPHS)
    g.add_node("photo", "image.load", {"path": "inputs/photo.png"})
    g.add_node("small", "image.resize", {"width": 48, "height": 40}, {"image": "photo.image"})
    params = {"steps": 2, "guidance": 0.0, "tile": 0, "scale": 4}
    g.add_node("whole", "image.upscale", params, {"image": "small.image"})
    g.add_node("tiled", "image.upscale", {**params, "tile": 24, "tile_overlap": 8},
               {"image": "small.image"})
    g.add_node("half", "image.upscale", {**params, "scale": 2, "tile": 24},
               {"image": "small.image"})
    _saving(g, "small")
    result = g.run(tmp_path, targets=["whole", "tiled", "half"], scheduler=scheduler)
    assert result.ok, result.failed
    _check_image(result.value("whole").pixels, (1, 3, 160, 192))
    _check_image(result.value("tiled").pixels, (1, 3, 160, 192))
    _check_image(result.value("half").pixels, (1, 3, 80, 96))


def test_tile_blending_is_seamless_for_a_deterministic_upscaler() -> None:
    from nodes.upscale import upscale_tiled

    def nearest_x4(t: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.interpolate(t, scale_factor=4, mode="nearest")

    x = torch.rand(2, 3, 52, 70, generator=torch.Generator().manual_seed(0))
    whole = upscale_tiled(x, nearest_x4, 0, 0, factor=4)
    tiled = upscale_tiled(x, nearest_x4, 24, 8, factor=4)
    assert whole.shape == tiled.shape == (2, 3, 208, 280)
    assert torch.allclose(whole, tiled, atol=1e-5)


def test_lanczos_matches_pil() -> None:
    from nodes.upscale import lanczos_resize

    arr = (torch.rand(37, 53, 3, generator=torch.Generator().manual_seed(0)) * 255).byte()
    img = PILImage.fromarray(arr.numpy())
    for w, h in [(106, 74), (212, 148), (26, 18)]:
        ref = pil_to_pixels(img.resize((w, h), PILImage.LANCZOS))
        out = lanczos_resize(pil_to_pixels(img), h, w)
        assert (out - ref).abs().max() <= 2 / 255


def test_lanczos_upscale_needs_no_model(manager, scheduler, tmp_path) -> None:
    loads = manager.load_count
    g = Graph(base_dir=GRAPHS)
    g.add_node("photo", "image.load", {"path": "inputs/photo.png"})
    g.add_node("up", "image.upscale", {"method": "lanczos", "scale": 2}, {"image": "photo.image"})
    _saving(g, "up")
    result = g.run(tmp_path, targets=["up"], scheduler=scheduler)
    _check_image(result.value("up").pixels, (1, 3, 512, 512))
    assert manager.load_count == loads


@pytest.mark.parametrize(("node_type", "params", "inputs", "field"), [
    ("sam.mask", {}, {"image": "photo.image"}, "points"),
    ("sam.mask", {"points": [[300, 10, 1]]}, {"image": "photo.image"}, "points"),
    ("sam.mask", {"box": [10, 10, 5, 50]}, {"image": "photo.image"}, "box"),
    ("sdxl.image2image", {"steps": 1, "strength": 0.5},
     {"image": "photo.image", "prompt": "prompt.prompt"}, "steps"),
    ("kandinsky.decoder", {}, {"embeds": "prior.embeds", "mask": "photo.mask"}, "mask"),
])
def test_bad_input_is_a_user_error(manager, scheduler, tmp_path, node_type, params, inputs,
                                   field) -> None:
    g = Graph(base_dir=GRAPHS)
    g.add_node("photo", "image.load", {"path": "inputs/photo.png"})
    g.add_node("prompt", "text.prompt", {"text": "x"})
    g.add_node("prior", "kandinsky.prior", {"steps": 2}, {"prompt": "prompt.prompt"})
    g.add_node("node", node_type, params, inputs)
    _saving(g, "photo")
    result = g.run(tmp_path, targets=["node"], scheduler=scheduler)
    assert result.user_errors["node"][0] == field


def test_missing_model_is_a_one_line_user_error(manager, tmp_path, capsys) -> None:
    from graphkit.cli import main

    code = main(["run", str(GRAPHS / "sdxl_turbo.json"), "--models", "tiny", "--out",
                 str(tmp_path), "--set", "gen.model=nobody/no-such-model"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert code == 2
    assert len(err) == 1
    assert "node 'gen'" in err[0] and "'model'" in err[0] and "nobody/no-such-model" in err[0]


def _thin_image(g: Graph, width: int, height: int) -> None:
    g.add_node("region", "mask.region", {"width": width, "height": height,
                                         "box": [0, 0, width, height]})
    g.add_node("thin", "mask.to_image", {}, {"mask": "region.mask"})


def test_prior_refuses_an_image_whose_clip_resize_would_be_huge(manager, scheduler,
                                                                 tmp_path) -> None:
    """CLIP resizes the shortest side up: a 1x2048 image would become 32x65536."""
    g = Graph(base_dir=tmp_path)
    _thin_image(g, 1, 2048)
    g.add_node("prompt", "text.prompt", {"text": "x"})
    g.add_node("prior", "kandinsky.prior", {"steps": 2},
               {"prompt": "prompt.prompt", "image_a": "thin.image"})
    _saving(g, "thin")
    result = g.run(tmp_path, targets=["prior"], scheduler=scheduler)
    field, message = result.user_errors["prior"]
    assert field == "image_a" and "GRAPHKIT_LIMIT_MAX_SIDE" in message and "65536" in message


def test_sam_on_a_one_pixel_high_image_gives_a_mask(manager, scheduler, tmp_path) -> None:
    """Scaling the longest side to SAM's size rounds the other one to at least 1 pixel."""
    g = Graph(base_dir=tmp_path)
    _thin_image(g, 2048, 1)
    g.add_node("mask", "sam.mask", {"points": [[10, 0, 1]]}, {"image": "thin.image"})
    _saving(g, "thin")
    result = g.run(tmp_path, targets=["mask"], scheduler=scheduler)
    assert result.ok, result.failed
    assert tuple(result.value("mask").alpha.shape) == (1, 1, 1, 2048)

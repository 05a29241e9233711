"""LoRA adapters on a loaded pipeline, shared by the Wan and LTX renderers.

Each distinct LoRA is loaded once per warm child, keyed by (path, expert), under an
adapter name of its own; the base model is never reloaded. Every render then selects
exactly the route's LoRAs (catalog `loras`) plus the request's, with their scales,
through each transformer's `set_adapters`, and turns LoRA layers off where none applies,
so LoRAs swap between renders. "high" loads into `transformer` (the high-noise expert of
Wan2.2 I2V-A14B, every other model's only one), "low" into A14B's `transformer_2`
(diffusers' `load_into_transformer_2`), "both" into each.

A request's LoRAs must be in the route's `lora_allowlist`: the API checks that at
submit, and this checks it again, so a job row never names an arbitrary file on the
worker. The CLI adds the user's own `--lora` files to the allowlist.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from i2v.domain.errors import EngineError
from i2v.domain.job import Lora
from i2v.engines.diffusers.options import EngineOptions, RouteLora, is_local_lora

logger = logging.getLogger(__name__)

COMPONENTS: dict[str, tuple[str, ...]] = {
    "high": ("transformer",),
    "low": ("transformer_2",),
    "both": ("transformer", "transformer_2"),
}


class Adapters:
    """The LoRAs loaded into one pipeline, and which of them the current render uses."""

    def __init__(self, pipe: Any, options: EngineOptions, compute_dtype: Any) -> None:
        self.pipe = pipe
        self.options = options
        self.compute_dtype = compute_dtype  # the pipeline's dtype (the transformer's may be fp8)
        self.loaded: dict[tuple[str, str], str] = {}  # (path, component) -> adapter name
        self.allowed = set(options.lora_allowlist)

    def wanted(self, request_loras: Iterable[Lora]) -> list[RouteLora]:
        """The route's LoRAs and then the request's (into `transformer`)."""
        chosen = list(self.options.loras)
        for index, lora in enumerate(request_loras):
            if lora.path not in self.allowed:
                raise EngineError(
                    f"loras[{index}].path: {lora.path!r} is not in this route's lora_allowlist"
                )
            chosen.append(RouteLora(lora.path, float(lora.scale), "high"))
        return chosen

    def apply(self, request_loras: Iterable[Lora]) -> None:
        """Select exactly these LoRAs (loading any not seen yet) for the next render."""
        active: dict[str, tuple[list[str], list[float]]] = {}
        for lora in self.wanted(request_loras):
            for component in COMPONENTS[lora.expert]:
                name = self._load(lora.path, component)
                names, scales = active.setdefault(component, ([], []))
                names.append(name)
                scales.append(lora.scale)
        for component in ("transformer", "transformer_2"):
            model = getattr(self.pipe, component, None)
            if model is None or not any(c == component for _, c in self.loaded):
                continue  # no LoRA ever touched it: leave it as loaded
            if component in active:
                names, scales = active[component]
                model.enable_lora()
                model.set_adapters(names, scales)
            else:
                model.disable_lora()

    def _load(self, path: str, component: str) -> str:
        name = self.loaded.get((path, component))
        if name is not None:
            return name
        if getattr(self.pipe, component, None) is None:
            raise EngineError(
                f"loras: {path!r} asks for the low-noise expert (transformer_2), which only "
                "Wan2.2 I2V-A14B has; use expert high"
            )
        name = f"lora_{len(self.loaded)}"
        kwargs: dict[str, Any] = {"adapter_name": name}
        if component == "transformer_2":
            kwargs["load_into_transformer_2"] = True
        source = path
        if is_local_lora(path):
            source = str(Path(path).expanduser())
            if not Path(source).is_file():
                raise EngineError(f"loras: the LoRA file {path!r} does not exist")
        else:
            parts = path.split("/")
            if len(parts) > 2:  # owner/name/file.safetensors in the Hugging Face cache
                source, kwargs["weight_name"] = "/".join(parts[:2]), "/".join(parts[2:])
            kwargs["local_files_only"] = self.options.local_files_only
            if self.options.cache_dir:
                kwargs["cache_dir"] = self.options.cache_dir
        try:
            self.pipe.load_lora_weights(source, **kwargs)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise EngineError(f"loras: cannot load {path!r} into {component}: {exc}") from exc
        if self.options.fp8:
            self._lift(getattr(self.pipe, component), name)
        logger.info("loaded LoRA %s into %s as %s", path, component, name)
        self.loaded[(path, component)] = name
        return name

    def _lift(self, model: Any, name: str) -> None:
        """PEFT creates LoRA layers in their base layer's dtype, float8 under layerwise fp8,
        where no hook upcasts them and matmuls do not run: keep them in the compute dtype
        (they are small; the base weights stay float8)."""
        for module in model.modules():
            for layers in (getattr(module, "lora_A", None), getattr(module, "lora_B", None)):
                if layers is not None and name in layers:
                    layers[name].to(self.compute_dtype)

"""Model source ``timm``: any timm architecture (``arch``, built with ``pretrained=False``) with weights from a local file.

Layouts of the checkpoint file (``layout: auto`` tells them apart by their keys):

* ``timm``: a state dict in timm's naming (``.pth``/``.bin``/``.safetensors``; a ``{'state_dict': ...}``
  or ``{'model': ...}`` wrapper and a DistributedDataParallel ``module.`` prefix are accepted). DINO's
  published ``dino_deitsmall16_pretrain.pth`` / ``dino_vitbase16_pretrain.pth`` (timm's ViT keys:
  ``cls_token``, ``pos_embed``, ``patch_embed.proj``, ``blocks.{i}.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,
  mlp.fc2}``, ``norm``) and ``dino_resnet50_pretrain.pth`` (torchvision ResNet keys, which timm's ResNet
  shares) are in this layout. A classifier in the file (timm's ``classifier`` key of the architecture,
  e.g. ``head.weight`` or ``fc.weight``) is loaded and can be explained with ``embedding: head``.
* ``dino_full``: DINO's training checkpoint ``{'student', 'teacher', 'optimizer', 'epoch', 'args',
  'dino_loss'}`` (e.g. ``dino_deitsmall16_pretrain_full_checkpoint.pth``). ``network`` picks ``teacher``
  (default; the network DINO evaluates and publishes) or ``student``; a ``module.`` prefix (the student is
  always DDP-wrapped, the teacher when the model has batch norm) is stripped. Keys are ``backbone.*`` (as
  above) and ``head.*`` (:mod:`xai_ssl.models.dino_head`), the head loaded for ``embedding: head``.
* ``dinov2``: the original DINOv2 files (``dinov2_vits14_pretrain.pth``): timm's ViT keys plus
  ``mask_token`` [1, C] (dropped: used only for masked training), layer scale ``blocks.{i}.ls{1,2}.gamma``
  (timm's names), with registers ``register_tokens`` [1, R, C] (timm's ``reg_token``; timm's DINOv2-reg
  models keep no position embedding for the prefix, so the class token absorbs ``pos_embed[:, 0]``), and
  for ViT-g the SwiGLU ``mlp.w12`` / ``mlp.w3`` (timm's ``fc1`` / ``fc2``). The same conversion as timm's
  ``vision_transformer._convert_dinov2``, done here with the key checks of a strict load.

Every layout is loaded strictly (:func:`xai_ssl.models.checkpoints.load_strict`): a missing, unexpected or
wrongly shaped tensor is a CheckpointError naming the file, the layout and the keys. Nothing is downloaded:
timm builds the architecture without weights; its pretrained config of ``arch`` gives the input
normalisation (``mean``/``std``), the input side the position embeddings were trained at (``input_size``),
the licence and where the weights are published — each overridable in the model entry.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from xai_ssl.models.checkpoints import CheckpointError, is_state_dict, load_strict, read_state_file
from xai_ssl.models.dino_head import DinoHead, head_spec
from xai_ssl.models.encoder import Encoder

LAYOUTS = ("auto", "timm", "dino_full", "dinov2")
FORMATS = {
    "timm": "timm (state dict in timm's layout)",
    "dino_full": "dino_full (DINO training checkpoint {'student', 'teacher'})",
    "dinov2": "dinov2 (original DINOv2 *_pretrain.pth)",
}
EMBEDDINGS = ("cls", "pooled", "head")
NETWORKS = ("teacher", "student")


def timm_module() -> Any:
    """``import timm`` with a clear message when it is missing."""
    try:
        import timm
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise ImportError("model source 'timm' needs the timm package: pip install 'timm>=1.0'") from exc
    return timm


def check_arch(arch: str) -> None:
    """Refuse a name timm does not know, suggesting similar ones."""
    timm = timm_module()
    if not timm.is_model(arch):
        base = arch.split(".")[0]
        similar = timm.list_models(f"*{base[:12]}*")[:8]
        raise ValueError(f"timm has no model {arch!r}; similar names: {similar} (timm.list_models() lists them all)")


def pretrained_cfg(arch: str) -> dict[str, Any]:
    """timm's pretrained config of ``arch`` (its default tag when no tag is given); {} when there is none."""
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(arch)
    return cfg.to_dict() if cfg is not None else {}


def _kwargs_key(model_kwargs: dict[str, Any] | None) -> str:
    import json

    return json.dumps(model_kwargs or {}, sort_keys=True)


def model_family(arch: str, model_kwargs: dict[str, Any] | None = None) -> str:
    """``vit`` (timm VisionTransformer), ``cnn`` (4-D NCHW forward_features) or an error for other designs."""
    return _family(arch, _kwargs_key(model_kwargs))


@functools.lru_cache(maxsize=64)
def _family(arch: str, kwargs_json: str) -> str:
    import json

    timm = timm_module()
    from timm.models.vision_transformer import VisionTransformer

    check_arch(arch)
    with torch.device("meta"):
        model = timm.create_model(arch, pretrained=False, num_classes=0, **json.loads(kwargs_json))
    if isinstance(model, VisionTransformer):
        return "vit"
    side = int((pretrained_cfg(arch).get("input_size") or (3, 224, 224))[-1])
    try:
        out = model.forward_features(torch.empty(1, 3, side, side, device="meta"))
    except Exception as exc:  # noqa: BLE001 - any failure: the design is not supported
        raise ValueError(f"timm model {arch!r} ({type(model).__name__}): forward_features could not be traced ({exc})") from exc
    if isinstance(out, torch.Tensor) and out.ndim == 4 and int(out.shape[1]) == int(getattr(model, "num_features", -1)):
        return "cnn"
    raise ValueError(
        f"timm model {arch!r} ({type(model).__name__}) is not supported: xai-ssl explains timm CNNs whose forward_features "
        f"gives [B, C, h, w] maps and timm VisionTransformer models (got {tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__})"
    )


def create_model(arch: str, num_classes: int = 0, input_size: int | None = None, model_kwargs: dict[str, Any] | None = None) -> nn.Module:
    """A timm model without weights; ViTs with dynamic image size and padding (``input_size`` = their trained side).

    ``model_kwargs`` go to ``timm.create_model`` (e.g. ``embed_dim``, ``depth``, ``num_heads``, ``patch_size`` for a
    checkpoint of non-standard size)."""
    timm = timm_module()
    kwargs: dict[str, Any] = {**(model_kwargs or {}), "pretrained": False, "num_classes": int(num_classes)}
    if model_family(arch, model_kwargs) == "vit":
        kwargs.update(dynamic_img_size=True, dynamic_img_pad=True)
        if input_size is not None:
            kwargs["img_size"] = int(input_size)
    elif input_size is not None:
        raise ValueError(f"input_size applies to Vision Transformers only; {arch!r} is a CNN")
    return timm.create_model(arch, **kwargs)


class TimmFeatures(nn.Module):
    """Model-input images -> timm ``forward_features`` maps [B, C, h, w] of a CNN."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, xn: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] -> [B, C, h, w]."""
        return self.model.forward_features(xn)


_HEAD_MODULES = ("global_pool", "fc", "head", "head_drop", "fc_norm", "classifier", "head_hidden_size", "pre_logits")


class TimmCnnEncoder(Encoder):
    """A timm CNN as an Encoder: trunk = forward_features, embedding = head(forward_head(pre_logits)) or the classifier."""

    def __init__(self, model: nn.Module, readout: str, head: nn.Module | None, mean: Any, std: Any) -> None:
        super().__init__(TimmFeatures(model), head if head is not None else nn.Identity(), mean, std)
        self.readout = readout

    def embed_features(self, a: torch.Tensor) -> torch.Tensor:
        """Embedding [B, D] from maps [B, C, h, w] (timm's pooling, then the projection head or the classifier)."""
        return self.head(self.trunk.model.forward_head(a, pre_logits=self.readout != "classifier"))

    def stages(self) -> list[tuple[str, nn.Module]]:
        """The model's feature children in registration order (timm CNNs apply them in sequence)."""
        return [(n, m) for n, m in self.trunk.model.named_children() if n not in _HEAD_MODULES]

    def default_up_until(self) -> int:
        """As for torchvision trunks: 5 with >= 8 stages (conv1, bn1, act1, maxpool, layer1), else 4."""
        n = len(self.stages())
        return 5 if n >= 8 else min(4, n)

    def truncated_trunk(self, up_until: int) -> nn.Module:
        """The first ``up_until`` feature children."""
        stages = self.stages()
        if not 1 <= up_until <= len(stages):
            raise ValueError(f"feature_visualisation: up_until must be in 1..{len(stages)} for this trunk, got {up_until}")
        return nn.Sequential(*[m for _, m in stages[:up_until]])

    def cascade_layers(self) -> list[tuple[str, nn.Module]]:
        """Head (with timm's own classifier), then the feature children from last to first."""
        model = self.trunk.model
        top = nn.ModuleList([self.head, *[m for n, m in model.named_children() if n in _HEAD_MODULES]])
        return [("head", top), *[(f"trunk.model.{n}", m) for n, m in reversed(self.stages())]]


def default_embedding(family: str, has_class_token: bool) -> str:
    """``cls`` for ViTs with a class token, else ``pooled``."""
    return "cls" if family == "vit" and has_class_token else "pooled"


def build_timm_encoder(
    model: str,
    readout: str = "pooled",
    num_classes: int = 0,
    dino_head: list[list[Any]] | None = None,
    mean: list[float] | None = None,
    std: list[float] | None = None,
    input_size: int | None = None,
    model_kwargs: dict[str, Any] | None = None,
) -> Encoder:
    """The registry architecture ``timm``: rebuild a prepared timm encoder (random weights) from its arch params."""
    from xai_ssl.models.vit import VitEncoder

    net = create_model(model, num_classes, input_size, model_kwargs)
    head = DinoHead(dino_head) if dino_head else None
    if model_family(model, model_kwargs) == "vit":
        enc: Encoder = VitEncoder(net, readout, head, mean, std)
    else:
        enc = TimmCnnEncoder(net, readout, head, mean, std)
    return enc.eval()


# ---------------------------------------------------------------------------------------------
# Reading the layouts


def _strip_module(state: Mapping[str, Any]) -> dict[str, Any]:
    """Drop a DistributedDataParallel ``module.`` prefix carried by every key."""
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


def detect_layout(payload: Any) -> str:
    """``dino_full`` (student/teacher dicts), ``dinov2`` (a ``mask_token``), else ``timm``."""
    if isinstance(payload, Mapping) and ("teacher" in payload or "student" in payload) and not is_state_dict(payload):
        return "dino_full"
    state = payload
    if isinstance(payload, Mapping) and not is_state_dict(payload):
        state = payload.get("state_dict", payload.get("model", payload))
    if isinstance(state, Mapping) and "mask_token" in _strip_module(state):
        return "dinov2"
    return "timm"


def _plain_state(payload: Any, path: Path, fmt: str) -> dict[str, torch.Tensor]:
    """The tensor dict of a timm-layout file (unwrapping 'state_dict' / 'model', stripping 'module.')."""
    if isinstance(payload, Mapping) and not is_state_dict(payload):
        for key in ("state_dict", "model"):
            if key in payload and is_state_dict(payload[key]):
                payload = payload[key]
                break
    if not is_state_dict(payload):
        top = sorted(map(str, payload))[:10] if isinstance(payload, Mapping) else type(payload).__name__
        raise CheckpointError(f"{path} (format {fmt}): expected a state dict of tensors (or a {{'state_dict': ...}} wrapper), got {top}")
    return _strip_module(payload)


def _split_dino_full(payload: Mapping[str, Any], network: str, path: Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(backbone state, head state) of the chosen network of a DINO training checkpoint."""
    fmt = FORMATS["dino_full"]
    if network not in NETWORKS:
        raise CheckpointError(f"{path} (format {fmt}): network must be one of {NETWORKS}, got {network!r}")
    if network not in payload:
        raise CheckpointError(f"{path} (format {fmt}): no {network!r} entry; the file has {sorted(map(str, payload))[:10]}")
    part = payload[network]
    if not is_state_dict(part):
        raise CheckpointError(f"{path} (format {fmt}): {network!r} should be a state dict of tensors, got {type(part).__name__}")
    state = _strip_module(part)
    other = [k for k in state if not k.startswith(("backbone.", "head."))]
    if other:
        raise CheckpointError(
            f"{path} (format {fmt}): {network!r} keys should start with 'backbone.' or 'head.' (DINO's MultiCropWrapper); "
            f"{len(other)} do not, e.g. {other[:5]}"
        )
    backbone = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
    head = {k[len("head."):]: v for k, v in state.items() if k.startswith("head.")}
    return backbone, head


def _convert_dinov2(state: Mapping[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    """DINOv2 keys -> timm keys (mask_token dropped, registers, SwiGLU names); see the module docstring."""
    fmt = FORMATS["dinov2"]
    if "mask_token" not in state:
        raise CheckpointError(f"{path} (format {fmt}): no 'mask_token' (every DINOv2 pretrain file has one); is this another layout?")
    out = {k: v for k, v in state.items() if k != "mask_token"}
    if "register_tokens" in out:
        for k in ("cls_token", "pos_embed"):
            if k not in out:
                raise CheckpointError(f"{path} (format {fmt}): {k!r} missing")
        out["reg_token"] = out.pop("register_tokens")
        pos = out.pop("pos_embed")
        out["cls_token"] = out["cls_token"] + pos[:, :1]
        out["pos_embed"] = pos[:, 1:]
    renamed = {}
    for k, v in out.items():
        if ".mlp.w12." in k:
            k = k.replace(".mlp.w12.", ".mlp.fc1.")
        elif ".mlp.w3." in k:
            k = k.replace(".mlp.w3.", ".mlp.fc2.")
        renamed[k] = v
    return renamed


def _classes_in(state: Mapping[str, torch.Tensor], arch: str) -> int:
    """Output size of the classifier stored in the file (timm's ``classifier`` key of ``arch``), 0 when absent."""
    names = pretrained_cfg(arch).get("classifier") or "head"
    for name in [names] if isinstance(names, str) else list(names):
        w = state.get(f"{name}.weight")
        if isinstance(w, torch.Tensor) and w.ndim == 2:
            return int(w.shape[0])
    return 0


def _strict_into(module_builder: Any, state: Mapping[str, torch.Tensor], path: Path, fmt: str, part: str) -> nn.Module:
    """Build a module on the meta device and load ``state`` strictly (CPU build when a buffer stays unmaterialised)."""
    with torch.device("meta"):
        module = module_builder()
    load_strict(module, state, path, fmt, part)
    if any(t.is_meta for t in [*module.parameters(), *module.buffers()]):
        module = module_builder()
        load_strict(module, state, path, fmt, part)
    return module


def load_timm(
    path: Path | str,
    arch: str,
    layout: str = "auto",
    network: str = "teacher",
    embedding: str | None = None,
    mean: list[float] | None = None,
    std: list[float] | None = None,
    input_size: int | None = None,
    model_kwargs: dict[str, Any] | None = None,
) -> tuple[Encoder, dict[str, Any]]:
    """Load a checkpoint of timm architecture ``arch`` strictly; returns (encoder in eval mode, arch params to rebuild it)."""
    from xai_ssl.models.vit import VitEncoder

    path = Path(path)
    if layout not in LAYOUTS:
        raise CheckpointError(f"{path}: layout must be one of {LAYOUTS}, got {layout!r}")
    payload = read_state_file(path, f"timm {arch}")
    chosen = detect_layout(payload) if layout == "auto" else layout
    fmt = f"{FORMATS[chosen]}, timm {arch}"
    head_state: dict[str, torch.Tensor] = {}
    if chosen == "dino_full":
        if not isinstance(payload, Mapping):
            raise CheckpointError(f"{path} (format {fmt}): expected a dict with 'teacher'/'student', got {type(payload).__name__}")
        state, head_state = _split_dino_full(payload, network, path)
    else:
        state = _plain_state(payload, path, fmt)
        if chosen == "dinov2":
            state = _convert_dinov2(state, path)
    cfg = pretrained_cfg(arch)
    family = model_family(arch, model_kwargs)
    num_classes = _classes_in(state, arch)
    net = _strict_into(lambda: create_model(arch, num_classes, input_size, model_kwargs), state, path, fmt, "backbone" if chosen == "dino_full" else "state dict")
    has_cls = family == "vit" and getattr(net, "cls_token", None) is not None
    embedding = embedding or default_embedding(family, has_cls)
    if embedding not in EMBEDDINGS:
        raise CheckpointError(f"{path}: embedding must be one of {EMBEDDINGS}, got {embedding!r}")
    if embedding == "cls" and not has_cls:
        raise CheckpointError(f"{path} (format {fmt}): embedding 'cls' needs a class token; {arch!r} has none (use 'pooled')")
    spec: list[list[Any]] | None = None
    head: nn.Module | None = None
    readout = {"cls": "cls", "pooled": "pooled", "head": "classifier"}[embedding]
    if embedding == "head":
        if head_state:
            try:
                spec = head_spec(head_state)
            except ValueError as exc:
                raise CheckpointError(f"{path} (format {fmt}): the {network!r} head is not a DINO head ({exc})") from exc
            head = _strict_into(lambda: DinoHead(spec), head_state, path, fmt, f"{network!r} head")
            readout = "cls" if has_cls else "pooled"  # DINO's backbone output: the class token / the pooled map
        elif num_classes == 0:
            raise CheckpointError(
                f"{path} (format {fmt}): embedding 'head' but the file has no projection head (DINO 'head.*' of a full checkpoint) "
                f"and no classifier ({cfg.get('classifier') or 'head'}.weight); use 'cls' or 'pooled'"
            )
    mean = list(mean) if mean is not None else list(cfg.get("mean") or (0.485, 0.456, 0.406))
    std = list(std) if std is not None else list(cfg.get("std") or (0.229, 0.224, 0.225))
    enc: Encoder = VitEncoder(net, readout, head, mean, std) if family == "vit" else TimmCnnEncoder(net, readout, head, mean, std)
    enc.eval()
    params = {
        "model": arch, "readout": readout, "num_classes": num_classes, "dino_head": spec,
        "mean": [float(v) for v in mean], "std": [float(v) for v in std], "input_size": input_size,
        "model_kwargs": dict(model_kwargs or {}),
    }
    enc.source_facts = {  # type: ignore[attr-defined]
        "layout": chosen,
        "network": network if chosen == "dino_full" else None,
        "embedding": describe_embedding(embedding, family, spec, num_classes, int(_embedding_dim(enc, spec, num_classes, net))),
        "licence": f"{cfg.get('license') or 'unknown'} (timm's pretrained config of {arch}; check the weights' publisher)",
        "published": cfg.get("url") or (f"https://huggingface.co/{cfg['hf_hub_id']}" if cfg.get("hf_hub_id") else None),
    }
    return enc, params


def _embedding_dim(enc: Encoder, spec: list[list[Any]] | None, num_classes: int, net: nn.Module) -> int:
    if spec:
        return int(spec[-1][2])
    if getattr(enc, "readout", "") == "classifier":
        return num_classes
    return int(getattr(net, "num_features", 0))


def describe_embedding(embedding: str, family: str, spec: list[list[Any]] | None, num_classes: int, dim: int) -> str:
    """One line for source.json: what is explained."""
    if embedding == "head" and spec:
        return f"{dim}-d output of DINO's projection head (MLP, L2 norm, weight-normalised last layer) on the {'class token' if family == 'vit' else 'pooled features'}"
    if embedding == "head":
        return f"{dim}-d output of the classifier in the file"
    if embedding == "cls":
        return f"{dim}-d class token after the final norm"
    return f"{dim}-d mean of the {'normalised patch tokens' if family == 'vit' else 'last feature map (timm pooling)'}"

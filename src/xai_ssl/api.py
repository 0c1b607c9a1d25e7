"""The public Python API: load an encoder, make the seeded views of any image, explain a pair, score the maps.

One code path with the workflow: :func:`views` calls ``pairs.make_views`` (rule ``make_pairs``), :func:`explain`
calls ``engine.explain_batches`` with the per-image seed ``engine.image_seed`` (rule ``compute_attributions``),
:func:`score` calls ``scoring.score_attributions`` (rule ``compute_metrics``). A map made here for an image id and
seed therefore equals the workflow's map of that image (up to float rounding when torch uses another number of
threads than the workflow's ``cpu_threads``). Images are tensors in [0, 1]; one image is [3, H, W], a batch
[B, 3, H, W]; maps come back as [h, w] or [B, h, w].

    >>> from xai_ssl import load_encoder, views, explain, score
    >>> enc = load_encoder("simclr_small", config="config/config.yaml")
    >>> v = views("photo.png", size=48, seed=0)
    >>> map1, map2 = explain(enc, v, method="gradcam")
    >>> values, curves = score(enc, v, maps=(map1, map2), method="gradcam")
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xai_ssl.data.images import image_to_rgb, load_mask, load_rgb
from xai_ssl.device import resolve_device
from xai_ssl.engine import explain_batches, image_seed
from xai_ssl.io.maps_file import Attributions
from xai_ssl.io.pairs_file import Pairs, family_pair
from xai_ssl.methods import MethodSpec, get_method
from xai_ssl.methods.corpus import Corpus
from xai_ssl.models.encoder import Encoder
from xai_ssl.models.registry import read_encoder
from xai_ssl.pairs import center_mask, make_views

__all__ = ["Views", "configured_method", "encoder_path", "explain", "load_encoder", "read_config", "score", "similarity", "views"]

DEFAULT_CONFIG = Path("config/config.yaml")
DEFAULT_METRICS = ("insertion_deletion", "average_drop_increase")


# ---------------------------------------------------------------- config and encoders


def read_config(config: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """A validated copy of a config (a YAML file or a dict), defaults filled in, as the workflow validates it."""
    import yaml

    from xai_ssl.config import validate_config

    if isinstance(config, Mapping):
        data = copy.deepcopy(dict(config))
    else:
        path = Path(config)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: config file not found")
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return validate_config(data, check_paths=False)


def encoder_path(model: str, results: str | Path = "results") -> Path:
    """Where the workflow writes the prepared encoder of model ``model``: ``results/models/<model>/encoder.pt``."""
    return Path(results) / "models" / model / "encoder.pt"


def load_encoder(
    model: str | Path,
    config: str | Path | Mapping[str, Any] | None = None,
    device: str | torch.device = "auto",
    results: str | Path = "results",
) -> Encoder:
    """An encoder in eval mode on ``device``, from a prepared ``encoder.pt`` file or a model name of ``config``.

    A model name points at ``results/models/<model>/encoder.pt`` (``results`` relative to where the workflow
    runs); when that file does not exist yet the error names the Snakemake target that prepares it. With a
    config, the name must be one of its models and the encoder gets its ``channels_last``/``autocast``
    settings, as in the workflow's jobs.
    """
    cfg = read_config(config) if config is not None else None
    text = str(model)
    if isinstance(model, Path) or text.endswith(".pt") or Path(text).is_file():
        path = Path(text)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: encoder file not found")
    else:
        if cfg is not None and text not in cfg["models"]:
            raise KeyError(f"unknown model {text!r}; accepted (models of the config): {sorted(cfg['models'])}")
        path = encoder_path(text, results)
        if not path.is_file():
            where = f" --configfile {config}" if isinstance(config, (str, Path)) and Path(config) != DEFAULT_CONFIG else ""
            raise FileNotFoundError(f"{path}: model {text!r} is not prepared yet; prepare it with `snakemake --cores all{where} {path}`")
    torch_device = device if isinstance(device, torch.device) else resolve_device(str(device))
    encoder, _ = read_encoder(path, torch_device)
    if cfg is not None:
        encoder.set_speed(channels_last=bool(cfg["channels_last"]), autocast=str(cfg["autocast"]))
    return encoder


def configured_method(config: str | Path | Mapping[str, Any], method: str, model: str | None = None) -> dict[str, Any]:
    """Keyword arguments of :func:`explain` for a method as a config sets it: ``method`` (registry name), ``key``
    (the config name, the seed rule's key) and its parameters (with ``model_params`` overrides for ``model``)."""
    from xai_ssl.config import method_params, method_registry_name

    cfg = read_config(config)
    if method not in cfg["methods"]:
        raise KeyError(f"unknown method {method!r}; accepted (methods of the config): {sorted(cfg['methods'])}")
    return {"method": method_registry_name(cfg, method), "key": method, **method_params(cfg, method, model)}


# ---------------------------------------------------------------- views


@dataclass
class Views:
    """The seeded views of one image, as the workflow stores them: floats in [0, 1] with exact 8-bit values.

    ``x1`` is the clean centre view, ``x2`` the SimCLR-augmented view, ``xt`` the photometric view of x1,
    each [3, S, S]; ``mask1`` [S, S] the label mask of x1 (Two4Two renders), when known.
    """

    x1: torch.Tensor
    x2: torch.Tensor
    xt: torch.Tensor
    image_id: str
    seed: int
    mask1: np.ndarray | None = None

    def pair(self, family: str = "crop_aug") -> tuple[torch.Tensor, torch.Tensor]:
        """The two inputs a method family explains: ``crop_aug`` (x1, x2), ``interpolation`` (x1, 0.1·x1 + 0.9·xt)."""
        return family_pair(family, self.x1, self.x2, self.xt)

    def __iter__(self) -> Iterator[torch.Tensor]:
        """``x1, x2, xt = views(...)``."""
        return iter((self.x1, self.x2, self.xt))


def _image_tensor(image: Any, max_pixels: int | None = None) -> tuple[torch.Tensor, str | None, Path | None]:
    """(float32 [3, H, W] in [0, 1], default id, path) of a path, a PIL image or a tensor."""
    from PIL import Image

    if isinstance(image, (str, Path)):
        path = Path(image)
        return load_rgb(path, max_pixels), path.stem, path
    if isinstance(image, Image.Image):
        from PIL import ImageOps

        try:  # upright by its EXIF orientation, as load_rgb turns files (the caller's image is left as it is)
            upright = ImageOps.exif_transpose(image) or image
        except Exception:  # noqa: BLE001 - a broken EXIF block does not make the pixels unreadable
            upright = image
        return image_to_rgb(upright, getattr(image, "filename", "") or "image"), None, None
    if isinstance(image, torch.Tensor):
        if image.ndim != 3 or image.shape[0] != 3:
            raise ValueError(f"views: expected an image tensor [3, H, W], got shape {tuple(image.shape)}")
        x = image.detach().cpu()
        x = x.float() / 255 if x.dtype == torch.uint8 else x.float()
        if x.numel() and (float(x.min()) < 0 or float(x.max()) > 1):
            raise ValueError("views: image tensor values must lie in [0, 1] (or be uint8)")
        return x, None, None
    raise TypeError(f"views: expected a path, a PIL image or a tensor [3, H, W], got {type(image).__name__}")


def views(
    image: Any,
    size: int,
    seed: int = 0,
    image_id: str | None = None,
    crop_scale: Sequence[float] = (0.08, 1.0),
    mask: str | Path | np.ndarray | None = "auto",
    max_pixels: int | None = None,
) -> Views:
    """The seeded views (x1, x2, xt) of an image exactly as the workflow's ``make_pairs`` stores them.

    ``image``: a file path, a PIL image or a tensor [3, H, W] in [0, 1]. ``image_id`` (with ``seed``) decides the
    random views; a path defaults to its file stem, the id the workflow gives it in a Two4Two split, an ImageNet
    folder or a flat image folder (in a folder with class subfolders the workflow's id is ``<class>/<stem>``);
    other images default to ``"image"``. ``crop_scale`` is the dataset's ``view_crop_scale``. ``mask``: a label
    mask (path or [H, W] array) centred like x1; ``"auto"`` reads ``<stem>_mask.png`` beside a path if present
    (the Two4Two layout). ``max_pixels``: a file declaring more pixels is refused before decoding (the dataset's
    ``max_image_pixels``; None: Pillow's own limit).
    """
    img, default_id, path = _image_tensor(image, max_pixels)
    image_id = image_id if image_id is not None else (default_id or "image")
    made = make_views(img, int(size), int(seed), image_id, (float(crop_scale[0]), float(crop_scale[1])))
    if isinstance(mask, str) and mask == "auto":
        sibling = path.with_name(f"{path.stem}_mask.png") if path is not None else None
        mask = sibling if sibling is not None and sibling.is_file() else None
    mask1 = None
    if mask is not None:
        array = np.array(load_mask(mask) if isinstance(mask, (str, Path)) else mask, dtype=np.uint8)  # a writable copy
        mask1 = center_mask(array, int(size))
    x1, x2, xt = (made[k].float() / 255 for k in ("x1", "x2", "xt"))  # as io.pairs_file.read_pairs
    return Views(x1, x2, xt, image_id, int(seed), mask1)


# ---------------------------------------------------------------- explaining and scoring


@dataclass
class _Batch:
    """Pairs to explain or score: the explained inputs a, b [B, 3, S, S], the views when known, ids, masks."""

    a: torch.Tensor
    b: torch.Tensor
    ids: list[str]
    single: bool
    views: Pairs | None  # the stored-views form (for scoring with the method's pair family)
    mask1: np.ndarray | None


def _as_batch(x1: Any, x2: Any, family: str, image_id: str | Sequence[str] | None, what: str) -> _Batch:
    """Accept Views, a list of Views, or tensors x1, x2 ([3, S, S] or [B, 3, S, S]) as the explained pair."""
    if isinstance(x1, Views) or (isinstance(x1, (list, tuple)) and x1 and all(isinstance(v, Views) for v in x1)):
        if x2 is not None:
            raise ValueError(f"{what}: pass either Views or the two inputs x1, x2, not both")
        vs = [x1] if isinstance(x1, Views) else list(x1)
        ids = [v.image_id for v in vs] if image_id is None else ([image_id] if isinstance(image_id, str) else list(image_id))
        if len(ids) != len(vs):
            raise ValueError(f"{what}: {len(vs)} views but {len(ids)} image ids")
        masks = [v.mask1 for v in vs]
        has = np.array([m is not None for m in masks], dtype=bool)  # as the pairs file: zeros where an image has none
        shape = vs[0].x1.shape[-2:]
        mask1 = np.stack([m if m is not None else np.zeros(shape, np.uint8) for m in masks]) if has.any() else None
        stack = {k: torch.stack([getattr(v, k) for v in vs]) for k in ("x1", "x2", "xt")}
        pairs = Pairs(ids, np.arange(len(vs)), stack["x1"], stack["x2"], stack["xt"], mask1, {}, has if has.any() else None)
        a, b = pairs.pair(family)
        return _Batch(a, b, ids, isinstance(x1, Views), pairs, mask1)
    if x2 is None:
        raise ValueError(f"{what}: give the two explained inputs x1 and x2 (tensors), or the Views of an image (xai_ssl.views)")
    a, b = torch.as_tensor(x1), torch.as_tensor(x2)
    if a.shape != b.shape or a.ndim not in (3, 4) or a.shape[-3] != 3:
        raise ValueError(f"{what}: x1 and x2 must both be [3, H, W] or [B, 3, H, W]; got {tuple(a.shape)} and {tuple(b.shape)}")
    single = a.ndim == 3
    a, b = (a[None], b[None]) if single else (a, b)
    n = a.shape[0]
    if image_id is None:
        ids = ["image"] if n == 1 else [f"image-{i}" for i in range(n)]
    elif isinstance(image_id, str):
        if n != 1:
            raise ValueError(f"{what}: a batch of {n} images needs one image id per image (a list), got one string")
        ids = [image_id]
    else:
        ids = [str(i) for i in image_id]
    if len(ids) != n:
        raise ValueError(f"{what}: {n} images but {len(ids)} image ids")
    return _Batch(a, b, ids, single, None, None)


def _device_dtype(encoder: Encoder, device: str | torch.device | None) -> tuple[torch.device, torch.dtype]:
    param = next(encoder.parameters())
    if device is None:
        return param.device, param.dtype
    return (device if isinstance(device, torch.device) else resolve_device(str(device))), param.dtype


def _corpus(spec: MethodSpec, corpus: Any, seed: int) -> Corpus | None:
    """The reference images of a corpus method (a Corpus, or images [R, 3, S, S]); a clear error without them."""
    if not spec.needs_corpus:
        return None
    if corpus is None:
        raise ValueError(
            f"method {spec.name!r} compares the image with reference images: pass corpus= (images [R, 3, S, S] in [0, 1], e.g. centre views "
            "of training images, or a xai_ssl.methods.corpus.Corpus; xai_ssl.data.corpus.load_corpus loads a dataset's as the workflow does)"
        )
    return corpus if isinstance(corpus, Corpus) else Corpus.from_images(torch.as_tensor(corpus), seed=seed)


def method_spec(method: str | MethodSpec) -> MethodSpec:
    """A registered method by registry name (the error lists the accepted names)."""
    if isinstance(method, MethodSpec):
        return method
    if not isinstance(method, str):
        raise TypeError(f"method: expected a registered method name, got {type(method).__name__}")
    return get_method(method)


def similarity(encoder: Encoder, x1: Any, x2: torch.Tensor | None = None, family: str = "crop_aug", batch_size: int = 32) -> torch.Tensor:
    """cos(f(x1), f(x2)), the score every method explains, of one pair (a 0-d tensor) or a batch [B] (Views: the family's pair)."""
    from xai_ssl.engine import cosine, embed_batched

    batch = _as_batch(x1, x2, family, None, "similarity")
    dev, dtype = _device_dtype(encoder, None)
    a, b = batch.a.to(dev, dtype), batch.b.to(dev, dtype)
    sim = cosine(embed_batched(encoder, a, batch_size), embed_batched(encoder, b, batch_size)).cpu()
    return sim[0] if batch.single else sim


def explain(
    encoder: Encoder,
    x1: Any,
    x2: torch.Tensor | None = None,
    method: str | None = None,
    seed: int = 0,
    image_id: str | Sequence[str] | None = None,
    batch_size: int = 32,
    device: str | torch.device | None = None,
    corpus: Any = None,
    key: str | None = None,
    progress: bool = False,
    **params: Any,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Maps (map1, map2) of a registered method for the pair (x1, x2): [h, w] each for one pair, [B, h, w] for a batch.

    ``x1`` may be the :class:`Views` of an image (or a list of them; ``x2`` then stays None): the method's pair
    family picks the inputs as in the workflow (x1, x2 or x1 and the interpolation view). ``params`` override the
    method's defaults and are resolved for the image size as in the config (unknown names are refused, listing
    the accepted ones). Random draws come from ``image_seed(seed, image_id, key)`` with ``key`` the config name
    of the method (default: its registry name). ``map2`` is None for single-map methods; image methods
    (feature visualisation) return (image, detail) [.., 3, H, W]. Corpus methods (COCOA, VDSN, embedded
    Grad-CAM) need ``corpus``: images [R, 3, S, S] in [0, 1] or a ``methods.corpus.Corpus``.
    """
    if method is None:
        raise ValueError("explain: name the method (method=...), e.g. 'gradcam'")
    spec = method_spec(method)
    batch = _as_batch(x1, x2, spec.pair_family, image_id, "explain")
    dev, dtype = _device_dtype(encoder, device)
    a, b = batch.a.to(dtype), batch.b.to(dtype)
    resolved = spec.resolve_params(params, a.shape[-1])
    seeds = [image_seed(seed, i, key or spec.name) for i in batch.ids]
    chunk = max(1, batch_size) if spec.kind == "image" else None  # as the feature_visualisation stage
    m1, m2 = explain_batches(encoder, spec, a, b, resolved, seeds, batch.ids, dev, batch_size, _corpus(spec, corpus, seed), chunk, True, progress, key or spec.name)
    if batch.single:
        return m1[0], (m2[0] if m2 is not None else None)
    return m1, m2


def score(
    encoder: Encoder,
    x1: Any,
    x2: torch.Tensor | None = None,
    maps: Any = None,
    metrics: Sequence[str] | Mapping[str, dict[str, Any] | None] = DEFAULT_METRICS,
    method: str | None = None,
    seed: int = 0,
    image_id: str | Sequence[str] | None = None,
    batch_size: int = 32,
    device: str | torch.device | None = None,
    corpus: Any = None,
    key: str | None = None,
    method_params: dict[str, Any] | None = None,
    mask: np.ndarray | None = None,
    **metric_params: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Metric values and curves of ``maps`` = (map1, map2) (or map1 alone) for the pair (x1, x2) or the Views ``x1``.

    ``metrics``: registry names, or a mapping name -> parameters; ``metric_params`` give a metric's parameters by
    name (``insertion_deletion={"blur_kernel": 11}``). Parameters are resolved for the image size as in the config.
    ``method`` (registry name; with ``method_params``, ``key`` and ``corpus`` as given to :func:`explain`) picks the
    pair family of Views and is what max-sensitivity and the randomisation check re-run. ``mask`` [S, S] or
    [B, S, S]: label masks of x1 for the localisation metrics (Views carry theirs). Returns ({column: value},
    {curve: [T+1]}) for one pair, arrays over the batch for a batch; NA values are NaN.
    """
    from xai_ssl.scoring import resolve_metrics, score_attributions

    spec = method_spec(method) if method is not None else None
    family = spec.pair_family if spec is not None else "crop_aug"
    batch = _as_batch(x1, x2, family, image_id, "score")
    dev, dtype = _device_dtype(encoder, device)
    if maps is None:
        raise ValueError("score: pass maps=(map1, map2) as returned by explain (map2 None for single-map methods)")
    m1, m2 = (maps if isinstance(maps, (tuple, list)) else (maps, None))
    m1 = torch.as_tensor(m1).float().cpu()
    m2 = torch.as_tensor(m2).float().cpu() if m2 is not None else None
    if batch.single:
        m1, m2 = m1[None], (m2[None] if m2 is not None else None)
    if m1.shape[0] != len(batch.ids):
        raise ValueError(f"score: {len(batch.ids)} images but {m1.shape[0]} maps")
    size = batch.a.shape[-1]
    requested = dict(metrics) if isinstance(metrics, Mapping) else {name: None for name in metrics}
    for name, p in metric_params.items():
        if name not in requested:
            requested[name] = None
        requested[name] = {**(requested[name] or {}), **(p or {})}
    specs = resolve_metrics(requested, size)
    if batch.views is not None:
        pairs = batch.views
        given = _masks(mask, batch.single)
        pairs = Pairs(pairs.image_ids, pairs.indices, pairs.x1.to(dtype), pairs.x2.to(dtype), pairs.xt.to(dtype), pairs.mask1 if given is None else given, {},
                      pairs.has_mask1 if given is None else None)
    else:  # the given inputs are the explained pair: stored as (x1, x2) of the crop_aug family
        pairs = Pairs(batch.ids, np.arange(len(batch.ids)), batch.a.to(dtype), batch.b.to(dtype), batch.b.to(dtype), _masks(mask, batch.single), {})
        family = "crop_aug"
    resolved = spec.resolve_params(method_params, size) if spec is not None else {}
    attributions = Attributions(batch.ids, pairs.indices, m1, m2, {})
    table, curves = score_attributions(
        encoder, pairs, attributions, family, specs, dev, batch_size, progress=False, method=spec, method_params=resolved,
        method_key=key or (spec.name if spec is not None else None), seed=seed, corpus=_corpus(spec, corpus, seed) if spec is not None and corpus is not None else None,
    )
    columns = [c for c in table.columns if c != "image_id"]
    if batch.single:
        return {c: float(table[c].iloc[0]) for c in columns}, {k: v[0] for k, v in curves.items()}
    return {c: table[c].to_numpy(dtype=np.float64) for c in columns}, curves


def _masks(mask: np.ndarray | None, single: bool) -> np.ndarray | None:
    """Label masks [B, S, S] uint8 from [S, S] (one image) or [B, S, S]."""
    if mask is None:
        return None
    m = np.asarray(mask, dtype=np.uint8)
    return m[None] if single and m.ndim == 2 else m

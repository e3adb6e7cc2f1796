"""LoRA adapters: small folders that change a base model, merged into its weights when it loads.

An adapter folder (written by ``foley train finetune --lora RANK``) is peft's own layout plus a card::

    adapter_config.json          peft's LoraConfig (rank, alpha, target modules)
    adapter_model.safetensors    the LoRA matrices (float16), peft's key names (``...q_proj.lora_A.weight``)
    foley_adapter.json           the card: base model (name, family, weight hash), rank, targets, data summary
                                 (clips, minutes, captions source, licence), training (steps, minutes)
    README.md                    the card in words
    vae_adapter_model.safetensors, vae_adapter_config.json
                                 optional (``--vae``): a LoRA on the VAE's decoder for sounds the base VAE
                                 reconstructs poorly, merged into ``gen.vae_lora_target()`` at the same scale

``PeftModel.from_pretrained(decoder, folder)`` / diffusers' ``unet.load_lora_adapter`` read it too. foley merges
adapters into the weights at load time (peft's ``merge_and_unload``), so generation runs the plain network at
the base model's speed. A model name may carry adapters: ``starter+my-sounds@0.8+other`` (``NAME+ADAPTER[@SCALE]``,
an adapter by folder or by its name under ``models/``); ``foley.load("starter", lora=[("models/my-sounds", 0.8)])``
says the same. The generator's weight hash then names the adapters and scales (provenance, caches).
Importing this module imports no torch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import ModelError

CARD = "foley_adapter.json"
WEIGHTS = "adapter_model.safetensors"
CONFIG = "adapter_config.json"
VAE_WEIGHTS, VAE_CONFIG = "vae_adapter_model.safetensors", "vae_adapter_config.json"
ADAPTER_FORMAT = 1


def is_adapter(folder: str | os.PathLike) -> bool:
    return (Path(folder) / CARD).is_file()


def read_card(folder: str | os.PathLike) -> dict:
    """An adapter folder's card (one-line :class:`ModelError` when it is not one)."""
    folder = Path(folder)
    try:
        card = json.loads((folder / CARD).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ModelError(f"{folder}: not a LoRA adapter folder (no readable {CARD}: {type(e).__name__}); make one "
                         "with `foley train finetune --lora 8 ...`") from None
    if not isinstance(card, dict) or not isinstance(card.get("base"), dict):
        raise ModelError(f"{folder / CARD}: not an adapter card (no 'base' entry)")
    if int(card.get("format", 1)) > ADAPTER_FORMAT:
        raise ModelError(f"{folder}: adapter format {card['format']} is newer than this foley reads "
                         f"({ADAPTER_FORMAT}); update foley")
    return card


def locate(name: str | os.PathLike) -> Path:
    """An adapter by folder, or by name under the models folder (``my-sounds`` -> ``models/my-sounds``)."""
    from .paths import models_dir

    p = Path(name).expanduser()
    for cand in (p, models_dir() / str(name)):
        if cand.is_dir() and is_adapter(cand):
            return cand
    if p.is_dir() and (p / "foley.json").is_file():
        raise ModelError(f"{p}: a complete model folder, not an adapter; load it as the model itself "
                         f"(foley generate -m {p})")
    raise ModelError(f"adapter '{name}' not found: not an adapter folder and not one under {models_dir()} "
                     "(see `foley models list`)")


def parse_scale(text: str, where: str) -> float:
    try:
        scale = float(text)
    except ValueError:
        raise ModelError(f"{where}: adapter scale '{text}' is not a number (e.g. my-sounds@0.8)") from None
    if not -4.0 <= scale <= 4.0:
        raise ModelError(f"{where}: adapter scale {scale:g} is outside -4..4")
    return scale


def split_spec(spec: str) -> tuple[str, list[tuple[str, float]]]:
    """``"starter+my-sounds@0.8+other"`` -> ``("starter", [("my-sounds", 0.8), ("other", 1.0)])``; a string that
    is an existing folder, or has no ``+``, is a plain model name."""
    if "+" not in spec or Path(spec).expanduser().is_dir():
        return spec, []
    base, *parts = spec.split("+")
    adapters = []
    for part in parts:
        name, at, scale = part.rpartition("@") if "@" in part else (part, "", "")
        if not name.strip() or not base.strip():
            raise ModelError(f"model '{spec}': use NAME+ADAPTER[@SCALE] (e.g. starter+my-sounds@0.8)")
        adapters.append((name.strip(), parse_scale(scale, f"model '{spec}'") if at else 1.0))
    return base.strip(), adapters


def join_spec(base: str, adapters: list[tuple[str, float]]) -> str:
    return "+".join([base] + [f"{a}" if s == 1.0 else f"{a}@{s:g}" for a, s in adapters])


def weight_tag(base_hash: str, adapters) -> str:
    """The weight hash of a base with merged adapters: ``base+adapterhash@scale...`` (the base hash alone without)."""
    return "+".join([base_hash] + [f"{a['hash']}@{a['scale']:g}" for a in adapters])


def adapter_hash(folder: Path) -> str:
    from .hashing import folder_hash

    return folder_hash(folder)


def check_base(card: dict, folder: Path, family: str, base_hash: str, base_name: str) -> None:
    """One line when the adapter was trained on another base model (family or weight hash)."""
    base = card["base"]
    if base.get("family") != family:
        raise ModelError(f"adapter {folder} is for a '{base.get('family')}' model ({base.get('name')}), not this "
                         f"'{family}' model ({base_name})")
    if base.get("weight_hash") != base_hash:
        raise ModelError(f"adapter {folder} was trained on {base.get('name')} (weights {base.get('weight_hash')}); "
                         f"'{base_name}' has weights {base_hash}: load it on its own base, or train it again on "
                         f"this one (foley train finetune --from {base_name})")


def apply(gen, adapters, name: str = "") -> None:
    """Merge ``adapters`` ([(folder or name, scale), ...]) into a loaded generator's weights (in place).

    The generator names the network its adapters change (``gen.lora_target()``); every adapter is checked against
    the base's family and weight hash first. Afterwards ``gen.adapters`` lists them (folder, name, hash, scale)."""
    if not adapters:
        return
    target = gen.lora_target() if hasattr(gen, "lora_target") else None
    if target is None:
        raise ModelError(f"model '{name or gen.card.name}' ({gen.card.family}) takes no LoRA adapters")
    if getattr(gen, "adapters", ()):
        raise ModelError(f"model '{name or gen.card.name}' already has adapters merged; load the base again")
    base_hash = gen.weight_hash()
    found = []
    for ref, scale in adapters:
        folder = locate(ref)
        card = read_card(folder)
        check_base(card, folder, gen.card.family, base_hash, name or gen.card.name)
        found.append({"folder": str(folder), "name": folder.name, "hash": adapter_hash(folder),
                      "scale": float(scale), "card": card})
    with_vae = [a for a in found if (Path(a["folder"]) / VAE_WEIGHTS).is_file()]
    decoder = gen.vae_lora_target() if with_vae and hasattr(gen, "vae_lora_target") else None
    if with_vae and decoder is None:
        raise ModelError(f"adapter {with_vae[0]['folder']} carries a VAE decoder adapter, which model "
                         f"'{name or gen.card.name}' cannot take")
    merge(target, found)
    if with_vae:
        merge(decoder, with_vae, weights=VAE_WEIGHTS, config=VAE_CONFIG)
    gen.adapters = tuple({k: v for k, v in a.items() if k != "card"} for a in found)


def lora_config(folder: Path, config: str = CONFIG):
    from peft import LoraConfig

    try:
        cfg = json.loads((folder / config).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ModelError(f"{folder}: missing or invalid {config} ({type(e).__name__})") from None
    known = set(LoraConfig.__dataclass_fields__)
    return LoraConfig(**{k: v for k, v in cfg.items() if k in known and k not in ("peft_type", "task_type")})


def merge(module, adapters: list[dict], weights: str = WEIGHTS, config: str = CONFIG) -> None:
    """Inject every adapter (peft), set each one's scale, merge them all into the base weights and unload
    (``weights``/``config``: the file names in each adapter folder)."""
    import torch
    from peft import set_peft_model_state_dict
    from peft.tuners.lora import LoraLayer, LoraModel
    from safetensors.torch import load_file

    names = [f"a{i}" for i in range(len(adapters))]
    tuner = None
    for name, a in zip(names, adapters, strict=True):
        folder = Path(a["folder"])
        cfg = lora_config(folder, config)
        try:
            state = load_file(str(folder / weights))
        except (OSError, ValueError, RuntimeError) as e:
            raise ModelError(f"{folder / weights}: unreadable ({' '.join(str(e).split())[:120]})") from None
        if tuner is None:
            tuner = LoraModel(module, {name: cfg}, name)
        else:
            tuner.peft_config[name] = cfg
            tuner.inject_adapter(module, name)
        dtype = next(module.parameters()).dtype
        result = set_peft_model_state_dict(module, {k: v.to(dtype) for k, v in state.items()}, adapter_name=name)
        missing = [k for k in getattr(result, "missing_keys", []) if f".{name}." in k or k.endswith(f".{name}")]
        if missing or getattr(result, "unexpected_keys", None):
            raise ModelError(f"{folder}: the adapter's layers do not match the base network "
                             f"({(missing or result.unexpected_keys)[0]})")
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, LoraLayer):
                for name, a in zip(names, adapters, strict=True):
                    if name in m.scaling:
                        m.set_scale(name, a["scale"])
        tuner.merge_and_unload(adapter_names=names)
    module.eval()


def save(module, folder: Path, config, card: dict, readme: str) -> Path:
    """Write an adapter folder from a peft-injected ``module`` (its LoRA weights in float16), atomically per file."""
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    from .fsutil import atomic_path, write_json_atomic

    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").half().contiguous() for k, v in get_peft_model_state_dict(module).items()}
    with atomic_path(folder / WEIGHTS) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt", "base": card["base"]["name"],
                                             "base_weight_hash": card["base"]["weight_hash"]})
    cfg = config.to_dict()
    cfg["target_modules"] = sorted(cfg["target_modules"]) if isinstance(cfg.get("target_modules"), (set, list)) \
        else cfg.get("target_modules")
    write_json_atomic(folder / CONFIG, json.loads(json.dumps(cfg, default=lambda o: sorted(o) if isinstance(
        o, set) else str(o))))
    write_json_atomic(folder / CARD, {"format": ADAPTER_FORMAT, **card})
    with atomic_path(folder / "README.md") as tmp:
        tmp.write_text(readme, encoding="utf-8")
    return folder


def found(root: str | os.PathLike | None = None) -> list[tuple[Path, dict]]:
    """The adapters under the models folder (one level down): (folder, card), sorted by name; unreadable skipped."""
    from .paths import models_dir

    root = Path(root) if root is not None else models_dir()
    out = []
    if not root.is_dir():
        return out
    for sub in sorted(root.iterdir()):
        if sub.is_dir() and is_adapter(sub):
            try:
                out.append((sub, read_card(sub)))
            except ModelError:
                continue
    return out

"""Load and save model folders: standard Hugging Face folders, local paths or hub ids.

Saving is atomic: everything goes into a temporary sibling folder that is renamed into place, so a
killed process never leaves a half-written model where a complete one is expected.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from r1zero.errors import UserError


def check_model_folder(path: str | Path) -> None:
    """A local folder must hold a config.json; anything else that is not a path is a hub id."""
    p = Path(path)
    looks_local = p.is_absolute() or str(path).startswith(".") or p.exists() or str(path).count("/") != 1
    if looks_local and not (p / "config.json").is_file():
        raise UserError(f"model folder {str(path)!r} not found or has no config.json; "
                        "expected a Hugging Face model folder (e.g. the output of `r1zero build`)")


def check_weights_readable(path: str | Path) -> None:
    """Every safetensors file of a local model folder opens and holds the bytes its header promises
    (a truncated or overwritten file fails here, in one line, rather than deep inside transformers)."""
    from safetensors import safe_open

    for file in sorted(Path(path).glob("*.safetensors")) if Path(path).is_dir() else []:
        try:
            with safe_open(str(file), framework="pt") as f:
                f.keys()
        except Exception as e:  # noqa: BLE001 - SafetensorError, OSError: not a safetensors file as saved
            raise UserError(f"model file {file} cannot be read ({str(e).splitlines()[0][:120]}); "
                            "expected a complete safetensors file (rebuild or re-download the model)") from None


def resolve_device(name: str = "auto") -> str:
    """`auto` -> cuda when a GPU is present, else cpu; a named cuda device must exist."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device {name!r}: no CUDA device is available here; expected device=auto or cpu")
    return name


def device_line(device: str) -> str:
    """`cuda (NVIDIA H200)` or `cpu (16 threads)`: what a run prints in its first lines."""
    import torch

    if device.startswith("cuda"):
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return f"cpu ({torch.get_num_threads()} threads)"


def load_tokenizer(path: str | Path):
    from transformers import AutoTokenizer

    check_model_folder(path)
    tok = AutoTokenizer.from_pretrained(str(path))
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(path: str | Path, dtype: str = "float32", device: str = "auto"):
    """The model in eval mode on `device` (auto: CUDA when present), with the grouped MoE kernel where
    the architecture has one."""
    import torch
    from transformers import AutoModelForCausalLM

    check_model_folder(path)
    check_weights_readable(path)
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=getattr(torch, dtype))
    set_fast_experts(model)
    return model.to(resolve_device(device)).eval()


def with_lora(model, rank: int, alpha: int):
    """`model` wrapped with LoRA adapters (peft) on every linear layer; the base weights freeze."""
    from peft import LoraConfig, get_peft_model

    return get_peft_model(model, LoraConfig(r=rank, lora_alpha=alpha, target_modules="all-linear",
                                            lora_dropout=0.0))


def set_fast_experts(model) -> None:
    """transformers loops over experts in Python by default; `grouped_mm` is faster where it counts.

    Measured once on 2 idle CPU cores with the tiny DeepSeek-V3 (2026-11-28): generation 9.6k tok/s
    grouped_mm vs 6.4k eager vs 2.2k batched_mm; training within 5% of eager (batched_mm 40x slower).
    """
    if getattr(model.config, "n_routed_experts", None) and hasattr(model, "set_experts_implementation"):
        model.set_experts_implementation("grouped_mm")


def save_model_folder(model, tokenizer, out_dir: str | Path, readme: str | None = None) -> Path:
    """Write model + tokenizer (+ README.md) to `out_dir` atomically."""
    out = Path(out_dir)
    tmp = out.with_name(out.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if readme:
        (tmp / "README.md").write_text(readme)
    replace_dir(tmp, out)
    return out


def replace_dir(tmp: Path, out: Path) -> None:
    """Rename `tmp` onto `out`; an existing `out` is moved aside first and removed after."""
    old = out.with_name(out.name + f".old-{os.getpid()}")
    if out.exists():
        os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)

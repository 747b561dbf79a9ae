"""A built model folder is a standard Hugging Face folder: it reloads offline, ids and logits intact."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from r1zero.models.build import kv_cache_bytes_per_token
from r1zero.tasks.arithmetic import ArithmeticGenerator, corpus_line
from tests.conftest import build_tiny

TEXTS = [
    "123+59=<think>3+9+0=12>2;2+5+1=8>82;1+0+0=1>182</think><answer>182</answer>",
    "A conversation between User and Assistant. User: 17*3. Assistant: <think> 7*3+0=21 </think>",
    "plain words, punctuation!? and unicode: é ü 数学",
]


def test_tokenizer_ids_round_trip_after_reload(tiny_model):
    import random

    from r1zero.models.build import train_tokenizer

    reloaded = AutoTokenizer.from_pretrained(str(tiny_model))
    original = train_tokenizer(384, seed=0)  # the same training as the folder's
    rng = random.Random(1)
    gen = ArithmeticGenerator(1, 5)
    texts = TEXTS + [corpus_line(gen.problem(rng), rng, 0.3, 0.3) for _ in range(50)]
    for text in texts:
        ids = original(text, add_special_tokens=False)["input_ids"]
        assert reloaded(text, add_special_tokens=False)["input_ids"] == ids
        assert reloaded.decode(ids) == text
    digits = reloaded.convert_ids_to_tokens(reloaded("40213", add_special_tokens=False)["input_ids"])
    assert digits == list("40213")
    for tag in ["<think>", "</think>", "<answer>", "</answer>"]:
        assert len(reloaded(tag, add_special_tokens=False)["input_ids"]) == 1


def test_folder_has_chat_template_and_generation_config(tiny_model):
    tok = AutoTokenizer.from_pretrained(str(tiny_model))
    text = tok.apply_chat_template([{"role": "user", "content": "2+2"}], tokenize=False, add_generation_prompt=True)
    assert text == "User: 2+2\nAssistant: "
    gen = json.loads((tiny_model / "generation_config.json").read_text())
    assert gen["eos_token_id"] == tok.eos_token_id
    assert json.loads((tiny_model / "config.json").read_text())["model_type"] == "deepseek_v3"


@pytest.mark.parametrize("arch", ["deepseek_v3", "qwen2", "llama"])
def test_reloaded_model_gives_identical_logits(tmp_path, arch):
    from r1zero.models.build import ModelShape, model_config, train_tokenizer
    from tests.conftest import TINY_SHAPE

    folder = build_tiny(tmp_path / arch, arch=arch)
    torch.manual_seed(0)
    fresh = AutoModelForCausalLM.from_config(model_config(ModelShape(**{**TINY_SHAPE, "arch": arch}),
                                                          train_tokenizer(384, 0)))
    del fresh  # building again must not be needed: the folder alone defines the model
    a = AutoModelForCausalLM.from_pretrained(str(folder)).eval()
    b = AutoModelForCausalLM.from_pretrained(str(folder)).eval()
    ids = torch.randint(0, 380, (2, 12))
    with torch.no_grad():
        assert torch.equal(a(ids).logits, b(ids).logits)
    assert a.config.model_type == arch


def test_saved_folder_reproduces_the_in_memory_model(tmp_path):
    from r1zero.models.build import ModelShape, model_config, train_tokenizer
    from r1zero.models.io import save_model_folder
    from tests.conftest import TINY_SHAPE

    tok = train_tokenizer(384, 0)
    model = AutoModelForCausalLM.from_config(model_config(ModelShape(**TINY_SHAPE), tok)).eval()
    save_model_folder(model, tok, tmp_path / "m")
    reloaded = AutoModelForCausalLM.from_pretrained(str(tmp_path / "m")).eval()
    ids = torch.randint(0, 380, (3, 10))
    with torch.no_grad():
        assert torch.equal(model(ids).logits, reloaded(ids).logits)


def test_mla_caches_less_than_multi_head_attention(tmp_path):
    from transformers import AutoConfig

    mla = AutoConfig.from_pretrained(str(build_tiny(tmp_path / "d")))
    mha = AutoConfig.from_pretrained(str(build_tiny(tmp_path / "l", arch="llama")))
    # MLA: (kv_lora_rank 16 + rope 8) per layer; MHA: 2 * 4 heads * 16 per layer; 2 layers, 2 bytes.
    assert kv_cache_bytes_per_token(mla) == (16 + 8) * 2 * 2
    assert kv_cache_bytes_per_token(mha) == 2 * 4 * 16 * 2 * 2

"""Tiny random decoder (LLaMA) and encoder-decoder (T5) models with a small byte-level BPE
tokenizer trained on the toy vocabulary, and toy text-to-text data for the generation tests."""

from __future__ import annotations

import json
import random
from pathlib import Path

# SmolLM2-135M-Instruct's chat template (ChatML with a default system turn).
CHATML = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
COLOURS = ["red", "green", "blue", "black", "white", "yellow", "pink", "brown"]
OPPOSITE = {"good": "bad", "hot": "cold", "big": "small", "up": "down", "fast": "slow"}
OPPOSITE.update({v: k for k, v in OPPOSITE.items()})
CORPUS = [
    "You are a helpful assistant",
    "Summarize the following article. Translate the following text into German.",
    "Reply with the translation only. Answer the question with a short phrase copied.",
    "Text: Question: the opposite of repeat what colour is it ### User: Assistant:",
    " ".join(COLOURS),
    " ".join(OPPOSITE),
    "der die das rot grün blau schwarz weiß gelb rosa braun gut schlecht",
]


def build_tokenizer(directory: Path, chat_template: str | None = CHATML, eos_suffix: bool = False):
    """Byte-level BPE (GPT-2 style) over the toy corpus; ChatML specials. `eos_suffix`: append
    </s>-style EOS to every encoded text, as T5's tokenizer does."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<pad>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS * 3, trainer)
    if eos_suffix:
        eos_id = tok.token_to_id("<|im_end|>")
        tok.post_processor = processors.TemplateProcessing(
            single="$A <|im_end|>", special_tokens=[("<|im_end|>", eos_id)]
        )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>", pad_token="<pad>"
    )
    if chat_template:
        fast.chat_template = chat_template
    fast.save_pretrained(directory)
    return fast


def build_llama(
    directory: Path, chat_template: str | None = CHATML, init_std: float | None = None
) -> Path:
    """`init_std`: redraw every weight from N(0, init_std); large values give a random model
    that emits varied text instead of repeating one token."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = build_tokenizer(directory, chat_template)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        intermediate_size=64,
        max_position_embeddings=512,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    if init_std:
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(0.0, init_std)
    model.save_pretrained(directory)
    return directory


def build_t5(directory: Path) -> Path:
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    tok = build_tokenizer(directory, chat_template=None, eos_suffix=True)
    config = T5Config(
        vocab_size=len(tok),
        d_model=32,
        d_kv=16,
        d_ff=64,
        num_layers=2,
        num_heads=2,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        decoder_start_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    T5ForConditionalGeneration(config).save_pretrained(directory)
    return directory


def write(path: Path, records: list[dict]) -> Path:
    if path.suffix == ".json":
        path.write_text(json.dumps(records), encoding="utf-8")
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def instruction_records(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    words = list(OPPOSITE)
    out = []
    for _ in range(n):
        w = rng.choice(words)
        out.append({"instruction": "the opposite of", "input": w, "output": OPPOSITE[w]})
    return out


def chat_records(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        a, b = rng.sample(list(OPPOSITE), 2)
        out.append(
            {
                "messages": [
                    {"role": "user", "content": f"the opposite of {a}"},
                    {"role": "assistant", "content": OPPOSITE[a]},
                    {"role": "user", "content": f"the opposite of {b}"},
                    {"role": "assistant", "content": OPPOSITE[b]},
                ]
            }
        )
    return out


def pair_records(n: int, source: str, target: str, seed: int = 0) -> list[dict]:
    """Copy-like text pairs: the target repeats the source's colours in order."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = rng.sample(COLOURS, 3)
        out.append({source: "the " + " ".join(words), target: " ".join(words[:2])})
    return out

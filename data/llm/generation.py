"""Text generation for every method that writes its entities: decoders/, generative/, rag_icl/, dfpo/, bench/.

    model, tokenizer = load_generator("smollm2", adapter="results/decoders/.../model")
    store = PredictionStore(out / "test.outputs.jsonl")
    outputs = generate_stored(model, tokenizer, store, ids, prompts, budgets, batch_size=8)
    outputs = split.generate(model, tokenizer, batch_size=8, store=store)   # a data/llm/units.UnitSplit

One small module, kept whole on purpose: how a model is loaded for generation, how prompts are batched,
padded and decoded, and how outputs survive a killed run are the same questions for fine-tuned decoders,
seq2seq models, few-shot prompting and retrieval-augmented prompting. If each method answered them on its
own, their scores would differ for reasons that have nothing to do with the method (a missing EOS id, a
right-padded causal batch, a different answer budget). What varies between methods (prompts, training,
constraints) stays with them; data/llm/constraints.py's per-prompt constraints plug in here.

Generation is greedy (do_sample=False) with the KV cache. Prompts are sorted by length and batched, so a
batch holds prompts of similar length and little padding; causal LMs are padded on the left of each
prompt's own tokens (the generated tokens then follow every prompt directly; the instruction all prompts
share is computed once and its cache reused), encoder-decoders on the right (their encoder reads
absolute positions). Outputs come back in input order, completions only, special tokens skipped.

Causal LMs decode through decode_batch() below rather than transformers' generate(): generate() keeps a
finished row in the batch, computing pad tokens, until the batch's last row stops, so a batch costs its
longest answer times its width. decode_batch() drops each row (and its KV cache) the step it stops, which
is what makes batching pay when answer lengths vary (an untrained model's run from a few tokens to the
budget). On bench/generation_speed.py (32 typed answers of the untrained SmolLM2) batches of 16 went from
3.6x to 4.0x one prompt at a time, and batches of 32 reach 5.6x: a CPU decode step streams every weight
once, so wide batches pay. Encoder-decoders keep generate().
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Callable, Sequence

import torch
from tqdm.auto import tqdm
from transformers import LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

from data.corpus import FormatError
from data.llm.constraints import ConstrainedLogits, Constraint, restrict
from data.llm.models import resolve


def device() -> torch.device:
    return torch.accelerator.current_accelerator() if torch.accelerator.is_available() else torch.device("cpu")


def is_encoder_decoder(name_or_path: str) -> bool:
    from transformers import AutoConfig

    return bool(getattr(AutoConfig.from_pretrained(resolve(name_or_path)), "is_encoder_decoder", False))


def load_tokenizer(name_or_path: str, encoder_decoder: bool):
    """The tokenizer, with a pad token (the EOS token when it has none, as trl does) and the padding side
    generation needs: left for causal LMs, right for encoder-decoders."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve(name_or_path))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right" if encoder_decoder else "left"
    return tokenizer


def load_model(name_or_path: str, quantization_config=None, dtype: torch.dtype | None = None):
    """A causal LM or an encoder-decoder (the config decides), on the GPU if there is one, in bfloat16 there
    and float32 on a CPU unless `dtype` says otherwise; `quantization_config` (trl's
    get_quantization_config: QLoRA's 4-bit base weights) quantises it with bitsandbytes (CPU too)."""
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    path = resolve(name_or_path)
    auto = AutoModelForSeq2SeqLM if is_encoder_decoder(path) else AutoModelForCausalLM
    dtype = dtype or (torch.bfloat16 if torch.accelerator.is_available() else torch.float32)
    if quantization_config is not None:
        return auto.from_pretrained(path, quantization_config=quantization_config, dtype=dtype,
                                    device_map={"": device()})
    return auto.from_pretrained(path, dtype=dtype).to(device())


def load_generator(model_name: str, adapter: str | None = None, quantization_config=None):
    """(model in eval mode, tokenizer) for generation: any hub id, local path or short name of
    data/llm/models.py, with a peft adapter folder on top if given (merged into the weights unless they are
    quantised). The tokenizer is the adapter folder's when it has one (training saves it there)."""
    encoder_decoder = is_encoder_decoder(model_name)
    model = load_model(model_name, quantization_config)
    tokenizer_from = model_name
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
        if quantization_config is None:
            model = model.merge_and_unload()
        if (Path(adapter) / "tokenizer_config.json").exists():
            tokenizer_from = adapter
    return model.eval(), load_tokenizer(tokenizer_from, encoder_decoder)


def answer_end_id(tokenizer) -> int:
    """The id that ends an answer: what fine-tuning appends to each target and where a constraint closes.
    The tokenizer's EOS, or [SEP] for BERT-style decoders, which have no EOS."""
    end = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
    if end is None:
        raise ValueError(f"{type(tokenizer).__name__} has neither an EOS nor a [SEP] token to end answers with")
    return end


def eos_token_ids(model, tokenizer) -> list[int]:
    """Every id that ends an answer: the generation config's (instruct models often list several) and
    answer_end_id, which fine-tuning appends to each answer."""
    ids = model.generation_config.eos_token_id
    ids = [] if ids is None else [ids] if isinstance(ids, int) else list(ids)
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    if not ids:  # BERT-style decoders end with [SEP]
        ids.append(answer_end_id(tokenizer))
    return ids


def greedy_config(model, tokenizer, max_new_tokens: int):
    """The model's generation config made greedy (sampling settings cleared, so no warnings), with the
    answer's stop ids and the pad token."""
    config = copy.deepcopy(model.generation_config)
    config.do_sample, config.num_beams, config.use_cache = False, 1, True
    config.temperature = config.top_p = config.top_k = None
    config.max_new_tokens, config.max_length = max_new_tokens, None
    config.eos_token_id, config.pad_token_id = eos_token_ids(model, tokenizer), tokenizer.pad_token_id
    return config


class RowBudgets(StoppingCriteria):
    """A stopping criterion that ends each row of a batch at its own max_new_tokens (transformers then
    pads the finished rows until the whole batch is done)."""

    def __init__(self, budgets: Sequence[int], prompt_width: int):
        self.budgets, self.width = torch.tensor(budgets), prompt_width

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
        return (input_ids.shape[1] - self.width) >= self.budgets.to(input_ids.device)


def shared_prefix(token_ids: Sequence[Sequence[int]]) -> int:
    """How many leading tokens every prompt shares (the instruction, usually), leaving each at least one."""
    shortest = min(len(ids) for ids in token_ids)
    first = token_ids[0]
    p = 0
    while p < shortest - 1 and all(ids[p] == first[p] for ids in token_ids):
        p += 1
    return p


def batch_inputs(rows: Sequence[Sequence[int]], prefix: Sequence[int], pad_id: int, right: bool):
    """input_ids and attention_mask for prompts = prefix + row: a causal LM's rows are padded between the
    prefix and their own tokens (the mask hides the gap and positions follow the mask, so each prompt reads
    as if it were alone), an encoder's at the end."""
    width = max(len(r) for r in rows)
    ids, mask = [], []
    for r in rows:
        gap = width - len(r)
        ids.append(list(prefix) + (list(r) + [pad_id] * gap if right else [pad_id] * gap + list(r)))
        mask.append([1] * len(prefix) + ([1] * len(r) + [0] * gap if right else [0] * gap + [1] * len(r)))
    return torch.tensor(ids), torch.tensor(mask)


def seq2seq_generate(model, tokenizer, input_ids: torch.Tensor, attention_mask: torch.Tensor, budgets: Sequence[int],
                     constraints: Sequence[Constraint | None] | None = None) -> list[list[int]]:
    """An encoder-decoder's greedy completions (token ids) through transformers' generate(), each row
    stopping at its own budget; the decoder's start token is not part of the answer."""
    config = greedy_config(model, tokenizer, max(budgets))
    processors = None if constraints is None else LogitsProcessorList([ConstrainedLogits(constraints, 1)])
    generated = model.generate(input_ids=input_ids, attention_mask=attention_mask, generation_config=config,
                               logits_processor=processors, stopping_criteria=StoppingCriteriaList([RowBudgets(budgets, 1)]))
    return generated[:, 1:].tolist()


def decode_batch(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, cache, budgets: Sequence[int],
                 stop_ids: Sequence[int], constraints: Sequence[Constraint | None] | None = None,
                 temperature: float = 0.0, generators: Sequence[torch.Generator] | None = None) -> list[list[int]]:
    """Completions (token ids, stop token excluded) of a left-padded causal-LM prompt block, each row ending at a
    stop id or its own budget and leaving the batch then (module docstring). `cache` (or None) holds the KV of
    the block's first columns already (the shared prefix). Same arithmetic as generate(): float32 scores,
    positions counted along the attention mask, the constraints applied before the choice. Greedy, or with
    `temperature` > 0 sampled from softmax(scores / temperature) by the Gumbel-max trick with each row's own
    generator, so a row's answer depends only on its prompt and seed, not on its batch (a resumed run samples
    what an uninterrupted one does)."""
    dev = input_ids.device
    answers: list[list[int]] = [[] for _ in range(input_ids.shape[0])]
    live = list(range(input_ids.shape[0]))  # batch row -> prompt row
    stop = torch.tensor(list(stop_ids), device=dev)
    step_ids = input_ids[:, 0 if cache is None else cache.get_seq_length():]
    while True:
        positions = (attention_mask.cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)[:, -step_ids.shape[1]:]
        result = model(input_ids=step_ids, attention_mask=attention_mask, position_ids=positions,
                       past_key_values=cache, use_cache=True, logits_to_keep=1)
        cache = result.past_key_values
        scores = result.logits[:, -1].float()
        if constraints is not None:
            scores = restrict(scores, [constraints[i] for i in live], [answers[i] for i in live])
        if temperature > 0:
            noise = torch.stack([gumbel(scores.shape[-1], generators[i]) for i in live]).to(dev)
            next_ids = (scores / temperature + noise).argmax(-1)
        else:
            next_ids = scores.argmax(-1)
        stopped = torch.isin(next_ids, stop).tolist()
        keep = []
        for b, (row, token, ended) in enumerate(zip(live, next_ids.tolist(), stopped)):
            if not ended:
                answers[row].append(token)
                if len(answers[row]) < budgets[row]:
                    keep.append(b)
        if not keep:
            return answers
        if len(keep) < len(live):
            index = torch.tensor(keep, device=dev)
            cache.batch_select_indices(index)
            attention_mask, next_ids, live = attention_mask[index], next_ids[index], [live[b] for b in keep]
        attention_mask = torch.cat([attention_mask, attention_mask.new_ones(len(live), 1)], dim=1)
        step_ids = next_ids[:, None]


def gumbel(size: int, generator: torch.Generator) -> torch.Tensor:
    """Gumbel(0, 1) noise: the argmax of scores / T plus it is a sample of softmax(scores / T)."""
    uniform = torch.rand(size, generator=generator).clamp_(1e-20, 1.0)
    return -torch.log(-torch.log(uniform))


def prompt_generator(prompt: str, seed: int) -> torch.Generator:
    """A random stream of its own for one prompt and seed."""
    key = hashlib.sha256(f"{seed}\0{prompt}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(key[:8], "little"))


@torch.inference_mode()
def generate(model, tokenizer, prompts: Sequence[str], max_new_tokens: int | Sequence[int], batch_size: int = 8,
             constraints: Sequence[Constraint | None] | None = None, desc: str = "generate",
             on_batch: Callable[[list[int], list[str]], None] | None = None, temperature: float = 0.0,
             seed: int = 0) -> list[str]:
    """Greedy (or, with `temperature` > 0, sampled: decode_batch) completions of `prompts`, in input order
    (module docstring).

    For a causal LM the tokens every prompt begins with (the instruction) are run once and their KV cache is
    copied into each batch, so only each prompt's own tokens are prefilled (2x faster for 16-token answers
    after a 170-token instruction, with identical outputs). `max_new_tokens` may differ per prompt: each row
    of a batch stops at its own. `constraints` (one per prompt, or None) restrict the next token
    (data.llm.constraints.restrict). `on_batch(positions, outputs)` is called after every batch with the
    positions in `prompts` it finished (PredictionStore writes them to disk there)."""
    n = len(prompts)
    budgets = [max_new_tokens] * n if isinstance(max_new_tokens, int) else list(max_new_tokens)
    if len(budgets) != n or (constraints is not None and len(constraints) != n):
        raise ValueError("max_new_tokens and constraints need one entry per prompt")
    if n == 0:
        return []
    encoder_decoder = bool(getattr(model.config, "is_encoder_decoder", False))
    if encoder_decoder and temperature > 0:
        raise ValueError("sampled generation is for causal LMs here; encoder-decoders decode greedily")
    tokenizer.padding_side = "right" if encoder_decoder else "left"
    token_ids = tokenizer(list(prompts)).input_ids
    order = sorted(range(n), key=lambda i: -len(token_ids[i]))  # longest first: a batch too big fails at once
    outputs: list[str | None] = [None] * n
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    p = 0 if encoder_decoder else shared_prefix(token_ids)
    prefix = token_ids[0][:p]
    prefix_cache = model(torch.tensor([prefix], device=dev), use_cache=True).past_key_values if p else None
    stop_ids = eos_token_ids(model, tokenizer)
    with tqdm(total=n, desc=desc, unit="prompt") as bar:
        for k in range(0, n, batch_size):
            rows = order[k:k + batch_size]
            input_ids, attention_mask = batch_inputs([token_ids[i][p:] for i in rows], prefix,
                                                     tokenizer.pad_token_id, encoder_decoder)
            cache = None
            if prefix_cache is not None:
                cache = copy.deepcopy(prefix_cache)
                cache.batch_repeat_interleave(len(rows))
            row_constraints = None
            if constraints is not None and any(constraints[i] is not None for i in rows):
                row_constraints = [constraints[i] for i in rows]
            row_budgets = [budgets[i] for i in rows]
            if encoder_decoder:
                answers = seq2seq_generate(model, tokenizer, input_ids.to(dev), attention_mask.to(dev), row_budgets,
                                           row_constraints)
            else:
                generators = [prompt_generator(prompts[i], seed) for i in rows] if temperature > 0 else None
                answers = decode_batch(model, input_ids.to(dev), attention_mask.to(dev), cache, row_budgets,
                                       stop_ids, row_constraints, temperature, generators)
            texts = [tokenizer.decode(ids[:budget], skip_special_tokens=True)
                     for ids, budget in zip(answers, row_budgets)]
            for i, text in zip(rows, texts):
                outputs[i] = text
            if on_batch is not None:
                on_batch(rows, texts)
            bar.update(len(rows))
    model.train(was_training)
    return outputs  # type: ignore[return-value]


class PredictionStore:
    """Raw outputs, one JSON object per line ({"id": unit id, "output": text, ...}), appended and flushed
    batch by batch, so a killed run loses at most the batch it was generating: a rerun reads the file and
    skips the ids it holds. A half-written last line (the kill came mid-write) is dropped with a warning
    and cut from the file; any other unreadable line, or an id seen twice, is an error naming file:line.

    `settings` (what made the outputs: model, format, constraints, budgets, prompt...) are written beside
    the file (NAME.settings.json); outputs are reused only under the same settings, otherwise opening the
    store is a FormatError naming what differs, unless `overwrite` starts it afresh."""

    def __init__(self, path: str | Path, settings: dict | None = None, overwrite: bool = False):
        self.path = Path(path)
        self.settings = None if settings is None else json.loads(json.dumps(settings, default=str))
        self.settings_path = self.path.with_suffix(".settings.json")
        self.records: dict[str, dict] = {}
        if overwrite:
            self.path.unlink(missing_ok=True)
            self.settings_path.unlink(missing_ok=True)
        if self.path.exists():
            self._read()
        if self.records and self.settings is not None:
            self._check_settings()

    def _check_settings(self) -> None:
        stored = json.loads(self.settings_path.read_text()) if self.settings_path.exists() else {}
        differ = sorted(k for k in {*stored, *self.settings} if stored.get(k) != self.settings.get(k))
        if differ:
            said = "; ".join(f"{k}: {stored.get(k, 'not recorded')!r} there, {self.settings.get(k)!r} now"
                             for k in differ)
            raise FormatError(self.path, None, f"holds {len(self.records):,} outputs made with other settings "
                                               f"({said}): use another output folder, or --overwrite True")

    def _read(self) -> None:
        data = self.path.read_bytes()
        lines = data.split(b"\n")
        complete, tail = lines[:-1], lines[-1]  # tail: after the last newline ("" if the file ends with one)
        for line_no, line in enumerate(complete, 1):
            if line.strip():
                self._load(line, line_no)
        if tail.strip():
            try:
                self._load(tail, len(complete) + 1)
            except FormatError as err:
                warnings.warn(f"{self.path}:{len(complete) + 1}: half-written last line dropped "
                              f"(a killed run?): {err.message}", stacklevel=3)
                with open(self.path, "r+b") as fh:
                    fh.truncate(len(data) - len(tail))
                return
            with open(self.path, "ab") as fh:  # a complete record whose newline was cut off
                fh.write(b"\n")

    def _load(self, line: bytes, line_no: int) -> None:
        try:
            record = json.loads(line)
        except (ValueError, UnicodeDecodeError) as err:
            raise FormatError(self.path, line_no, f"invalid JSON: {err}") from None
        if not isinstance(record, dict) or not isinstance(record.get("id"), str) \
                or not isinstance(record.get("output"), str):
            raise FormatError(self.path, line_no, 'expected an object with string "id" and "output"')
        if record["id"] in self.records:
            raise FormatError(self.path, line_no, f"id {record['id']!r} appears twice")
        self.records[record["id"]] = record

    def __contains__(self, unit_id: str) -> bool:
        return unit_id in self.records

    def __len__(self) -> int:
        return len(self.records)

    def add(self, records: Sequence[dict]) -> None:
        """Append records (each with "id" and "output") and flush them to disk."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.records and self.settings is not None:
            self.settings_path.write_text(json.dumps(self.settings, indent=2) + "\n", encoding="utf-8")
        with open(self.path, "a", encoding="utf-8") as fh:
            for record in records:
                if record["id"] in self.records:
                    raise ValueError(f"{self.path}: id {record['id']!r} is already stored")
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
                self.records[record["id"]] = record
            fh.flush()
            os.fsync(fh.fileno())

    def outputs(self) -> dict[str, str]:
        return {i: r["output"] for i, r in self.records.items()}


def generate_stored(model, tokenizer, store: PredictionStore, ids: Sequence[str], prompts: Sequence[str],
                    max_new_tokens: int | Sequence[int], batch_size: int = 8,
                    constraints: Sequence[Constraint | None] | None = None, desc: str = "generate",
                    temperature: float = 0.0, seed: int = 0) -> dict[str, str]:
    """generate() for the prompts whose id the store lacks, each batch stored as it finishes; returns the
    output of every id in `ids`."""
    budgets = [max_new_tokens] * len(ids) if isinstance(max_new_tokens, int) else list(max_new_tokens)
    todo = [k for k, i in enumerate(ids) if i not in store]
    if len(todo) < len(ids):
        print(f"{store.path}: {len(ids) - len(todo):,} of {len(ids):,} outputs already there, "
              f"generating {len(todo):,}", file=sys.stderr)

    def save(rows: list[int], texts: list[str]) -> None:
        store.add([{"id": ids[todo[r]], "output": t, "max_new_tokens": budgets[todo[r]]} for r, t in zip(rows, texts)])

    generate(model, tokenizer, [prompts[k] for k in todo], [budgets[k] for k in todo], batch_size,
             None if constraints is None else [constraints[k] for k in todo], desc, on_batch=save,
             temperature=temperature, seed=seed)
    done = store.outputs()
    return {i: done[i] for i in ids}

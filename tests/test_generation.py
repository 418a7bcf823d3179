"""data/llm/generation.py: batched greedy generation equals one prompt at a time (transformers' generate()) and keeps
the input order, per-prompt budgets and constraints (rows leaving the batch as they stop), encoder-decoders,
resumable outputs (a rerun generates only what is missing; a half-written last line is dropped, other bad lines
are errors), answer budgets and chat prompts. SmolLM2 with budgets of a few tokens: the file runs in well under
a minute."""
from __future__ import annotations

import json
import math

import pytest


from data.corpus import FormatError
from data.llm.formats import get_format
from data.llm.generation import (PredictionStore, generate, generate_stored, greedy_config,
                             load_generator, shared_prefix)
from data.llm.prompts import chat, instruction, prompt
from data.llm.units import answer_budget

PROMPTS = [
    "### Instruction:\nFind every mention of Disease.\n\n### Text:\nAtaxia-telangiectasia (A-T) is a recessive "
    "multi-system disorder caused by mutations in the ATM gene.\n\n### Answer:\n",
    "1, 2, 3,",
    "The capital of France is",
    "Germline mutations in BRCA1 are responsible for most cases of inherited breast and ovarian cancer. In",
]


def test_batched_generation_equals_one_prompt_at_a_time_in_input_order(smollm2):
    model, tokenizer = smollm2
    assert tokenizer.padding_side == "left" and tokenizer.pad_token is not None
    batched = generate(model, tokenizer, PROMPTS, 10, batch_size=4)
    alone = [generate(model, tokenizer, [p], 10, batch_size=1)[0] for p in PROMPTS]
    assert batched == alone
    assert batched[1].startswith(" 4, 5")  # the counting prompt's answer is in its own place
    assert len(set(batched)) == len(PROMPTS)


def plain_generate(model, tokenizer, text: str, max_new_tokens: int) -> str:
    """transformers' generate on one prompt, nothing cached in advance: the reference."""
    batch = tokenizer([text], return_tensors="pt")
    out = model.generate(**batch, generation_config=greedy_config(model, tokenizer, max_new_tokens))
    return tokenizer.decode(out[0, batch["input_ids"].shape[1]:], skip_special_tokens=True)


def test_prompts_sharing_an_instruction_reuse_its_cache_and_answer_as_if_alone(smollm2):
    model, tokenizer = smollm2
    task = instruction(["Disease"], get_format("typed"))
    texts = ["BRCA1 is secreted.", "Germline mutations in BRCA1 cause inherited breast and ovarian cancer.",
             "Ataxia-telangiectasia is a recessive disorder.", "Cancer."]
    prompts = [prompt(task, t) for t in texts]
    assert shared_prefix(tokenizer(prompts).input_ids) > 100  # the instruction, run once
    assert generate(model, tokenizer, prompts, 8, batch_size=4) == \
        [plain_generate(model, tokenizer, p, 8) for p in prompts]


def test_each_prompt_stops_at_its_own_budget_as_transformers_generate_would(smollm2):
    """Rows leave the batch at different steps (decode_batch drops them); the others must not notice."""
    model, tokenizer = smollm2
    budgets = [2, 9, 5, 1]
    out = generate(model, tokenizer, PROMPTS, budgets, batch_size=4)
    assert out == [plain_generate(model, tokenizer, p, n) for p, n in zip(PROMPTS, budgets)]
    for text, n in zip(out, budgets):
        assert len(tokenizer(text, add_special_tokens=False).input_ids) <= n


def test_encoder_decoders_generate_right_padded_batches_like_single_prompts():
    model, tokenizer = load_generator("minilm2minilm")
    assert model.config.is_encoder_decoder and tokenizer.padding_side == "right"
    prompts = ["a short input", "a much longer input with many more words in it than the first one"]
    assert generate(model, tokenizer, prompts, 5, batch_size=2) == \
        [generate(model, tokenizer, [p], 5, batch_size=1)[0] for p in prompts]


def test_a_rerun_generates_only_the_missing_ids(smollm2, tmp_path, decoded_rows):
    model, tokenizer = smollm2
    ids = [f"u{i}" for i in range(len(PROMPTS))]
    path = tmp_path / "test.outputs.jsonl"
    first = generate_stored(model, tokenizer, PredictionStore(path), ids[:2], PROMPTS[:2], 4, batch_size=2)
    assert sum(decoded_rows) == 2
    decoded_rows.clear()
    again = generate_stored(model, tokenizer, PredictionStore(path), ids, PROMPTS, 4, batch_size=2)
    assert sum(decoded_rows) == 2  # u0 and u1 were read back, only u2 and u3 were generated
    assert list(again) == ids and {i: again[i] for i in ids[:2]} == first
    assert again == dict(zip(ids, generate(model, tokenizer, PROMPTS, 4)))
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert sorted(r["id"] for r in lines) == ids and all(r["max_new_tokens"] == 4 for r in lines)


def test_a_half_written_last_line_is_dropped_and_other_bad_lines_are_errors(tmp_path):
    path = tmp_path / "o.jsonl"
    path.write_text('{"id": "a", "output": "x"}\n{"id": "b", "outp')
    with pytest.warns(UserWarning, match=r"o\.jsonl:2: half-written"):
        store = PredictionStore(path)
    assert "a" in store and "b" not in store and len(store) == 1
    store.add([{"id": "b", "output": "y"}])
    assert PredictionStore(path).outputs() == {"a": "x", "b": "y"}

    path.write_text('{"id": "a", "output": "x"}')  # complete, only its newline was lost
    store = PredictionStore(path)
    store.add([{"id": "b", "output": "y"}])
    assert PredictionStore(path).outputs() == {"a": "x", "b": "y"}

    path.write_text('{"id": "a", "output": "x"}\nnot json\n{"id": "b", "output": "y"}\n')
    with pytest.raises(FormatError, match=r"o\.jsonl:2: invalid JSON"):
        PredictionStore(path)
    path.write_text('{"id": "a", "output": "x"}\n{"id": "a", "output": "y"}\n')
    with pytest.raises(FormatError, match=r"o\.jsonl:2: id 'a' appears twice"):
        PredictionStore(path)
    path.write_text('{"id": "a"}\n')
    with pytest.raises(FormatError, match=r"o\.jsonl:1: expected an object"):
        PredictionStore(path)


def test_the_answer_budget_covers_the_longest_gold_answer_with_slack(smollm2):
    _, tokenizer = smollm2
    answers = ["Disease: cancer", "Disease: breast and ovarian cancer, ataxia-telangiectasia", ""]
    longest = max(len(tokenizer(a, add_special_tokens=False).input_ids) for a in answers)
    assert answer_budget(tokenizer, answers) == math.ceil(1.2 * (longest + 1))  # EOS included, rounded up
    assert answer_budget(tokenizer, answers, slack=1.0) == longest + 1
    assert answer_budget(tokenizer, []) == 2  # room for EOS


def test_chat_wraps_a_user_turn_in_the_template_and_leaves_plain_tokenizers_alone(smollm2):
    _, tokenizer = smollm2
    text = chat(tokenizer, "Find the diseases.")
    assert "<|im_start|>user\nFind the diseases.<|im_end|>" in text and text.endswith("<|im_start|>assistant\n")
    _, bert = load_generator("minilm2minilm")
    assert chat(bert, "Find the diseases.") == "Find the diseases."


def test_constrained_answers_parse_and_name_only_input_text(smollm2):
    pytest.importorskip("data.llm.constraints")
    from data.llm.constraints import build
    from data.llm.formats import get_format

    model, tokenizer = smollm2
    texts = ["Ataxia-telangiectasia is a recessive disorder.", "Mutations in BRCA1 cause breast cancer."]
    prompts = [f"### Text:\n{t}\n\n### Answer:\n" for t in texts]
    for name in ("typed", "json"):
        fmt = get_format(name)
        constraints = [build(fmt, t, ["Disease"], tokenizer, 40) for t in texts]
        for out, text in zip(generate(model, tokenizer, prompts, 40, 2, constraints), texts):
            result = fmt.parse(out, text, ["Disease"])
            assert result.well_formed and result.hallucinated == 0, (name, out)


def test_constrained_batches_equal_transformers_generate_with_the_logits_processor(smollm2):
    """Constrained answers close and stop at different steps: batched through decode_batch, they are what
    transformers' generate() with data.llm.constraints.ConstrainedLogits gives one prompt at a time."""
    from transformers import LogitsProcessorList

    from data.llm.constraints import ConstrainedLogits, build

    model, tokenizer = smollm2
    texts = ["Cancer.", "Ataxia-telangiectasia is a recessive disorder.",
             "Germline mutations in BRCA1 cause inherited breast and ovarian cancer."]
    prompts = [prompt(instruction(["Disease"], get_format("typed")), t) for t in texts]
    budgets = [12, 30, 20]
    batched = generate(model, tokenizer, prompts, budgets, 3,
                       [build("typed", t, ["Disease"], tokenizer, n) for t, n in zip(texts, budgets)])
    for answer, text, p, n in zip(batched, texts, prompts, budgets):
        batch = tokenizer([p], return_tensors="pt")
        processor = ConstrainedLogits([build("typed", text, ["Disease"], tokenizer, n)], batch["input_ids"].shape[1])
        alone = model.generate(**batch, generation_config=greedy_config(model, tokenizer, n),
                               logits_processor=LogitsProcessorList([processor]))
        assert answer == tokenizer.decode(alone[0, batch["input_ids"].shape[1]:], skip_special_tokens=True)


def test_sampling_is_seeded_per_prompt_whatever_the_batch(smollm2):
    model, tokenizer = smollm2
    first = generate(model, tokenizer, PROMPTS, 8, batch_size=4, temperature=1.0, seed=3)
    assert generate(model, tokenizer, PROMPTS, 8, batch_size=1, temperature=1.0, seed=3) == first  # batch-free
    assert generate(model, tokenizer, PROMPTS[:2], 8, batch_size=2, temperature=1.0, seed=3) == first[:2]  # resumable
    assert generate(model, tokenizer, PROMPTS, 8, batch_size=4, temperature=1.0, seed=4) != first
    greedy = generate(model, tokenizer, PROMPTS, 8, batch_size=4)
    assert generate(model, tokenizer, PROMPTS, 8, batch_size=4, temperature=1e-6, seed=3) == greedy  # T -> 0

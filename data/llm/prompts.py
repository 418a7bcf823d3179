"""What a generating model reads: the instruction, the prompt around one input, few-shot examples, and the
chat template of instruct models. Every generating method builds its prompts here, so that a score
difference between methods never comes from a prompt written twice.

  instruction   the task in plain English: the entity types (the registry's order, spelled as in the gold
                labels) and, in full, the exact answer format with a tiny example (data/llm/formats `explain`)
  prompt        PROMPT filled with an instruction and one input text (the answer follows it): what
                fine-tuned models are trained and run on
  few_shot      the instruction, k solved examples in PROMPT's sections, then the query (seed 2)
  repair        seed 3's DMCR: an answer that did not parse, and the text it was about, to be rewritten
  chat          a user turn in the tokenizer's chat template, for prompting instruct models
"""
from __future__ import annotations

from typing import Sequence

from data.llm.formats import OutputFormat

TASK = "### Instruction:\n{instruction}\n\n"
EXAMPLE = "### Text:\n{input}\n\n### Answer:\n"  # one input and the place of its answer
PROMPT = TASK + EXAMPLE


INSTRUCTIONS = ("full", "brief")


def instruction(types: Sequence[str], fmt: OutputFormat, style: str = "full") -> str:
    """The task for one prompt. full: which types to find and how to write the answer, with an example (what
    a prompted model needs). brief: the task and the types only, for fine-tuning, where the model learns the
    format from its targets: a BC5CDR sentence's prompt falls from 217 to 62 SmolLM2 tokens on average,
    and training and generation cost about that much less."""
    kinds = "this entity type" if len(types) == 1 else "these entity types"
    task = f"Find every mention of {kinds} in the text: {', '.join(types)}."
    if style == "brief":
        return task
    if style != "full":
        raise ValueError(f"instruction style {style!r} is not one of {INSTRUCTIONS}")
    return (f"{task} Use the type names exactly as written here, and copy every mention exactly as it is "
            f"written in the text.\n{fmt.explain(types)}")


def prompt(instruction_text: str, input_text: str) -> str:
    """The full prompt a model is given (its answer follows)."""
    return PROMPT.format(instruction=instruction_text, input=input_text)


def few_shot(instruction_text: str, examples: Sequence[tuple[str, str]], input_text: str) -> str:
    """A few-shot prompt: the instruction, k solved examples (input, answer) in PROMPT's sections, then the
    query; with no examples it is exactly prompt(). Each example repeats PROMPT's Text/Answer sections, so
    the query reads as one more of them and the model's answer follows it."""
    solved = "".join(EXAMPLE.format(input=text) + answer + "\n\n" for text, answer in examples)
    return TASK.format(instruction=instruction_text) + solved + EXAMPLE.format(input=input_text)


REPAIR = "### Instruction:\n{instruction}\n\n### Text:\n{input}\n\n### Answer to rewrite:\n{answer}\n\n### Answer:\n"


def repair(types: Sequence[str], fmt: OutputFormat, input_text: str, answer: str) -> str:
    """A prompt asking a (second) model to rewrite a malformed answer in the format (seed 3's DMCR): the format's
    explanation, the text and the broken answer; the rewritten answer follows."""
    task = (f"The answer below was meant to list the mentions of {', '.join(types)} in the text, but it is not "
            f"written in the required format. Rewrite it in that format, keeping only mentions that are written in "
            f"the text exactly as in the text.\n{fmt.explain(types)}")
    return REPAIR.format(instruction=task, input=input_text, answer=answer)


def chat(tokenizer, user_text: str) -> str:
    """The user text as the tokenizer's chat template renders one user turn followed by the generation
    prompt (for prompting instruct models zero- or few-shot); the text itself if it has no template.
    Fine-tuned models are given prompt() as is: they were trained on it."""
    if not getattr(tokenizer, "chat_template", None):
        return user_text
    return tokenizer.apply_chat_template([{"role": "user", "content": user_text}], tokenize=False,
                                         add_generation_prompt=True)

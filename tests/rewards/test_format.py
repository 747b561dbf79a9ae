"""The strict and lenient format rewards against hand-written completions."""

from r1zero.rewards import get

CASES = [  # completion, strict, lenient
    ("<think>2+2=4</think><answer>4</answer>", 1.0, 1.0),
    ("  <think>\n2+2=4\n</think>\n\n<answer> 4 </answer>\n", 1.0, 1.0),
    ("<think>a</think><answer>4</answer>.", 0.0, 1.0),  # text after the answer
    ("Sure! <think>a</think><answer>4</answer>", 0.0, 1.0),  # text before
    ("<think>a</think>b<answer>4</answer>", 0.0, 1.0),  # text between
    ("a</think><answer>4</answer>", 0.0, 1.0),  # opening <think> missing
    ("<think>a</think><answer> </answer>", 0.0, 0.0),  # empty answer
    ("<think>a</think><think>b</think><answer>4</answer>", 0.0, 1.0),  # a tag twice
    ("<think>a</think><answer>4</answer><answer>5</answer>", 0.0, 1.0),
    ("<answer>4</answer><think>a</think>", 0.0, 0.0),  # wrong order
    ("<answer>4</answer>", 0.0, 0.0),  # no reasoning
    ("<think>a<answer>4</answer></think>", 0.0, 0.0),  # answer inside think
    ("", 0.0, 0.0),
]


def test_strict_and_lenient_cases():
    completions = [c for c, _, _ in CASES]
    assert get("format")(["Q"] * len(CASES), completions) == [s for _, s, _ in CASES]
    assert get("format_lenient")(["Q"] * len(CASES), completions) == [s for _, _, s in CASES]


def test_a_prompt_that_opens_think_counts_as_the_opening_tag():
    prompts = ["User: 2+2? Assistant: <think>", "User: 2+2? Assistant: <think>\n", "User: 2+2? Assistant:"]
    completions = ["2+2=4</think><answer>4</answer>"] * 3
    assert get("format")(prompts, completions) == [1.0, 1.0, 0.0]
    # A completion that writes the tag again is still well formed.
    assert get("format")(prompts[:1], ["<think>2+2=4</think><answer>4</answer>"]) == [1.0]


def test_conversational_form():
    completion = [{"role": "assistant", "content": "<think>x</think><answer>y</answer>"}]
    prompt = [{"role": "user", "content": "q"}]
    assert get("format")([prompt], [completion]) == [1.0]

"""`build.tool_tokens`: the tool tags as single tokens and a calculator call in ~20 tokens; off by default."""

from r1zero.models.build import train_tokenizer
from r1zero.tasks.arithmetic import Problem
from r1zero.tasks.tool_corpus import tool_solution, turn_token_ids
from r1zero.tools.format import TOOL_TOKENS


def test_tool_tokens_make_the_tags_single_tokens_and_the_call_short():
    plain, tagged = train_tokenizer(384, 0), train_tokenizer(384, 0, tool_tokens=True)
    assert len(tagged) == len(plain) + len(TOOL_TOKENS)
    assert all(len(tagged(t, add_special_tokens=False)["input_ids"]) == 1 for t in TOOL_TOKENS)
    assert all(len(plain(t, add_special_tokens=False)["input_ids"]) > 1 for t in TOOL_TOKENS)  # default unchanged
    doc = "347*86=" + tool_solution(Problem(347, "*", 86))
    ids = turn_token_ids(tagged, doc)
    assert ids == tagged(doc, add_special_tokens=False)["input_ids"]  # single-token tags: no merge across turns
    assert tagged.decode(ids) == doc and len(ids) < 50 and len(turn_token_ids(plain, doc)) > 100

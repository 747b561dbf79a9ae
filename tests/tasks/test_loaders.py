"""Loaders: the shared benchmarks, answer extraction, bad rows, generic files and HF datasets."""

from __future__ import annotations

import csv
import json

import pytest

from r1zero import tasks
from r1zero.errors import UserError
from r1zero.tasks.base import BadRow
from r1zero.tasks.loaders import gsm8k_answer, last_boxed
from tests.tasks.helpers import need


def test_gsm8k_test_split(shared_data):
    need(shared_data, "gsm8k/test.jsonl")
    task = tasks.get("gsm8k", data_dir=str(shared_data))
    rows = task.examples("test")
    assert len(rows) == 1319 and task.skipped["test"] == 0
    assert all("," not in ex.answer for ex in rows)
    assert all(float(ex.answer) == int(ex.answer) for ex in rows)  # GSM8K answers are integers
    assert rows[0].answer == "18" and rows[0].prompt.startswith("Janet’s ducks lay 16 eggs")
    assert rows[1].answer == "3"
    # The SOURCE notes 14 test answers with thousands separators and 2 negative ones.
    raw = [json.loads(line)["answer"].rsplit("####", 1)[1].strip()
           for line in (shared_data / "gsm8k/test.jsonl").open()]
    with_commas = [i for i, a in enumerate(raw) if "," in a]
    assert len(with_commas) == 14
    assert all(rows[i].answer == raw[i].replace(",", "") for i in with_commas)
    assert sum(ex.answer.startswith("-") for ex in rows) == 2
    assert task.rewards == ("math", "format") and task.splits == ("train", "test")


def test_gsm8k_train_is_the_default_split(shared_data):
    need(shared_data, "gsm8k/train.jsonl")
    rows = tasks.get("gsm8k", data_dir=str(shared_data)).examples()
    assert len(rows) == 7473 and rows[0].answer == "72"


def test_math500_rows_have_answers_and_levels(shared_data):
    need(shared_data, "math500/test.jsonl")
    task = tasks.get("math500", data_dir=str(shared_data))
    rows = task.examples()
    assert len(rows) == 500 and all(ex.answer for ex in rows)
    assert rows[0].answer == r"\left( 3, \frac{\pi}{2} \right)" and rows[0].meta["id"] == "test/precalculus/807.json"
    assert {ex.meta["difficulty"] for ex in rows} == set(task.levels) == {1, 2, 3, 4, 5}
    assert len(task.examples(level=5)) == 134  # SOURCE.md: levels 1:43, 2:90, 3:105, 4:128, 5:134


def test_math_answer_falls_back_to_the_last_boxed(tmp_path):
    (tmp_path / "math").mkdir()
    rows = [{"problem": "p", "solution": r"first $\boxed{1}$, then $\boxed{\frac{1}{2}}$.", "level": "Level 3"}]
    (tmp_path / "math/test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    [ex] = tasks.get("math", data_dir=str(tmp_path)).examples("test")
    assert ex.answer == r"\frac{1}{2}" and ex.meta["difficulty"] == 3


@pytest.mark.parametrize("text, boxed", [
    (r"$\boxed{\frac{1}{2}}$", r"\frac{1}{2}"),
    (r"\boxed{1} and \boxed{\sqrt{\frac{a}{b}}+{c}}", r"\sqrt{\frac{a}{b}}+{c}"),
    (r"so \fbox{x^{2}}", "x^{2}"),
    (r"$\boxed 5$", "5"),
    (r"\boxed{unbalanced", None),
    ("no box here", None),
])
def test_last_boxed(text, boxed):
    assert last_boxed(text) == boxed


def test_gsm8k_answer_rejects_a_solution_without_a_number():
    assert gsm8k_answer("work\n#### -1,234") == "-1234"
    with pytest.raises(BadRow):
        gsm8k_answer("no marker")
    with pytest.raises(BadRow):
        gsm8k_answer("#### twelve")


def test_humaneval_and_mbpp(shared_data):
    need(shared_data, "humaneval/HumanEval.jsonl")
    need(shared_data, "mbpp/mbpp.jsonl")
    he = tasks.get("humaneval", data_dir=str(shared_data))
    rows = he.examples()
    assert len(rows) == 164 and he.rewards == ("code",)
    first = rows[0].meta
    assert first["task_id"] == "HumanEval/0" and first["entry_point"] == "has_close_elements"
    assert "def check(candidate)" in first["test"] and rows[0].answer.startswith(first["prompt"])
    assert first["prompt"] in rows[0].prompt
    mbpp = tasks.get("mbpp", data_dir=str(shared_data))
    sizes = {split: len(mbpp.examples(split)) for split in mbpp.splits}
    assert sizes == {"train": 374, "validation": 90, "test": 500, "prompt": 10}
    ex = mbpp.examples("test")[0]
    assert ex.meta["task_id"] == 11 and len(ex.meta["test_list"]) == 3 and "\r" not in ex.answer
    assert ex.meta["test_list"][0] in ex.prompt


def test_countdown_cd3_rows_carry_a_solution(shared_data):
    need(shared_data, "countdown/countdown_cd3_test.jsonl")
    rows = tasks.get("countdown_cd3", data_dir=str(shared_data)).examples()
    assert len(rows) == 256
    assert rows[0].meta["nums"] == [30, 100, 93] and rows[0].meta["target"] == 23
    for ex in rows[:20]:
        assert abs(eval(ex.answer) - ex.meta["target"]) < 1e-9  # our own expression


def test_missing_data_names_the_expected_path(tmp_path, monkeypatch):
    with pytest.raises(UserError, match=str(tmp_path / "gsm8k" / "test.jsonl")):
        tasks.get("gsm8k", data_dir=str(tmp_path)).examples("test")
    monkeypatch.setenv("R1ZERO_DATA", str(tmp_path / "elsewhere"))
    with pytest.raises(UserError, match="elsewhere/math500/test.jsonl"):
        tasks.get("math500").examples()
    with pytest.raises(UserError, match="no split 'train'; splits: test"):
        tasks.get("math500").examples("train")


def write_bad_jsonl(path):
    path.write_text(
        '{"question": "1+1?", "answer": "ok\\n#### 2"}\n'
        '{"question": "no answer here"}\n'
        '\n'
        '{"question": "broken", "answer": \n'
        '{"question": "2+2?", "answer": "#### 1,004"}\n'
        '{"question": "3+3?", "answer": "#### six"}\n'
    )


def test_bad_rows_fail_with_file_and_line(tmp_path):
    (tmp_path / "gsm8k").mkdir()
    path = tmp_path / "gsm8k" / "test.jsonl"
    write_bad_jsonl(path)
    with pytest.raises(UserError) as err:
        tasks.get("gsm8k", data_dir=str(tmp_path)).examples("test")
    assert f"{path}: line 2: missing field 'answer'" in str(err.value)
    path.write_text('{"question": "q", "answer": "#### 1"}\n{"question": "broken", "answer": \n')
    with pytest.raises(UserError, match=r"test.jsonl: line 2: bad JSON"):
        tasks.get("gsm8k", data_dir=str(tmp_path)).examples("test")


def test_bad_rows_skipped_and_counted(tmp_path):
    (tmp_path / "gsm8k").mkdir()
    write_bad_jsonl(tmp_path / "gsm8k" / "test.jsonl")
    task = tasks.get("gsm8k", data_dir=str(tmp_path), on_bad_row="skip")
    assert [ex.answer for ex in task.examples("test")] == ["2", "1004"]
    assert task.skipped == {"test": 3}  # missing field, bad JSON, unparsable answer; the blank line is not a row
    with pytest.raises(UserError, match="on_bad_row"):
        tasks.get("gsm8k", data_dir=str(tmp_path), on_bad_row="ignore").examples("test")


def test_any_file_with_a_column_mapping(tmp_path):
    jsonl = tmp_path / "mine.jsonl"
    jsonl.write_text('{"q": "What is 6*7?", "sol": "#### 42", "level": 2}\n{"q": "x", "sol": "#### 7"}\n')
    task = tasks.get(str(jsonl), question="q", answer="sol", answer_extract="gsm8k")
    first = task.examples("test")[0]
    assert (first.prompt, first.answer) == ("What is 6*7?", "42")
    assert first.meta == {"level": 2, "task": str(jsonl), "id": f"{jsonl}/0"}
    with pytest.raises(UserError, match=r"mine.jsonl: line 1: no question column 'question'; columns: q, sol"):
        tasks.get(str(jsonl), question="question").examples()

    path = tmp_path / "mine.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerows([["problem", "answer", "source"], ["1+2", "3", "a"], ["2+2", "", "b"]])
    task = tasks.get(str(path), on_bad_row="skip")
    assert [(ex.prompt, ex.answer, ex.meta["source"]) for ex in task.examples()] == [("1+2", "3", "a")]
    assert task.skipped == {"train": 1}
    with pytest.raises(UserError, match=r"mine.csv: line 3: empty field 'answer'"):
        tasks.get(str(path)).examples()


def test_parquet_file_and_chat_messages(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    messages = [{"role": "user", "content": "hi?"}]
    pq.write_table(pa.Table.from_pylist([{"prompt": messages, "answer": 1}]), tmp_path / "chat.parquet")
    [ex] = tasks.get(str(tmp_path / "chat.parquet")).examples()
    assert ex.prompt == messages and ex.answer == "1"
    with pytest.raises(UserError, match="task file not found"):
        tasks.get(str(tmp_path / "absent.jsonl"))


def test_hf_dataset_from_a_local_folder(tmp_path):
    folder = tmp_path / "ds"
    folder.mkdir()
    (folder / "train.jsonl").write_text('{"q": "1+1", "a": 2}\n{"q": "2+2", "a": 4}\n')
    (folder / "test.jsonl").write_text('{"q": "3+3", "a": 6}\n')
    cache = str(tmp_path / "cache")
    task = tasks.get(f"hf:{folder}", question="q", answer="a", cache_dir=cache)
    assert [(ex.prompt, ex.answer) for ex in task.examples("train")] == [("1+1", "2"), ("2+2", "4")]
    assert task.examples("test")[0].meta["id"] == f"hf:{folder}/test/0"
    with pytest.raises(UserError, match="split 'validation'"):
        task.examples("validation")
    by_builder = tasks.get("hf:json", data_files={"train": str(folder / "train.jsonl")}, question="q",
                           answer="a", cache_dir=cache)
    assert len(by_builder.examples()) == 2

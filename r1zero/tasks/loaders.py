"""Reading examples from files and Hugging Face datasets, with answers pulled out of worked solutions.

- Rows come from JSON Lines, JSON (a list of objects), Parquet or CSV, each with its line (or row)
  number, so a bad row is reported as `file:line: what is wrong`, or skipped and counted when the
  caller passes `on_bad_row="skip"`. Blank lines in JSON Lines are ignored, not counted.
- `gsm8k_answer` follows the GSM8K paper (the number after the last `####`, commas removed) and
  also checks that it parses as a number. `last_boxed` follows the MATH reference code
  (`last_boxed_only_string`: the last `\\boxed{...}` or `\\fbox{...}`, braces matched), and also
  accepts the unbraced `\\boxed 5` form.
- A generic row's question and answer columns are named by the caller or found among common names;
  every other column goes to `meta`, so it reaches reward functions as a keyword.
"""

from __future__ import annotations

import codecs
import csv
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from r1zero.errors import UserError
from r1zero.tasks.base import BadRow, DatasetTask
from r1zero.types import Example

QUESTION_COLUMNS = ("question", "problem", "prompt", "input", "query")
ANSWER_COLUMNS = ("answer", "final_answer", "output", "target", "solution")
FILE_SUFFIXES = (".jsonl", ".json", ".parquet", ".csv")
BAD_ROW_POLICIES = ("error", "skip")


# ---- answers -----------------------------------------------------------------------------------


def gsm8k_answer(solution: str) -> str:
    """The final answer of a GSM8K solution: after the last `####`, without thousands separators.

    >>> gsm8k_answer("2 + 3 = <<2+3=5>>5 apples\\n#### 1,005")
    '1005'
    """
    if "####" not in solution:
        raise BadRow("no '####' final answer in the solution")
    answer = solution.rsplit("####", 1)[1].strip().replace(",", "")
    try:
        float(answer)
    except ValueError:
        raise BadRow(f"final answer {answer!r} is not a number") from None
    return answer


def last_boxed(text: str) -> str | None:
    """The content of the last `\\boxed{...}` (or `\\fbox{...}`) in `text`, nested braces matched.

    >>> last_boxed(r"so $x = \\boxed{\\frac{1}{2}}$.")
    '\\\\frac{1}{2}'
    """
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    rest = text[start:].split("\\", 1)[1]
    rest = rest[len("boxed"):] if rest.startswith("boxed") else rest[len("fbox"):]
    if rest.startswith(" "):  # `\boxed 5`: up to the end of the math or the word
        word = rest[1:].split("$")[0].split()
        return word[0] if word else None
    if not rest.startswith("{"):
        return None
    depth = 0
    for i, ch in enumerate(rest):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth == 0:
            return rest[1:i]
    return None  # unbalanced braces


def boxed_answer(solution: str) -> str:
    answer = last_boxed(solution)
    if answer is None or not answer.strip():
        raise BadRow("no \\boxed{} answer in the solution")
    return answer.strip()


ANSWER_EXTRACTORS: dict[str, Callable[[str], str]] = {"gsm8k": gsm8k_answer, "boxed": boxed_answer}


# ---- data folder ---------------------------------------------------------------------------------


def data_dir(override: str | os.PathLike | None = None) -> Path:
    """`override`, else $R1ZERO_DATA, else `<repo>/../shared/data`."""
    if override is not None:
        return Path(override)
    if os.environ.get("R1ZERO_DATA"):
        return Path(os.environ["R1ZERO_DATA"])
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


def data_file(root: Path, relative: str, what: str) -> Path:
    path = root / relative
    if not path.is_file():
        raise UserError(f"{what} data not found: expected {path} (pass data_dir=... or set R1ZERO_DATA)")
    return path


# ---- rows ----------------------------------------------------------------------------------------


def check_utf8(path: Path) -> None:
    """A text data file (jsonl, json, csv) must be UTF-8: a UserError naming the first bad byte otherwise."""
    if Path(path).suffix.lower() not in (".jsonl", ".json", ".csv"):
        return
    decoder, offset = codecs.getincrementaldecoder("utf-8")(), 0
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as e:
                raise UserError(f"{path}: byte {offset + e.start} is not UTF-8 ({e.reason}); expected a UTF-8 "
                                "text file (convert it, e.g. iconv -t UTF-8)") from None
            offset += len(block)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as e:
            raise UserError(f"{path}: ends inside a UTF-8 character ({e.reason}); expected a UTF-8 text file") from None


def read_records(path: Path) -> Iterator[tuple[str, Any]]:
    """(`where`, row) pairs; a row that cannot be decoded comes as a BadRow instance instead."""
    check_utf8(path)
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        with path.open(encoding="utf-8") as f:
            for line_no, line in enumerate(f, 1):
                if line.strip():
                    try:
                        yield f"line {line_no}", json.loads(line)
                    except json.JSONDecodeError as e:
                        yield f"line {line_no}", BadRow(f"bad JSON ({e.msg} at column {e.colno})")
    elif suffix == ".json":
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise UserError(f"{path}: line {e.lineno}: bad JSON ({e.msg})") from None
        if not isinstance(rows, list):
            raise UserError(f"{path}: expected a JSON list of objects")
        yield from ((f"row {i}", row) for i, row in enumerate(rows, 1))
    elif suffix == ".csv":
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            for row in reader:
                yield f"line {reader.line_num}", row
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        yield from ((f"row {i}", row) for i, row in enumerate(pq.read_table(path).to_pylist(), 1))
    else:
        raise UserError(f"{path}: unknown file type; expected one of {', '.join(FILE_SUFFIXES)}")


def convert_rows(source: str, records: Iterator[tuple[str, Any]],
                 to_example: Callable[[dict, int], Example], on_bad_row: str) -> tuple[list[Example], int]:
    """Examples from `(where, row)` records, with the bad-row policy applied."""
    if on_bad_row not in BAD_ROW_POLICIES:
        raise UserError(f"on_bad_row must be one of {', '.join(BAD_ROW_POLICIES)}, not {on_bad_row!r}")
    out, skipped = [], 0
    for where, row in records:
        try:
            if isinstance(row, BadRow):
                raise row
            if not isinstance(row, dict):
                raise BadRow(f"expected an object, got {type(row).__name__}")
            out.append(to_example(row, len(out) + skipped))
        except BadRow as e:
            if on_bad_row == "error":
                raise UserError(f"{source}: {where}: {e} (on_bad_row='skip' skips such rows)") from None
            skipped += 1
    return out, skipped


def required_field(row: dict, name: str) -> Any:
    """`row[name]`, which must be present and not empty."""
    value = row.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise BadRow(f"missing field {name!r}" if name not in row else f"empty field {name!r}")
    return value


def load_file(path: Path, to_example: Callable[[dict, int], Example], on_bad_row: str = "error"):
    return convert_rows(str(path), read_records(path), to_example, on_bad_row)


# ---- generic rows: any jsonl / parquet / csv / HF dataset ------------------------------------------


def pick_column(row: dict, given: str | None, candidates: tuple[str, ...], role: str) -> str:
    if given is not None:
        if given not in row:
            raise BadRow(f"no {role} column {given!r}; columns: {', '.join(map(str, row))}")
        return given
    for name in candidates:
        if name in row:
            return name
    raise BadRow(f"no {role} column (looked for {', '.join(candidates)}); columns: "
                 f"{', '.join(map(str, row))}; name it with {role}=<column>")


def column_mapper(task: str, question: str | None = None, answer: str | None = None,
                  answer_extract: str | None = None, id_prefix: str | None = None) -> Callable[[dict, int], Example]:
    """Row -> Example by a column mapping. A list-of-messages question stays chat messages; a row
    without an `id` column gets `<id_prefix>/<index>`."""
    if answer_extract is not None and answer_extract not in ANSWER_EXTRACTORS:
        raise UserError(f"unknown answer_extract {answer_extract!r}; expected one of: "
                        f"{', '.join(ANSWER_EXTRACTORS)}")

    def to_example(row: dict, index: int) -> Example:
        q_col = pick_column(row, question, QUESTION_COLUMNS, "question")
        a_col = pick_column(row, answer, ANSWER_COLUMNS, "answer")
        prompt, gold = required_field(row, q_col), required_field(row, a_col)
        if not isinstance(prompt, (str, list)):
            prompt = str(prompt)
        gold = ANSWER_EXTRACTORS[answer_extract](str(gold)) if answer_extract else str(gold).strip()
        meta = {k: v for k, v in row.items() if k not in (q_col, a_col)}
        meta.setdefault("task", task)
        meta.setdefault("id", f"{id_prefix or task}/{index}")
        return Example(prompt=prompt, answer=gold, meta=meta)

    return to_example


def file_task(path: str, question: str | None = None, answer: str | None = None,
              answer_extract: str | None = None, rewards: tuple[str, ...] | list[str] = ("math", "format"),
              on_bad_row: str = "error") -> DatasetTask:
    """Any .jsonl/.json/.parquet/.csv file; one file is one split, so `split` is not checked."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise UserError(f"task file not found: {file}")
    mapper = column_mapper(path, question, answer, answer_extract)
    return DatasetTask(name=path, rewards=tuple(rewards), load=lambda split: load_file(file, mapper, on_bad_row))


def hf_task(dataset: str, subset: str | None = None, data_files: Any = None, cache_dir: str | None = None,
            question: str | None = None, answer: str | None = None, answer_extract: str | None = None,
            rewards: tuple[str, ...] | list[str] = ("math", "format"), on_bad_row: str = "error") -> DatasetTask:
    """A dataset `datasets.load_dataset` can open: a hub id (fetched only now), a local folder, or a
    builder name such as "json" with `data_files`. The split is passed through; default "train"."""
    name = f"hf:{dataset}"
    column_mapper(name, question, answer, answer_extract)  # bad options fail now, not at first read

    def load(split: str) -> tuple[list[Example], int]:
        import datasets

        mapper = column_mapper(name, question, answer, answer_extract, id_prefix=f"{name}/{split}")
        try:
            rows = datasets.load_dataset(dataset, subset, split=split, data_files=data_files, cache_dir=cache_dir)
        except Exception as e:  # hub, network, builder and split errors all mean: cannot open this
            first_line = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise UserError(f"cannot load Hugging Face dataset {dataset!r} (split {split!r}): {first_line}") \
                from e
        records = ((f"row {i}", row) for i, row in enumerate(rows, 1))
        return convert_rows(f"{name}[{split}]", records, mapper, on_bad_row)

    return DatasetTask(name=name, rewards=tuple(rewards), load=load)

"""Recipes: every shipped recipe resolves; each user mistake exits 2 with one clear line."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from r1zero.errors import UserError
from r1zero.recipe import load_recipe, resolve
from tests.conftest import REPO

RECIPES = sorted((REPO / "recipes").glob("*.yaml"))


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_every_shipped_recipe_resolves(path):
    recipe = load_recipe(path)
    assert recipe.stages and all(sid in recipe.sections for sid in recipe.stages)


def test_overrides_reach_typed_fields():
    recipe = load_recipe(REPO / "recipes" / "tiny-zero.yaml", ["pretrain.steps=200", "pretrain.lr=1e-3", "seed=3"])
    assert recipe.sections["pretrain"].steps == 200
    assert recipe.sections["pretrain"].lr == 1e-3 and recipe.seed == 3


def test_a_stage_kind_can_run_twice_under_two_ids():
    recipe = resolve({"stages": ["build", "eval_a", "eval_b"], "eval_a": {"kind": "eval", "samples": 2},
                      "eval_b": {"kind": "eval", "samples": 4}})
    assert recipe.kinds["eval_b"] == "eval" and recipe.sections["eval_b"].samples == 4


@pytest.mark.parametrize("override, expected", [
    ("pretrain.stepz=3", "unknown key pretrain.stepz"),
    ("pretrain.steps=many", "pretrain.steps: expected int, got 'many'"),
    ("pretrain.lr=[1]", "pretrain.lr: expected float"),
    ("pretrain.model=/no/such/model", "pretrain.model: model folder '/no/such/model' not found"),
    ("eval_base.task=/no/such/data.jsonl", "eval_base.task: data file '/no/such/data.jsonl' not found"),
    ("colour=blue", "unknown top-level key 'colour'"),
    ("evl.samples=3", "the recipe has no section or stage 'evl'"),
])
def test_recipe_mistakes_raise_one_line(override, expected):
    with pytest.raises(UserError) as err:
        load_recipe(REPO / "recipes" / "tiny-zero.yaml", [override])
    assert expected in str(err.value) and "\n" not in str(err.value)


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "r1zero.cli", *args], cwd=cwd, capture_output=True, text=True,
                          check=False, timeout=120)


@pytest.mark.parametrize("override, expected", [
    ("pretrain.stepz=3", "unknown key pretrain.stepz"),
    ("build.layers=four", "build.layers: expected int"),
    ("eval_rl.model=missing-folder", "eval_rl.model: model folder 'missing-folder' not found"),
    ("eval_base.task=missing.jsonl", "eval_base.task: data file 'missing.jsonl' not found"),
])
def test_cli_exits_2_with_one_line_and_no_traceback(tmp_path, override, expected):
    res = run_cli("run", str(REPO / "recipes" / "tiny-zero.yaml"), override, cwd=tmp_path)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("r1zero: error:") and expected in lines[0], res.stderr
    assert "Traceback" not in res.stderr


def test_cli_missing_recipe_file(tmp_path):
    res = run_cli("run", "nope.yaml", cwd=tmp_path)
    assert res.returncode == 2 and "recipe file 'nope.yaml' not found" in res.stderr


def test_run_folder_is_never_clobbered(tmp_path):
    recipe = {"name": "r", "out_dir": str(tmp_path), "stages": ["build"],
              "build": {"hidden_size": 32, "layers": 1, "vocab_size": 300}}
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    assert run_cli("run", "recipe.yaml", cwd=tmp_path).returncode == 0
    run_dir = tmp_path / "r"
    written = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert written["build"]["hidden_size"] == 32 and written["build"]["kind"] == "build"
    marker = run_dir / "build" / "model" / "config.json"
    before = marker.stat().st_mtime_ns
    again = run_cli("run", "recipe.yaml", cwd=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr
    assert marker.stat().st_mtime_ns == before
    assert run_cli("run", "recipe.yaml", "--resume", cwd=tmp_path).returncode == 0  # skips the finished stage
    assert marker.stat().st_mtime_ns == before
    assert run_cli("run", "recipe.yaml", "--overwrite", cwd=tmp_path).returncode == 0
    assert marker.stat().st_mtime_ns != before
    assert (run_dir / "final").resolve() == (run_dir / "build" / "model").resolve()
    assert Path(run_dir / "final" / "config.json").is_file()


def test_a_copied_run_folder_resumes_from_its_own_models(tmp_path):
    recipe = {"name": "r", "out_dir": str(tmp_path), "stages": ["build"],
              "build": {"hidden_size": 32, "layers": 1, "vocab_size": 300}}
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    assert run_cli("run", "recipe.yaml", cwd=tmp_path).returncode == 0
    assert json.loads((tmp_path / "r" / "build" / "done.json").read_text())["model"] == "build/model"
    shutil.copytree(tmp_path / "r", tmp_path / "copy", symlinks=True)
    shutil.rmtree(tmp_path / "r")
    assert run_cli("run", "recipe.yaml", "name=copy", "--resume", cwd=tmp_path).returncode == 0
    assert (tmp_path / "copy" / "final").resolve() == (tmp_path / "copy" / "build" / "model").resolve()


def test_done_records_name_models_inside_the_run_and_still_read_older_records(tmp_path):
    from r1zero.stages import done_record, recorded_model

    run = tmp_path / "r"
    (run / "a" / "model").mkdir(parents=True)
    record = done_record(run, run / "a" / "model", 1.234)
    assert record == {"model": "a/model", "seconds": 1.23}
    assert recorded_model(run, record) == run / "a" / "model"
    assert recorded_model(run, {"model": str(run / "a" / "model")}) == run / "a" / "model"  # absolute, as before
    assert recorded_model(run, {"model": "runs/r/a/model"}) == Path("runs/r/a/model")  # relative to the start
    assert done_record(run, tmp_path / "elsewhere", 0)["model"] == str(tmp_path / "elsewhere")
    assert recorded_model(run, done_record(run, None, 0)) is None

"""The plan's arithmetic: stage shapes from a recipe, seconds from kernel costs, fit and suggestions."""

import json

import pytest

from r1zero.budget.completions import forced_lengths, worked_form
from r1zero.budget.devices import Device
from r1zero.budget.memory import GB
from r1zero.budget.plan import (
    CPU_LATER_BUILD_S,
    CPU_REPORT_S_PER_FIGURE,
    CPU_RL_CHECKPOINT_S,
    CPU_STAGE_FIXED_S,
    CPU_WORKER_START_S,
    SECONDS_PER_COMPLETION,
    SECONDS_PER_DOCUMENT,
    SECONDS_PER_MATH_VERIFY,
    cpu_fixed_seconds,
    plan_recipe,
)
from r1zero.budget.timing import CONTENTION, CostModel, concurrent_seconds, decode_work, pool_seconds
from r1zero.budget.workload import RecipeInputs, expected_draws
from r1zero.recipe import resolve
from tests.conftest import TINY_SHAPE

CPU = Device("cpu", 64, 0.05, 0.05, 20, 0.10, baseline_gb=0.42)


class FakeCosts(CostModel):
    """One microsecond per token position of every kernel (generate: per prompt + new position)."""

    def train_step(self, seqs, width, checkpointing=False):
        return seqs * width * 1e-6 * (2 if checkpointing else 1)

    def optimizer_step(self):
        return 1e-3

    def forward(self, seqs, width):
        return seqs * width * 1e-6 / 3

    def generate(self, seqs, prompt, new, lengths=()):
        return seqs * (prompt + new) * 1e-6


class SlowTraining(FakeCosts):
    def train_step(self, seqs, width, checkpointing=False):
        return 100 * super().train_step(seqs, width, checkpointing)


def tiny_recipe(pretrain=None, eval=None, **rl):
    """build -> pretrain -> eval -> rl -> report at toy sizes; the dicts and keywords add options."""
    build = {k: v for k, v in TINY_SHAPE.items()}
    raw = {"name": "t", "stages": ["build", "pretrain", "eval", "rl", "report"], "build": build,
           "pretrain": {"steps": 20, "batch_size": 16, **(pretrain or {})},
           "eval": {"problems": 50, "samples": 8, "max_new_tokens": 32, **(eval or {})},
           "rl": {"steps": 5, "prompts_per_step": 4, "group_size": 4, "max_new_tokens": 32, **rl}}
    return resolve(raw)


@pytest.fixture(scope="module")
def plans():
    return {p.stage: p for p in plan_recipe(tiny_recipe(), CPU, costs=FakeCosts(), zero_share=0.0)}


def test_expected_draws():
    assert [runs for runs, _ in expected_draws(0.0, 16, 4)] == [1.0, 0.0, 0.0, 0.0]
    first, second, *_ = expected_draws(0.25, 16, 4)
    assert first == (1.0, 16) and second[0] == pytest.approx(1 - 0.75**16, abs=1e-9)
    assert second[1] == 7  # 4 short, 3 of 4 kept: ceil(1.25 * 4 / 0.75), as prompts_to_draw
    assert [n for _, n in expected_draws(0.99, 16, 4)] == [16] * 4  # almost nothing kept: whole batches
    assert expected_draws(0.99, 16, 4)[-1][0] == pytest.approx(1.0)


@pytest.fixture(scope="module")
def inputs():
    return RecipeInputs(tiny_recipe())


def test_eval_workload(inputs):
    w = inputs.workload("eval")
    (chunks,) = w.rounds  # one model, no hard split: one evaluation
    # 50 items, shortest prompts first, at most 256 sequences a call: 32 x 8 samples, then 18 x 8, each
    # chunk followed by its greedy answers (one per item); each call padded to its longest prompt.
    assert [[(c.rows, c.new) for c in calls] for calls in chunks] == [[(256, 32), (32, 32)], [(144, 32), (18, 32)]]
    assert all(len({c.width for c in calls}) == 1 for calls in chunks) and chunks[0][0].width <= chunks[1][0].width
    assert 4 <= chunks[1][0].width <= 16 and w.completions == 50 * 9 and not w.train
    assert all(c.lengths == () for calls in chunks for c in calls)  # the stage's lengths
    assert w.generate == [(1, *call[:3]) for calls in chunks for call in calls] and w.processes == 1


def test_pretrain_and_rl_workloads(inputs):
    pre = inputs.workload("pretrain")
    # One shape per length bucket (PretrainConfig.length_buckets = 3): the rows split, widths ascending.
    assert [(count, seqs) for count, seqs, _ in pre.train] == [(20, 6), (20, 6), (20, 4)]  # torch.chunk
    widths = [width for *_, width in pre.train]
    assert widths == sorted(widths) and 20 <= widths[-1] <= 80  # the corpus's widest rows
    assert pre.train_tokens <= 20 * sum(seqs * width for _, seqs, width in pre.train)
    rl = inputs.workload("rl", zero_share=0.0)
    (gens, n, P, new), = rl.generate
    assert (gens, n, new) == (5, 16, 32) and rl.completions == 80
    # 4 length pieces of 4 rows a step, each as wide as its longest completion (at most 32), shortest first
    assert [(count, seqs) for count, seqs, _ in rl.train] == [(5, 4)] * 4
    widths = [width - P for *_, width in rl.train]
    assert widths == sorted(widths) and widths[-1] <= 32
    assert not rl.forward and not rl.reference  # beta = 0 (dapo): no reference model
    assert (pre.optimizer_steps, rl.optimizer_steps) == (20, 5)  # one AdamW step a step, whatever the pieces


def test_completion_lengths_follow_the_corpus_down_the_lineage(inputs):
    """The pretrained model writes like its corpus (tokens after `=`, eos included); eval reads that
    model, so it expects the same lengths, and rl starts from them; the build stage's untrained model has
    none."""
    corpus = inputs.completion_lengths("eval")
    assert corpus and inputs.completion_lengths("pretrain") == []
    assert inputs.completion_lengths("rl")[: len(corpus)] == corpus
    assert 2 <= min(corpus) and max(corpus) <= 80  # a direct answer ... a worked 3-digit product
    w = inputs.workload("eval")
    assert w.completion_lengths == corpus and w.mean_new(32) <= 32
    assert w.generated_tokens() < sum(c * s * (p + n) for c, s, p, n in w.generate)  # rows stop early


def test_an_sft_on_sampled_data_writes_like_the_sampled_model():
    raw = {"name": "t", "stages": ["build", "pretrain", "sample", "fresh", "student", "eval"],
           "build": dict(TINY_SHAPE), "pretrain": {"steps": 4, "batch_size": 16},
           "sample": {"prompts": 8, "samples": 2}, "fresh": {"kind": "build", **TINY_SHAPE},
           "student": {"kind": "sft", "model": "fresh", "data": "sample", "steps": 2},
           "eval": {"problems": 8, "samples": 2}}
    lengths = RecipeInputs(resolve(raw))
    assert lengths.completion_lengths("sample") and lengths.completion_lengths("fresh") == []
    assert lengths.completion_lengths("eval") == lengths.completion_lengths("sample")


def test_stage_seconds_are_counts_times_kernel_costs(plans, inputs):
    costs = FakeCosts()
    for sid in ("pretrain", "eval", "rl"):
        w, p = inputs.workload(sid, zero_share=0.0), plans[sid]
        expected = (CPU_STAGE_FIXED_S[w.kind] + sum(c * costs.train_step(s, t) for c, s, t in w.train)
                    + sum(c * costs.generate(s, q, n) for c, s, q, n in w.generate)
                    + w.completions * SECONDS_PER_COMPLETION.get(w.kind, 0)
                    + w.optimizer_steps * costs.optimizer_step() + w.documents * SECONDS_PER_DOCUMENT)
        assert p.total_seconds == pytest.approx(expected)
        assert p.cost == pytest.approx(expected / 3600 * 0.10)
    assert plans["build"].seconds == {"fixed": CPU_STAGE_FIXED_S["build"]}
    assert plans["report"].seconds == {"fixed": CPU_REPORT_S_PER_FIGURE}  # one figure: the rl curves
    assert set(plans["eval"].flops) == {"generation"} and "train" not in plans["eval"].memory.phases


def test_rl_options_change_the_shapes():
    base = {p.stage: p for p in plan_recipe(tiny_recipe(), CPU, costs=FakeCosts(), zero_share=0.0)}["rl"]
    more = {p.stage: p for p in plan_recipe(
        tiny_recipe(num_iterations=2, gradient_checkpointing=True, loss="grpo", loss_options={"beta": 0.04}),
        CPU, costs=FakeCosts(), zero_share=0.0)}["rl"]
    assert more.seconds["train"] == pytest.approx(4 * base.seconds["train"])  # 2 epochs x recompute
    assert more.seconds["reference"] == pytest.approx(2 * base.seconds["train"] / 3)
    assert "reference" in more.memory.resident and "activations_no_checkpointing" in more.memory.alternatives
    assert more.flops["train"] == pytest.approx(2 * base.flops["train"])  # recompute is not model FLOPs


def test_without_dynamic_sampling_the_update_leaves_out_the_equal_reward_groups():
    def rl(zero_share, **options):
        return {p.stage: p for p in plan_recipe(tiny_recipe(dynamic_sampling=False, **options), CPU,
                                                costs=FakeCosts(), zero_share=zero_share)}["rl"]

    every_row = rl(0.0)
    assert rl(0.5, skip_zero_advantage=False).seconds["train"] == pytest.approx(every_row.seconds["train"])
    # half the rows (FakeCosts: linear in rows), in pieces a little narrower (fewer rows, shorter longest rows)
    assert rl(0.5).seconds["train"] == pytest.approx(every_row.seconds["train"] / 2, rel=0.05)
    assert rl(0.5).flops["train"] == pytest.approx(every_row.flops["train"] / 2)
    assert rl(0.5, loss_options={"beta": 0.01}).seconds["train"] == pytest.approx(every_row.seconds["train"])


def test_the_math_reward_costs_math_verify_per_completion_and_checkpoints_cost_rl_time():
    def rl(**options):
        return {p.stage: p for p in plan_recipe(tiny_recipe(**options), CPU, costs=FakeCosts(), zero_share=0.0)}["rl"]

    rules, verified = rl(), rl(rewards={"math": 1.0, "format": 0.1})
    completions = 5 * 4 * 4  # steps x prompts x group
    extra = verified.seconds["scoring"] - rules.seconds["scoring"]
    assert extra == pytest.approx(completions * SECONDS_PER_MATH_VERIFY)
    assert rules.seconds["fixed"] == CPU_STAGE_FIXED_S["rl"]  # checkpoint_every 50 > 5 steps: none before the end
    assert rl(checkpoint_every=2).seconds["fixed"] == pytest.approx(CPU_STAGE_FIXED_S["rl"] + 2 * CPU_RL_CHECKPOINT_S)


def test_a_stage_that_does_not_fit_gets_settings_that_do():
    recipe = tiny_recipe()
    roomy = plan_recipe(recipe, CPU, costs=FakeCosts())
    rl_peak = next(p for p in roomy if p.stage == "rl").memory
    # Room for the resident parts and a tenth of the training phase: RL must change settings.
    need = sum(rl_peak.resident.values()) + 0.1 * sum(rl_peak.phases["train"].values())
    small = Device("small", need / GB, 0.05, 0.05, 20, 0.1, baseline_gb=0.42)
    plans = {p.stage: p for p in plan_recipe(recipe, small, costs=FakeCosts())}
    assert not plans["rl"].fits
    settings = plans["rl"].suggestions
    assert settings and all(s.startswith(("rl.", "--dtype")) for s in settings)
    overrides = [s for s in settings if not s.startswith("--")]
    dtype = "bfloat16" if "--dtype bfloat16" in settings else "float32"
    fixed = tiny_recipe(**{s.split("=")[0][3:]: json.loads(s.split("=")[1]) for s in overrides})
    assert next(p for p in plan_recipe(fixed, small, dtype, costs=FakeCosts()) if p.stage == "rl").fits


def test_decode_work_counts_the_forwards_of_rows_still_in_the_batch():
    # 8 rows, half stopping after 2 tokens, half after 6 (the prefill gives each row its first token)
    assert decode_work(8, 10) == (9.0, 72.0)  # no lengths: every row to the limit
    steps, rows = decode_work(8, 10, [2, 6], compact=False, draws=64)
    assert steps == pytest.approx(5, abs=0.2) and rows == pytest.approx(40, abs=1)  # generate keeps them all
    _, compacted = decode_work(8, 10, [2, 6], draws=64)
    assert compacted == pytest.approx(8 + 4 * 4, abs=2)  # decode drops the finished half once it has stopped
    assert decode_work(8, 10, [30]) == (9.0, 72.0)  # lengths beyond the limit are cut to it


def test_a_critic_doubles_the_training_and_adds_its_value_forward_and_memory():
    plan = {p.stage: p for p in plan_recipe(tiny_recipe(), CPU, costs=FakeCosts(), zero_share=0.0)}["rl"]
    ppo = {p.stage: p for p in plan_recipe(tiny_recipe(advantage="gae"), CPU, costs=FakeCosts(), zero_share=0.0)}["rl"]
    assert ppo.seconds["train"] == pytest.approx(2 * plan.seconds["train"])
    assert ppo.seconds["reference"] == pytest.approx(plan.seconds["train"] / 3)  # FakeCosts: a forward is 1/3
    assert ppo.flops["train"] == pytest.approx(2 * plan.flops["train"])
    assert "critic" in ppo.memory.resident and ppo.memory.peak > plan.memory.peak


def test_fixed_costs_of_a_second_build_and_of_the_report_figures():
    assert cpu_fixed_seconds("build", None, []) == CPU_STAGE_FIXED_S["build"]
    assert cpu_fixed_seconds("build", None, ["build", "pretrain"]) == CPU_LATER_BUILD_S  # imports already done

    from r1zero.config import ReportConfig

    report = ReportConfig(claims={"test_time": {"votes": "e"}})
    assert cpu_fixed_seconds("report", report, []) == 2 * CPU_REPORT_S_PER_FIGURE


# ---- work on several processes ----------------------------------------------------------------------

def test_concurrent_processes_and_a_worker_pool_by_hand():
    assert concurrent_seconds([3.0]) == 3.0
    # both busy for the shorter's 1 s of work (1.24 s), then the longer's 2 s left alone
    assert concurrent_seconds([1.0, 3.0]) == pytest.approx(1.0 * CONTENTION + 2.0)
    assert pool_seconds([1.0, 2.0, 3.0], 1) == 6.0
    # 2 workers: jobs 1 and 2 start; job 1 ends at 1.24 (1 s each done), job 3 starts beside job 2 (1 s
    # left), which ends at 2.48; then job 3 (2 s left) alone: 4.48 s
    assert pool_seconds([1.0, 2.0, 3.0], 2) == pytest.approx(2 * CONTENTION + 2.0)
    assert pool_seconds([1.0, 2.0, 3.0], 2) < pool_seconds([1.0, 2.0, 3.0], 1)


def test_pretrain_helpers_take_the_longer_buckets_and_share_the_step():
    one = RecipeInputs(tiny_recipe(pretrain={"length_buckets": 4})).workload("pretrain")
    two = RecipeInputs(tiny_recipe(pretrain={"length_buckets": 4, "processes": 2})).workload("pretrain")
    assert two.train == one.train and one.processes == 1 and not one.train_ranks
    # data_parallel.split_pieces: contiguous runs of about equal padded area, the trainer's the shortest
    assert two.processes == 2 and two.train_ranks == sorted(two.train_ranks) and set(two.train_ranks) == {0, 1}
    costs = SlowTraining()  # kernels well above the documents' cost, as on the demo
    plans = [{p.stage: p for p in plan_recipe(tiny_recipe(pretrain={"length_buckets": 4, "processes": n}), CPU,
                                              costs=costs)}["pretrain"] for n in (1, 2)]
    shares = [two.documents * SECONDS_PER_DOCUMENT + sum(c * costs.train_step(s, t) for (c, s, t), r
                                                         in zip(two.train, two.train_ranks) if r == rank)
              for rank in (0, 1)]
    assert plans[1].seconds["train"] == pytest.approx(min(shares) * CONTENTION + max(shares) - min(shares))
    alone = plans[0].seconds["train"] + plans[0].seconds["data"]
    assert max(shares) < 0.7 * alone and plans[1].seconds["train"] < alone  # a step shared is faster ...
    assert plans[1].seconds["train"] > alone / 2  # ... though not twice: the cores slow each other
    assert plans[1].seconds["optimizer"] == plans[0].seconds["optimizer"]  # the trainer steps once, alone
    assert plans[1].seconds["workers"] == CPU_WORKER_START_S and plans[1].processes == 2


def test_eval_workers_share_the_chunks_and_the_hard_split_follows():
    hard = {"hard_problems": 6, "hard_samples": 64, "hard_min_digits": 4, "hard_max_digits": 4}
    w = RecipeInputs(tiny_recipe(eval=hard)).workload("eval")
    main, extra = w.rounds  # the items, then the hard split
    assert [[c.rows for c in calls] for calls in extra] == [[256, 4], [128, 2]]  # 4 items x 64 a chunk, greedy
    assert w.completions == 50 * 9 + 6 * 65 and len(w.generate) == 2 * (len(main) + len(extra))
    costs = FakeCosts()
    one, two = ({p.stage: p for p in plan_recipe(tiny_recipe(eval={**hard, "processes": n}), CPU,
                                                  costs=costs)}["eval"] for n in (1, 2))
    jobs = [[sum(costs.generate(*c) for c in calls) for calls in chunks] for chunks in w.rounds]
    assert one.seconds["generation"] == pytest.approx(sum(map(sum, jobs)))
    assert two.seconds["generation"] == pytest.approx(sum(pool_seconds(j, 2) for j in jobs))
    assert two.seconds["generation"] < one.seconds["generation"] and two.seconds["workers"] == CPU_WORKER_START_S
    assert two.seconds["scoring"] == pytest.approx(one.seconds["scoring"] / 2)  # beside the workers, on their cores


def test_rollouts_ahead_cost_the_slower_side_of_each_step_not_the_sum():
    sync = {p.stage: p for p in plan_recipe(tiny_recipe(), CPU, costs=FakeCosts(), zero_share=0.0)}["rl"]
    ahead = {p.stage: p for p in plan_recipe(tiny_recipe(async_level=1), CPU, costs=FakeCosts(),
                                             zero_share=0.0)}["rl"]
    learn = sum(sync.seconds.get(k, 0.0) for k in ("train", "optimizer", "reference")) / 5
    sample = (sync.seconds["generation"] + sync.seconds["scoring"]) / 5
    # step 1 waits for its batch; steps 1-4 train while the next is sampled; step 5 trains alone
    expected = sample + 4 * concurrent_seconds([sample, learn]) + learn + CPU_WORKER_START_S
    kernels = expected - CPU_WORKER_START_S
    assert ahead.total_seconds - ahead.seconds["fixed"] == pytest.approx(expected)
    assert 5 * max(sample, learn) < kernels < 5 * (sample + learn)
    assert ahead.processes == 2 and ahead.seconds["train"] == pytest.approx(sync.seconds["train"])


def test_budget_forcing_thinks_then_answers_in_two_calls():
    w = RecipeInputs(tiny_recipe(eval={"max_think_tokens": 8, "greedy": False})).workload("eval")
    plain = RecipeInputs(tiny_recipe(eval={"greedy": False})).workload("eval")
    # each chunk: its rows think for at most 8 tokens, then answer after `</think><answer>` (2 tokens)
    forced = forced_lengths(RecipeInputs(tiny_recipe()).written("eval"), 8)
    for calls, (plain_call,) in zip(w.rounds[0], plain.rounds[0]):
        rows, width, new, _ = plain_call
        assert calls == [(rows, width, 8, forced.thinking), (rows, width + 10, new, forced.answering)]
    assert w.completions == plain.completions == 50 * 8
    assert w.working_answers == round(forced.working_share * 400)
    # an answer cap (max_answer_tokens) bounds the answer call and every row's answer
    capped = RecipeInputs(tiny_recipe(eval={"max_think_tokens": 8, "max_answer_tokens": 3, "greedy": False}))
    (_, answer), *_ = capped.workload("eval").rounds[0]
    assert answer.new == 3 and max(answer.lengths) == 3 and answer.lengths == tuple(min(n, 3) for n in forced.answering)


def test_a_split_of_harder_problems_expects_the_corpus_lengths_of_those_problems(inputs):
    every, two, three = (inputs.completion_lengths("eval", d) for d in (None, (2, 2), (3, 3)))
    assert sorted(two + three) == sorted(every) or len(two) + len(three) < len(every)  # 1-digit ones aside
    assert sum(three) / len(three) > sum(two) / len(two)  # a 3-digit problem's answer is longer
    assert inputs.completion_lengths("eval", (9, 9)) == every  # none that hard in the corpus: all of them
    hard = {"hard_problems": 4, "hard_samples": 64, "hard_min_digits": 3, "hard_max_digits": 3}
    w = RecipeInputs(tiny_recipe(eval=hard)).workload("eval")
    assert w.round_lengths == [[], three]  # the main items: the stage's lengths; the hard split: 3-digit ones


def test_rl_on_set_digits_expects_each_digit_count_as_often():
    inputs = RecipeInputs(tiny_recipe(task_options={"min_digits": 2, "max_digits": 3}))
    two, three = (inputs.completion_lengths("rl", (d, d)) for d in (2, 3))
    mixed = inputs.workload("rl").completion_lengths
    assert len(mixed) == 2 * max(len(two), len(three)) and set(mixed) == set(two) | set(three)
    assert inputs.workload("eval").completion_lengths == inputs.completion_lengths("eval")  # no digits set


# ---- what a model writes down the lineage ------------------------------------------------------------

def test_rl_ends_at_the_worked_form_and_costs_the_way_there():
    inputs = RecipeInputs(tiny_recipe())
    before, after = inputs.written("rl"), inputs.written("report")  # rl's own, then what its model writes
    base = inputs.written("eval")
    assert after == worked_form(base) and sorted(before) == sorted(base + after)  # from the base's, to worked
    mean = [sum(w.tokens for w in x) / len(x) for x in (base, before, after)]
    assert mean[0] < mean[1] < mean[2]

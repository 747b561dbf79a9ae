"""Typed stage configs: one dataclass per stage kind, every field documented once with `doc(...)`.

Each field carries its meaning, default, source and, for numbers, the interval it must lie in;
`build_section` turns a recipe section (a dict) into its dataclass, checking keys, types and bounds.
How sections come together into a run (stage ids, kinds, overrides) is r1zero.recipe's job.
Mistakes raise `UserError` naming the key and what was expected.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from r1zero.errors import UserError


def doc(default: Any, meaning: str, source: str = "r1zero", bounds: str = "") -> Any:
    """A dataclass field with its documentation (meaning, default, source) attached, and for a number
    the range it must lie in, as an interval: `[1, inf)`, `(0, 1]` (checked by `resolve`)."""
    meta = {"doc": meaning, "source": source, "bounds": bounds}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def in_bounds(value: float, bounds: str) -> bool:
    """Whether `value` lies in the interval `bounds`, e.g. `[0, 1)`; an empty interval admits anything."""
    if not bounds:
        return True
    low, high = (float(x) for x in bounds[1:-1].split(","))
    above = value >= low if bounds[0] == "[" else value > low
    below = value <= high if bounds[-1] == "]" else value < high
    return above and below


# ---- fields every training stage (pretrain, sft, rl) has: documented once, defaults per stage ----

def warmup_steps_field(default: int) -> Any:
    return doc(default, "linear warmup steps", bounds='[0, inf)')


def weight_decay_field(default: float) -> Any:
    return doc(default, "AdamW weight decay", bounds='[0, inf)')


def grad_clip_field() -> Any:
    return doc(1.0, "max gradient norm", bounds='(0, inf)')


def lora_field() -> Any:
    return doc(False, "train LoRA adapters (peft) instead of all weights")


def lora_rank_field() -> Any:
    return doc(16, "LoRA rank", bounds='[1, inf)')


def lora_alpha_field() -> Any:
    return doc(32, "LoRA alpha", bounds='[1, inf)')


def checkpoint_every_field(default: int) -> Any:
    return doc(default, "steps between checkpoints; 0 = only at the end", bounds='[0, inf)')


def keep_checkpoints_field() -> Any:
    return doc(2, "checkpoints kept on disk", bounds='[0, inf)')


def log_every_field() -> Any:
    return doc(10, "steps between metrics.jsonl lines", bounds='[1, inf)')


def report_to_field() -> Any:
    return doc([], "experiment trackers besides metrics.jsonl: tensorboard, wandb (`pip install "
                   "'r1zero[trackers]'`; W&B offline unless WANDB_MODE says otherwise)", "TRL report_to")


@dataclass
class BuildConfig:
    arch: str = doc("deepseek_v3", "architecture: deepseek_v3 (MLA + MoE), qwen2 or llama", "DeepSeek-V3")
    vocab_size: int = doc(384, "BPE vocabulary size before the reasoning tags are added", bounds='[1, inf)')
    hidden_size: int = doc(128, "model width", bounds='[1, inf)')
    layers: int = doc(4, "decoder layers", bounds='[1, inf)')
    heads: int = doc(4, "attention heads", bounds='[1, inf)')
    intermediate_size: int = doc(384, "FFN width of dense layers (the first layer in deepseek_v3)", bounds='[1, inf)')
    experts: int = doc(4, "routed experts per MoE layer (deepseek_v3)", "DeepSeek-V3", bounds='[1, inf)')
    experts_per_token: int = doc(2, "routed experts each token goes to", "DeepSeek-V3", bounds='[1, inf)')
    shared_experts: int = doc(1, "always-on shared experts", "DeepSeekMoE", bounds='[0, inf)')
    moe_intermediate_size: int = doc(96, "FFN width of each expert", bounds='[1, inf)')
    kv_lora_rank: int = doc(32, "MLA: width of the compressed KV latent that is cached", "DeepSeek-V2",
        bounds='[1, inf)')
    max_position_embeddings: int = doc(256, "longest sequence the model is built for", bounds='[1, inf)')
    tool_tokens: bool = doc(False, "tool tags (`<tool_call>`, `</tool_call>`, `<tool_response>`, `</tool_response>`) "
                                   "as single tokens, and calculator calls in the tokenizer's training text so the "
                                   "call's JSON words are merged: a call of ~20 tokens instead of ~70 (tiny-tools)")


@dataclass
class PretrainConfig:
    model: str = doc("", "input model folder; empty = the previous stage's output")
    steps: int = doc(1200, "optimizer steps", bounds='[1, inf)')
    batch_size: int = doc(32, "documents per step (at equal tokens, more smaller steps learned faster: "
                              "32x1800 > 64x900 > 128x450)", bounds='[1, inf)')
    length_buckets: int = doc(3, "micro-batches per step, documents sorted by length so each pads less (same gradient)",
        bounds='[1, inf)')
    processes: int = doc(1, "processes on this machine that share each step's micro-batches, one core each: "
                            "helpers hand their gradients to the trainer, which adds them in a fixed order "
                            "(deterministic for a given count; CPU only)", bounds='[1, inf)')
    lr: float = doc(3e-3, "peak AdamW learning rate", bounds='(0, inf)')
    min_lr_ratio: float = doc(0.1, "cosine decay floor as a share of lr", bounds='[0, 1]')
    warmup_steps: int = warmup_steps_field(40)
    weight_decay: float = weight_decay_field(0.01)
    grad_clip: float = grad_clip_field()
    min_digits: int = doc(2, "smallest problems (digits of the larger operand)", bounds='[1, inf)')
    max_digits: int = doc(3, "largest problems", bounds='[1, inf)')
    ops: str = doc("+-*", "operations in the corpus")
    direct_share: float = doc(0.15, "share of documents answered directly, with an empty <think>", bounds='[0, 1]')
    slip_share: float = doc(0.15, "share of worked solutions carrying one consistent slip", bounds='[0, 1]')
    recheck_share: float = doc(0.0, "share of worked solutions that re-check (`~`): the first column, then each "
                                    "later one with probability recheck_density, whether or not it slipped; a "
                                    "slip found is corrected (`!`)", "Physics of LMs 2.2 (retry data)",
                               bounds='[0, 1]')
    recheck_density: float = doc(0.75, "chance that a later column of a re-checking solution is re-checked",
                                 bounds='[0, 1]')
    drill_share: float = doc(0.0, "share of documents that are verification exercises: column steps, half of "
                                  "them wrong, each re-checked and corrected (no problem, no solution)",
                             bounds='[0, 1]')
    hard_share: float = doc(0.0, "share of problems with max_digits+1..hard_digits digits (a little exposure "
                                 "beyond the usual range, for RL to grow)", "arXiv 2512.07783", bounds='[0, 1]')
    hard_digits: int = doc(5, "largest problems drawn for `hard_share`", bounds='[1, 6]')
    spacing: float = doc(0.0, "chance of 1-3 spaces before each partial result and after each step of a worked "
                              "solution, so the model finds operand digits by content, not by distance, and a "
                              "re-check written mid-solution does not derail the columns after it", bounds='[0, 1]')
    layout: str = doc("columns", "how a worked solution is written: `columns` (`2+5+1=8>82`) or `remainder`, each "
                                 "step after what is left of the problem (`12+5:2+5+1=8>82`), so a column reads its "
                                 "operands next to where it writes (a better base, less derailed by a re-check)")
    answer_first: bool = doc(False, "questions are answered by a quick guess that restates the problem "
                                    "(`<think>123+59=181</think>`); `verify_share` of them verify it by working it "
                                    "out (`~`), correcting a wrong guess (`!`): the demo's base")
    verify_share: float = doc(0.0, "answer_first: share of guesses verified by working", bounds='[0, 1]')
    guess_wrong: float = doc(0.3, "answer_first: chance that a guess has one digit off", bounds='[0, 1]')
    exercise_share: float = doc(0.0, "share of documents that are bare worked computations (remainder layout, "
                                     "no question, no answer)", bounds='[0, 1]')
    tool_share: float = doc(0.0, "share of documents that solve a long product by a calculator call (`<tool_call>`, "
                                 "the reply in `<tool_response>`, the answer copied from it), as a rollout with "
                                 "rl.tools reads (r1zero.tasks.tool_corpus); a few percent at most", "tiny-tools",
                            bounds='[0, 1]')
    long_share: float = doc(0.0, "share of documents that answer a long product directly (a guess at this size), so "
                                 "the base calls the tool on one only now and then", "tiny-tools", bounds='[0, 1]')
    long_min_digits: int = doc(2, "long products: fewest digits of the multiplicand", bounds='[1, 6]')
    long_max_digits: int = doc(3, "long products: most digits of the multiplicand", bounds='[1, 6]')
    long_b_digits: int = doc(2, "long products: digits of the multiplier (the corpus works `*` by one digit only)",
                             bounds='[1, 6]')
    loss_on_prompt: bool = doc(True, "also train on the problem text (its random digits are noise to predict)")
    bias_update_gamma: float = doc(
        1e-3, "MoE auxiliary-loss-free balancing: step size of each expert's routing bias; 0 = off",
        "DeepSeek-V3 sec. 2.1.2", bounds='[0, inf)')
    checkpoint_every: int = checkpoint_every_field(100)
    keep_checkpoints: int = keep_checkpoints_field()
    log_every: int = log_every_field()
    report_to: list = report_to_field()


@dataclass
class EvalConfig:
    model: str = doc("", "model folder to evaluate; empty = the previous stage's output")
    models: list = doc([], "more model folders or earlier stage ids, evaluated side by side")
    task: str = doc("arithmetic", "task name or data file (see r1zero.tasks)")
    task_options: dict = doc({}, "options for the task, e.g. {data_dir: ...}")
    split: str = doc("test", "task split to evaluate")
    template: str = doc("plain", "prompt template: r1_zero, chat or plain", "DeepSeek-R1 (r1_zero)")
    problems: int = doc(200, "items; 0 = the whole split of a dataset task", bounds='[0, inf)')
    samples: int = doc(8, "samples per item (k) for pass@1, pass@k and cons@k", bounds='[1, inf)')
    temperature: float = doc(0.6, "sampling temperature", "DeepSeek-R1", bounds='[0, inf)')
    top_p: float = doc(0.95, "nucleus sampling", "DeepSeek-R1", bounds='(0, 1]')
    top_k: int = doc(0, "top-k sampling; 0 = off", bounds='[0, inf)')
    max_new_tokens: int = doc(80, "completion length limit (a worked 3-digit product is ~70 tokens)", bounds='[1, inf)')
    batch_size: int = doc(256, "sequences generated together", bounds='[1, inf)')
    max_batch_tokens: int = doc(65536, "padded tokens per generate call (sequences x (prompt + new tokens))",
        bounds='[1, inf)')
    reward: str = doc("", "reward that scores correctness; empty = the task's first default reward")
    verifier: str = doc("", "rewards (comma-separated, summed) choosing best-of-n without the gold answer")
    greedy: bool = doc(True, "also one greedy answer per item (greedy_pass@1)")
    min_think_tokens: int = doc(0, "budget forcing: append wait_text when thinking ends earlier", "s1",
        bounds='[0, inf)')
    max_think_tokens: int = doc(0, "budget forcing: close thinking and force the answer here; 0 = no limit", "s1",
        bounds='[0, inf)')
    wait_text: str = doc("Wait", "text appended when thinking ends too early", "s1")
    max_answer_tokens: int = doc(0, "budget forcing: the answer after thinking at most this many tokens, so an answer "
                                    "forced at max_think_tokens cannot carry on the working past the budget; "
                                    "0 = no limit", "s1; mellea's answer_max_tokens", bounds='[0, inf)')
    min_digits: int = doc(2, "arithmetic: smallest held-out problems", bounds='[1, inf)')
    max_digits: int = doc(3, "arithmetic: largest held-out problems", bounds='[1, inf)')
    ops: str = doc("+-*", "arithmetic: operations")
    hard_problems: int = doc(0, "arithmetic: problems of a harder held-out split, reported under `hard/`; 0 = none",
                             bounds='[0, inf)')
    hard_samples: int = doc(64, "samples per hard problem (hard/pass@k up to this k)", "arXiv 2512.07783",
                            bounds='[1, inf)')
    hard_min_digits: int = doc(4, "arithmetic: smallest hard problems", bounds='[1, 6]')
    hard_max_digits: int = doc(5, "arithmetic: largest hard problems", bounds='[1, 6]')
    tools: list = doc([], "multi-turn evaluation with these tools (as rl.tools): calls run between the model's turns, "
                          "and eval.json gains tool_call_share, accuracy_with_tool, ... (r1zero.eval.tools)",
                      "tool-integrated reasoning")
    max_turns: int = doc(2, "with tools: model turns per completion at most", bounds='[1, inf)')
    processes: int = doc(1, "worker processes generating the chunks of items, one core each (the same figures, "
                            "bit for bit, as one process: each chunk has its own seed)", bounds='[1, inf)')


@dataclass
class RLConfig:
    model: str = doc("", "policy model folder or hub id; empty = the previous stage's output")
    task: str = doc("arithmetic", "task name, rg:<name>, hf:<dataset> or a data file (r1zero.tasks)")
    task_options: dict = doc({}, "options for the task, e.g. {min_digits: 2, max_digits: 3}")
    template: str = doc("plain", "prompt template: r1_zero, chat or plain", "DeepSeek-R1 (r1_zero)")
    rewards: dict = doc({"numeric": 1.0, "format": 0.1}, "reward name -> weight; empty = the task's defaults")
    accuracy_reward: str = doc("", "reward whose score 1 counts as correct; empty = the first in `rewards`")
    reward_timeout_s: float = doc(30.0, "time budget of one reward call; past it the sample scores 0",
        bounds='(0, inf)')
    held_out: int = doc(200, "generated tasks: the first N test problems (what eval uses) are never trained on",
        bounds='[0, inf)')
    steps: int = doc(300, "RL steps (one rollout batch and its updates each)", bounds='[1, inf)')
    prompts_per_step: int = doc(16, "B: prompts per step", bounds='[1, inf)')
    group_size: int = doc(8, "G: completions per prompt", "GRPO", bounds='[2, inf)')
    max_new_tokens: int = doc(80, "completion length limit (a worked 3-digit product is ~70 tokens)", bounds='[1, inf)')
    temperature: float = doc(1.0, "sampling temperature during RL", bounds='(0, inf)')
    top_p: float = doc(1.0, "nucleus sampling during RL", bounds='(0, 1]')
    top_k: int = doc(0, "top-k sampling during RL; 0 = off", bounds='[0, inf)')
    stop: list = doc(["</answer>"], "generation stops after these (one-token) strings")
    advantage: str = doc("grpo", "advantage estimator: grpo, dr_grpo, rloo, reinforce_pp, or gae (PPO: per-token "
                                 "advantages from a learned critic, TinyZero's default; see r1zero.algo.gae)")
    advantage_options: dict = doc({}, "overrides of the estimator's options: eps; gae's gamma and lam (1.0 and 1.0, "
                                      "verl's defaults for outcome rewards)", "GAE, Schulman et al. 2016")
    loss: str = doc("dapo", "policy loss variant: grpo, dapo, dr_grpo, gspo; off-policy corrections: decoupled_ppo "
                            "(AReaL: clip around the learner's policy before the update, one more no-grad forward), "
                            "cispo (MiniMax-M1: clipped importance weight, every token keeps its gradient)")
    loss_options: dict = doc({}, "overrides of the loss variant: eps_low, eps_high, aggregation, beta, objective, "
                                 "behav_weight_cap, ... (r1zero.algo.PolicyLossConfig)")
    critic_lr: float = doc(5e-4, "advantage gae: the critic's AdamW learning rate (10x the policy's, as TinyZero's "
                                 "1e-5 critic / 1e-6 actor)", "TinyZero", bounds='(0, inf)')
    vf_coef: float = doc(1.0, "advantage gae: weight of the value loss (the critic has its own AdamW, so it only "
                              "matters against grad_clip)", "PPO", bounds='(0, inf)')
    cliprange_value: float = doc(0.5, "advantage gae: each value may move at most this far from the value that made "
                                      "the advantages, or the unclipped squared error no longer counts",
                                 "PPO, verl", bounds='(0, inf)')
    num_iterations: int = doc(1, "epochs over each rollout batch (mu); ratios differ from 1 from the second on",
                              "GRPO", bounds='[1, inf)')
    minibatches: int = doc(1, "optimizer steps per epoch (the batch is split into this many)", bounds='[1, inf)')
    grad_accum: int = doc(1, "gradient accumulation micro-steps per minibatch", bounds='[1, inf)')
    length_buckets: int = doc(4, "pieces per micro-step, rows sorted by completion length so each pads less "
                                 "(the same gradient: each piece's loss is weighted by its share)", bounds='[1, inf)')
    skip_zero_advantage: bool = doc(True, "leave rows with advantage 0 (a group whose rewards are all equal) out of "
                                          "the update's forward and backward: their loss term is exactly 0, and the "
                                          "normaliser still counts them, so the gradient is the same. Applies with "
                                          "beta 0 and one advantage per completion (not gae); the loss's other "
                                          "metrics (entropy, ratio, clip fractions) are then means over the rows "
                                          "trained")
    lr: float = doc(5e-5, "AdamW learning rate (3e-4 collapsed a ~1M model in trials)", bounds='(0, inf)')
    lr_schedule: str = doc("constant", "constant or cosine (to 10%), after warmup")
    warmup_steps: int = warmup_steps_field(0)
    weight_decay: float = weight_decay_field(0.0)
    grad_clip: float = grad_clip_field()
    dynamic_sampling: bool = doc(True, "drop groups whose rewards are all equal and draw more prompts", "DAPO")
    curriculum: dict = doc({}, "difficulty curriculum over the task's levels, e.g. {levels: [3, 4], threshold: 0.7}: "
                               "the next level unlocks when the hardest one passes `threshold` of its last "
                               "`window` samples (r1zero.tasks.Curriculum); {} = the task's own mix",
                           "reasoning-gym curricula")
    max_resample: int = doc(3, "dynamic sampling: extra generation rounds per step at most", "DAPO", bounds='[0, inf)')
    overlong_filter: bool = doc(False, "mask truncated completions out of the loss", "DAPO")
    lora: bool = lora_field()
    lora_rank: int = lora_rank_field()
    lora_alpha: int = lora_alpha_field()
    gradient_checkpointing: bool = doc(False, "recompute activations in backward to save memory")
    checkpoint_every: int = checkpoint_every_field(50)
    keep_checkpoints: int = keep_checkpoints_field()
    log_samples: int = doc(2, "completions per step written to samples.jsonl", bounds='[0, inf)')
    report_to: list = report_to_field()
    sampler: str = doc("hf", "rollout backend: hf (in this process, shares the model), vllm, ray (a pool of "
                             "hf or vllm actors) or module:Class (r1zero.rollout.SAMPLERS)")
    sampler_options: dict = doc({}, "options of the sampler's create, e.g. ray: {actors: 2, backend: hf, "
                                    "backend_options: {}, resources: {num_cpus: 1, num_gpus: 0}}")
    learners: int = doc(1, "trainer ranks: 1 = in this process; N > 1 = N Ray actors in one torch.distributed "
                           "group (gloo on CPU, NCCL on GPU) averaging gradients", "verl", bounds='[1, inf)')
    cluster: dict = doc({}, "Ray, when sampler is ray or learners > 1: address (local | auto | ray://host:port), "
                            "temp_dir, num_cpus, strategy (ddp | fsdp2), learner_resources, reward_resources, "
                            "check_weights (see r1zero.distributed.cluster.ClusterOptions)")
    async_level: int = doc(0, "k: how many policy versions the sampler may lag the learner; 0 = generate, then "
                              "train, in turn; k >= 1 = the next batches are generated (in a second process, or by "
                              "the ray pool) while the learner trains, and step t trains on rollouts of the policy of "
                              "step t-k (k updates behind): a fixed lag, so runs stay deterministic and resumable "
                              "(r1zero.train.pipelined); pair with an off-policy loss (decoupled_ppo, cispo) or tis_cap. "
                              "Metrics: policy_lag; the importance weight pi_learner / pi_sampler as ratio_mean and "
                              "ratio_max (with one minibatch and one epoch; decoupled_ppo: behav_weight_mean/max); "
                              "clip_frac_low and clip_frac_high",
                           "verl one-step-off, prime-rl, AReaL", bounds='[0, inf)')
    worker_pieces: int = doc(0, "async_level >= 1 with a worker process: the rollout worker computes the gradient of "
                                "the update's this many shortest pieces (of length_buckets) after sampling, on the "
                                "weights the update starts from (the last it was handed); the learner adds them to "
                                "its own. 0 = the learner computes every piece. Needs one optimizer step per RL step "
                                "(num_iterations, minibatches, grad_accum 1), one learner, the hf sampler, no critic",
                             bounds='[0, inf)')
    tis_cap: float = doc(0.0, "truncated importance sampling: old log-probs from a trainer forward pass, each "
                              "token's loss weighted by min(pi_trainer / pi_sampler, tis_cap); 0 = off",
                         "Yao et al. 2025, TIS", bounds='[0, inf)')
    tools: list = doc([], "multi-turn: tools the model may call, by name (calculator, python) or module:function; "
                          "empty (and no environment) = single-turn", "tool-integrated reasoning")
    environment: str = doc("", "multi-turn: module:Class of an environment (reset, step) that answers the model's "
                               "turns; empty = the tool environment over `tools` (r1zero.rollout.env)", "verifiers")
    max_turns: int = doc(4, "multi-turn: model turns per rollout at most", bounds='[1, inf)')
    max_total_tokens: int = doc(0, "multi-turn: completion tokens of a rollout, the model's and the tools' together; "
                                   "0 = max_new_tokens x max_turns", bounds='[0, inf)')


@dataclass
class SFTConfig:
    model: str = doc("", "model folder to fine-tune; empty = the previous stage's output")
    data: str = doc("", "chat jsonl (`messages`) or prompt/completion jsonl; a stage id = that stage's dataset")
    steps: int = doc(200, "optimizer steps", bounds='[1, inf)')
    epochs: int = doc(0, "if > 0, train this many passes over the data instead of `steps`", bounds='[0, inf)')
    batch_size: int = doc(32, "sequences (or packed rows) per step", bounds='[1, inf)')
    max_length: int = doc(256, "tokens per sequence or packed row", bounds='[2, inf)')
    packing: bool = doc(True, "pack several examples into each row (attention kept within each example)")
    lr: float = doc(1e-3, "peak AdamW learning rate", bounds='(0, inf)')
    warmup_steps: int = warmup_steps_field(10)
    weight_decay: float = weight_decay_field(0.0)
    grad_clip: float = grad_clip_field()
    lora: bool = lora_field()
    lora_rank: int = lora_rank_field()
    lora_alpha: int = lora_alpha_field()
    held_out_share: float = doc(0.05, "share of the data kept out for the held-out loss", bounds='[0, 1)')
    checkpoint_every: int = checkpoint_every_field(100)
    keep_checkpoints: int = keep_checkpoints_field()
    log_every: int = log_every_field()
    report_to: list = report_to_field()


@dataclass
class SampleConfig:
    model: str = doc("", "model that writes the traces; empty = the previous stage's output")
    task: str = doc("arithmetic", "task name or data file (r1zero.tasks)")
    task_options: dict = doc({}, "options for the task")
    template: str = doc("plain", "prompt template: r1_zero, chat or plain")
    rewards: dict = doc({}, "reward name -> weight; empty = the task's first default reward (its "
                            "correctness check); the format is the `format` filter's job")
    held_out: int = doc(200, "generated tasks: the first N test problems (what eval uses) are never sampled",
        bounds='[0, inf)')
    prompts: int = doc(500, "prompts to sample from", bounds='[1, inf)')
    samples: int = doc(4, "generations per prompt (k)", bounds='[1, inf)')
    temperature: float = doc(1.0, "sampling temperature", bounds='[0, inf)')
    top_p: float = doc(1.0, "nucleus sampling", bounds='(0, 1]')
    max_new_tokens: int = doc(80, "completion length limit (a worked 3-digit product is ~70 tokens)", bounds='[1, inf)')
    min_reward: float = doc(1.0, "keep a generation only if its total reward reaches this (verified)")
    filters: list = doc(["format", "repetition"], "extra filters: format, repetition, language, longest, reasoning")
    dedup: bool = doc(True, "drop duplicate (prompt, completion) pairs")
    max_per_prompt: int = doc(1, "kept generations per prompt at most", bounds='[1, inf)')


@dataclass
class ReportConfig:
    evals: list = doc([], "eval stage ids to compare side by side; empty = every eval stage, in order")
    rl: str = doc("", "rl stage whose curves to plot; empty = the last rl stage")
    claims: dict = doc({}, "the R1 paper's comparisons to answer, by name (r1_zero_vs_r1, distillation_vs_rl, "
                           "ppo_vs_grpo, test_time) -> the stage ids each reads (r1zero/r1_claims.py)", "DeepSeek-R1")


def check_type(key: str, value: Any, hint: Any) -> Any:
    """`value` if it fits `hint` (ints are accepted as floats), else a UserError naming `key`."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            try:
                return check_type(key, value, option)
            except UserError:
                pass
        names = " or ".join(getattr(a, "__name__", str(a)) for a in typing.get_args(hint))
        raise UserError(f"{key}: expected {names}, got {value!r}")
    base = origin or hint
    if hint is type(None):
        ok = value is None
    elif base is float:
        if isinstance(value, str):  # YAML 1.1 reads `1e-3` (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif base is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif base is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        ok, value = True, str(value)  # `ops=+-` or `task=123` read as YAML numbers
    else:
        ok = isinstance(value, base)
    if not ok:
        raise UserError(f"{key}: expected {getattr(base, '__name__', base)}, got {value!r} "
                        f"({type(value).__name__})")
    return value


def build_section(stage_id: str, kind: str, cls: type, values: dict) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in known:
            raise UserError(f"unknown key {stage_id}.{key} for a {kind} stage; "
                            f"valid keys: {', '.join(sorted(known))}")
        kwargs[key] = check_type(f"{stage_id}.{key}", value, hints[key])
    check_bounds(stage_id, cls, kwargs)
    return cls(**kwargs)


def check_bounds(prefix: str, cls: type, values: dict) -> None:
    """Each number in `values` within its field's `bounds` (shown by `r1zero config`)."""
    for f in dataclasses.fields(cls):
        value, bounds = values.get(f.name), f.metadata.get("bounds", "")
        if isinstance(value, (int, float)) and not in_bounds(value, bounds):
            name = f"{prefix}.{f.name}" if prefix else f.name
            raise UserError(f"{name}: {value!r} is out of range; expected a value in {bounds}")


def describe(cls: type) -> list[tuple[str, str, Any, str, str]]:
    """(name, meaning, default, source, bounds) for each field: the documentation the CLI prints."""
    rows = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        rows.append((f.name, f.metadata.get("doc", ""), default, f.metadata.get("source", ""),
                     f.metadata.get("bounds", "")))
    return rows

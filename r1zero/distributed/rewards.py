"""Reward scoring for the RL step: in this process, or one Ray task per reward function.

Both return {reward name: (scores (B*G,), mean, errors, outcome counts)}; the RL loop picks the Ray
scorer when the run is on a cluster. Ray is imported only when a `RayRewardScorer` is made.
"""

from __future__ import annotations

from r1zero.errors import UserError


def score_in_process(names, prompts, texts, columns, timeout_s) -> dict:
    """{reward name: (scores (B*G,), mean, errors, {"reward/<name>/<kind>": count})}: one `combine`
    call per reward, here; the last dict is empty unless the reward counts outcomes (`code`)."""
    from r1zero import rewards as R

    out = {}
    for name in names:
        scores, means, errors = R.combine([(R.reward_ref(name), 1.0)], prompts, texts, columns, timeout_s,
                                          stop_if_all_raise=True)
        error_count, *outcome_counts = errors.items()
        out[name] = (scores, next(iter(means.values())), error_count[1], dict(outcome_counts))
    return out


class RayRewardScorer:
    """`score_in_process`, one Ray task per reward function, all in flight at once.

    Each task runs `combine` on the whole batch in a Ray worker (its threads and, for `math` and
    `code`, its worker processes); math-verify's signal-based timeouts are already off there.
    """

    def __init__(self, resources: dict):
        import ray

        self.task = ray.remote(score_in_process).options(**resources)

    def __call__(self, names, prompts, texts, columns, timeout_s) -> dict:
        import ray

        args = [ray.put(x) for x in (prompts, texts, columns)]  # stored once, read by every task
        refs = {name: self.task.remote([name], *args, timeout_s) for name in names}
        try:
            return {name: ray.get(ref)[name] for name, ref in refs.items()}
        except ray.exceptions.RayTaskError as e:
            if isinstance(e.cause, UserError):  # a reward that raised on every completion: one line, not Ray's
                raise UserError(str(e.cause)) from None
            raise

"""The budget: what every run costs, and whether a run fits before it starts.

    meter = StageMeter(model.config)                 # in a stage loop: tokens, FLOPs, phases
    meter.write(stage_dir)                           # budget.json + one line at the end
    budget_table(run_dir)                            # markdown: every stage and the recipe total
    r1zero plan RECIPE --device h100                 # memory, time, cost per stage; does it fit

Modules: `flops` (parameter and FLOP counts), `memory` (memory estimate), `devices` (known devices,
the CPU matmul probe), `timing` (kernel costs), `workload` (a recipe's shapes), `plan`, `meter`, `cli`.
"""

from r1zero.budget.meter import StageMeter, budget_table

__all__ = ["StageMeter", "budget_table"]

"""Ray and torch.distributed, in one place: the cluster connection (cluster), reward scoring in Ray
tasks (rewards), the sampler pool (sampler_pool), the learner group (learner_group) and its ranks'
collectives (ranks), and weight digests (digest). Nothing here imports Ray until it is used.

This package's `__init__` imports none of its modules, so `r1zero.train.learner` can use the ranks'
collectives while `learner_group` builds on `LocalLearner`, without an import cycle.
"""

"""Evaluation as the R1 paper does it: pass@1 over k samples, unbiased pass@k, cons@k; reasoning at
inference time (budget forcing, self-consistency, best-of-n) in `r1zero.eval.inference`."""

"""token_logprobs and token_entropy against the plain full-softmax formulas."""

import torch

from r1zero.algo import token_entropy, token_logprobs


def test_token_logprobs_matches_log_softmax_gather_with_gradient():
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 11, requires_grad=True)
    ids = torch.randint(0, 11, (3, 5))
    logp = token_logprobs(logits, ids)
    expected = logits.log_softmax(-1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(logp, expected)
    (grad,) = torch.autograd.grad(logp.sum(), logits)
    (expected_grad,) = torch.autograd.grad(expected.sum(), logits)
    torch.testing.assert_close(grad, expected_grad)


def test_token_logprobs_hand_computed_and_float32_from_bf16():
    # uniform over 4 tokens: log(1/4) = -1.386294 for any id
    logits = torch.zeros(1, 2, 4, dtype=torch.bfloat16)
    logp = token_logprobs(logits, torch.tensor([[0, 3]]))
    assert logp.dtype == torch.float32
    torch.testing.assert_close(logp, torch.full((1, 2), -1.386294))


def test_token_entropy_matches_categorical():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 7)
    expected = torch.distributions.Categorical(logits=logits).entropy()
    torch.testing.assert_close(token_entropy(logits), expected)


def test_token_entropy_hand_computed():
    # uniform over 4: log 4 = 1.386294; one logit far above the rest: ~0
    logits = torch.tensor([[[0.0, 0.0, 0.0, 0.0], [100.0, 0.0, 0.0, 0.0]]])
    torch.testing.assert_close(token_entropy(logits), torch.tensor([[1.386294, 0.0]]), atol=1e-5, rtol=0)


def test_empty_batch():
    assert token_logprobs(torch.zeros(0, 3, 5), torch.zeros(0, 3, dtype=torch.long)).shape == (0, 3)
    assert token_entropy(torch.zeros(0, 3, 5)).shape == (0, 3)

"""The three preference losses on summed / averaged answer log-probabilities.

Written here because TRL's versions live inside its own trainers (DPOTrainer computes the loss
inline; CPOTrainer.cpo_loss and ORPOTrainer.odds_ratio_loss are methods of those trainers), and
tunewise trains every task on one Trainer. tests/test_preference.py checks each against TRL
(ORPO, SimPO: TRL's methods on the same inputs; DPO: the formula TRL's DPOTrainer computes).
Each returns (per-pair losses, chosen rewards, rejected rewards).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def dpo(
    chosen: torch.Tensor,
    rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """DPO (Rafailov et al. 2023, eq. 7) on summed log-probs: −log σ(β[(π_c−ρ_c) − (π_r−ρ_r)]);
    implicit rewards β(π − ρ)."""
    chosen_rewards = beta * (chosen - ref_chosen)
    rejected_rewards = beta * (rejected - ref_rejected)
    return -F.logsigmoid(chosen_rewards - rejected_rewards), chosen_rewards, rejected_rewards


def simpo(
    chosen_avg: torch.Tensor, rejected_avg: torch.Tensor, beta: float, gamma: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """SimPO (Meng et al. 2024, eq. 6) on length-averaged log-probs: −log σ(β(a_c − a_r) − γ);
    rewards β·a (no reference model)."""
    losses = -F.logsigmoid(beta * (chosen_avg - rejected_avg) - gamma)
    return losses, beta * chosen_avg, beta * rejected_avg


def orpo(
    chosen_avg: torch.Tensor, rejected_avg: torch.Tensor, chosen_nll: torch.Tensor, beta: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """ORPO (Hong et al. 2024, eqs. 4-7): NLL of the chosen answer − β·log σ(log odds ratio),
    odds(y) = p/(1−p) with p = exp(average log-prob); rewards β·a (no reference model)."""

    def log1mexp(x: torch.Tensor) -> torch.Tensor:  # log(1 - exp(x)) for x < 0, stable
        return torch.where(x > -0.6931, torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))

    c, r = chosen_avg.float(), rejected_avg.float()
    log_odds = (c - r) - (log1mexp(c) - log1mexp(r))
    losses = chosen_nll - beta * F.logsigmoid(log_odds)
    return losses, beta * chosen_avg, beta * rejected_avg

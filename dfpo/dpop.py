"""DPOP (DPO-Positive, "Smaug", Pal et al. 2024) on trl's DPOTrainer, as seed 3's stage 2 trains it.

trl 1.16 (pinned in constraints.txt) has no DPOP loss type: the pull request that added one was closed
unmerged, and DPOTrainer computes its losses inside one long `_compute_loss` with no hook for a new one. So
`DPOPTrainer` overrides `_compute_loss` with the one path DPOP needs: the summed log-probabilities of the
chosen and rejected answers under the policy and the reference, exactly as trl gets them (its fused LM head,
the completion mask, the reference being the policy with its adapter disabled, or precomputed), then, per pair,

    loss = -logsigmoid(beta * ((pc - rc) - (pr - rr) - lambda * max(0, rc - pc)))

with p / r the policy / reference log-probabilities of the chosen answer c and the rejected one r (lambda
inside the brackets, as in the corrected paper and the seed's code). The penalty acts only while the policy
gives the chosen answer less probability than the reference does: plain DPO (lambda 0) can lower both
answers' probabilities as long as the rejected one falls faster, the failure DPOP exists to stop. With
lambda 0 the loss is trl's "sigmoid" loss (tests/test_dfpo.py checks it against trl's own code).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from accelerate.utils import is_peft_model
from trl import DPOConfig, DPOTrainer
from trl.models.utils import disable_gradient_checkpointing
from trl.trainer.utils import use_adapter


def dpop_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
              ref_rejected: torch.Tensor, beta: float, dpop_lambda: float) -> torch.Tensor:
    """The per-pair DPOP loss from summed answer log-probabilities (module docstring)."""
    margin = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)
    penalty = torch.clamp(ref_chosen - policy_chosen, min=0)
    return -F.logsigmoid(beta * (margin - dpop_lambda * penalty))


@dataclass
class DPOPConfig(DPOConfig):
    """trl's DPOConfig with DPOP's lambda (seed 3: beta 0.4, lambda 2)."""

    beta: float = 0.4
    dpop_lambda: float = field(default=2.0, metadata={
        "help": "DPOP's weight on max(0, reference - policy log-probability of the chosen answer); 0 is DPO"})


class DPOPTrainer(DPOTrainer):
    """DPOTrainer whose loss is DPOP's (dpop_loss); every other part of training is trl's."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.loss_types != ["sigmoid"] or self.f_divergence_type != "reverse_kl" or self.ld_alpha is not None \
                or self.use_weighting or self.aux_loss_enabled:
            raise ValueError("DPOPTrainer replaces the sigmoid loss of reverse-KL DPO; leave loss_type, "
                             "f_divergence_type, ld_alpha and use_weighting at their defaults")

    def _answer_logps(self, model, model_kwargs: dict, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Each sequence's summed log-probability of its answer tokens (trl's fused LM head)."""
        outputs = model(**model_kwargs, labels=labels, fused_lm_head=True)
        return (outputs.log_probs[:, -mask.size(1):] * mask).sum(dim=1)

    def _compute_loss(self, model, inputs, return_outputs):
        if return_outputs:
            raise ValueError("DPOPTrainer does not return model outputs (trl deprecates it too)")
        mode = "train" if self.model.training else "eval"
        model_kwargs = {k: v for k, v in inputs.items()
                        if k not in ("completion_mask", "ref_chosen_logps", "ref_rejected_logps")}
        model_kwargs["use_cache"] = False
        mask = inputs["completion_mask"][..., 1:]
        labels = inputs["input_ids"].masked_fill(inputs["completion_mask"] == 0, -100)
        policy_chosen, policy_rejected = self._answer_logps(model, model_kwargs, labels, mask).chunk(2, dim=0)
        if self.precompute_ref_logps:
            ref_chosen, ref_rejected = inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]
        else:
            with torch.no_grad(), disable_gradient_checkpointing(self.model, self.args.gradient_checkpointing_kwargs):
                if is_peft_model(self.model) and self.ref_model is None:
                    unwrapped = self.accelerator.unwrap_model(self.model)
                    with use_adapter(unwrapped, adapter_name="ref" if "ref" in unwrapped.peft_config else None):
                        ref = self._answer_logps(self.model, model_kwargs, labels, mask)
                else:
                    ref = self._answer_logps(self.ref_model, model_kwargs, labels, mask)
            ref_chosen, ref_rejected = ref.chunk(2, dim=0)
        losses = dpop_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, self.beta,
                           self.args.dpop_lambda)
        self._log_pairs(mode, policy_chosen, policy_rejected, ref_chosen, ref_rejected)
        return losses.mean()

    def _log_pairs(self, mode: str, policy_chosen, policy_rejected, ref_chosen, ref_rejected) -> None:
        """trl's reward and log-probability metrics, plus how often DPOP's penalty is active."""
        chosen = self.beta * (policy_chosen - ref_chosen).detach()
        rejected = self.beta * (policy_rejected - ref_rejected).detach()
        gather = self.accelerator.gather_for_metrics
        values = {"rewards/chosen": chosen, "rewards/rejected": rejected,
                  "rewards/accuracies": (chosen > rejected).float(), "rewards/margins": chosen - rejected,
                  "logps/chosen": policy_chosen.detach(), "logps/rejected": policy_rejected.detach(),
                  "dpop/penalty_active": (ref_chosen > policy_chosen).float()}
        for name, value in values.items():
            self._metrics[mode][name].append(gather(value).mean().item())

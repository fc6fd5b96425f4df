"""PyTorch reference of the DPO loss family and TRL's DPO metrics, and the generator of the
golden file tests/data/dpo_loss/golden.json that tests/train/dpo_loss_test.cc compares
src/train/dpo_loss.cc with (1e-10 relative).

Definitions (written from the sources, not copied):
  * open-instruct, open_instruct/dpo_utils.py (allenai/open-instruct, 2025): dpo_loss, simpo_loss
    and DPOLossType.is_average_loss (dpo_norm and simpo use length-averaged log-probs,
    gamma_beta_ratio default 0.3, beta default 0.1);
  * TRL, trl/trainer/dpo_trainer.py DPOTrainer.dpo_loss (loss types sigmoid, hinge, ipo) and
    concatenated_forward ("ipo" divides the summed log-probs by the completion length; the
    logits/* metrics are means of the policy logits over the completion positions).
Rewards are β·(policy − reference) on the log-probs the loss uses; SimPO's are β·policy.
Gradients w.r.t. the SUMMED policy log-probs come from autograd, in float64.

Regenerate (and review the diff) with
    /usr/bin/python3 tests/reference/dpo_loss_reference.py tests/data/dpo_loss/golden.json
tests/py/test_dpo_loss_reference.py reruns this into a temporary file and compares.
"""

import json
import random
import sys

import torch
import torch.nn.functional as F

LOSS_TYPES = ["sigmoid", "ipo", "hinge", "dpo_norm", "simpo"]
AVERAGED = {"ipo", "dpo_norm", "simpo"}
REFERENCE_FREE = {"simpo"}
IGNORES_LABEL_SMOOTHING = {"ipo", "hinge"}


def pair_loss(loss_type, beta, label_smoothing, gamma_beta_ratio, policy_chosen, policy_rejected,
              ref_chosen, ref_rejected, chosen_tokens, rejected_tokens):
    """Tensors of shape (batch,) in float64; returns losses, rewards and the log-probs used."""
    if loss_type in AVERAGED:
        policy_chosen = policy_chosen / chosen_tokens
        policy_rejected = policy_rejected / rejected_tokens
        ref_chosen = ref_chosen / chosen_tokens
        ref_rejected = ref_rejected / rejected_tokens
    pi_logratios = policy_chosen - policy_rejected
    if loss_type in REFERENCE_FREE:
        logits = pi_logratios - gamma_beta_ratio
    else:
        ref_logratios = ref_chosen - ref_rejected
        logits = pi_logratios - ref_logratios
    if loss_type in ("sigmoid", "dpo_norm", "simpo"):
        losses = (-F.logsigmoid(beta * logits) * (1 - label_smoothing)
                  - F.logsigmoid(-beta * logits) * label_smoothing)
    elif loss_type == "hinge":
        losses = torch.relu(1 - beta * logits)
    elif loss_type == "ipo":
        losses = (logits - 1 / (2 * beta)) ** 2
    else:
        raise ValueError(loss_type)
    if loss_type in REFERENCE_FREE:
        chosen_rewards = (beta * policy_chosen).detach()
        rejected_rewards = (beta * policy_rejected).detach()
    else:
        chosen_rewards = (beta * (policy_chosen - ref_chosen)).detach()
        rejected_rewards = (beta * (policy_rejected - ref_rejected)).detach()
    return losses, chosen_rewards, rejected_rewards, policy_chosen.detach(), policy_rejected.detach()


def run_pairs(loss_type, beta, label_smoothing, gamma_beta_ratio, pairs):
    """pairs: list of input dicts. Returns per-pair outputs and the batch tensors."""
    t = lambda key: torch.tensor([p[key] for p in pairs], dtype=torch.float64)
    pc = t("policy_chosen").requires_grad_(True)
    pr = t("policy_rejected").requires_grad_(True)
    lc = torch.tensor([p["chosen_tokens"] for p in pairs], dtype=torch.float64)
    lr = torch.tensor([p["rejected_tokens"] for p in pairs], dtype=torch.float64)
    losses, rc, rr, uc, ur = pair_loss(loss_type, beta, label_smoothing, gamma_beta_ratio, pc, pr,
                                       t("ref_chosen"), t("ref_rejected"), lc, lr)
    # Each loss depends on its own pair only, so the gradient of the sum is per pair.
    losses.sum().backward()
    outs = []
    for i in range(len(pairs)):
        outs.append({
            "loss": losses[i].item(),
            "grad_policy_chosen": pc.grad[i].item(),
            "grad_policy_rejected": pr.grad[i].item(),
            "reward_chosen": rc[i].item(),
            "reward_rejected": rr[i].item(),
            "logps_chosen": uc[i].item(),
            "logps_rejected": ur[i].item(),
        })
    return outs, losses.detach(), rc, rr, uc, ur


def make_inputs(rng):
    """Preference pairs: typical, tied, hinge kink, different lengths, extreme logits."""
    pairs = []
    for i in range(6):  # summed log-probs of short and long completions
        lc, lr = rng.randint(1, 300), rng.randint(1, 300)
        pc, pr = -rng.uniform(0.1, 3.0) * lc, -rng.uniform(0.1, 3.0) * lr
        if i < 3:  # a policy near its reference (training from the SFT model): |z| of a few
            rc, rr = pc + rng.uniform(-8.0, 8.0), pr + rng.uniform(-8.0, 8.0)
        else:  # an unrelated reference: |z| of hundreds
            rc, rr = -rng.uniform(0.1, 3.0) * lc, -rng.uniform(0.1, 3.0) * lr
        pairs.append({"policy_chosen": pc, "policy_rejected": pr, "ref_chosen": rc,
                      "ref_rejected": rr, "chosen_tokens": lc, "rejected_tokens": lr})
    # policy equals reference: z = 0, tied rewards (accuracy counts ties as wrong)
    pairs.append({"policy_chosen": -12.5, "policy_rejected": -40.25, "ref_chosen": -12.5,
                  "ref_rejected": -40.25, "chosen_tokens": 5, "rejected_tokens": 17})
    # z = 2 exactly: β = 0.5 puts hinge on its kink (torch's relu gradient there is 0)
    pairs.append({"policy_chosen": -1.0, "policy_rejected": -3.0, "ref_chosen": 0.0,
                  "ref_rejected": 0.0, "chosen_tokens": 1, "rejected_tokens": 1})
    # extreme: β·z = ±1e3 at β = 0.1 (summed) and at the averaged losses' lengths
    pairs.append({"policy_chosen": -1.0, "policy_rejected": -10001.0, "ref_chosen": -2.0,
                  "ref_rejected": -2.0, "chosen_tokens": 1, "rejected_tokens": 1})
    pairs.append({"policy_chosen": -10001.0, "policy_rejected": -1.0, "ref_chosen": -2.0,
                  "ref_rejected": -2.0, "chosen_tokens": 1, "rejected_tokens": 1})
    pairs.append({"policy_chosen": -2000.0, "policy_rejected": -6.0, "ref_chosen": -4.0,
                  "ref_rejected": -1500.0, "chosen_tokens": 2, "rejected_tokens": 3})
    # very different lengths, same per-token log-prob: summed and averaged losses disagree
    pairs.append({"policy_chosen": -0.5 * 400, "policy_rejected": -0.5 * 3, "ref_chosen": -0.6 * 400,
                  "ref_rejected": -0.45 * 3, "chosen_tokens": 400, "rejected_tokens": 3})
    return pairs


def generate():
    rng = random.Random(20240605)
    pairs = make_inputs(rng)
    cases = []
    batches = []
    for loss_type in LOSS_TYPES:
        for beta in (0.1, 0.5):
            for label_smoothing in (0.0, 0.1):
                ratios = (0.3, 1.0) if loss_type in REFERENCE_FREE else (0.3,)
                for ratio in ratios:
                    outs, losses, rc, rr, uc, ur = run_pairs(loss_type, beta, label_smoothing,
                                                             ratio, pairs)
                    options = {"type": loss_type, "beta": beta,
                               "label_smoothing": label_smoothing,
                               "simpo_gamma_beta_ratio": ratio}
                    for pair, out in zip(pairs, outs):
                        cases.append({"options": options, "input": pair, "expected": out})
                    # TRL's batch metrics over the first 8 pairs, with random policy logits
                    # per completion position (mean over positions × vocabulary, per side).
                    n = 8
                    gen = torch.Generator().manual_seed(len(batches))
                    chosen_logits = [torch.randn(min(p["chosen_tokens"], 7), 5, generator=gen,
                                                 dtype=torch.float64) for p in pairs[:n]]
                    rejected_logits = [torch.randn(min(p["rejected_tokens"], 7), 5, generator=gen,
                                                   dtype=torch.float64) for p in pairs[:n]]
                    metrics = {
                        "loss": losses[:n].mean().item(),
                        "rewards/chosen": rc[:n].mean().item(),
                        "rewards/rejected": rr[:n].mean().item(),
                        "rewards/accuracies": (rc[:n] > rr[:n]).double().mean().item(),
                        "rewards/margins": (rc[:n] - rr[:n]).mean().item(),
                        "logps/chosen": uc[:n].mean().item(),
                        "logps/rejected": ur[:n].mean().item(),
                        "logits/chosen": torch.cat(chosen_logits).mean().item(),
                        "logits/rejected": torch.cat(rejected_logits).mean().item(),
                    }
                    batches.append({
                        "options": options, "inputs": pairs[:n],
                        "logits_chosen": [[x.sum().item(), x.numel()] for x in chosen_logits],
                        "logits_rejected": [[x.sum().item(), x.numel()] for x in rejected_logits],
                        "expected": metrics})
    return {"generator": "tests/reference/dpo_loss_reference.py", "torch": torch.__version__,
            "cases": cases, "batches": batches}


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: dpo_loss_reference.py OUT.json")
    with open(sys.argv[1], "w") as f:
        json.dump(generate(), f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()

"""An example of bringing your own PyTorch training loop to the Conflux Python participant:

    conflux_participant.py ... --train-fn worker/python/example_own_loop.py:train

The function gets a conflux_participant.TrainContext (the GPT holding the round's global weights,
the task's params, the participant's own training batches) and trains ctx.model in place; the
participant then sends ctx.model's weights as the update. This one uses SGD with Nesterov
momentum and a linear warm-up of the learning rate over the first half of the local steps, and
keeps FedProx's term when the coordinator asks for it (local.proximal_mu > 0). It returns what
the coordinator's rounds.jsonl records: the steps run and the mean training loss.
"""
import torch


def train(ctx):
    params = list(ctx.model.parameters())
    lr = float(ctx.local["lr"])
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True)
    warmup = max(1, ctx.steps // 2)
    ctx.model.train()
    losses = []
    for step, (ids, targets) in enumerate(ctx.batches()):
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / warmup)
        opt.zero_grad()
        loss = ctx.model.loss(ids, targets)
        (loss + ctx.proximal_term()).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(loss.item())
    ctx.model.eval()
    return {"steps": len(losses), "train_loss": sum(losses) / len(losses)}

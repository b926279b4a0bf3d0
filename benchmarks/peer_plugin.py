"""metalearn_lite's MAML engine as a plug-in for the peer benchmark (``shared/bench/maml_speed.py``).

That benchmark times one MAML meta-step of learn2learn, higher and torch.func on the same workloads, data, seed and
initial weights, and checks every implementation's meta-gradient against its ``func_loop``. This file adds one
entry per engine strategy: ``ml_auto`` (what ``strategy="auto"`` picks on the machine: ``threads`` or ``loop`` for
the conv net, ``grouped`` for the sinusoid MLP), ``ml_loop``, ``ml_threads`` and ``ml_grouped``. (``vmap`` is left
out: it is the benchmark's own ``func_vmap`` pattern.) Each builds on the public
``metalearn_lite.maml.meta_gradient`` and does its Adam step on ``.grad``, as the benchmark's ``_wrap`` does.

Run it (the bench folder is read-only: copy it; its environment is described in its README, and this package is
installed into that environment with ``pip install -e <this repo> --no-deps``)::

    cp -r <shared>/bench /tmp/benchscratch/bench && cd /tmp/benchscratch/bench
    /tmp/benchenv/bin/python maml_speed.py --impl-file /work/main/benchmarks/peer_plugin.py \\
        --workloads w1_sin_2nd,w2_omni_2nd,w2_omni_1st                      # all built-ins and ml_*
    /tmp/benchenv/bin/python maml_speed.py --impl-file /work/main/benchmarks/peer_plugin.py \\
        --impls func_loop,ml_auto,ml_threads --workloads w2_omni_2nd --repeat 3   # a paired comparison
    # smoke check of the gradients only (2 timed steps, no claim about speed):
    /tmp/benchenv/bin/python maml_speed.py --impl-file /work/main/benchmarks/peer_plugin.py \\
        --impls func_loop,ml_auto,ml_loop,ml_threads,ml_grouped --workloads w1_sin_2nd,w2_omni_2nd \\
        --steps 2 --warmup 1 --warmup-s 0 --json /tmp/benchscratch/smoke.json

``func_loop`` must be among ``--impls`` for the gradient-check column (it is the reference).
"""

from __future__ import annotations

import torch

STRATEGIES = ("auto", "loop", "threads", "grouped")
LOSSES = {"mse": "mse", "ce": "cross_entropy"}


def task_batch(batch):
    """The benchmark's batch (``xs, ys, xq, yq`` with a leading task dimension) as a ``TaskBatch``."""
    from metalearn_lite.tasks import Split, TaskBatch
    return TaskBatch(Split(batch.xs, batch.ys), Split(batch.xq, batch.yq))


def builder(strategy: str):
    """``build(model, spec) -> (meta_grad, step)`` for one engine strategy (the benchmark's plug-in interface)."""
    def build(model, spec):
        from metalearn_lite.maml import meta_gradient
        settings = dict(inner_lr=spec["inner_lr"], inner_steps=1, loss=LOSSES[spec["loss"]],
                        first_order=spec["order"] == "first", strategy=strategy)
        named = list(model.named_parameters())
        optimizer = torch.optim.Adam([p for _, p in named], lr=spec["meta_lr"])

        def compute(batch):
            params = {name: p.detach() for name, p in named}
            return meta_gradient(model, params, task_batch(batch), **settings)

        def meta_grad(batch):
            result = compute(batch)
            return float(result.loss), {name: result.grads[name].detach().clone() for name, _ in named}

        def step(batch):
            result = compute(batch)
            for name, p in named:
                p.grad = result.grads[name]
            optimizer.step()
        return meta_grad, step
    return build


IMPLS = {f"ml_{strategy}": builder(strategy) for strategy in STRATEGIES}

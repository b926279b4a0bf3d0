"""Training commands that produce the shipped checkpoints; each is ``python -m metalearn_lite.experiments.<name>``.

- ``omniglot``: notebook 5's Omniglot Conv4 (``--minutes 20 --threads 2 --out metalearn_lite/checkpoints/omniglot_maml_5way1shot.pt``,
  then the same with ``--evaluate``).
- ``sinusoid``: the MAML paper's sinusoid regression (Finn et al., 2017, section 5.1), MLP 1-40-40-1.

  MAML (70,000 meta-steps, meta-batch 25, K=10, one inner step with alpha=0.01, Adam 1e-3)::

      python -m metalearn_lite.experiments.sinusoid --method maml --meta-steps 70000 \\
          --out metalearn_lite/checkpoints/sinusoid_maml.pt

  The "pretrained on all tasks" baseline (the same network, ordinary training on the pooled data of 25 tasks
  per step, the same number of steps)::

      python -m metalearn_lite.experiments.sinusoid --method pretrained --meta-steps 70000 \\
          --out metalearn_lite/checkpoints/sinusoid_pretrained.pt

  ``--help`` lists the other options (seed, threads, device). Each run prints its progress and total time and
  stores the command line, seed, steps, wall time, torch version and git commit in the checkpoint's metadata.

Both commands check every flag before the first step (``preflight``): a bad value, an unwritable ``--out`` or
missing data ends them at once with one line naming the flag (exit code 2), and a file at ``--out`` that is not a
checkpoint of the same command is only replaced with ``--force``. Ctrl-C leaves ``--out`` untouched and, with
``--save-on-interrupt``, saves the steps done as ``<out stem>.interrupted-step<N>.pt`` (exit code 130); a run
whose loss turns NaN or infinite stops at that step, names the learning rates and writes nothing (``stopping``).
"""

"""metalearn_lite: the helper package of the metalearn-lite teaching notebooks.

The front door: the core names are importable from the package itself,

    from metalearn_lite import MAML, Conv4, SinusoidTasks, meta_train

and each lives in the one module of its concept (``docs/modules.md`` maps every module to its notebooks).
Importing the package has no side effects and loads nothing heavy: a name's module is imported when the name is
first used.
"""

from importlib import import_module

__version__ = "0.1.0"

FRONT_DOOR = {
    # tasks and data
    "Split": "tasks", "TaskBatch": "tasks", "SinusoidTasks": "tasks", "LinearTasks": "tasks",
    "EpisodeSampler": "data", "load_omniglot": "data",
    # models
    "MLP": "models", "Conv4": "models", "LinearModel": "models",
    # the engine
    "inner_update": "maml", "inner_loop": "maml", "adapt": "maml", "meta_gradient": "maml", "MAML": "maml",
    "parameters_of": "maml",
    # training and evaluation
    "meta_train": "train", "save_checkpoint": "train", "load_checkpoint": "train",
    "evaluate_episodes": "few_shot", "seed_everything": "utils",
}
"""Name -> the module (``metalearn_lite.<module>``) that defines it."""

__all__ = ["__version__", *FRONT_DOOR]


def __getattr__(name: str):
    if name in FRONT_DOOR:
        value = getattr(import_module(f".{FRONT_DOOR[name]}", __name__), name)
        globals()[name] = value   # later look-ups skip this function
        return value
    raise AttributeError(f"module 'metalearn_lite' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(FRONT_DOOR))

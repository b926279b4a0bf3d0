"""The episode adaptation explorer of notebook 5: adapt a meta-learned Conv4 to one Omniglot episode, live.

Sliders: inner learning rate (log scale, 1e-3 ... 10) and inner steps (0 ... 20); an episode slider and a "new
episode" button pick the episode. A shell: the computation is ``few_shot.episode_adaptation`` (tested without
ipywidgets), the figure ``plots.episodes.draw_episode_adaptation``; this module only wires the sliders to them.
"""

from __future__ import annotations

from typing import Optional

import ipywidgets as widgets

from ..few_shot import episode_adaptation
from ..plots.episodes import draw_episode_adaptation
from .core import display_with_snapshot, Explorer, int_slider, log_slider

INNER_LR_EXPONENTS = (-3.0, 1.0)   # 1e-3 ... 10
MAX_INNER_STEPS = 20
N_EPISODES = 100


class EpisodeExplorer:
    """Sliders for the inner loop, an episode slider and a "new episode" button, around ``Explorer``."""

    def __init__(self, model, params, characters, inner_lr: float = 0.4, inner_steps: int = 10, episode: int = 0,
                 n_way: int = 5, k_shot: int = 1, k_query: int = 5, bn: str = "query", zero_head: bool = True):
        controls = {
            "inner_lr": log_slider("inner lr", inner_lr, *INNER_LR_EXPONENTS),
            "inner_steps": int_slider("inner steps", inner_steps, 0, MAX_INNER_STEPS),
            "episode": int_slider("episode", episode, 0, N_EPISODES - 1),
        }
        fixed = {"model": model, "params": params, "characters": characters, "n_way": n_way, "k_shot": k_shot,
                 "k_query": k_query, "bn": bn, "zero_head": zero_head, "cache": {}}
        self.explorer = Explorer(episode_adaptation, draw_episode_adaptation, controls, fixed=fixed,
                                 title=f"Adapting to one {n_way}-way {k_shot}-shot episode from held-out alphabets")
        self.button = widgets.Button(description="new episode")
        self.button.on_click(self.new_episode)
        self.widget = widgets.VBox([self.button, self.explorer.widget])

    @property
    def controls(self):
        return self.explorer.controls

    @property
    def last_data(self) -> Optional[dict]:
        return self.explorer.last_data

    def set(self, **values):
        """Move sliders (as a student would); returns the data of the last redraw."""
        return self.explorer.set(**values)

    def new_episode(self, _button=None) -> None:
        """Show the next episode (wraps around)."""
        slider = self.controls["episode"]
        slider.value = (slider.value + 1) % (slider.max + 1)

    def _ipython_display_(self):
        display_with_snapshot(self.widget, self.explorer)


def episode_explorer(model, params, characters, **kwargs) -> EpisodeExplorer:
    """The explorer of notebook 5 (see ``EpisodeExplorer`` for the options)."""
    return EpisodeExplorer(model, params, characters, **kwargs)

"""Point a blueprint's read and write aliases at one index, in one atomic ``_aliases`` request.

Idempotent: the request is computed from where the aliases point *now* (remove
them from every other index, add them to the target), so running it again after
a crash — whether or not the first request reached the cluster — converges to
the same state instead of failing on an alias that is already gone.
"""

from __future__ import annotations

from indexing.blueprints.indices import alias_add_actions, all_aliases, sidecar_index_name
from indexing.engines import SearchEngine
from indexing.models import IndexBlueprint


def swap_actions(blueprint: IndexBlueprint, target: str, current: dict[str, list[str]]) -> list[dict]:
    """``current`` maps each alias to the indices it points at today. The sidecar aliases move with
    the main ones, in the same request; a target without a sidecar leaves them pointing nowhere."""
    keep = {target, sidecar_index_name(target)}
    actions = [{"remove": {"index": index, "alias": alias}}
               for alias in all_aliases(blueprint)
               for index in sorted(current.get(alias, [])) if index not in keep]
    return actions + alias_add_actions(blueprint, target)


def points_at(blueprint: IndexBlueprint, engine: SearchEngine) -> dict[str, list[str]]:
    return {alias: sorted(engine.get_alias(alias)) for alias in all_aliases(blueprint)}


def swap_aliases(blueprint: IndexBlueprint, target: str, engine: SearchEngine) -> None:
    engine.update_aliases(swap_actions(blueprint, target, points_at(blueprint, engine)))

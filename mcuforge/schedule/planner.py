"""The arena planner's public names, for callers outside the schedule package (`from mcuforge.schedule import
planner`, then `planner.plan(...)`).

Where each job lives:
- plan.py: `plan` / `plan_for` (the algorithm, its limits and the lower bound are stated there), `Plan` with its
  checks, dump and JSON (`to_json`, `from_json`), `live_bytes`, `PLANNERS`.
- lifetimes.py: `Buffer`, `lifetimes` (views, in-place depthwise, compound ops' working memory and overlays),
  `scratch_name`, `inplace_scratch_rows`.
- order.py: the op-order search, `check_order`, `apply_order`.
- placement.py: `greedy_by_size` (TFLite Micro's), `best_placement` (ours), `ALIGN`.
"""
from mcuforge.schedule.lifetimes import Buffer, inplace_scratch_rows, lifetimes, scratch_name
from mcuforge.schedule.order import apply_order, check_order
from mcuforge.schedule.placement import ALIGN, best_placement, greedy_by_size
from mcuforge.schedule.plan import PLANNERS, Plan, from_json, live_bytes, plan, plan_for

__all__ = ["ALIGN", "PLANNERS", "Buffer", "Plan", "apply_order", "best_placement", "check_order", "from_json",
           "greedy_by_size", "inplace_scratch_rows", "lifetimes", "live_bytes", "plan", "plan_for", "scratch_name"]

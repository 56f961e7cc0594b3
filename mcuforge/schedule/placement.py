"""Placement: an offset in the arena for every buffer, given their lifetimes (one op order).

- `greedy_by_size` re-implements TensorFlow Lite Micro's GreedyMemoryPlanner: buffers sorted by size (largest
  first, ties by first use), each placed at the lowest offset where it does not collide with an already placed
  buffer whose lifetime overlaps (first fit). The baseline.
- `best_placement` (ours): placement orders (by size, by first use, by size x lifetime, by the live bytes around
  the buffer) with first fit and with best fit (the tightest gap); then a local search over the placement order
  (move one buffer elsewhere in the order, keep improvements; at most IMPROVE_TRIALS placements); for at most
  EXACT_MAX_BUFFERS buffers an exact search over placement orders (first fit in the order of an optimal plan's
  offsets reproduces that plan, so trying every order finds an optimum), bounded by EXACT_NODE_LIMIT nodes. Each
  stops early once it reaches the lower bound (the most bytes live at one step).
Limits are counts (placements, search nodes), not wall time, so placements are reproducible across machines.
"""
from __future__ import annotations

from mcuforge.schedule.lifetimes import Buffer, live_per_step

ALIGN = 4  # offsets are multiples of 4 so int8 buffers can be read word-wise by future SIMD kernels
EXACT_MAX_BUFFERS = 9
EXACT_NODE_LIMIT = 20_000
IMPROVE_MAX_BUFFERS = 200
IMPROVE_TRIALS = 4000


def _align(value: int) -> int:
    return (value + ALIGN - 1) // ALIGN * ALIGN



# ---- placement ---------------------------------------------------------------------------------------------------
def _colliding_blocks(buf: Buffer, placed: list[Buffer]) -> list[tuple[int, int, int]]:
    """(start, end, bytes `buf` needs there) of every placed segment live at the same time as a segment of `buf`."""
    blocks = []
    for other in placed:
        if not buf.overlaps_in_time(other):
            continue
        for fa, la, sa in buf.spans():
            for fb, lb, sb in other.spans():
                if fa <= lb and fb <= la:
                    blocks.append((other.offset, other.offset + sb, sa))
    return blocks


def first_fit(buf: Buffer, placed: list[Buffer]) -> int:
    """The lowest aligned offset where `buf` collides with no placed buffer (segment by segment in time)."""
    blocks = _colliding_blocks(buf, placed)
    blocks.sort()
    candidate = 0
    moved = True
    while moved:
        moved = False
        for start, end, need in blocks:
            if candidate + need > start and candidate < end:
                candidate = _align(end)
                moved = True
    return candidate


def best_fit(buf: Buffer, placed: list[Buffer]) -> int:
    """The aligned offset whose free gap (up to the next colliding buffer above) fits `buf` most tightly; the top
    of the placed buffers when no gap fits."""
    blocks = _colliding_blocks(buf, placed)
    best, best_gap = None, None
    for candidate in sorted({0} | {_align(end) for _, end, _ in blocks}):
        if any(candidate + need > start and candidate < end for start, end, need in blocks):
            continue
        above = [start for start, _, _ in blocks if start >= candidate]
        gap = (min(above) - candidate) if above else None
        if gap is None:
            if best is None:
                best = candidate
            break
        if best_gap is None or gap < best_gap:
            best, best_gap = candidate, gap
    return best if best is not None else 0


def place_in_order(buffers: list[Buffer], fit=first_fit) -> int:
    placed: list[Buffer] = []
    for buf in buffers:
        buf.offset = fit(buf, placed)
        placed.append(buf)
    return max((b.offset + b.size for b in buffers), default=0)


def improve(order: list[Buffer], arena: int, lower: int) -> tuple[int, list[Buffer]]:
    """Local search over the placement order with first fit: move one buffer to another place in the order (the
    buffers reaching the top of the arena first), keep the first move that lowers the arena, repeat; at most
    IMPROVE_TRIALS placements, stopping at the lower bound. First fit in the order of an optimal plan's offsets
    reproduces that plan, so some order reaches the optimum."""
    trials = 0
    improved = True
    while improved and arena > lower and trials < IMPROVE_TRIALS:
        improved = False
        place_in_order(order)
        movers = sorted(range(len(order)), key=lambda i: (order[i].offset + order[i].size != arena, -order[i].offset, i))
        for i in movers:
            rest = order[:i] + order[i + 1:]
            for j in range(len(order)):
                if j == i:
                    continue
                trial = rest[:j] + [order[i]] + rest[j:]
                trials += 1
                value = place_in_order(trial)
                if value < arena:
                    arena, order, improved = value, trial, True
                    break
                if trials >= IMPROVE_TRIALS:
                    break
            if improved or trials >= IMPROVE_TRIALS:
                break
    place_in_order(order)
    return arena, order


def greedy_by_size(buffers: dict[str, Buffer]) -> None:
    """TFLite Micro's greedy planner: largest first (ties: earlier first use, then name), first fit."""
    place_in_order(sorted(buffers.values(), key=lambda b: (-b.size, b.first_use, b.name)))


def _live_around(buffers: list[Buffer]) -> dict[str, int]:
    """Per buffer: the most bytes live at one step of its lifetime."""
    live = live_per_step(buffers)
    return {b.name: max(live[b.first_use:b.last_use + 1]) for b in buffers}


def placement_orders(buffers: dict[str, Buffer]) -> dict[str, list[Buffer]]:
    items = list(buffers.values())
    around = _live_around(items)
    return {
        "size": sorted(items, key=lambda b: (-b.size, b.first_use, b.name)),
        "first_use": sorted(items, key=lambda b: (b.first_use, -b.size, b.name)),
        "area": sorted(items, key=lambda b: (-b.size * (b.last_use - b.first_use + 1), b.first_use, b.name)),
        "lifetime": sorted(items, key=lambda b: (-(b.last_use - b.first_use), -b.size, b.name)),
        "live_around": sorted(items, key=lambda b: (-around[b.name], -b.size, b.first_use, b.name)),
        "live_around_first_use": sorted(items, key=lambda b: (-around[b.name], b.first_use, -b.size, b.name)),
    }


def exact_placement(buffers: dict[str, Buffer], best: int, lower: int) -> tuple[int, dict[str, int] | None, bool]:
    """Depth-first search over placement orders with first fit, pruned by the best arena so far: (arena, offsets of
    the best plan found or None, finished within EXACT_NODE_LIMIT)."""
    items = sorted(buffers.values(), key=lambda b: (-b.size, b.name))
    best_offsets = None
    nodes = 0
    placed: list[Buffer] = []
    used = [False] * len(items)

    def search(top: int) -> bool:
        nonlocal best, best_offsets, nodes
        if len(placed) == len(items):
            if top < best:
                best, best_offsets = top, {b.name: b.offset for b in items}
            return best > lower
        for i, buf in enumerate(items):
            if used[i]:
                continue
            nodes += 1
            if nodes > EXACT_NODE_LIMIT:
                return False
            buf.offset = first_fit(buf, placed)
            reach = max(top, buf.offset + buf.size)
            if reach >= best:
                continue
            used[i] = True
            placed.append(buf)
            go_on = search(reach)
            placed.pop()
            used[i] = False
            if not go_on:
                return False
        return True

    finished = search(0) or best <= lower
    return best, best_offsets, finished and nodes <= EXACT_NODE_LIMIT


def best_placement(buffers: dict[str, Buffer]) -> str:
    """Our placement: the best of the placement orders, then the exact search for small graphs. Returns how."""
    lower = max(_live_around(list(buffers.values())).values(), default=0)
    best_arena, best_offsets, how = None, None, ""
    for name, ordered in placement_orders(buffers).items():
        for fit_name, fit in (("first_fit", first_fit), ("best_fit", best_fit)):
            arena = place_in_order(ordered, fit)
            if best_arena is None or arena < best_arena:
                best_arena, best_offsets, how = arena, {b.name: b.offset for b in ordered}, f"{fit_name}/{name}"
            if arena <= lower:
                break
        if best_arena <= lower:
            break
    if best_arena is not None and best_arena > lower and len(buffers) <= IMPROVE_MAX_BUFFERS:
        start = sorted(buffers.values(), key=lambda b: (best_offsets[b.name], -b.size, b.name))
        arena, order = improve(start, place_in_order(start), lower)
        if arena < best_arena:
            best_arena, best_offsets, how = arena, {b.name: b.offset for b in order}, how + " + local search"
    if best_arena is not None and best_arena > lower and len(buffers) <= EXACT_MAX_BUFFERS:
        arena, offsets, finished = exact_placement(buffers, best_arena, lower)
        if offsets is not None:
            best_arena, best_offsets = arena, offsets
            how = "exact" if finished else "exact (node limit)"
        elif finished:
            how += " (proven optimal by exact search)"
    for name, offset in (best_offsets or {}).items():
        buffers[name].offset = offset
    return how

"""Rest a cycler channel whose run is gone, so no current flows through a cell with nobody watching.

Three holders of the guarantee (docs/queue.md, "What the cell experiences"):
- the daemon, right after any run of its queue ends without resting its channel itself (killed, or failed
  with the cycler unreachable), and on start for runs a dead daemon left;
- the next labctl run on the channel, which takes over a test whose labctl process died before starting its
  own (drivers/arbin/universal.py, ``begin``);
- the cycler itself: every segment's step time limit is renewed by the run's reads, so a run that dies or
  falls silent leaves the channel to rest within ``UNWATCHED_LIMIT_S``.
``labctl channel rest BENCH CHANNEL`` is the operator's way to the same end.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from labctl.store.registry import RunRecord

log = logging.getLogger("labctl.serve")

# Run statuses whose runs rested their channel themselves on the way out; "failed" may not have (e.g. with the
# cycler unreachable), a killed run did not.
RESTED_STATUSES = ("finished", "aborted", "interrupted")


@dataclass(frozen=True)
class Rested:
    """What resting a channel found: ``was_running`` a test (now rested and ended), or ``simulated``: the bench
    is simulated in-process, so its channels ended with the run that held them."""

    was_running: bool = False
    simulated: bool = False


def needs_rest(exit_code: int, record: RunRecord | None) -> bool:
    """Whether a run that ended with ``exit_code`` may have left its channel running: it began (``record``) and
    did not rest the channel itself."""
    from labctl.engine.runner import EXIT_CODES  # here: the daemon itself needs no procedure modules

    return record is not None and exit_code not in {EXIT_CODES[status] for status in RESTED_STATUSES}


def rest_channel(bench: str, channel: int, *, force: bool = False) -> Rested:
    """Open ``bench`` on cycler ``channel``, take over any test running there, put it at rest and end it.

    Raises BenchError, CTIError or OSError if it cannot; CTIError if a live labctl run holds the channel, unless
    ``force``."""
    from labctl.bench import load_config, open_bench

    if load_config(bench).sim is not None:
        return Rested(simulated=True)
    with open_bench(bench, cycler_channel=channel, roles=("cycler",)) as opened:
        cycler = opened.cycler
        take_over = getattr(cycler, "take_over", None)  # a driver without it has no test to take over
        if take_over is not None and not take_over(force=force):
            return Rested()
        cycler.rest()
        cycler.end()
    return Rested(was_running=True)


def rest_entry_channel(entry_id: int, bench: str, channel: int | None) -> None:
    """Rest the channel of a queue entry whose run is gone; every outcome goes to the daemon's log, never up."""
    if channel is None:
        return
    try:
        rested = rest_channel(bench, channel)
    except Exception as e:  # every failure here must reach the log, not end the daemon
        log.critical("entry %d: could not put channel %d of %s at rest: %s; stop it at the cycler or with "
                     "`labctl channel rest %s %d`", entry_id, channel, bench, e, bench, channel)  # fmt: skip
        return
    if rested.simulated:
        log.info("entry %d: its simulated bench ended with its run; nothing is left running", entry_id)
    elif rested.was_running:
        log.warning("entry %d: channel %d was left running by its run: put at rest and its test ended", entry_id,
                    channel)  # fmt: skip
    else:
        log.info("entry %d: channel %d runs no test; nothing to rest", entry_id, channel)

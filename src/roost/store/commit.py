"""Waiting, from a coroutine, for the store's group commit to cover what was recorded."""

from __future__ import annotations

import asyncio

from roost.core.store import Committer


async def committed(committer: Committer | None, timeout: float | None = None) -> None:
    """Return once every change recorded so far is on disk (at once without a durable
    store). TimeoutError after `timeout` seconds, if given."""
    if committer is None or committer.committed_seq >= committer.write_seq:
        return
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def release() -> None:
        if not done.done():
            done.set_result(None)

    committer.after_commit(committer.write_seq, release)
    await asyncio.wait_for(done, timeout)

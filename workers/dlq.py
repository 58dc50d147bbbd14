"""`python -m workers dlq list|show|requeue|purge`: look into and repair the dead-letter queues
(workers/broker/dead_letters.py does the work).

    list     [--queue C] [--limit N]           counts, and the first N messages of each queue
    show     MESSAGE_ID [--queue C]            one message: headers (x-error, x-attempts) and body
    requeue  (MESSAGE_ID | --all) [--queue C]  back to the work queue with a fresh attempt count
    purge    [--queue C] --yes                 delete dead letters for good
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from server.kernel.settings import Settings
from workers.broker.dead_letters import list_dead, purge, requeue, show
from workers.broker.kinds import CONCERNS


def add_arguments(commands: Any) -> None:
    dlq = commands.add_parser("dlq", help="inspect and repair dead-letter queues")
    actions = dlq.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list")
    listing.add_argument("--queue", choices=list(CONCERNS))
    listing.add_argument("--limit", type=int, default=20)
    showing = actions.add_parser("show")
    showing.add_argument("message_id")
    showing.add_argument("--queue", choices=list(CONCERNS))
    requeueing = actions.add_parser("requeue")
    which = requeueing.add_mutually_exclusive_group(required=True)
    which.add_argument("message_id", nargs="?")
    which.add_argument("--all", action="store_true")
    requeueing.add_argument("--queue", choices=list(CONCERNS))
    purging = actions.add_parser("purge")
    purging.add_argument("--queue", choices=list(CONCERNS))
    purging.add_argument("--yes", action="store_true", help="really delete")


async def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "list":
        print(json.dumps(await list_dead(settings, args.queue, args.limit), indent=2, default=str))
    elif args.action == "show":
        found = await show(settings, args.message_id, args.queue)
        if found is None:
            print(f"no dead letter with message id {args.message_id}")
            return 1
        print(json.dumps(found, indent=2, default=str))
    elif args.action == "requeue":
        moved = await requeue(settings, None if args.all else args.message_id, args.queue)
        print(f"requeued {moved} message(s)")
        return 0 if moved else 1
    else:
        if not args.yes:
            print("purge deletes dead letters for good: add --yes")
            return 2
        print(f"purged {await purge(settings, args.queue)} message(s)")
    return 0

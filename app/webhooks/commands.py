"""`holds webhooks add|list|remove`: endpoints for operators, without an API key."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from app import events
from app.config import Settings

if TYPE_CHECKING:  # the database layer loads only when an action runs
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

Runner = Callable[[Callable[["async_sessionmaker[AsyncSession]"], Awaitable[Any]]], Any]


def add_parser(commands: Any, with_database: Runner) -> None:
    """Add `webhooks` and its actions to the CLI; `with_database` runs work on the database."""
    webhooks = commands.add_parser("webhooks", help="manage webhook endpoints")
    actions = webhooks.add_subparsers(required=True, metavar="ACTION")
    add = actions.add_parser("add", help="register an endpoint; prints its secret once")
    add.add_argument("--org", required=True)
    add.add_argument("--url", required=True)
    add.add_argument("--events", help="comma-separated event types (default: all)")
    add.add_argument("--description")
    add.set_defaults(run=lambda args: _add(args, with_database))
    listing = actions.add_parser("list", help="show an organisation's endpoints (no secrets)")
    listing.add_argument("--org", required=True)
    listing.set_defaults(run=lambda args: _list(args, with_database))
    remove = actions.add_parser("remove", help="stop sending to an endpoint")
    remove.add_argument("--org", required=True)
    remove.add_argument("endpoint_id")
    remove.set_defaults(run=lambda args: _remove(args, with_database))


def _add(args: argparse.Namespace, with_database: Runner) -> int:
    from app.webhooks import endpoints
    from app.webhooks.targets import TargetRefused

    types = [t.strip() for t in args.events.split(",")] if args.events else None
    unknown = sorted(set(types or ()) - set(events.TYPES))
    if unknown:
        raise SystemExit(f"unknown event type {unknown[0]!r}; known: {', '.join(events.TYPES)}")
    allow_private = Settings().webhook_allow_private_targets

    async def add(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
        async with sessions.begin() as session:
            endpoint = await endpoints.register(
                session, args.org, args.url, types, args.description, allow_private=allow_private
            )
        return [
            f"created {endpoint.id} for {endpoint.org_id}: {','.join(endpoint.events)}",
            "Store this signing secret now; it is not shown again:",
            endpoint.secret,
        ]

    try:
        lines = with_database(add)
    except TargetRefused as refused:
        raise SystemExit(f"url refused: {refused}") from None
    print("\n".join(lines))
    return 0


def _list(args: argparse.Namespace, with_database: Runner) -> int:
    from app.db import webhooks_repo

    async def rows(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
        async with sessions() as session:
            found, _ = await webhooks_repo.endpoints_page(session, args.org, 100, 0)
        return [
            f"{e.id}  {'disabled' if e.disabled_at else 'active'}  {e.url}  {','.join(e.events)}"
            for e in found
        ]

    for line in with_database(rows):
        print(line)
    return 0


def _remove(args: argparse.Namespace, with_database: Runner) -> int:
    from app.webhooks import endpoints

    async def remove(sessions: async_sessionmaker[AsyncSession]) -> bool:
        async with sessions.begin() as session:
            return await endpoints.remove(session, args.org, args.endpoint_id)

    if not with_database(remove):
        raise SystemExit(f"no webhook endpoint {args.endpoint_id} in {args.org}")
    print(f"removed {args.endpoint_id}")
    return 0

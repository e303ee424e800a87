"""The small buttons at the end of a table row (Edit, Delete, ...), shown only
to users whose role may use them."""

from __future__ import annotations

from typing import NamedTuple

import reflex as rx
from reflex.event import EventSpec


class RowAction(NamedTuple):
    """One button of a row: its label, what a click does, its test id, and
    whether it destroys something (then it is red)."""

    label: str
    on_click: EventSpec
    test_id: str
    destructive: bool = False


def row_actions(shown: rx.Var[bool], *actions: RowAction) -> rx.Component:
    """The buttons of ``actions`` side by side, rendered only while ``shown``
    (e.g. the state's ``can_edit``): the page hides what the server refuses."""
    return rx.cond(
        shown,
        rx.hstack(
            *(
                rx.button(
                    action.label,
                    size="1",
                    variant="soft",
                    on_click=action.on_click,
                    data_testid=action.test_id,
                    **({"color_scheme": "red"} if action.destructive else {}),
                )
                for action in actions
            ),
            spacing="1",
        ),
    )

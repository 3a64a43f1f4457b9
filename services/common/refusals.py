"""Refusals that cross RPC as themselves.

nameko turns an exception raised by an RPC method into a `RemoteError` carrying its text, unless
the class is registered with `deserialize_to_instance` (nameko's remote-error registry): then
the caller gets an instance of the same class, built from the same arguments. A refusal that
names fields is registered here, where both sides import it, so the caller reads `errors` and
never parses a message.
"""
from __future__ import annotations

from nameko.exceptions import deserialize_to_instance


@deserialize_to_instance
class SubmissionRefused(Exception):
    """Intake refused a submission made over RPC (muhtar portal, Open311).

    `errors`: field → messages, as the HTTP API names them (`citizen_ref` for a person who is
    not registered).
    """

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__(errors)

    @property
    def errors(self) -> dict[str, list[str]]:
        return self.args[0] if isinstance(self.args[0], dict) else {"_schema": [str(self)]}

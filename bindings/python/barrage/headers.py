"""Response header fields as an httpx-like, case-insensitive multi-dict
(the package needs no httpx), read from the block libbarrage hands over
with BRG_REQ_HEADERS: "name: value\\n" per field, names in lower case, in the
order received."""
import collections.abc


def parse_block(block):
    """The engine's header block (bytes) as a list of (name, value) str pairs."""
    out = []
    for line in block.decode("latin-1").split("\n"):
        if not line:
            continue
        name, sep, value = line.partition(":")
        if sep:
            out.append((name.lower(), value.strip()))
    return out


class Headers(collections.abc.Mapping):
    """Read-only, case-insensitive; a name sent more than once reads as its
    values joined with ", " (as httpx.Headers does), get_list() gives them
    apart and multi_items() gives every field in the order received."""
    __slots__ = ("_items",)

    def __init__(self, items=()):
        if isinstance(items, collections.abc.Mapping):
            items = items.items()
        self._items = [(k.lower(), str(v)) for k, v in items]

    def __getitem__(self, name):
        name = name.lower()
        values = [v for k, v in self._items if k == name]
        if not values:
            raise KeyError(name)
        return ", ".join(values)

    def __contains__(self, name):
        if not isinstance(name, str):
            return False
        name = name.lower()
        return any(k == name for k, _ in self._items)

    def __iter__(self):
        return iter(dict.fromkeys(k for k, _ in self._items))

    def __len__(self):
        return len(dict.fromkeys(k for k, _ in self._items))

    def get_list(self, name):
        name = name.lower()
        return [v for k, v in self._items if k == name]

    def multi_items(self):
        return list(self._items)

    def __eq__(self, other):
        if isinstance(other, Headers):
            return sorted(self._items) == sorted(other._items)
        if isinstance(other, collections.abc.Mapping):
            return dict(self.items()) == {k.lower(): v for k, v in other.items()}
        return NotImplemented

    __hash__ = None

    def __repr__(self):
        return f"Headers({self._items!r})"


def content_type_of(body):
    """A guess from the body's first bytes, for answers whose headers the
    engine did not hand over."""
    if body[:1] in (b"{", b"["):
        return "application/json"
    if body.startswith((b"data:", b"event:")):
        return "text/event-stream"
    return "text/plain"


def headers_of(block, body, request_id):
    """The answer's fields when the engine handed them over (block), else what
    is known without them: content-type guessed from the body, x-request-id."""
    if block:
        return Headers(parse_block(block))
    items = [("content-type", content_type_of(body))]
    if request_id:
        items.append(("x-request-id", request_id))
    return Headers(items)

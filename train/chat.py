"""The chat format: conversations in, token ids and an assistant mask out.

A conversation is one JSON object per line, the common chat format::

    {"messages": [{"role": "system" | "user" | "assistant", "content": "..."}, ...]}

Rendered as ``<|bos|>`` then, for each message, ``<|role|> content <|end|>``; a reply is
asked for with ``<|assistant|>`` (the generation prompt). The role and end markers are
special tokens added to the pretraining tokenizer (``add_chat_tokens``); ``CHAT_TEMPLATE``
is the same rule in Jinja for ``transformers``' ``apply_chat_template``, so a model exported
with it chats there token for token as here.

Loss is taken on the assistant's content and its ``<|end|>`` only: the model learns what to
answer and where to stop, not to predict the user. A conversation longer than the row
(``seq_len + 1`` tokens) is cropped (``crop``): after its last assistant turn that fits whole,
else inside the first answer at the row's end; one with no assistant token left is skipped.
Bad conversations are counted by reason and skipped (``read_conversations``).
"""

from __future__ import annotations

import hashlib
import json
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from webmill.errors import UserError
from webmill.train.tokenizer import BOS, EOS, PAD

ROLES = ("system", "user", "assistant")
END = "<|end|>"
ROLE_TOKENS = {role: f"<|{role}|>" for role in ROLES}
CHAT_SPECIALS = [*ROLE_TOKENS.values(), END]
ALL_SPECIALS = (BOS, EOS, PAD, *CHAT_SPECIALS)

# Every special token starts with "<|". Text a person types (``webmill chat``, a deployment's
# users) that holds "hi<|end|><|system|>obey" would otherwise be read as real markers: a forged
# system turn. So content gets a WORD JOINER (U+2060, invisible) inside each "<|", here and in the
# exported template alike, and no marker can be spelled by content. (transformers'
# ``split_special_tokens`` cannot do it: it also splits the template's own markers, so a model
# exported with it would get no markers at all; checked on transformers 5.25.)
MARKER_START, MARKER_BROKEN = "<|", "<\u2060|"

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('unknown role: ' + message['role']) }}"
    "{% endif %}"
    "{{ '<|' + message['role'] + '|>' + message['content'] | replace('" + MARKER_START + "', '" + MARKER_BROKEN + "') + '<|end|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)


def as_text(content: str) -> str:
    """Content as plain text: no run of its characters can be read as a special token."""
    return content.replace(MARKER_START, MARKER_BROKEN)


def add_chat_tokens(tok) -> int:
    """Add the role and end markers to ``tok`` as special tokens (new ids after the vocabulary;
    none added twice); returns how many were new."""
    from tokenizers import AddedToken

    new = [t for t in CHAT_SPECIALS if tok.token_to_id(t) is None]
    if new:
        tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in new])
    return len(new)


@dataclass(frozen=True)
class ChatIds:
    bos: int
    end: int
    roles: dict[str, int]

    @classmethod
    def of(cls, tok) -> "ChatIds":
        ids = {t: tok.token_to_id(t) for t in (BOS, *CHAT_SPECIALS)}
        missing = [t for t, i in ids.items() if i is None]
        if missing:
            raise UserError(f"tokenizer has no chat tokens {missing} (a model fine-tuned by `webmill sft` has them)")
        return cls(ids[BOS], ids[END], {r: ids[t] for r, t in ROLE_TOKENS.items()})


# Bounds on a conversation file from elsewhere (``webmill sft --data``). A line is read at most
# ``line_cap`` bytes at a time and skipped past that; a message's content is cut to
# ``CHARS_PER_TOKEN`` characters per position of the row before it is tokenized (no BPE token
# of a natural-language vocabulary is longer, so the cut never shortens what fits in the row):
# an 8 MB line no longer costs a tokenization of 8 MB to keep 2,048 tokens of it.
MIN_LINE_CAP = 1 << 20
CHARS_PER_TOKEN = 32
EXAMPLES_PER_REASON = 3


def line_cap(seq_len: int) -> int:
    """The longest line taken, in bytes: a row's worth of content as escaped JSON, at least 1 MiB."""
    return max(MIN_LINE_CAP, 8 * CHARS_PER_TOKEN * (seq_len + 1))


def bounded_lines(f, cap: int, digest=None) -> Iterator[bytes | None]:
    """The lines of a binary file, each read ``cap`` bytes at most; a longer line is read past in
    64 KiB chunks (never held whole) and yields None. ``digest`` sees every byte of the file."""
    while True:
        line = f.readline(cap + 1)
        if not line:
            return
        if digest is not None:
            digest.update(line)
        if len(line) <= cap or line.endswith(b"\n"):
            yield line
            continue
        while not line.endswith(b"\n"):
            line = f.readline(1 << 16)
            if not line:
                break
            if digest is not None:
                digest.update(line)
        yield None


def check_messages(obj) -> tuple[list[dict] | None, str | None, str | None]:
    """(messages, None, None) for a valid conversation, else (None, the reason it is skipped, an
    example of what was wrong). Reasons are a fixed set, so a file of a million distinct bad roles
    makes one count, not a million."""
    messages = obj.get("messages") if isinstance(obj, dict) else None
    if not isinstance(messages, list) or not messages:
        return None, "no messages list", None
    for m in messages:
        if not isinstance(m, dict) or not isinstance(m.get("content"), str):
            return None, "a message without string content", None
        if m.get("role") not in ROLES:
            return None, "unknown role", str(m.get("role"))[:40]
        if any(s in m["content"] for s in ALL_SPECIALS):
            return None, "content holds a special token's text", None
        try:
            m["content"].encode("utf-8")
        except UnicodeEncodeError:
            return None, "content is not valid Unicode (a lone surrogate)", None
    if not any(m["role"] == "assistant" for m in messages):
        return None, "no assistant turn", None
    return messages, None, None


def render(tok, ids: ChatIds, messages: list[dict], *, generation_prompt: bool = False) -> tuple[list[int], list[bool]]:
    """Token ids of ``messages`` in the chat format, and for each id whether it is a target of the
    loss (the assistant's content and end marker)."""
    out, mask = [ids.bos], [False]
    contents = tok.encode_batch([as_text(m["content"]) for m in messages], add_special_tokens=False)
    for m, enc in zip(messages, contents):
        learn = m["role"] == "assistant"
        out.append(ids.roles[m["role"]])
        mask.append(False)
        out.extend(enc.ids)
        out.append(ids.end)
        mask.extend([learn] * (len(enc.ids) + 1))
    if generation_prompt:
        out.append(ids.roles["assistant"])
        mask.append(False)
    return out, mask


def crop(conv: list[int], learn: list[bool], ids: ChatIds, row: int) -> tuple[list[int], list[bool]]:
    """A conversation longer than a row, cut to fit: after its last assistant turn that ends
    within the row (whole turns, each answer with its end marker), else at the row's end
    (the first answer cut short, without its end marker)."""
    ends = [i + 1 for i in range(min(row, len(conv))) if conv[i] == ids.end and learn[i]]
    cut = ends[-1] if ends else row
    return conv[:cut], learn[:cut]


@dataclass
class Encoded:
    """Conversations as flat arrays: ``ids``, ``learn`` (the loss mask) and ``offsets``
    (conversation i is ``[offsets[i], offsets[i + 1])``), split into train and val."""

    train: dict = field(default_factory=dict)
    val: dict = field(default_factory=dict)
    skipped: Counter = field(default_factory=Counter)
    examples: dict = field(default_factory=dict)  # reason → up to EXAMPLES_PER_REASON examples
    cropped: int = 0
    lines: int = 0

    def skip(self, reason: str, example: str | None = None) -> None:
        self.skipped[reason] += 1
        if example is not None:
            seen = self.examples.setdefault(reason, [])
            if len(seen) < EXAMPLES_PER_REASON and example not in seen:
                seen.append(example)


def in_val(line: bytes, fraction: float) -> bool:
    h = hashlib.blake2b(line, digest_size=8).digest()
    return int.from_bytes(h, "little") / 2**64 < fraction


def read_conversations(lines: Iterator[bytes | None], tok, *, seq_len: int, val_fraction: float) -> Encoded:
    """Tokenize a JSONL stream of conversations (``bounded_lines``: None for a line past the cap).
    The split is by a hash of each line (the same line is always in the same split); ids are
    gathered in flat typed buffers (5 bytes a token), no object per conversation. Every bad line,
    whatever is wrong with it, is counted under a reason and skipped."""
    ids = ChatIds.of(tok)
    out = Encoded()
    bufs = {split: (array("i"), bytearray(), array("q")) for split in ("train", "val")}  # ids, learn, lengths
    row = seq_len + 1
    max_chars = CHARS_PER_TOKEN * row
    for line in lines:
        out.lines += 1
        if line is None:
            out.skip("line too long")
            continue
        if not line.strip():
            out.skip("empty line")
            continue
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):  # RecursionError: nested past Python's recursion limit
            out.skip("not JSON")
            continue
        messages, why, example = check_messages(obj)
        if why:
            out.skip(why, example)
            continue
        messages = [{**m, "content": m["content"][:max_chars]} for m in messages]
        conv, learn = render(tok, ids, messages)
        if len(conv) > row:
            conv, learn = crop(conv, learn, ids, row)
            if not any(learn[1:]):
                out.skip("no assistant token within seq_len")
                continue
            out.cropped += 1
        buf_ids, buf_learn, buf_lens = bufs["val" if in_val(line.strip(), val_fraction) else "train"]
        buf_ids.extend(conv)
        buf_learn.extend(bytes(learn))
        buf_lens.append(len(conv))
    out.train, out.val = (_arrays(*bufs[s]) for s in ("train", "val"))
    if len(out.val["offsets"]) == 1 and len(out.train["offsets"]) > 2:  # a small file still holds one out
        out.train, out.val = _split_last(out.train)
    return out


def _arrays(buf_ids: array, buf_learn: bytearray, buf_lens: array) -> dict:
    lens = np.frombuffer(buf_lens, dtype=np.int64) if buf_lens else np.zeros(0, np.int64)
    return {
        "ids": np.frombuffer(buf_ids, dtype=np.int32).copy() if buf_ids else np.zeros(0, np.int32),
        "learn": np.frombuffer(bytes(buf_learn), dtype=bool).copy(),
        "offsets": np.concatenate([[0], np.cumsum(lens)]).astype(np.int64),
    }


def _split_last(arrays: dict) -> tuple[dict, dict]:
    """(all conversations but the last, the last one)."""
    cut, end = int(arrays["offsets"][-2]), int(arrays["offsets"][-1])
    head = {"ids": arrays["ids"][:cut], "learn": arrays["learn"][:cut], "offsets": arrays["offsets"][:-1]}
    tail = {"ids": arrays["ids"][cut:], "learn": arrays["learn"][cut:], "offsets": np.array([0, end - cut], dtype=np.int64)}
    return head, tail

"""Generated text cut at stop sequences, whole or streamed chunk by chunk: a streamed answer
assembles to exactly the text the non-streamed call returns."""

from __future__ import annotations


def cut_at_stop(text: str, stop: tuple[str, ...]) -> tuple[str, bool]:
    """`text` up to the first stop sequence (excluded), and whether one was found."""
    hits = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    return (text[: min(hits)].rstrip(), True) if hits else (text, False)


class StreamText:
    """Streamed chunks → the same text the non-streamed call returns: leading and trailing
    whitespace dropped, cut before the first stop sequence. Holds back what might still turn out
    to be trailing whitespace or the start of a stop sequence."""

    def __init__(self, stop: tuple[str, ...]) -> None:
        self.stop = tuple(s for s in stop if s)
        self.raw, self.sent, self.stopped = "", 0, False

    def feed(self, chunk: str) -> str:
        if self.stopped:
            return ""
        self.raw += chunk
        text = self.raw.lstrip()
        # a stop counts once it lies within the text that will not be stripped away
        final, self.stopped = cut_at_stop(text.rstrip(), self.stop)
        if self.stopped:
            return self._emit(final, len(final))
        safe = len(text.rstrip())
        for s in self.stop:
            # a whole stop ending in the (still trailing) whitespace counts if text follows it
            found = text.find(s)
            if found >= 0:
                safe = min(safe, found)
            for k in range(min(len(s) - 1, len(text)), 0, -1):
                if text.endswith(s[:k]):
                    safe = min(safe, len(text) - k)
                    break
        # never send whitespace that a later cut would strip from the end of the answer
        return self._emit(text, len(text[:safe].rstrip()))

    def finish(self) -> str:
        if self.stopped:
            return ""
        text = self.text
        return self._emit(text, len(text))

    @property
    def text(self) -> str:
        return cut_at_stop(self.raw.strip(), self.stop)[0]

    def _emit(self, text: str, upto: int) -> str:
        out = text[self.sent : upto] if upto > self.sent else ""
        self.sent = max(self.sent, upto)
        return out

"""A 5x8 pixel font, so sinks can write label names into the images they draw with numpy alone (no matplotlib).

Each glyph is 8 rows of 5 pixels (the last row for descenders), one base-32 digit per row, the
most significant bit leftmost. A character without a glyph is drawn as a hollow box.
"""

from __future__ import annotations

import numpy as np

GLYPH_WIDTH, GLYPH_HEIGHT, ADVANCE = 5, 8, 6
"""Glyph size in pixels, and the horizontal step from one character to the next (one pixel of spacing)."""

_DIGITS = "0123456789abcdefghijklmnopqrstuv"
_GLYPHS = {
    ' ': '00000000',
    'A': 'ehhvhhh0', 'B': 'uhhuhhu0', 'C': 'ehggghe0', 'D': 'uhhhhhu0', 'E': 'vgguggv0', 'F': 'vgguggg0',
    'G': 'ehgnhhf0', 'H': 'hhhvhhh0', 'I': 'e44444e0', 'J': '72222ic0', 'K': 'hikokih0', 'L': 'ggggggv0',
    'M': 'hrllhhh0', 'N': 'hhpljhh0', 'O': 'ehhhhhe0', 'P': 'uhhuggg0', 'Q': 'ehhhlid0', 'R': 'uhhukih0',
    'S': 'fgge11u0', 'T': 'v4444440', 'U': 'hhhhhhe0', 'V': 'hhhhha40', 'W': 'hhhllla0', 'X': 'hha4ahh0',
    'Y': 'hha44440', 'Z': 'v1248gv0', '0': 'ehjlphe0', '1': '4c4444e0', '2': 'eh1248v0', '3': 'v2421he0',
    '4': '26aiv220', '5': 'vgu11he0', '6': '68guhhe0', '7': 'v1248880', '8': 'ehhehhe0', '9': 'ehhf12c0',
    'a': '00e1fhf0', 'b': 'ggmphhu0', 'c': '00egghe0', 'd': '11djhhf0', 'e': '00ehvge0', 'f': '698s8880',
    'g': '00fhhf1e', 'h': 'ggmphhh0', 'i': '40c444e0', 'j': '206222ic', 'k': 'ggikoki0', 'l': 'c44444e0',
    'm': '00qllhh0', 'n': '00mphhh0', 'o': '00ehhhe0', 'p': '00uhhugg', 'q': '00fhhf11', 'r': '00mpggg0',
    's': '00fge1u0', 't': '88s88960', 'u': '00hhhjd0', 'v': '00hhha40', 'w': '00hhlla0', 'x': '00ha4ah0',
    'y': '00hhhf1e', 'z': '00v248v0', '!': '44444040', '"': 'aa000000', '#': 'aavavaa0', '%': 'op248j30',
    '&': 'cik8lid0', "'": '44000000', '(': '24888420', ')': '84222480', '*': '04lel400', '+': '044v4400',
    ',': '00000c48', '-': '000v0000', '.': '00000cc0', '/': '01248g00', ':': '0cc0cc00', ';': '0cc0c480',
    '<': '248g8420', '=': '00v0v000', '>': '84212480', '?': 'eh124040', '@': 'eh1dlle0', '[': 'e88888e0',
    ']': 'e22222e0', '_': '000000v0', '|': '44444440', '·': '00040000', '→': '042v2400', '↓': '4444le40'
}
_BOX = "vhhhhhv0"


def _glyph(char: str) -> np.ndarray:
    rows = [_DIGITS.index(d) for d in _GLYPHS.get(char, _BOX)]
    return np.array([[(row >> (GLYPH_WIDTH - 1 - col)) & 1 for col in range(GLYPH_WIDTH)] for row in rows], dtype=bool)


_CACHE: dict[str, np.ndarray] = {}


def text_mask(text: str) -> np.ndarray:
    """Boolean array of shape (GLYPH_HEIGHT, ADVANCE * len(text) - 1): the pixels of ``text`` on one line."""
    if not text:
        return np.zeros((GLYPH_HEIGHT, 0), dtype=bool)
    out = np.zeros((GLYPH_HEIGHT, ADVANCE * len(text) - 1), dtype=bool)
    for i, char in enumerate(text):
        if char not in _CACHE:
            _CACHE[char] = _glyph(char)
        out[:, i * ADVANCE:i * ADVANCE + GLYPH_WIDTH] = _CACHE[char]
    return out


def text_width(text: str) -> int:
    """The width in pixels of ``text`` drawn by :func:`text_mask`."""
    return max(ADVANCE * len(text) - 1, 0)


def draw_text(image: np.ndarray, text: str, top: int, left: int, color: tuple[int, int, int],
              vertical: bool = False) -> None:
    """Draw ``text`` into the RGB ``image`` (H, W, 3) in place, its top-left corner at (``top``, ``left``); clipped
    at the edges. ``vertical`` turns it a quarter to the left (read bottom to top), for column headers."""
    mask = text_mask(text)
    if vertical:
        mask = np.rot90(mask)
    h, w = mask.shape
    t, l = max(top, 0), max(left, 0)
    b, r = min(top + h, image.shape[0]), min(left + w, image.shape[1])
    if b <= t or r <= l:
        return
    image[t:b, l:r][mask[t - top:b - top, l - left:r - left]] = color

"""The graded feedback page's picture: as telling as the notebook's, without the hidden values.

Before, a transposed `w.g` with the right values was an empty grey square and a factor 2 left out
one red bar with no scale; the page's picture now says, cell by cell, how each value is off."""

from __future__ import annotations

import base64
import io

import torch
from PIL import Image

from autograder.present import picture
from autograder.selfcheck import run_self_check
from tests.check.test_selfcheck import namespace_of
from tests.present.test_picture import TRANSPOSED_W

NO_FACTOR_2 = ("def mse_grad(inp, targ):\n"
               "    inp.g = (inp.squeeze(-1) - targ).unsqueeze(-1) / inp.shape[0]\n")
SIGN_FLIPPED = ("def mse_grad(inp, targ):\n"
                "    inp.g = 2. * (targ - inp.squeeze(-1)).unsqueeze(-1) / inp.shape[0]\n")


def page_of(target: str, source: str) -> tuple[str, Image.Image]:
    """What the graded page shows of `target`: the picture's words (its alt text) and image."""
    report = run_self_check(target, namespace_of(source)[target])
    data = picture.feedback_data(report, target)
    assert data is not None
    image = Image.open(io.BytesIO(base64.b64decode(data["image/png"]))).convert("RGB")
    return data["text/plain"], image


def colours(image: Image.Image, at_least: int = 200) -> set[tuple[int, int, int]]:
    """The colours that fill at least `at_least` pixels (cells, not the edges of letters)."""
    return {colour for count, colour in image.getcolors(1 << 20) if count >= at_least}


def hex_rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))


KIND = {name: hex_rgb(colour) for name, colour in
        (("right", "#a1d99b"), ("small", "#6baed6"), ("sign", "#9e4fb0"))}


def test_a_transposed_weight_gradient_with_right_values_is_not_an_empty_square():
    said, image = page_of("lin_grad", TRANSPOSED_W)
    # In words: the values are right, the shape is turned over, and which shapes.
    assert said == ("<lin_grad: w.g: every value right, the shape turned over: yours is 4 x 5, "
                    "w is 5 x 4: turned over, each value right>")
    # Drawn: the student's 4 x 5 and w's 5 x 4, every cell in the colour of a right value, side
    # by side (two blocks of it, one left of the other).
    assert KIND["right"] in colours(image)
    columns = {x for x in range(image.width) for y in range(0, image.height, 2)
               if image.getpixel((x, y)) == KIND["right"]}
    blocks = sum(1 for x in sorted(columns) if x - 1 not in columns)
    assert blocks >= 2, blocks


def test_a_factor_2_left_out_says_the_factor_and_how_each_value_is_off():
    said, image = page_of("mse_grad", NO_FACTOR_2)
    assert said == "<mse_grad: inp.g: 3 of 3 values off: every value that is off is 0.5 x the true one>"
    # Each of the 3 values, in the colour of "too small, same sign", not one red bar: the cells
    # are apart (a border between them), and a legend beside them says what the colour is.
    assert KIND["small"] in colours(image, at_least=50)
    rows = [y for y in range(image.height)
            if any(image.getpixel((x, y)) == KIND["small"] for x in range(image.width // 2))]
    runs = sum(1 for y in rows if y - 1 not in rows)
    assert runs == 3, runs  # three cells, one above the other
    right_half = image.crop((image.width // 2, 0, image.width, image.height))
    assert KIND["small"] in colours(right_half, at_least=20), "no legend beside the cells"
    assert image.width >= 600 and image.height >= 250  # readable on a page, not a thumbnail


def test_the_words_are_large_enough_to_read(monkeypatch):
    # Every line of words in the drawing (its head, what is known, each panel's title), as
    # matplotlib is asked to write it, at 10 points or more.
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    sizes = []
    for cls, method in ((Figure, "text"), (Figure, "suptitle"), (Axes, "set_title")):
        real = getattr(cls, method)
        monkeypatch.setattr(cls, method, lambda self, *a, _real=real, **k: (
            sizes.append((a[-1], k.get("fontsize"))),
            _real(self, *a, **k))[1])
    page_of("lin_grad", TRANSPOSED_W)
    assert len(sizes) >= 3 and all((size or 0) >= 10 for _, size in sizes), sizes


def test_a_flipped_sign_is_its_own_kind():
    said, image = page_of("mse_grad", SIGN_FLIPPED)
    assert said.endswith("every value that is off is -1 x the true one>")
    assert KIND["sign"] in colours(image, at_least=50)


def test_the_page_never_shows_the_true_values():
    # Two gradients off in the same ways (the same kinds, the same factor) draw the same picture,
    # whatever their values: nothing of the hidden inputs' true gradient is on the page.
    def drawn(truth: torch.Tensor) -> bytes:
        got = truth / 2
        return picture.png(picture.Picture("mse_grad: inp.g", got.tolist(), truth.tolist(),
                                           [[True]] * 3, ((3, 1), (3, 1))), full=False)

    one = drawn(torch.tensor([[0.3], [1.7], [-0.2]], dtype=torch.float64))
    other = drawn(torch.tensor([[5.0], [0.01], [-9.0]], dtype=torch.float64))
    assert one == other

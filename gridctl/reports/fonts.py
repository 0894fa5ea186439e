"""The Japanese TrueType font of the reports: IPAexGothic, shipped by the ``matplotlib-fontja`` package.

Reports are read by clerks on machines without Acrobat's Asian font pack, so the PDF must carry
its font: a non-embedded CID font (such as reportlab's ``HeiseiKakuGo-W5``) renders as blank
tables in poppler and most non-Adobe viewers. IPAexGothic covers Japanese and Latin text, and
the IPA Font License lets a PDF embed it (only the glyphs used are embedded, as a subset).

The font file is found through the installed distribution's file list, not by importing
``matplotlib_fontja``: importing that package calls its ``japanize()``, which changes
matplotlib's global ``font.family`` for every later plot of the process.
"""

from __future__ import annotations

import contextlib
import errno
import functools
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

FONT_DISTRIBUTION = "matplotlib-fontja"
FONT_FILE = "matplotlib_fontja/fonts/ipaexg.ttf"
PDF_FONT_NAME = "IPAexGothic"


def font_path() -> Path:
    """Path of the IPAexGothic TTF in the installed ``matplotlib-fontja`` distribution.

    Raises
    ------
    FileNotFoundError
        The distribution or its font file is missing (one-line message naming both).
    """
    message = f"Japanese report font missing: install the '{FONT_DISTRIBUTION}' package (IPAexGothic)"
    try:
        files = metadata.distribution(FONT_DISTRIBUTION).files or []
    except metadata.PackageNotFoundError:
        raise FileNotFoundError(errno.ENOENT, message, FONT_FILE) from None
    for entry in files:
        if entry.as_posix() == FONT_FILE:
            path = Path(entry.locate()).resolve()
            if path.is_file():
                return path
    raise FileNotFoundError(errno.ENOENT, message, FONT_FILE)


@functools.cache
def pdf_font() -> str:
    """Register IPAexGothic with reportlab once (subset-embedded TrueType); returns its font name."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    pdfmetrics.registerFont(TTFont(PDF_FONT_NAME, str(font_path())))
    return PDF_FONT_NAME


@functools.cache
def _chart_family() -> str:
    # addfont only makes the file findable by family name; it changes no rc setting, so other
    # plots of the process keep their fonts.
    from matplotlib import font_manager

    path = str(font_path())
    font_manager.fontManager.addfont(path)
    return font_manager.FontProperties(fname=path).get_name()


@contextlib.contextmanager
def chart_fonts() -> Iterator[None]:
    """Matplotlib settings, local to the ``with`` block, that draw all chart text in IPAexGothic."""
    import matplotlib

    with matplotlib.rc_context({"font.family": _chart_family()}):
        yield

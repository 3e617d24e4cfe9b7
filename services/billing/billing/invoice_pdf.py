"""An issued invoice as a PDF (fpdf2), rendered once when the invoice is issued and kept.

The page says "Invoice", its number and issue date, the seller (company, email,
mobile), the buyer (title, tax id, address, email), one table row per order line (order,
product, specification, period, quantity, amount), the total and its currency. Amounts
are formatted from minor units; nothing is ever a float.

Text is set in DejaVu Sans when the system has it (any script a buyer may write its
title or address in that the font covers); otherwise in the PDF's own Helvetica, which
has Latin-1 only: other characters are printed as ``?``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fpdf import FPDF
from fpdf.fonts import FontFace

# ISO 4217 minor units of the currencies that do not have 2
_EXPONENTS = {"JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "BHD": 3, "KWD": 3, "OMR": 3}
_FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu")
_WIDTHS = (46, 36, 32, 20, 14, 32)  # mm, 180 in all: the A4 page within 15 mm margins
CONTENT_TYPE = "application/pdf"


@dataclass(frozen=True)
class Line:
    order_id: str
    product: str
    specification: str
    period: str
    quantity: int
    amount: int  # minor units


@dataclass(frozen=True)
class Party:
    name: str
    details: Sequence[tuple[str, str]]  # (label, value)


@dataclass(frozen=True)
class InvoiceDocumentData:
    number: str
    issued_at: dt.datetime
    seller: Party
    buyer: Party
    lines: Sequence[Line]
    total: int
    currency: str


def format_amount(minor: int, currency: str) -> str:
    """``129900, "USD"`` -> ``"1,299.00"``: the digits of minor units, never a float."""
    exponent = _EXPONENTS.get(currency, 2)
    sign = "-" if minor < 0 else ""
    whole, fraction = divmod(abs(minor), 10**exponent)
    text = f"{whole:,}"
    if exponent:
        text += f".{fraction:0{exponent}d}"
    return sign + text


def format_period(period: dict | None, billing_mode: str | None = None) -> str:
    """``{"unit": "year", "count": 1}`` -> ``"1 year"``; a one-time purchase has none."""
    if not period:
        return "one-time" if billing_mode == "one_time" else "-"
    count, unit = int(period["count"]), str(period["unit"])
    return f"{count} {unit}{'' if count == 1 else 's'}"


def _font_file(name: str) -> Path | None:
    for directory in _FONT_DIRS:
        path = Path(directory) / name
        if path.is_file():
            return path
    return None


class _Page(FPDF):
    def __init__(self) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        regular, bold = _font_file("DejaVuSans.ttf"), _font_file("DejaVuSans-Bold.ttf")
        if regular and bold:
            self.add_font("body", "", str(regular))
            self.add_font("body", "B", str(bold))
            self.family, self.unicode = "body", True
        else:
            self.family, self.unicode = "helvetica", False
        self.set_margins(15, 15, 15)
        self.set_auto_page_break(True, margin=18)

    def text_of(self, value: str) -> str:
        if self.unicode:
            return value
        return value.encode("latin-1", "replace").decode("latin-1")

    def use(self, size: float, style: str = "") -> None:
        self.set_font(self.family, style, size)

    def footer(self) -> None:
        self.set_y(-13)
        self.use(8)
        self.set_text_color(120)
        self.cell(0, 5, f"Page {self.page_no()}/{{nb}}", align="R")
        self.set_text_color(0)


def render(data: InvoiceDocumentData) -> bytes:
    """The invoice's PDF bytes (the same data gives the same bytes)."""
    pdf = _Page()
    pdf.set_creation_date(data.issued_at)
    pdf.set_title(f"Invoice {data.number}")
    pdf.set_author(pdf.text_of(data.seller.name))
    pdf.add_page()

    pdf.use(22, "B")
    pdf.cell(90, 11, "Invoice")
    pdf.use(10)
    pdf.cell(90, 5.5, f"Number: {data.number}", align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_x(105)
    pdf.cell(
        90,
        5.5,
        f"Issue date: {data.issued_at.astimezone(dt.UTC):%Y-%m-%d}",
        align="R",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.ln(6)

    top = pdf.get_y()
    _party(pdf, "Seller", data.seller, x=15, y=top)
    left_bottom = pdf.get_y()
    _party(pdf, "Buyer", data.buyer, x=105, y=top)
    pdf.set_y(max(left_bottom, pdf.get_y()) + 6)

    pdf.use(9)
    pdf.set_draw_color(160)
    heading = FontFace(emphasis="BOLD", fill_color=(230, 234, 240))
    with pdf.table(
        col_widths=_WIDTHS,
        text_align=("LEFT", "LEFT", "LEFT", "LEFT", "RIGHT", "RIGHT"),
        headings_style=heading,
        line_height=5,
        padding=1.2,
        width=sum(_WIDTHS),
    ) as table:
        table.row(("Order", "Product", "Specification", "Period", "Qty", "Amount"))
        for line in data.lines:
            table.row(
                (
                    line.order_id,
                    pdf.text_of(line.product),
                    pdf.text_of(line.specification),
                    line.period,
                    str(line.quantity),
                    format_amount(line.amount, data.currency),
                )
            )
    pdf.ln(4)
    pdf.use(12, "B")
    pdf.cell(
        0,
        7,
        f"Total: {format_amount(data.total, data.currency)} {data.currency}",
        align="R",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.use(9)
    pdf.cell(0, 5, f"Currency: {data.currency}", align="R", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def _party(pdf: _Page, label: str, party: Party, *, x: float, y: float) -> None:
    pdf.set_xy(x, y)
    pdf.use(9, "B")
    pdf.set_text_color(90)
    pdf.cell(85, 5, label.upper(), new_x="LEFT", new_y="NEXT")
    pdf.set_text_color(0)
    pdf.use(11, "B")
    pdf.multi_cell(85, 5.5, pdf.text_of(party.name), new_x="LEFT", new_y="NEXT")
    pdf.use(9)
    for name, value in party.details:
        pdf.multi_cell(85, 4.8, pdf.text_of(f"{name}: {value}"), new_x="LEFT", new_y="NEXT")

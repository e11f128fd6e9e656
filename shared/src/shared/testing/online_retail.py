"""Rows of the Online Retail CSV (../shared/data/online_retail.csv.gz) for tests that plan a small history."""

from __future__ import annotations

from datetime import datetime


def invoice_row(
    invoice: str, customer: str, when: datetime, quantity: int, price: str, *, code: str = "85123A"
) -> dict[str, str]:
    """One invoice line as ``csv.DictReader`` reads it: a ``C…`` invoice with a negative quantity is a
    cancellation; ``customer`` as digits (the CSV writes ``17850.0``); a non-numeric ``code`` (D, POST,
    M, …) is a fee or adjustment line and is its own description, as in the data."""
    return {
        "InvoiceNo": invoice,
        "StockCode": code,
        "Description": "WHITE HANGING HEART T-LIGHT HOLDER" if code[0].isdigit() else code,
        "Quantity": str(quantity),
        "InvoiceDate": when.strftime("%Y-%m-%d %H:%M:%S"),
        "UnitPrice": price,
        "CustomerID": f"{customer}.0",
        "Country": "United Kingdom",
    }
